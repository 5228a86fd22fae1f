"""How a sample is drawn: the temperature scales the distribution (in the library and
through generate.py), and the uniform draws are keyed streams, the same in any stretch
and on any device."""
import keras
import numpy as np
import pytest
import soundfile
import tensorflow as tf
from helpers import SMALL, describe, run_generate, save_checkpoint

from wavenet.generation import (
    UniformStreams,
    generate,
    start_waveform,
    stream_key,
    uniform_streams,
)
from wavenet.output import clamp_branches, sample_codes, scale_temperature
from wavenet.params import build_model


def test_temperature_one_leaves_the_distribution_unchanged():
    proba = tf.nn.softmax(tf.random.normal([4, 32], stddev=3.0))
    np.testing.assert_allclose(scale_temperature(proba, 1.0), proba, atol=1e-6)


def test_lower_temperature_sharpens():
    proba = np.array([0.5, 0.3, 0.15, 0.05])
    sharp = scale_temperature(proba, 0.5).numpy()
    np.testing.assert_allclose(sharp, proba ** 2 / np.sum(proba ** 2))
    assert sharp[0] > proba[0] and sharp[-1] < proba[-1]
    entropy = [-np.sum(p * np.log(p)) for p in (proba, sharp)]
    assert entropy[1] < entropy[0]
    np.testing.assert_allclose(scale_temperature(proba, 2.0), np.sqrt(proba) /
                               np.sum(np.sqrt(proba)))


@pytest.mark.parametrize('temperature', [1.0, 0.5])
def test_sampled_frequencies_follow_the_scaled_distribution(temperature):
    proba = tf.constant([[0.1, 0.0, 0.2, 0.3, 0.4]])
    draws = 100_000
    uniform = uniform_streams(2, [0], draws)[0]
    codes = sample_codes(tf.tile(proba, [draws, 1]), temperature, uniform)
    frequencies = np.bincount(codes.numpy(), minlength=5) / draws
    np.testing.assert_allclose(frequencies, scale_temperature(proba, temperature)[0],
                               atol=0.01)
    assert frequencies[1] == 0


def lpcnet_branch_clamp(p, floor=0.025):
    """LPCNet's rule, node by node down the binary tree of codes (NumPy): below a node,
    a child holding less than ``floor`` of the node's mass is never taken."""
    p = np.array(p, np.float64)

    def walk(low, high):
        if high - low == 1:
            return
        middle = (low + high) // 2
        total = p[low:high].sum()
        for a, b in ((low, middle), (middle, high)):
            if p[a:b].sum() < floor * total:
                p[a:b] = 0
            else:
                walk(a, b)
    walk(0, len(p))
    return p


def test_the_branch_clamp_is_lpcnets_bit_by_bit_rule():
    rng = np.random.default_rng(4)
    proba = rng.dirichlet(np.full(64, 0.3), size=20)
    proba[0] = np.full(64, 1 / 64)  # flat: nothing is light
    proba[1] = np.eye(64)[17] * 0.99 + 0.01 / 64  # one code holds nearly all
    clamped = clamp_branches(tf.constant(proba)).numpy()
    for row, expected in zip(clamped, proba):
        np.testing.assert_allclose(row, lpcnet_branch_clamp(expected))
    np.testing.assert_array_equal(clamped[0], proba[0])
    assert np.count_nonzero(clamped[1]) == 1 and clamped[1, 17] == proba[1, 17]
    assert np.count_nonzero(clamped) < np.count_nonzero(proba)


def test_a_temperature_per_row_scales_each_row_alone():
    proba = tf.nn.softmax(tf.random.normal([3, 16], stddev=2.0))
    rows = scale_temperature(proba, tf.constant([1.0, 0.5, 0.25], tf.float64))
    for row, temperature in enumerate((1.0, 0.5, 0.25)):
        np.testing.assert_allclose(rows[row], scale_temperature(proba[row:row + 1],
                                                                temperature)[0])


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
    net = build_model(describe(SMALL))
    net.postprocessing.postprocess2.assign(net.postprocessing.postprocess2 * 20)
    save_checkpoint(tmp_path / 'peaked', describe(SMALL), net=net)
    entropy = {}
    for temperature in (0.2, 1.0, 5.0):
        out = tmp_path / f'{temperature}.wav'
        result = run_generate(tmp_path / 'peaked', '--samples', 3000, '--seed', 5,
                              '--temperature', temperature, '--wav_out_path', out,
                              '--logdir', tmp_path / 'logs')
        assert result.returncode == 0, result.stderr
        entropy[temperature] = code_entropy(out)
    assert entropy[0.2] < entropy[1.0] - 1 and entropy[5.0] > entropy[1.0] + 0.2, entropy


def test_uniform_streams_are_keyed_by_seed_and_key():
    streams = uniform_streams(1, [3, 5], 1000).numpy()
    np.testing.assert_array_equal(streams[1], uniform_streams(1, [5], 1000)[0])
    assert not np.array_equal(streams[0], streams[1])
    assert not np.array_equal(streams[0], uniform_streams(2, [3], 1000)[0])
    assert 0 <= streams.min() and streams.max() < 1


def test_uniform_streams_are_the_same_in_any_stretch():
    streams = UniformStreams(7, [1, stream_key(1, 1)])
    whole = streams(0, 2500).numpy()
    np.testing.assert_array_equal(streams(999, 3), whole[:, 999:1002])
    np.testing.assert_array_equal(uniform_streams(7, [1], 2500)[0], whole[0])
    assert not np.array_equal(whole[0], whole[1])  # a second stream is another stream
    assert 0 <= whole.min() and whole.max() < 1
    assert abs(whole.mean() - 0.5) < 0.02


@pytest.mark.skipif(not tf.config.list_physical_devices('GPU'), reason='needs a GPU')
def test_gpu_and_cpu_draw_the_same_samples():
    net = build_model(describe(dict(SMALL, dilations=[1, 2, 4, 8, 16, 32]), 4, 6))
    streams = UniformStreams(9, [1, 3])

    def codes(device):
        with tf.device(device):
            start = start_waveform(net, streams(0, 1)[:, 0])
            return np.concatenate([c.numpy() for c in generate(
                net, start, lambda b, n: streams(b + 1, n), [1, 3], samples=400)], axis=1)

    np.testing.assert_array_equal(codes('/GPU:0'), codes('/CPU:0'))
