"""One training per logdir: a second training (or conversion) on a held logdir is refused
in one line naming the holder, the first's checkpoints intact; a killed training leaves
no lock behind; a file system without locks warns once and trains."""
import errno
import os
import re
import signal
import socket
import subprocess
import sys

import pytest
from helpers import (
    TRAIN,
    checkpoint_numbers,
    printed_steps,
    saved_state,
    train_flags,
)

from wavenet import logdir_lock
from wavenet.logdir_lock import LOCK_FILE, LogdirHeld, LogdirLock


def start_training(corpus, cwd, logdir, *flags):
    """A train.py without end on ``logdir``, its output read line by line."""
    return subprocess.Popen(
        [sys.executable, TRAIN, *train_flags(corpus, f'--logdir={logdir}', *flags)],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED='1'))


def wait_for_step(process, step):
    """The lines ``process`` printed up to its step ``step``."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith(f'step {step} -'):
            return lines
    pytest.fail(f'the training ended before step {step}: {process.stderr.read()}')


def test_a_second_training_on_a_held_logdir_is_refused_in_one_line(train_in_process, corpus,
                                                                   tmp_path):
    logdir = tmp_path / 'logdir'
    first = start_training(corpus, tmp_path, logdir, '--checkpoint_every=5')
    try:
        lines = wait_for_step(first, 12)
        second = train_in_process(corpus, f'--logdir={logdir}', '--num_steps=3')
        first.send_signal(signal.SIGINT)
        stdout, stderr = first.communicate(timeout=60)
    finally:
        first.kill()
    assert second.returncode == 2
    assert re.fullmatch(
        rf'train\.py: error: --logdir {re.escape(str(logdir))} is held by another training '
        rf'\(pid {first.pid} on {re.escape(socket.gethostname())}, started '
        r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\); wait for it to end, or stop it\n', second.stderr), \
        second.stderr
    assert printed_steps(second.stdout) == []
    # The first ran on, alone: its checkpoints are its own steps, each restores whole.
    assert first.returncode == 0, stderr
    last = printed_steps(''.join(lines) + stdout)[-1][0]
    numbers = checkpoint_numbers(logdir)
    assert numbers[-1] == last and all(n % 5 == 0 for n in numbers[:-1])
    for step in numbers:
        assert saved_state(str(logdir / f'model.ckpt-{step}'), None, None) == (step, step + 1)
    assert len([n for n in os.listdir(logdir) if n.startswith('events.')]) == 1
    assert not (logdir / LOCK_FILE).exists()  # its holder removed it as it ended


def test_a_lock_left_by_a_killed_training_does_not_hold_the_next(train_in_process, corpus,
                                                                 tmp_path):
    logdir = tmp_path / 'logdir'
    killed = start_training(corpus, tmp_path, logdir, '--checkpoint_every=2')
    try:
        wait_for_step(killed, 3)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=60)
    finally:
        killed.kill()
    assert (logdir / LOCK_FILE).exists()  # the file stays; the kernel let its lock go
    after = train_in_process(corpus, f'--logdir={logdir}', '--num_steps=5')
    assert after.returncode == 0, after.stderr
    assert printed_steps(after.stdout)[0][0] == 3  # resumed after the saved step 2


def test_a_held_logdir_names_its_holder_to_a_conversion_too(tmp_path):
    held = LogdirLock(str(tmp_path / 'logdir'), '2026-12-07 10:00:00').acquire()
    try:
        with pytest.raises(LogdirHeld, match=rf'^--logdir {re.escape(str(tmp_path))}/logdir '
                           rf'is held by another training \(pid {os.getpid()} on '):
            LogdirLock(str(tmp_path / 'logdir'), 'now').acquire()
        result = subprocess.run(
            [sys.executable, '-m', 'wavenet.convert_tf1', str(tmp_path / 'old'),
             '--wavenet_params', 'wavenet_params.json', '--logdir', str(tmp_path / 'logdir')],
            capture_output=True, text=True,
            cwd=os.path.dirname(TRAIN), timeout=120)
    finally:
        held.release()
    assert result.returncode == 2
    assert 'is held by another training' in result.stderr and \
        result.stderr.count('\n') == 1, result.stderr
    # Released, the lock takes nothing with it but the folder it made for itself.
    assert os.listdir(tmp_path) == []


def test_a_lock_file_removed_as_it_was_locked_is_taken_again(tmp_path, monkeypatch):
    # The holder removes its file as it ends; one that opened the file just before then
    # locks a file no later process would see, so it must lock the path's file instead.
    import wavenet.logdir_lock as logdir_lock
    real_flock, calls = logdir_lock.fcntl.flock, []

    def flock_after_the_holder_ended(file, operation):
        if not calls:
            os.remove(tmp_path / LOCK_FILE)
        calls.append(os.fstat(file.fileno()).st_ino)
        real_flock(file, operation)

    monkeypatch.setattr(logdir_lock.fcntl, 'flock', flock_after_the_holder_ended)
    held = LogdirLock(str(tmp_path), 'now').acquire()
    monkeypatch.setattr(logdir_lock.fcntl, 'flock', real_flock)
    try:
        assert len(calls) == 2 and calls[1] == os.stat(tmp_path / LOCK_FILE).st_ino
        with pytest.raises(LogdirHeld):
            LogdirLock(str(tmp_path), 'later').acquire()
    finally:
        held.release()
    assert os.listdir(tmp_path) == []


def test_a_file_system_without_locks_warns_once_and_trains(train_main, corpus, tmp_path,
                                                          capsys, monkeypatch):
    def no_locks(file, operation):
        raise OSError(errno.ENOLCK, 'No locks available')

    monkeypatch.setattr(logdir_lock.fcntl, 'flock', no_locks)
    train_main(train_flags(corpus, '--logdir=logdir', '--num_steps=2'))
    captured = capsys.readouterr()
    assert captured.err == ('Warning: logdir: its file system cannot lock files (No locks '
                            'available), so a second training there would not be stopped\n')
    assert checkpoint_numbers(tmp_path / 'logdir') == [0, 1]
