"""The compiled generation loop is kept in a cache folder between runs: a second run loads
it and draws the same audio, an empty --cache_dir keeps none, and loops compiled with other
XLA flags are kept apart; a generation sets TensorFlow's threads by its groups of rows; a
training on a warm cache prints nothing on stderr, and of XLA's logs only its false alarms
are hidden."""
import os
import shlex

import numpy as np
import pytest
from helpers import ROOT, TRAIN, read_int16, run_generate, run_tool

from wavenet import compilation_cache


def test_a_second_run_loads_the_compiled_loop(speaker_files, tmp_path):
    """The first run fills the cache folder, the second adds nothing and draws the same
    audio; an empty --cache_dir keeps none."""
    cache = tmp_path / 'cache'
    flags = [speaker_files['described'], '--gc_id', 2, '--samples', 200, '--seed', 5,
             '--logdir', tmp_path / 'logs', '--cache_dir', cache]
    first = run_generate(*flags, '--wav_out_path', tmp_path / 'first.wav')
    assert first.returncode == 0, first.stderr
    machine, = os.listdir(cache)  # tensorflow-<version>-<architecture>-<processor>
    assert machine.startswith('tensorflow-2.')
    entries = sorted(os.listdir(cache / machine / 'xla'))
    assert entries and all(name.endswith('.pb') for name in entries)
    second = run_generate(*flags, '--wav_out_path', tmp_path / 'second.wav')
    assert second.returncode == 0, second.stderr
    assert sorted(os.listdir(cache / machine / 'xla')) == entries
    # Loading logs nothing (no false alarm of XLA's reading the entry): stderr is empty.
    assert 'Sample 200/200' in second.stdout
    assert second.stderr == '', second.stderr
    np.testing.assert_array_equal(read_int16(tmp_path / 'first.wav'),
                                  read_int16(tmp_path / 'second.wav'))
    env = dict(os.environ)
    env.pop('WAVENET_CACHE_DIR', None)
    env['XDG_CACHE_HOME'] = str(tmp_path / 'home')
    off = run_generate(*flags[:-2], '--cache_dir', '', '--wav_out_path', tmp_path / 'off.wav',
                       env=env)
    assert off.returncode == 0, off.stderr
    assert not (tmp_path / 'home' / 'wavenet').exists()
    np.testing.assert_array_equal(read_int16(tmp_path / 'off.wav'),
                                  read_int16(tmp_path / 'first.wav'))


def test_the_demo_quick_start_on_a_warm_cache_prints_nothing_on_stderr(tmp_path):
    """Its first steps twice on one cache: the second loads the compiled step and the
    sampling loop, and XLA's false alarm as it reads them (a text parse of the binary
    entry that fails) is not shown."""
    with open(os.path.join(ROOT, 'README.md')) as readme:
        command = next(line for line in readme if line.startswith('python train.py') and
                       'demo/wavenet_params.json' in line)
    flags = [flag for flag in shlex.split(command)[2:]
             if not flag.startswith(('--num_steps', '--logdir'))]
    env = dict(os.environ, WAVENET_CACHE_DIR=str(tmp_path / 'cache'))
    runs = [run_tool(TRAIN, *flags, '--num_steps=2', '--sample_seconds=0.05',
                     f'--logdir={tmp_path / f"logdir{run}"}', cwd=ROOT, env=env)
            for run in (1, 2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    assert runs[1].stderr == ''


def test_a_batch_split_over_cores_is_cached_apart_and_draws_what_a_row_draws_alone(
        speaker_files, tmp_path):
    """Two speakers on two cores run as two row groups, whose products XLA compiles to
    stay on their group's thread: another executable for the same shapes, so it is kept in
    a folder of its own (TensorFlow's cache key leaves XLA's flags out), and each row draws
    what it draws alone."""
    if compilation_cache.cpu_cores() < 2:
        pytest.skip('needs two cores')
    cache = tmp_path / 'cache'
    flags = [speaker_files['described'], '--samples', 200, '--seed', 5,
             '--logdir', tmp_path / 'logs', '--cache_dir', cache]
    alone = run_generate(*flags, '--gc_id', 2, '--wav_out_path', tmp_path / 'alone.wav',
                         cores=2)
    assert alone.returncode == 0, alone.stderr
    machine, = os.listdir(cache)
    batch = run_generate(*flags, '--gc_id', '2,5', '--wav_out_path', tmp_path / 'batch.wav',
                         cores=2)
    assert batch.returncode == 0, batch.stderr
    folders = sorted(os.listdir(cache))
    assert len(folders) == 2 and machine in folders
    split, = set(folders) - {machine}
    assert split.startswith(machine + '-')
    assert os.listdir(cache / split / 'xla')
    np.testing.assert_array_equal(read_int16(tmp_path / 'alone.wav'),
                                  read_int16(tmp_path / 'batch_gc2.wav'))


@pytest.mark.parametrize('batch, cores, intra_op, eigen_flag', [
    (1, 2, '1', False),  # one row group: its loop on one intra-op thread
    (1, 1, '1', False),
    (16, 1, '1', False),  # one core: one group, whatever the batch
    (2, 2, None, True),  # a group per core: a thread each, products on their thread
    (16, 2, None, True)])
def test_the_threads_a_generation_sets_follow_its_row_groups(monkeypatch, batch, cores,
                                                              intra_op, eigen_flag):
    monkeypatch.delenv('TF_NUM_INTRAOP_THREADS', raising=False)
    monkeypatch.setenv('XLA_FLAGS', '--xla_dump_to=/nowhere')
    monkeypatch.setattr(compilation_cache, 'cpu_cores', lambda: cores)
    compilation_cache.threads_for(batch)
    assert os.environ.get('TF_NUM_INTRAOP_THREADS') == intra_op
    flags = os.environ['XLA_FLAGS'].split()
    assert flags[0] == '--xla_dump_to=/nowhere'
    assert ('--xla_cpu_multi_thread_eigen=false' in flags) == eigen_flag
    assert compilation_cache.row_groups(batch) == min(batch, cores)


def test_the_users_thread_settings_win(monkeypatch):
    monkeypatch.setenv('TF_NUM_INTRAOP_THREADS', '2')
    monkeypatch.setenv('XLA_FLAGS', '--xla_cpu_multi_thread_eigen=true')
    monkeypatch.setattr(compilation_cache, 'cpu_cores', lambda: 2)
    compilation_cache.threads_for(1)
    compilation_cache.threads_for(4)
    assert os.environ['TF_NUM_INTRAOP_THREADS'] == '2'
    assert os.environ['XLA_FLAGS'] == '--xla_cpu_multi_thread_eigen=true'


@pytest.mark.parametrize('feature, harmless', [('prefer-no-scatter', True),
                                               ('prefer-no-gather', True),
                                               ('avx512f', False)])
def test_only_the_loaders_tuning_flag_mismatch_is_hidden(feature, harmless):
    """XLA's loader calls every cached entry a machine mismatch on CPUs whose LLVM tuning
    preferences it takes for instruction sets (openxla/xla#44565): that line is dropped,
    a real missing instruction set still reaches the user."""
    from wavenet.cli import HARMLESS_NATIVE_LINES
    line = (b'E0000 00:00:1796684582.279343   10616 cpu_aot_loader.cc:220] Loading XLA:CPU '
            b'AOT result. Target machine feature +' + feature.encode() + b' is not  supported '
            b'on the host machine. Machine type used for XLA:CPU compilation doesn\'t match '
            b'the machine type for execution.\n')
    assert bool(HARMLESS_NATIVE_LINES.search(line)) == harmless
