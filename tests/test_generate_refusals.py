"""What generate.py refuses, before any work and with nothing written: one line on stderr
naming the flag, file or value, and exit status 2; and that ending the process without a
teardown, as it does, loses neither output nor exit status."""
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from helpers import ROOT, run_generate

ERRORS = {
    'missing checkpoint': (['{root}/nowhere/model.ckpt-1', '--gc_id', 1], 'no checkpoint'),
    'directory without checkpoints': (['{root}'], 'no checkpoint in directory'),
    'unreadable checkpoint': (['{root}/garbage/model.ckpt-1', '--gc_id', 1],
                              'cannot read checkpoint'),
    'speaker out of range': (['{prefix}', '--gc_id', 6], '--gc_id 6 is outside [0, 6)'),
    'negative speaker': (['{prefix}', '--gc_id', '1,-1'], '--gc_id -1 is outside'),
    'speaker not an int': (['{prefix}', '--gc_id', 'p225'], '--gc_id'),
    'speaker missing': (['{prefix}'], 'Use --gc_id to specify global condition.'),
    'speaker twice': (['{prefix}', '--gc_id', '2,3,2'], '--gc_id lists a speaker twice'),
    'cardinality missing': (['{bare}', '--wavenet_params', '{params}', '--gc_channels', 4,
                             '--gc_id', 1], 'Use --gc_cardinality=377 for full VCTK corpus.'),
    'zero temperature': (['{prefix}', '--gc_id', 1, '--temperature', 0], '--temperature'),
    'negative temperature': (['{prefix}', '--gc_id', 1, '--temperature', -1], '--temperature'),
    'zero samples': (['{prefix}', '--gc_id', 1, '--samples', 0], '--samples'),
    'zero save_every': (['{prefix}', '--gc_id', 1, '--save_every', 0], '--save_every'),
    'unreadable seed': (['{prefix}', '--gc_id', 1, '--wav_seed', '{params}'], 'params.json'),
    'params file missing': (['{bare}', '--wavenet_params', '{root}/none.json'], 'none.json'),
    'params file invalid': (['{bare}', '--wavenet_params', '{broken_params}'],
                            'broken.json: "filter_width"'),
    'params file contradicts description': (
        ['{prefix}', '--gc_id', 1, '--wavenet_params', '{other_params}'], 'residual_channels'),
    'flag contradicts description': (['{prefix}', '--gc_id', 1, '--gc_cardinality', 9],
                                     'gc_cardinality'),
    'params file contradicts checkpoint': (
        ['{bare}', '--wavenet_params', '{other_params}', '--gc_channels', 4,
         '--gc_cardinality', 6, '--gc_id', 1], 'residual_channels'),
    'conditioning flags missing for a conditioned checkpoint': (
        ['{bare}', '--wavenet_params', '{params}'], 'gc_channels'),
}


@pytest.fixture(scope='module')
def files(speaker_files):
    """``speaker_files``, with a file where a checkpoint's index should be."""
    (speaker_files['root'] / 'garbage').mkdir()
    (speaker_files['root'] / 'garbage' / 'model.ckpt-1.index').write_bytes(b'not a checkpoint')
    return speaker_files


def refusal(run, files, case, outputs):
    """``run`` (the tool, or its ``main`` in this process) on ``ERRORS[case]``, its outputs
    asked in the empty folder ``outputs``, which it must leave empty."""
    flags = [str(flag).format(**files) for flag in ERRORS[case][0]]
    return run(*flags, '--wav_out_path', outputs / 'out.wav', '--logdir', outputs / 'logs')


def assert_refused(result, case, outputs):
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith('generate.py: error: ')
    assert ERRORS[case][1] in result.stderr
    assert os.listdir(outputs) == []


@pytest.mark.parametrize('case', ERRORS)
def test_bad_input_is_one_line_and_exit_2(generate_main, files, case, tmp_path):
    assert_refused(refusal(generate_main, files, case, tmp_path), case, tmp_path)


# Refusals after TensorFlow has started and read a checkpoint: still one line on the
# process's stderr, the native logs of TensorFlow's start and of its checkpoint reader kept
# off it.
@pytest.mark.parametrize('case', ['unreadable checkpoint', 'params file contradicts checkpoint'])
def test_the_tool_refuses_in_one_line_of_its_stderr(files, case, tmp_path):
    assert_refused(refusal(run_generate, files, case, tmp_path), case, tmp_path)


