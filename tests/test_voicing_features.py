"""A vocoder voices mel features through the tools: train.py trains one on a corpus,
generate.py voices a wav's features (--lc_wav) or saved ones (--lc_features) for several
speakers, and refuses bad features in one line (exit 2)."""
import json
import os

import numpy as np
import pytest
import soundfile
from helpers import (
    GC_CARDINALITY,
    GC_CHANNELS,
    GENERATE,
    SMALL,
    SMALL_VOCODER,
    TRAIN,
    audio_summaries,
    describe,
    save_checkpoint,
)
from helpers import run_tool as run

from wavenet.features import MelFeatures

VOCODER, PLAIN = SMALL_VOCODER, SMALL
RATE, HOP, MELS = VOCODER['sample_rate'], VOCODER['lc_hop_length'], VOCODER['lc_channels']


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('vocoder')
    save_checkpoint(root / 'vocoder', describe(VOCODER, GC_CHANNELS, GC_CARDINALITY), step=3)
    save_checkpoint(root / 'plain', describe(PLAIN), step=3)
    t = np.arange(1000) / RATE
    soundfile.write(str(root / 'speech.wav'), 0.5 * np.sin(2 * np.pi * 300 * t * (1 + t)), RATE)
    features = MelFeatures(RATE, MELS, HOP, 64)
    frames = features(soundfile.read(str(root / 'speech.wav'), dtype='float32')[0])
    np.save(root / 'frames.npy', frames)
    np.save(root / 'wide.npy', np.zeros((10, MELS + 1), np.float32))
    np.save(root / 'flat.npy', np.zeros(10, np.float32))
    np.save(root / 'nan.npy', np.full((10, MELS), np.nan, np.float32))
    (root / 'not.npy').write_text('not numpy')
    (root / 'not.wav').write_text('not audio')
    soundfile.write(str(root / 'nan.wav'), np.full(500, np.nan), RATE, subtype='FLOAT')
    return dict(root=root, vocoder=root / 'vocoder', plain=root / 'plain',
                wav=root / 'speech.wav', frames=root / 'frames.npy', frame_count=len(frames))


