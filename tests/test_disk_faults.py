"""Faults of the disk and of the compilation cache end in the same wav or in one line that
names the path, never in a traceback, and lose nothing already written: a damaged cache
entry heals itself, a cache on a full disk is read but not written, and a full disk under
a wav, a logdir, an export or a conversion is named. The full disks are small tmpfs mounts
(root only)."""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from helpers import (
    CORPUS_PARAMS,
    GC_CHANNELS,
    ROOT,
    read_int16,
    run_generate,
    run_tool,
    run_train,
    saved_state,
    write_original_checkpoint,
)

from wavenet import cache_entries


@pytest.fixture
def small_disk(tmp_path):
    """A factory of tmpfs folders of a given size in bytes, unmounted after the test."""
    mounted = []

    def mount(name, size):
        if os.geteuid() != 0:
            pytest.skip('mounting a small file system needs root')
        path = tmp_path / name
        path.mkdir()
        result = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs',
                                 str(path)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f'cannot mount a tmpfs here: {result.stderr.strip()}')
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(['umount', '-l', str(path)], capture_output=True)


def fill(folder):
    """Fills ``folder``'s file system to the last byte."""
    with open(folder / 'filler', 'wb', buffering=0) as f:
        for size in (1 << 16, 1):  # large blocks, then the last bytes one by one
            try:
                while True:
                    f.write(b'\0' * size)
            except OSError:
                pass


def assert_one_line_error(result, *words):
    assert result.returncode == 1, result.stderr
    assert 'Traceback' not in result.stderr, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert 'error: no space left on device' in line, result.stderr
    for word in words:
        assert str(word) in line, line


def generation(speaker_files, tmp_path, cache, name, *flags):
    """``generate.py --seed 7`` of the speaker checkpoint into ``tmp_path/name``."""
    return run_generate(speaker_files['described'], '--gc_id', 2, '--samples', 300,
                        '--seed', 7, '--logdir', tmp_path / 'logs', '--cache_dir', cache,
                        '--wav_out_path', tmp_path / name, *flags)


def entries_of(cache):
    machine, = os.listdir(cache)
    return sorted((cache / machine / 'xla').glob('*.pb'))