@pytest.mark.parametrize('flags, message', [
    (['--wav_out_path', '{root}'], 'is a directory'),
    (['--wav_out_path', '{root}/missing/out.wav'], 'no such directory'),
    (['--wav_out_path', '{params}/out.wav'], 'no such directory'),
    (['--logdir', '{params}'], 'is a file, not a directory'),
    (['--seed', '1' + '0' * 30], 'argument --seed: expected a 64-bit integer'),
])
def test_outputs_that_cannot_be_written_are_refused_before_generating(generate_main,
                                                                      speaker_files, flags,
                                                                      message):
    flags = [flag.format(**speaker_files) for flag in flags]
    result = generate_main(speaker_files['prefix'], '--gc_id', 1, '--samples', 50, *flags)
    assert result.returncode == 2
    assert result.stderr.startswith('generate.py: error: ') and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_save_every_needs_a_wav(generate_main, speaker_files, tmp_path):
    result = generate_main(speaker_files['prefix'], '--gc_id', 1, '--save_every', 10,
                          '--logdir', tmp_path / 'logs')
    assert result.returncode == 2
    assert result.stderr.strip() == 'generate.py: error: --save_every needs --wav_out_path'
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('flags, message', [
    (['--gc_id', 1], '--gc_id given, but the network is not globally conditioned'),
    (['--wav_seed', '{silent}'], 'is silent (nothing above 0.1 RMS)'),
    (['--sharpen', 'true'], '--sharpen given, but the network is not locally conditioned'),
])
def test_refused_on_an_unconditioned_network(generate_main, plain_checkpoint, tmp_path, flags,
                                             message):
    soundfile.write(str(tmp_path / 'silent.wav'), np.zeros(4000), 8000)
    flags = [str(flag).format(silent=tmp_path / 'silent.wav') for flag in flags]
    result = generate_main(plain_checkpoint, *flags, '--wav_out_path', tmp_path / 'out.wav',
                          '--logdir', tmp_path / 'logs')
    assert result.returncode == 2
    assert result.stderr.startswith('generate.py: error: ') and message in result.stderr
    assert sorted(os.listdir(tmp_path)) == ['silent.wav']


def test_two_utterances_of_one_name_refused(generate_main, small_vocoder, tmp_path):
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'short.wav').write_bytes((small_vocoder['root'] / 'short.wav').read_bytes())
    result = generate_main(small_vocoder['checkpoint'], '--lc_wav',
                          small_vocoder['root'] / 'short.wav', '--lc_wav', other / 'short.wav',
                          '--wav_out_path', tmp_path / 'o.wav')
    assert result.returncode == 2
    assert 'names two files of the same name' in result.stderr.strip()


def test_an_unwritable_cache_dir_is_one_line(generate_main, speaker_files, tmp_path):
    (tmp_path / 'file').write_text('')
    result = generate_main(speaker_files['described'], '--gc_id', 2,
                          '--cache_dir', tmp_path / 'file' / 'cache')
    assert result.returncode == 2
    assert result.stderr.strip() == (f'generate.py: error: --cache_dir {tmp_path}/file/cache: '
                                     f'{tmp_path}/file is a file, not a directory')


# A tool that ends without the interpreter's teardown, as generate.py does (``cli.run``);
# its output is still in Python's buffers when ``main`` ends.
ENDS_AT_ONCE = """
import sys
from wavenet.cli import run
def main():
    print('the last words', end='')
    {ending}
run(main, skip_teardown=True)
"""


@pytest.mark.parametrize('ending, status, stderr', [
    ('return None', 0, ''),
    ('return 3', 3, ''),
    ("sys.exit('a message')", 1, 'a message\n'),
    ("raise RuntimeError('a failure')", 1, 'RuntimeError: a failure\n'),
])
def test_a_tool_that_skips_the_teardown_keeps_its_output_and_its_status(ending, status,
                                                                         stderr):
    # Buffered, as a pipe is unless the user asks otherwise.
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONUNBUFFERED'}
    ended = subprocess.run([sys.executable, '-c', ENDS_AT_ONCE.format(ending=ending)],
                           capture_output=True, text=True, timeout=60,
                           env=dict(env, PYTHONPATH=ROOT))
    assert (ended.returncode, ended.stdout) == (status, 'the last words')
    assert ended.stderr.endswith(stderr)