def test_copy_synthesis_for_several_speakers(files, tmp_path):
    """--lc_wav: frames * hop samples per speaker, each speaker voicing the same frames
    (alone it gets the same audio), the reference beside the generated audio in
    TensorBoard; --lc_features with the same features gives the same audio."""
    out = tmp_path / 'out.wav'
    result = run(GENERATE, files['vocoder'], '--lc_wav', files['wav'], '--gc_id', '1,4',
                 '--wav_out_path', out, '--seed', 3, '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    samples = files['frame_count'] * HOP
    assert samples == 1008  # 1000 samples: 63 frames of 16
    audio = {}
    for speaker in (1, 4):
        audio[speaker], rate = soundfile.read(str(tmp_path / f'out_gc{speaker}.wav'))
        assert rate == RATE and audio[speaker].shape == (samples,)
    assert not np.array_equal(audio[1], audio[4])
    found = audio_summaries(tmp_path / 'logs')
    assert sorted(found) == [('generated/speaker_1', 0), ('generated/speaker_4', 0),
                             ('reference', 0)]

    for source in (['--lc_wav', files['wav']], ['--lc_features', files['frames']]):
        alone = tmp_path / 'alone.wav'
        result = run(GENERATE, files['vocoder'], *source, '--gc_id', 4, '--seed', 3,
                     '--wav_out_path', alone, '--logdir', tmp_path / 'logs')
        assert result.returncode == 0, result.stderr
        np.testing.assert_array_equal(soundfile.read(str(alone))[0], audio[4])


def test_samples_fewer_than_the_frames_describe(files, tmp_path):
    out = tmp_path / 'short.wav'
    generated = []
    for flags in ([], ['--fast_generation', 'false']):
        result = run(GENERATE, files['vocoder'], '--lc_features', files['frames'],
                     '--gc_id', 2, '--samples', 300, '--seed', 9, '--wav_out_path', out,
                     '--logdir', tmp_path / 'logs', *flags)
        assert result.returncode == 0, result.stderr
        generated.append(soundfile.read(str(out))[0])
        assert generated[-1].shape == (300,)
    # The full-window path draws what the compiled loop drew.
    np.testing.assert_array_equal(generated[0], generated[1])


@pytest.mark.parametrize('flags, message', [
    ([], 'the network is a vocoder (lc_channels 8): give the features to voice with '
         '--lc_wav or --lc_features'),
    (['--lc_features', 'wide.npy'], '--lc_features {root}/wide.npy: expected [frames, 8] '
                                    'features (lc_channels of the network), got shape (10, 9)'),
    (['--lc_features', 'flat.npy'], '--lc_features {root}/flat.npy: expected [frames, 8] '
                                    'features (lc_channels of the network), got shape (10,)'),
    (['--lc_features', 'nan.npy'], '--lc_features {root}/nan.npy: features must be finite'),
    (['--lc_features', 'not.npy'], '--lc_features {root}/not.npy: cannot read it as a NumPy'),
    (['--lc_features', 'missing.npy'], '--lc_features {root}/missing.npy: cannot read it'),
    (['--lc_wav', 'not.wav'], '--lc_wav {root}/not.wav: cannot read it as audio'),
    (['--lc_wav', 'nan.wav'], '--lc_wav {root}/nan.wav: cannot read it as audio (it holds NaN '
                              'or infinite samples)'),
    (['--lc_wav', 'speech.wav', '--lc_features', 'frames.npy'],
     '--lc_wav and --lc_features cannot be used together'),
    (['--lc_wav', 'speech.wav', '--wav_seed', 'speech.wav'],
     '--wav_seed cannot be used with a vocoder'),
    (['--lc_wav', 'speech.wav', '--samples', 1009],
     '--samples 1009 is more than the 63 frames of --lc_wav describe (1008 samples)'),
])
def test_bad_vocoder_input_is_one_line(generate_main, files, tmp_path, flags, message):
    result = refuse(generate_main, files, tmp_path, flags)
    assert message.format(root=files['root']) in result.stderr


def test_the_tool_refuses_a_wav_it_cannot_read_in_one_line(files, tmp_path):
    """As above, through the process's own stderr: the audio library's logs kept off it."""
    result = refuse(lambda *flags: run(GENERATE, *flags), files, tmp_path, ['--lc_wav', 'not.wav'])
    assert f'--lc_wav {files["root"]}/not.wav: cannot read it as audio' in result.stderr


def refuse(generate, files, tmp_path, flags):
    """``generate`` (the tool, or its ``main``) on the vocoder with ``flags`` (file names
    in ``files['root']``): a one-line refusal, exit status 2, nothing written."""
    flags = [os.path.join(files['root'], f) if str(f).endswith(('.npy', '.wav')) else f
             for f in flags]
    result = generate(files['vocoder'], '--gc_id', 1, *flags,
                      '--wav_out_path', tmp_path / 'out.wav', '--logdir', tmp_path / 'logs')
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('generate.py: error: '), result.stderr
    assert os.listdir(tmp_path) == []  # nothing written, not even the logdir
    return result


def test_features_for_an_unconditioned_network_refused(generate_main, files, tmp_path):
    result = generate_main(files['plain'], '--lc_wav', files['wav'],
                           '--logdir', tmp_path / 'logs')
    assert result.returncode == 2
    assert result.stderr.strip() == (
        'generate.py: error: --lc_wav given, but the network is not locally conditioned '
        '(no lc_channels in its description)')


@pytest.mark.parametrize('speakers', [False, True])
def test_train_py_trains_a_vocoder_that_generate_py_voices(train_main, capsys, tmp_path,
                                                           speakers):
    corpus = tmp_path / 'corpus'
    rng = np.random.default_rng(1)
    for speaker in (1, 2):
        os.makedirs(corpus / f'p{speaker}')
        soundfile.write(str(corpus / f'p{speaker}' / f'p{speaker}_001.wav'),
                        rng.uniform(-0.5, 0.5, 900), RATE)
    params = tmp_path / 'vocoder.json'
    params.write_text(json.dumps(VOCODER))
    logdir = tmp_path / 'logdir'
    gc = ['--gc_channels', GC_CHANNELS] if speakers else []
    result = run(TRAIN, '--data_dir', corpus, '--wavenet_params', params, '--num_steps', 3,
                 '--sample_size', 200, '--batch_size', 2, '--silence_threshold', 0,
                 '--logdir', logdir, *gc)
    assert result.returncode == 0, result.stderr
    assert 'step 2 - loss = ' in result.stdout
    description = json.loads((logdir / 'wavenet_params.json').read_text())
    for key, value in VOCODER.items():
        assert description[key] == value, key
    out = tmp_path / 'out.wav'
    result = run(GENERATE, logdir, '--lc_wav', corpus / 'p2' / 'p2_001.wav',
                 '--wav_out_path', out, '--logdir', tmp_path / 'logs',
                 *(['--gc_id', 2] if speakers else []))
    assert result.returncode == 0, result.stderr
    assert soundfile.read(str(out))[0].shape == (-(-900 // HOP) * HOP,)
    # Resuming keeps the description: a params file without lc fields is refused.
    plain = tmp_path / 'plain.json'
    plain.write_text(json.dumps(PLAIN))
    with pytest.raises(SystemExit) as refused:
        train_main([str(flag) for flag in ('--data_dir', corpus, '--wavenet_params', plain,
                                           '--num_steps', 5, '--silence_threshold', 0,
                                           '--logdir', logdir, *gc)])
    assert refused.value.code == 2
    assert '"lc_channels": None in --wavenet_params does not match the network saved in' \
        in capsys.readouterr().err


@pytest.mark.parametrize('vocoder', [True, False], ids=['vocoder', 'plain'])
def test_training_over_a_wav_of_nan_samples_skips_it_and_ends(tmp_path, vocoder):
    """A float wav holding NaN samples in the corpus: one warning naming it, the training
    runs on the others and the process ends (bounded by the timeout of ``run``)."""
    corpus = tmp_path / 'corpus'
    corpus.mkdir()
    t = np.arange(4000) / RATE
    soundfile.write(str(corpus / 'p1_001.wav'), 0.5 * np.sin(2 * np.pi * 300 * t), RATE)
    soundfile.write(str(corpus / 'p1_002.wav'), np.where(t < 0.1, np.nan, 0.5), RATE,
                    subtype='FLOAT')
    (tmp_path / 'params.json').write_text(json.dumps(VOCODER if vocoder else PLAIN))
    result = run(TRAIN, f'--data_dir={corpus}', f'--wavenet_params={tmp_path / "params.json"}',
                 f'--logdir={tmp_path / "logdir"}', '--sample_size=400', '--num_steps=4',
                 '--silence_threshold=0')
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith('Warning')]
    assert warnings == [f'Warning: {corpus / "p1_002.wav"} was ignored as it could not be '
                        'read as audio (it holds NaN or infinite samples).']
    assert 'loss = nan' not in result.stdout and 'step 3 - loss' in result.stdout