@pytest.mark.parametrize('damage', ['truncated', 'other bytes', 'empty'])
def test_a_damaged_cache_entry_is_put_aside_and_compiled_again(speaker_files, tmp_path,
                                                               damage):
    cache = tmp_path / 'cache'
    healthy = generation(speaker_files, tmp_path, cache, 'healthy.wav')
    assert healthy.returncode == 0, healthy.stderr
    entry, = entries_of(cache)
    data = entry.read_bytes()
    entry.write_bytes({'truncated': data[:len(data) // 2],
                       'other bytes': np.random.default_rng(0).bytes(len(data)),
                       'empty': b''}[damage])
    assert cache_entries.problem(str(entry))

    damaged = generation(speaker_files, tmp_path, cache, 'damaged.wav')
    assert damaged.returncode == 0, damaged.stderr
    warnings = [line for line in damaged.stderr.splitlines() if line.startswith('Warning')]
    assert len(warnings) == 1 and str(entry) in warnings[0], damaged.stderr
    np.testing.assert_array_equal(read_int16(tmp_path / 'damaged.wav'),
                                  read_int16(tmp_path / 'healthy.wav'))
    assert entries_of(cache) == [entry] and cache_entries.problem(str(entry)) is None

    healed = generation(speaker_files, tmp_path, cache, 'healed.wav')
    assert healed.returncode == 0 and 'Warning' not in healed.stderr, healed.stderr
    np.testing.assert_array_equal(read_int16(tmp_path / 'healed.wav'),
                                  read_int16(tmp_path / 'healthy.wav'))


@pytest.mark.parametrize('fault', ['full', 'read-only'])
def test_a_cache_that_cannot_be_written_is_one_warning_and_the_same_wav(
        speaker_files, tmp_path, small_disk, fault):
    reference = generation(speaker_files, tmp_path, '', 'reference.wav')
    assert reference.returncode == 0, reference.stderr
    disk = small_disk('cache', 1 << 20)
    if fault == 'full':
        fill(disk)
    else:
        subprocess.run(['mount', '-o', 'remount,ro', str(disk)], check=True)
    full = generation(speaker_files, tmp_path, disk / 'wavenet', 'full.wav')
    assert full.returncode == 0, full.stderr
    warning, = [line for line in full.stderr.splitlines() if line.startswith('Warning')]
    assert str(disk / 'wavenet') in warning and 'not kept' in warning
    np.testing.assert_array_equal(read_int16(tmp_path / 'full.wav'),
                                  read_int16(tmp_path / 'reference.wav'))
    assert not list(disk.rglob('*.tmp')) and not list(disk.rglob('*.pb'))


def test_a_wav_whose_disk_fills_keeps_what_was_generated(speaker_files, tmp_path,
                                                         small_disk):
    samples = 40000  # 80 kB of 16-bit samples onto a 32 kB disk
    reference = run_generate(speaker_files['described'], '--gc_id', 2, '--samples', samples,
                             '--seed', 7, '--logdir', tmp_path / 'logs',
                             '--wav_out_path', tmp_path / 'reference.wav')
    assert reference.returncode == 0, reference.stderr
    disk = small_disk('wavs', 32 << 10)
    result = run_generate(speaker_files['described'], '--gc_id', 2, '--samples', samples,
                          '--seed', 7, '--logdir', tmp_path / 'logs',
                          '--wav_out_path', disk / 'out.wav')
    assert_one_line_error(result, disk / 'out.wav', disk / 'out.wav.part')
    kept = np.fromfile(disk / 'out.wav.part', '<i2')
    assert 1000 <= len(kept) < samples
    assert f'the first {len(kept)} samples' in result.stderr
    np.testing.assert_array_equal(kept, read_int16(tmp_path / 'reference.wav')[:len(kept)])
    assert not (disk / 'out.wav').exists() and not (disk / 'out.wav.tmp').exists()


@pytest.mark.timeout(300)
def test_a_logdir_whose_disk_fills_names_the_last_good_checkpoint(corpus, tmp_path,
                                                                  small_disk):
    disk = small_disk('logdir', 640 << 10)
    logdir = disk / 'run'
    result = run_train(corpus, tmp_path, f'--logdir={logdir}', '--num_steps=400',
                       '--checkpoint_every=1', '--max_checkpoints=400',
                       f'--gc_channels={GC_CHANNELS}')
    assert_one_line_error(result, logdir, 'The last good checkpoint is')
    last = result.stderr.strip().rsplit('The last good checkpoint is ', 1)[1].rstrip('.')
    step = int(last.rsplit('-', 1)[1])
    assert step >= 1
    assert not list(logdir.glob('*_temp*'))
    assert saved_state(last) == (step, step + 1)
    # Once there is room (here: the logdir moved), training resumes after it.
    roomy = shutil.copytree(logdir, tmp_path / 'roomy')
    resumed = run_train(corpus, tmp_path, f'--logdir={roomy}', f'--num_steps={step + 2}',
                        f'--gc_channels={GC_CHANNELS}')
    assert resumed.returncode == 0, resumed.stderr
    assert f'step {step + 1} - loss' in resumed.stdout


def test_an_export_onto_a_full_disk_is_one_line(speaker_files, tmp_path, small_disk):
    disk = small_disk('export', 64 << 10)
    result = run_tool('-m', 'wavenet.export', speaker_files['described'], disk / 'exported',
                      env=dict(os.environ, PYTHONPATH=ROOT))
    assert_one_line_error(result, disk / 'exported')
    assert os.listdir(disk) == []


def test_a_conversion_onto_a_full_disk_is_one_line(tmp_path, small_disk):
    prefix, _ = write_original_checkpoint(tmp_path, CORPUS_PARAMS)
    (tmp_path / 'params.json').write_text(json.dumps(CORPUS_PARAMS))
    disk = small_disk('converted', 16 << 10)
    (disk / 'notes.txt').write_text('kept')
    result = run_tool('-m', 'wavenet.convert_tf1', prefix,
                      f'--wavenet_params={tmp_path / "params.json"}',
                      f'--logdir={disk}', env=dict(os.environ, PYTHONPATH=ROOT))
    assert_one_line_error(result, disk)
    assert os.listdir(disk) == ['notes.txt']


