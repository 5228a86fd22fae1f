"""The compiled generation loop is kept in a cache folder between runs: a second run loads
it and draws the same audio, an empty --cache_dir keeps none."""
import os

import numpy as np
from helpers import read_int16, run_generate


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
    # Loading logs nothing: stderr holds the progress line alone.
    assert second.stderr.strip().startswith('Sample 200/200'), second.stderr
    assert len(second.stderr.strip().splitlines()) == 1, second.stderr
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
