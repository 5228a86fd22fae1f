"""What generate.py promises, each against a reference of its own: the wav is the seed clip
followed by the drawn codes, decoded; the temperature reaches the compiled loop; --save_every
shows whole wavs while it runs; runs without a wav, an unconditioned network, a short seed and
the progress line."""
import os
import re
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import soundfile
import tensorflow as tf
from helpers import (
    GENERATE,
    audio_summaries,
    describe,
    numpy_mu_law_decode,
    run_generate,
    save_checkpoint,
)
from test_generate_cli import GC_CARDINALITY, GC_CHANNELS, PARAMS, files  # noqa: F401

from wavenet.generation import UniformStreams, generate, load_clip, start_waveform
from wavenet.output import MuLawSoftmax
from wavenet.params import build_model

Q = PARAMS['quantization_channels']
PLAIN = dict(PARAMS, dilations=[2 ** k for k in range(10)])


def restored(prefix):
    net = build_model(describe(PARAMS, GC_CHANNELS, GC_CARDINALITY))
    tf.train.Checkpoint(model=net).restore(str(prefix)).expect_partial()
    return net


def test_the_wav_is_the_seed_then_the_drawn_codes_decoded(files, tmp_path):  # noqa: F811
    out = tmp_path / 'out.wav'
    result = run_generate(files['prefix'], '--gc_id', 4, '--samples', 300, '--seed', 8,
                          '--wav_seed', files['seed'], '--wav_out_path', out,
                          '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    net = restored(files['prefix'])
    clip = load_clip(str(files['seed']), 8000, MuLawSoftmax(Q), net.receptive_field)
    streams = UniformStreams(8, [4])
    start = start_waveform(net, streams(0, 1)[:, 0], clip)
    codes = np.concatenate([c.numpy() for c in generate(
        net, start, lambda b, n: streams(b + 1, n), [4], samples=300)], axis=1)[0]
    expected = numpy_mu_law_decode(np.concatenate([clip, codes]), Q)
    audio = soundfile.read(str(out))[0]
    assert audio.shape == expected.shape
    np.testing.assert_allclose(audio, expected, atol=1.01 / 2 ** 15)


def code_entropy(path):
    """Entropy (bits) of the 16-bit sample values of a wav: one value per code."""
    _, counts = np.unique(soundfile.read(str(path), dtype='int16')[0], return_counts=True)
    p = counts / counts.sum()
    return -(p * np.log2(p)).sum()


def test_temperature_reaches_the_compiled_loop(tmp_path):
    """Lower temperatures draw from sharper distributions: fewer distinct codes, each more
    often; higher ones flatten them. The network's last layer is scaled up, so that its
    distributions are far from uniform at temperature 1."""
    keras.utils.set_random_seed(3)
    net = build_model(describe(PARAMS))
    net.postprocessing.postprocess2.assign(net.postprocessing.postprocess2 * 20)
    save_checkpoint(tmp_path / 'peaked', describe(PARAMS), net=net)
    entropy = {}
    for temperature in (0.2, 1.0, 5.0):
        out = tmp_path / f'{temperature}.wav'
        result = run_generate(tmp_path / 'peaked', '--samples', 3000, '--seed', 5,
                              '--temperature', temperature, '--wav_out_path', out,
                              '--logdir', tmp_path / 'logs')
        assert result.returncode == 0, result.stderr
        entropy[temperature] = code_entropy(out)
    assert entropy[0.2] < entropy[1.0] - 1 and entropy[5.0] > entropy[1.0] + 0.2, entropy


def test_save_every_shows_whole_wavs_while_generating(files, tmp_path):  # noqa: F811
    """Read while it runs, the wav is always a whole file of a multiple of --save_every
    samples, and grows; no temporary file is left."""
    out = tmp_path / 'out.wav'
    process = subprocess.Popen(
        [sys.executable, GENERATE, str(files['prefix']), '--gc_id', '1', '--samples', '200000',
         '--save_every', '2000', '--wav_out_path', str(out), '--logdir', str(tmp_path / 'l')],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = set()
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if out.exists():
            seen.add(len(soundfile.read(str(out))[0]))  # a half-written file would fail here
        time.sleep(0.02)
    assert process.wait(timeout=10) == 0, process.stderr.read()
    assert all(n % 2000 == 0 for n in seen), seen
    assert len(seen - {200000}) >= 2, seen  # saw it grow before the end
    assert len(soundfile.read(str(out))[0]) == 200000
    assert sorted(os.listdir(tmp_path)) == ['l', 'out.wav']


def test_save_every_needs_a_wav(files, tmp_path):  # noqa: F811
    result = run_generate(files['prefix'], '--gc_id', 1, '--save_every', 10,
                          '--logdir', tmp_path / 'logs')
    assert result.returncode == 2
    assert result.stderr.strip() == 'generate.py: error: --save_every needs --wav_out_path'
    assert os.listdir(tmp_path) == []


def test_without_a_wav_only_tensorboard_hears_it(files, tmp_path):  # noqa: F811
    result = run_generate(files['prefix'], '--gc_id', 3, '--samples', 200,
                          '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    assert os.listdir(tmp_path) == ['logs']
    assert sorted(audio_summaries(tmp_path / 'logs')) == [('generated/speaker_3', 0)]
    assert 'The result was saved' not in result.stdout
    # The progress line, rewritten in place by every chunk (a carriage return, which text
    # mode reads as a newline), is all there is on stderr.
    assert re.fullmatch(r'Sample 200/200 \(\d+ samples/s\)', result.stderr.strip()), \
        result.stderr


@pytest.fixture(scope='module')
def plain(tmp_path_factory):
    """An unconditioned network with biases (receptive field 1055), its description
    beside it."""
    directory = tmp_path_factory.mktemp('plain')
    return save_checkpoint(directory, describe(PLAIN), step=2)


def test_an_unconditioned_network_with_a_short_seed(plain, files, tmp_path):  # noqa: F811
    """No --gc_id needed; a seed shorter than the receptive field is kept whole, silence
    before it, and the samples follow it."""
    t = np.arange(600) / 8000
    seed = tmp_path / 'short.wav'
    soundfile.write(str(seed), 0.8 * np.sin(2 * np.pi * 400 * t), 8000)
    out = tmp_path / 'out.wav'
    result = run_generate(plain, '--samples', 100, '--wav_seed', seed, '--wav_out_path', out,
                          '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    clip = load_clip(str(seed), 8000, MuLawSoftmax(Q), 10 ** 6)
    assert 0 < len(clip) < describe(PLAIN).receptive_field
    audio = soundfile.read(str(out))[0]
    assert audio.shape == (len(clip) + 100,)
    np.testing.assert_allclose(audio[:len(clip)], numpy_mu_law_decode(clip, Q),
                               atol=1.01 / 2 ** 15)
    assert sorted(audio_summaries(tmp_path / 'logs')) == [('generated', 0)]


@pytest.mark.parametrize('flags, message', [
    (['--gc_id', 1], '--gc_id given, but the network is not globally conditioned'),
    (['--wav_seed', '{silent}'], 'is silent (nothing above 0.1 RMS)'),
])
def test_refused_on_an_unconditioned_network(plain, tmp_path, flags, message):
    soundfile.write(str(tmp_path / 'silent.wav'), np.zeros(4000), 8000)
    flags = [str(flag).format(silent=tmp_path / 'silent.wav') for flag in flags]
    result = run_generate(plain, *flags, '--wav_out_path', tmp_path / 'out.wav',
                          '--logdir', tmp_path / 'logs')
    assert result.returncode == 2
    assert result.stderr.startswith('generate.py: error: ') and message in result.stderr
    assert sorted(os.listdir(tmp_path)) == ['silent.wav']
