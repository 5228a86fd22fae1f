"""The output distributions: the discretized mixture of logistics against NumPy (edge bins
included), its draws against its CDF, its 16-bit codes, incremental against full-window
outputs, and a small network that learns a chord with it and generates the chord in more
than 256 distinct 16-bit values."""
import json

import numpy as np
import pytest
import soundfile
import tensorflow as tf
from helpers import CORPUS_PARAMS, GENERATE, TRAIN, make_sine_waves, note_powers, run_tool
from scipy import stats

from wavenet import WaveNetModel, optimizer_factory
from wavenet.checkpoints import load_tf1_weights, restore_model
from wavenet.generation import (
    UniformStreams,
    generate,
    start_waveform,
    stream_key,
    uniform_streams,
)
from wavenet.output import MixtureOfLogistics, MuLawSoftmax
from wavenet.params import NetworkDescription, build_model
from wavenet.training import make_train_step

MIXTURE = MixtureOfLogistics(components=3, log_scale_min=-7.0)


def mixture_outputs(rows, rng, log_scales=(-4.0, -2.0)):
    """``rows`` random mixtures: weight logits, means in [-0.9, 0.9], log-scales."""
    k = MIXTURE.components
    return np.concatenate([rng.normal(size=(rows, k)), rng.uniform(-0.9, 0.9, (rows, k)),
                           rng.uniform(*log_scales, (rows, k))], axis=-1).astype(np.float32)


def numpy_log_likelihood(outputs, codes):
    """log P(code) by the definition, in float64: the mixture of each logistic's
    probability between the edges of the code's bin, the lowest and highest bins reaching
    to minus and plus infinity. (``sigmoid(b) - sigmoid(a)`` is taken in logs, as
    ``b + log(1 - exp(a - b)) - softplus(a) - softplus(b)``, so that the far tails do not
    round to zero.)"""
    k = MIXTURE.components
    outputs = outputs.astype(np.float64)
    logits, means = outputs[:, :k], outputs[:, k:2 * k]
    scales = np.exp(np.maximum(outputs[:, 2 * k:], MIXTURE.log_scale_min))
    log_weights = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    value = ((codes.astype(np.float64) - 2 ** 15) / 2 ** 15)[:, None]
    a = (value - 2 ** -16 - means) / scales
    b = (value + 2 ** -16 - means) / scales
    softplus = np.logaddexp(0, a), np.logaddexp(0, b)
    inside = b + np.log1p(-np.exp(a - b)) - softplus[0] - softplus[1]
    lowest, highest = -np.logaddexp(0, -b), -softplus[0]
    edge = codes[:, None]
    log_bin = np.where(edge == 0, lowest, np.where(edge == 2 ** 16 - 1, highest, inside))
    return np.logaddexp.reduce(log_weights + log_bin, axis=-1)


def test_mixture_log_likelihood_is_the_numpy_definition_edge_bins_included():
    rng = np.random.default_rng(0)
    outputs = mixture_outputs(400, rng)
    # Codes near the means (where the bins hold most), anywhere, and both edge bins.
    values = outputs[:, 3:6][np.arange(400), rng.integers(0, 3, 400)] + \
        rng.normal(0, 0.02, 400)
    codes = np.concatenate([
        np.asarray(MIXTURE.encode(values[:300])), rng.integers(0, 2 ** 16, 90),
        [0] * 5, [2 ** 16 - 1] * 5])
    got = MIXTURE.log_likelihood(outputs, codes).numpy()
    expected = numpy_log_likelihood(outputs, codes)
    near = expected > np.log(1e-4)  # where float32 can subtract the two CDFs
    np.testing.assert_allclose(got[near], expected[near], rtol=2e-3, atol=2e-3)
    # Far in the tails the bin is the density times its width.
    np.testing.assert_allclose(got[~near], expected[~near], rtol=0.05)
    assert (~near).sum() > 20  # the tails were tried
    edge = MIXTURE.log_likelihood(np.array([[0, 0, 0, -1, -1, -1, -3, -3, -3]], np.float32),
                                  [0]).numpy()
    # All mass at the mean -1 and below falls in code 0: about half.
    assert edge[0] == pytest.approx(np.log(0.5), abs=0.01)


