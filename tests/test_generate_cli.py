"""generate.py through subprocesses: wav and TensorBoard outputs, several speakers, the
checkpoints train.py writes, and a one-line error (exit 2) for each kind of bad input."""
import concurrent.futures
import os
import shutil

import numpy as np
import pytest
import soundfile
from helpers import (
    TRAIN,
    audio_summaries,
    describe,
    run_generate,
    run_tool,
    save_checkpoint,
    write_json,
)

from wavenet.generation import load_clip
from wavenet.output import MuLawSoftmax

PARAMS = dict(filter_width=2, sample_rate=8000, dilations=[1, 2, 4, 8], residual_channels=8,
              dilation_channels=8, quantization_channels=64, skip_channels=16, use_biases=True,
              scalar_input=False, initial_filter_width=32)
GC_CHANNELS, GC_CARDINALITY = 4, 6


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """A speaker-conditioned checkpoint with its description (``described``), the same
    checkpoint alone (``bare``), params files and a seed clip."""
    root = tmp_path_factory.mktemp('generate')
    described = save_checkpoint(root / 'described', describe(PARAMS, GC_CHANNELS,
                                                               GC_CARDINALITY), step=7)
    bare = root / 'bare'
    shutil.copytree(described, bare, ignore=shutil.ignore_patterns('wavenet_params.json'))
    t = np.arange(4000) / PARAMS['sample_rate']
    soundfile.write(str(root / 'seed.wav'), 0.6 * np.sin(2 * np.pi * 220 * t), 8000)
    return dict(root=root, described=described, bare=bare,
                prefix=described / 'model.ckpt-7', seed=root / 'seed.wav',
                params=write_json(root / 'params.json', PARAMS),
                other_params=write_json(root / 'other.json', dict(PARAMS, residual_channels=16)),
                broken_params=write_json(root / 'broken.json', dict(PARAMS, filter_width='2')))


def test_several_speakers_with_seed_clip(files, tmp_path):
    out = tmp_path / 'out.wav'
    result = run_generate(files['prefix'], '--gc_id', '2,5', '--samples', 250,
                          '--wav_out_path', out, '--save_every', 100, '--seed', 4,
                          '--wav_seed', files['seed'], '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(
        'Finished generating. The result can be viewed in TensorBoard.')
    assert sorted(os.listdir(tmp_path)) == ['logs', 'out_gc2.wav', 'out_gc5.wav']
    clip = load_clip(str(files['seed']), 8000, MuLawSoftmax(64),
                     describe(PARAMS).receptive_field)
    for speaker in (2, 5):
        audio, sample_rate = soundfile.read(str(tmp_path / f'out_gc{speaker}.wav'))
        assert sample_rate == 8000 and audio.shape == (len(clip) + 250,)
        assert soundfile.info(str(tmp_path / f'out_gc{speaker}.wav')).subtype == 'PCM_16'
    assert sorted(audio_summaries(tmp_path / 'logs')) == [('generated/speaker_2', 0),
                                                  ('generated/speaker_5', 0)]

    # Alone, or through the full-window path, a speaker gets the same audio.
    for flags in ([], ['--fast_generation', 'false']):
        alone = tmp_path / 'alone.wav'
        result = run_generate(files['prefix'], '--gc_id', 5, '--samples', 250, '--seed', 4,
                              '--wav_out_path', alone, '--wav_seed', files['seed'],
                              '--logdir', tmp_path / 'logs', *flags)
        assert result.returncode == 0, result.stderr
        np.testing.assert_array_equal(soundfile.read(str(alone))[0],
                                      soundfile.read(str(tmp_path / 'out_gc5.wav'))[0])


def test_generates_from_a_checkpoint_written_by_train_py(tmp_path):
    t = np.arange(4000) / 16000
    for speaker in (1, 3):
        path = tmp_path / 'corpus' / f'p{speaker}' / f'p{speaker}_001.wav'
        path.parent.mkdir(parents=True)
        soundfile.write(str(path), 0.5 * np.sin(2 * np.pi * 150 * speaker * t), 16000)
    params = write_json(tmp_path / 'params.json', dict(PARAMS, sample_rate=16000))
    train = run_tool(TRAIN, f'--data_dir={tmp_path / "corpus"}', f'--wavenet_params={params}',
                     f'--logdir={tmp_path / "train"}', '--num_steps=2', '--checkpoint_every=1',
                     '--sample_size=500', '--gc_channels=4')
    assert train.returncode == 0, train.stderr

    out = tmp_path / 'generated.wav'
    result = run_generate(tmp_path / 'train', '--gc_id', 3, '--samples', 300,
                          '--wav_out_path', out, '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    audio, sample_rate = soundfile.read(str(out))
    assert sample_rate == 16000 and audio.shape == (300,)
    assert sorted(audio_summaries(tmp_path / 'logs')) == [('generated/speaker_3', 0)]


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
def error_runs(files):
    """Every case of ERRORS, run a few at a time: each process spends seconds importing
    TensorFlow. Each gets an empty folder for the outputs it must not write."""
    (files['root'] / 'garbage').mkdir()
    (files['root'] / 'garbage' / 'model.ckpt-1.index').write_bytes(b'not a checkpoint')

    def run(case):
        outputs = files['root'] / 'outputs' / case.replace(' ', '_')
        outputs.mkdir(parents=True)
        flags = [str(flag).format(**files) for flag in ERRORS[case][0]]
        return outputs, run_generate(*flags, '--wav_out_path', outputs / 'out.wav',
                                     '--logdir', outputs / 'logs')

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        return dict(zip(ERRORS, pool.map(run, ERRORS)))


@pytest.mark.parametrize('case', ERRORS)
def test_bad_input_is_one_line_and_exit_2(error_runs, case):
    outputs, result = error_runs[case]
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith('generate.py: error: ')
    assert ERRORS[case][1] in result.stderr
    assert os.listdir(outputs) == []


@pytest.mark.parametrize('flags, message', [
    (['--wav_out_path', '{root}'], 'is a directory'),
    (['--wav_out_path', '{root}/missing/out.wav'], 'no such directory'),
    (['--wav_out_path', '{params}/out.wav'], 'no such directory'),
    (['--logdir', '{params}'], 'is a file, not a directory'),
    (['--seed', '1' + '0' * 30], 'argument --seed: expected a 64-bit integer'),
])
def test_outputs_that_cannot_be_written_are_refused_before_generating(files, flags, message):
    flags = [flag.format(**files) for flag in flags]
    result = run_generate(files['prefix'], '--gc_id', 1, '--samples', 50, *flags)
    assert result.returncode == 2
    assert result.stderr.startswith('generate.py: error: ') and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
