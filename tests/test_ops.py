"""mu-law companding, causal convolution, time_to_batch and the optimizer factory."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import numpy_mu_law_decode, numpy_mu_law_encode

from wavenet import (
    batch_to_time,
    causal_conv,
    mu_law_decode,
    mu_law_encode,
    optimizer_factory,
    time_to_batch,
)

QUANT_LEVELS = 256


# -- mu-law ----------------------------------------------------------------------------

def test_mu_law_known_values():
    x = np.array([-1, 1, 0.6, -0.25, 0.01, 0.33, -0.9999, 0.42, 0.1, -0.45], np.float32)
    expected = [0, 255, 243, 32, 157, 230, 0, 235, 203, 18]
    np.testing.assert_array_equal(mu_law_encode(x, QUANT_LEVELS).numpy(), expected)


def test_mu_law_encode_types_and_range():
    codes = mu_law_encode(np.random.uniform(-3, 3, 10000).astype(np.float32), QUANT_LEVELS)
    assert codes.dtype == tf.int32
    assert codes.numpy().min() == 0 and codes.numpy().max() == QUANT_LEVELS - 1


@pytest.mark.parametrize('signal', [
    np.random.RandomState(0).uniform(-1, 1, 1000),            # noise
    np.linspace(-1, 1, 1000),                                # ramp
    np.zeros(1000),                                          # zeros
    np.full(1000, np.random.RandomState(1).uniform(-1, 1)),  # a random constant
    np.full(100, -1.0), np.full(100, 1.0),                   # the extremes
], ids=['noise', 'ramp', 'zeros', 'constant', 'minimum', 'maximum'])
def test_mu_law_matches_numpy(signal):
    signal = signal.astype(np.float32)
    encoded = mu_law_encode(signal, QUANT_LEVELS).numpy()
    np.testing.assert_array_equal(encoded, numpy_mu_law_encode(signal, QUANT_LEVELS))
    np.testing.assert_allclose(mu_law_decode(encoded, QUANT_LEVELS).numpy(),
                               numpy_mu_law_decode(encoded, QUANT_LEVELS), atol=1e-6)


def test_mu_law_clips_out_of_range_audio():
    codes = mu_law_encode(np.array([-5.0, -1.0, 1.0, 7.0], np.float32), QUANT_LEVELS)
    np.testing.assert_array_equal(codes.numpy(), [0, 0, 255, 255])


def test_decode_encode_round_trip_of_every_level():
    codes = np.arange(QUANT_LEVELS, dtype=np.int32)
    decoded = mu_law_decode(codes, QUANT_LEVELS)
    np.testing.assert_array_equal(mu_law_encode(decoded, QUANT_LEVELS).numpy(), codes)


def test_encode_decode_encode_is_stable():
    x = np.linspace(-1, 1, 1000).astype(np.float32)
    encoded = mu_law_encode(x, QUANT_LEVELS)
    roundtripped = mu_law_encode(mu_law_decode(encoded, QUANT_LEVELS), QUANT_LEVELS)
    np.testing.assert_array_equal(encoded.numpy(), roundtripped.numpy())


def test_decode_range_is_exactly_minus_one_to_one():
    decoded = mu_law_decode(np.arange(QUANT_LEVELS), QUANT_LEVELS).numpy()
    assert decoded.dtype == np.float32
    assert decoded.min() == -1.0 and decoded.max() == 1.0
    assert np.all(np.diff(decoded) > 0)


def test_encode_decode_slope_and_intercept():
    x = np.linspace(-1, 1, 10000).astype(np.float32)
    decoded = mu_law_decode(mu_law_encode(x, QUANT_LEVELS), QUANT_LEVELS).numpy()
    slope, intercept = np.polyfit(x, decoded, 1)
    assert slope == pytest.approx(1.0, abs=1e-3)
    assert intercept == pytest.approx(0.0, abs=1e-3)


def test_encode_is_surjective():
    channels = 123
    x = np.linspace(-1, 1, 100000).astype(np.float32)
    codes = mu_law_encode(x, channels).numpy()
    np.testing.assert_array_equal(np.unique(codes), np.arange(channels))


# -- causal convolution -----------------------------------------------------------------

def dilated_kernel(taps, dilation):
    kernel = np.zeros((len(taps) - 1) * dilation + 1, np.float32)
    kernel[::dilation] = taps
    return kernel


def test_causal_conv_equals_np_convolve():
    # The original test: sum of x[t] and x[t + 4].
    x1 = np.arange(1, 21, dtype=np.float32)
    x = np.reshape(np.append(x1, x1), [2, 20, 1])
    f = np.reshape(np.array([1, 1], np.float32), [2, 1, 1])
    out = causal_conv(x, f, 4).numpy()
    ref = np.convolve(x1, [1, 0, 0, 0, 1], mode='valid')
    np.testing.assert_array_equal(out[..., 0], [ref, ref])


@pytest.mark.parametrize('width', [1, 2, 3, 5])
@pytest.mark.parametrize('dilation', [1, 2, 3, 8])
def test_causal_conv_against_numpy_reference(width, dilation):
    rng = np.random.RandomState(width * 100 + dilation)
    x = rng.randn(2, 60, 3).astype(np.float32)
    f = rng.randn(width, 3, 4).astype(np.float32)
    out = causal_conv(x, f, dilation).numpy()
    assert out.shape == (2, 60 - (width - 1) * dilation, 4)
    for b in range(2):
        for o in range(4):
            # np.correlate slides the kernel without flipping it, as a convolution layer does.
            ref = sum(np.correlate(x[b, :, i], dilated_kernel(f[:, i, o], dilation), 'valid')
                      for i in range(3))
            np.testing.assert_allclose(out[b, :, o], ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('width,dilation', [(2, 1), (2, 4), (3, 2), (4, 7)])
def test_causal_conv_matches_tf_dilated_convolution(width, dilation):
    rng = np.random.RandomState(7)
    x = rng.randn(3, 50, 5).astype(np.float32)
    f = rng.randn(width, 5, 6).astype(np.float32)
    ref = tf.nn.convolution(x, f, padding='VALID', dilations=dilation)
    np.testing.assert_allclose(causal_conv(x, f, dilation).numpy(), ref.numpy(), atol=1e-5)


@pytest.mark.parametrize('width,dilation', [(2, 1), (2, 16), (3, 5)])
def test_causal_conv_has_no_time_shift(width, dilation):
    # A kernel that only passes its last tap must reproduce the input, aligned.
    x = np.random.randn(1, 100, 1).astype(np.float32)
    f = np.zeros((width, 1, 1), np.float32)
    f[-1] = 1
    out = causal_conv(x, f, dilation).numpy()
    np.testing.assert_array_equal(out, x[:, (width - 1) * dilation:])
    # An impulse shows up in the output (width - 1) * dilation steps later in input time.
    impulse = np.zeros((1, 100, 1), np.float32)
    impulse[0, 40] = 1
    f[:] = 1
    out = causal_conv(impulse, f, dilation).numpy()[0, :, 0]
    assert out[40 - (width - 1) * dilation] == 1  # the first output that sees it
    assert np.all(out[:40 - (width - 1) * dilation] == 0)  # no output sees the future


def test_causal_conv_gradient_on_cpu():
    x = tf.constant(np.random.randn(1, 40, 2).astype(np.float32))
    f = tf.Variable(np.random.randn(2, 2, 3).astype(np.float32))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(causal_conv(x, f, 8) ** 2)
    gradient = tape.gradient(y, f)
    with tf.GradientTape() as tape:
        y_ref = tf.reduce_sum(tf.nn.convolution(x, f, padding='VALID', dilations=8) ** 2)
    np.testing.assert_allclose(gradient.numpy(), tape.gradient(y_ref, f).numpy(), rtol=1e-4)


@pytest.mark.parametrize('length,dilation', [(20, 1), (20, 4), (21, 4), (7, 8)])
def test_time_to_batch_round_trip(length, dilation):
    x = np.random.randn(3, length, 2).astype(np.float32)
    batched = time_to_batch(x, dilation)
    padded_length = -(-length // dilation) * dilation
    assert batched.shape == (3 * dilation, padded_length // dilation, 2)
    np.testing.assert_array_equal(batch_to_time(batched, dilation).numpy()[:, :length], x)


def test_time_to_batch_interleaves_time_into_batch():
    x = np.arange(8, dtype=np.float32).reshape(1, 8, 1)
    np.testing.assert_array_equal(time_to_batch(x, 2).numpy()[..., 0], [[0, 2, 4, 6],
                                                                         [1, 3, 5, 7]])


# -- optimizers -------------------------------------------------------------------------

def test_optimizer_factory():
    adam = optimizer_factory['adam'](learning_rate=0.01, momentum=0.5)
    assert isinstance(adam, keras.optimizers.Adam) and adam.epsilon == 1e-4
    sgd = optimizer_factory['sgd'](learning_rate=0.02, momentum=0.9)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == 0.9
    rmsprop = optimizer_factory['rmsprop'](learning_rate=0.001, momentum=0.9)
    assert isinstance(rmsprop, keras.optimizers.RMSprop)
    assert rmsprop.epsilon == 1e-5 and rmsprop.momentum == 0.9
    assert float(sgd.learning_rate) == pytest.approx(0.02)
    assert set(optimizer_factory) == {'adam', 'sgd', 'rmsprop'}


@pytest.mark.parametrize('name', ['adam', 'sgd', 'rmsprop'])
@pytest.mark.parametrize('learning_rate, momentum', [(0.01, 0.0), (0.03, 0.9)])
def test_every_optimizer_takes_its_learning_rate_and_momentum(name, learning_rate, momentum):
    """Three steps on the loss g * x (a constant gradient g) against TF 1's update rules
    written out: the steps scale with the learning rate, and momentum adds up."""
    g, x = 0.5, keras.Variable(1.0)
    optimizer = optimizer_factory[name](learning_rate=learning_rate, momentum=momentum)
    expected, velocity, mean_square, m, v = 1.0, 0.0, 1.0, 0.0, 0.0
    for t in range(1, 4):
        optimizer.apply_gradients([(tf.constant(g), x)])
        if name == 'sgd':
            velocity = momentum * velocity - learning_rate * g
            expected += velocity
        elif name == 'rmsprop':  # TF 1: mean square from 1, rho 0.9, epsilon 1e-5
            mean_square = 0.9 * mean_square + 0.1 * g ** 2
            velocity = momentum * velocity + learning_rate * g / np.sqrt(mean_square + 1e-5)
            expected -= velocity
        else:  # Adam, epsilon 1e-4; momentum has no part in it
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g ** 2
            step = learning_rate * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            expected -= step * m / (np.sqrt(v) + 1e-4)
        assert float(x.numpy()) == pytest.approx(expected, rel=1e-5, abs=1e-6), t