def test_mixture_distribution_sums_to_one_and_is_the_likelihood_of_every_code():
    rng = np.random.default_rng(1)
    outputs = mixture_outputs(2, rng)
    proba = MIXTURE.distribution(outputs).numpy()
    assert proba.shape == (2, 2 ** 16)
    np.testing.assert_allclose(proba.sum(-1), 1, atol=1e-5)
    codes = rng.integers(0, 2 ** 16, 50)
    for row in range(2):
        likely = np.asarray(MIXTURE.encode(outputs[row, 3:6]))
        picked = np.concatenate([codes, likely])
        np.testing.assert_allclose(
            np.log(proba[row, picked]),
            MIXTURE.log_likelihood(np.repeat(outputs[row:row + 1], len(picked), 0),
                                   picked).numpy(), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize('temperature', [1.0, 0.5])
def test_mixture_draws_follow_its_cumulative_distribution(temperature):
    """Chi-square over 40 groups of codes, each of equal probability under the mixture
    (at temperature 1), on 20000 seeded draws; a lower temperature narrows the draws."""
    rng = np.random.default_rng(2)
    outputs = np.repeat(mixture_outputs(1, rng, log_scales=(-3.0, -2.0)), 20000, 0)
    draws = MIXTURE.sample(outputs, temperature, rng.uniform(size=20000)).numpy()
    cdf = np.cumsum(MIXTURE.distribution(outputs[:1]).numpy()[0].astype(np.float64))
    edges = np.searchsorted(cdf, np.linspace(0, 1, 41)[1:-1])
    observed = np.bincount(np.searchsorted(edges, draws, side='right'), minlength=40)
    expected = np.diff(np.concatenate([[0], cdf[edges], [1]])) * len(draws)
    statistic, p = stats.chisquare(observed, expected * observed.sum() / expected.sum())
    if temperature == 1.0:
        assert p > 1e-3, (statistic, p)
    else:
        assert p < 1e-6  # not the mixture any more
        full = MIXTURE.sample(outputs, 1.0, rng.uniform(size=20000)).numpy()
        # Sharper: nearer to the chosen components' means on average.
        k = MIXTURE.components
        means = np.asarray(MIXTURE.encode(outputs[0, k:2 * k]))
        assert np.mean(np.min(np.abs(draws[:, None] - means), -1)) < \
            0.8 * np.mean(np.min(np.abs(full[:, None] - means), -1))


def test_16_bit_codes_are_the_samples_themselves():
    pcm = np.array([-2 ** 15, -1, 0, 1, 12345, 2 ** 15 - 1])
    codes = MIXTURE.encode(pcm / 2 ** 15).numpy()
    np.testing.assert_array_equal(codes, pcm + 2 ** 15)
    np.testing.assert_array_equal(MIXTURE.decode(codes).numpy() * 2 ** 15, pcm)
    np.testing.assert_array_equal(MIXTURE.pcm_table()[codes], pcm)
    np.testing.assert_array_equal(MIXTURE.encode([-1.5, 1.0, 1.5]).numpy(),
                                  [0, 2 ** 16 - 1, 2 ** 16 - 1])
    assert MIXTURE.silence == 2 ** 15 and MIXTURE.width == 9
    assert MuLawSoftmax(256).width == 256 and MuLawSoftmax(256).silence == 128


def mixture_net(**overrides):
    return WaveNetModel(**dict(dict(
        batch_size=1, dilations=[1, 2, 4, 8, 16, 32, 64] * 2, filter_width=2,
        residual_channels=32, dilation_channels=32, skip_channels=32,
        quantization_channels=2 ** 16, use_biases=True, scalar_input=True,
        initial_filter_width=4, output_distribution='mixture_of_logistics',
        mixture_components=4), **overrides))


def test_mixture_incremental_outputs_equal_the_full_window():
    net = mixture_net(global_condition_channels=3, global_condition_cardinality=2)
    codes = np.random.default_rng(3).integers(0, 2 ** 16, net.receptive_field + 40)
    gc = net.embed_global_condition([1])
    state = net.zero_incremental_state(1)
    for code in codes:
        outputs, state = net._step(tf.constant([code], tf.int32), state, gc)
    full = net._window(tf.constant(codes[None, -net.receptive_field:], tf.int32), gc)
    np.testing.assert_allclose(outputs.numpy(), full.numpy(), rtol=1e-5, atol=1e-5)


def test_a_one_hot_input_of_16_bit_codes_is_refused():
    with pytest.raises(ValueError, match='needs scalar_input'):
        mixture_net(scalar_input=False)


def test_the_original_toolkits_checkpoints_are_softmax_only():
    with pytest.raises(ValueError, match='softmax output only, not "output_distribution": '
                                         '"mixture_of_logistics"'):
        load_tf1_weights(mixture_net(), 'model.ckpt-0')


def test_a_mixture_network_learns_the_chord_in_16_bits():
    """Generated freely, the chord's notes stand out of the spectrum (an untrained network
    puts a few thousandths of the power there), in far more than 256 distinct values."""
    net = mixture_net()
    audio, _ = make_sine_waves(conditioned=False)
    audio = tf.constant(np.pad(audio, ((0, 0), (net.receptive_field - 1, 0)))[..., None])
    step = make_train_step(net, optimizer_factory['adam'](learning_rate=1e-3))
    initial = float(net.loss(audio))
    for _ in range(600):
        loss = float(step(audio)['loss'])
    assert loss < initial - 3  # nats per sample
    noise = uniform_streams(5, [0], 1001)
    codes = np.concatenate(list(generate(net, start_waveform(net, noise[:, 0]),
                                         noise[:, 1:])), axis=1)[0]
    waveform = net.output_distribution.decode(codes).numpy()
    at_note, total = note_powers(waveform)
    # The notes' share of the power below 500 Hz after 600 steps depends on the seed and
    # on the processor's arithmetic (from about a quarter to three quarters); an untrained
    # network's is a few thousandths.
    assert at_note.sum() > 0.2 * total, (at_note, total)
    power = np.abs(np.fft.rfft(waveform)) ** 2
    assert np.all(at_note > 20 * np.median(power)), (at_note, np.median(power))
    assert len(np.unique(codes)) > 256


def test_train_and_generate_a_mixture_network_through_the_tools(corpus, tmp_path):  # noqa: F811
    """train.py saves the output in the description; generate.py's wav holds the drawn
    16-bit samples themselves."""
    params = dict(CORPUS_PARAMS, scalar_input=True, quantization_channels=2 ** 16,
                  output_distribution='mixture_of_logistics', mixture_components=3)
    (tmp_path / 'mixture.json').write_text(json.dumps(params))
    logdir = tmp_path / 'logdir'
    result = run_tool(TRAIN, f'--data_dir={corpus}', f'--wavenet_params={tmp_path}/mixture.json',
                      '--sample_size=500', '--silence_threshold=0', f'--logdir={logdir}',
                      '--num_steps=3', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    saved = json.loads((logdir / 'wavenet_params.json').read_text())
    assert saved['output_distribution'] == 'mixture_of_logistics'
    assert saved['mixture_components'] == 3 and saved['log_scale_min'] == -7.0
    out = tmp_path / 'out.wav'
    result = run_tool(GENERATE, logdir, '--samples=2000', '--seed=1', f'--wav_out_path={out}',
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    pcm, rate = soundfile.read(str(out), dtype='int16')
    assert rate == 16000 and len(pcm) == 2000
    assert len(np.unique(pcm)) > 256
    net = build_model(NetworkDescription.beside(str(logdir)))
    restore_model(net, str(logdir / 'model.ckpt-2'))
    # The wav is the codes the loop drew, one for one: the same seed draws them again.
    noise = UniformStreams(1, [stream_key(0, 0)])
    codes = np.concatenate(list(generate(net, start_waveform(net, noise(0, 1)[:, 0]),
                                         lambda b, n: noise(b + 1, n), samples=2000)), axis=1)
    np.testing.assert_array_equal(pcm, codes[0] - 2 ** 15)
