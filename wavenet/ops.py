"""Signal-level operations: mu-law companding and causal convolution.

Everything takes eager tensors or numpy arrays and returns tensors, and works
inside a ``tf.function`` as well.
"""
import tensorflow as tf


def mu_law_encode(audio, quantization_channels):
    """Quantizes float audio in [-1, 1] to int32 codes in [0, quantization_channels - 1]."""
    mu = tf.cast(quantization_channels - 1, tf.float32)
    audio = tf.cast(audio, tf.float32)
    # Clipping first keeps out-of-range audio from wrapping around.
    safe_audio_abs = tf.minimum(tf.abs(audio), 1.0)
    magnitude = tf.math.log1p(mu * safe_audio_abs) / tf.math.log1p(mu)
    signal = tf.sign(audio) * magnitude
    return tf.cast((signal + 1) / 2 * mu + 0.5, tf.int32)


def mu_law_decode(output, quantization_channels):
    """Maps codes in [0, quantization_channels - 1] back to float32 audio in [-1, 1]."""
    mu = tf.cast(quantization_channels - 1, tf.float32)
    signal = 2 * (tf.cast(output, tf.float32) / mu) - 1
    magnitude = (1 / mu) * ((1 + mu) ** tf.abs(signal) - 1)
    return tf.sign(signal) * magnitude


def time_to_batch(value, dilation):
    """[B, T, C] -> [B * dilation, ceil(T / dilation), C].

    Zero-pads the time axis to a multiple of ``dilation`` and interleaves it into the
    batch, so that a dilated convolution becomes an ordinary one (the original's trick).
    """
    value = tf.convert_to_tensor(value)
    shape = tf.shape(value)
    pad_elements = dilation - 1 - (shape[1] + dilation - 1) % dilation
    padded = tf.pad(value, [[0, 0], [0, pad_elements], [0, 0]])
    reshaped = tf.reshape(padded, [-1, dilation, shape[2]])
    transposed = tf.transpose(reshaped, perm=[1, 0, 2])
    return tf.reshape(transposed, [shape[0] * dilation, -1, shape[2]])


def batch_to_time(value, dilation):
    """Inverse of ``time_to_batch`` (padding included): [B * d, T', C] -> [B, T' * d, C]."""
    value = tf.convert_to_tensor(value)
    shape = tf.shape(value)
    prepared = tf.reshape(value, [dilation, -1, shape[2]])
    transposed = tf.transpose(prepared, perm=[1, 0, 2])
    return tf.reshape(transposed, [tf.math.floordiv(shape[0], dilation), -1, shape[2]])


def causal_taps(value, filter_width, dilation):
    """The ``filter_width`` time-shifted views of ``value`` that a causal convolution mixes.

    Tap ``k`` holds the input ``(filter_width - 1 - k) * dilation`` steps in the past of
    each output position, so the last tap is the input at the output's own time step.
    Each tap has ``time - (filter_width - 1) * dilation`` steps ('VALID', no shift).
    """
    out_width = tf.shape(value)[1] - (filter_width - 1) * dilation
    return [value[:, k * dilation:k * dilation + out_width] for k in range(filter_width)]


def conv_taps(taps, filter_):
    """Applies a ``[width, in, out]`` kernel to the taps of ``causal_taps`` (one matmul)."""
    width, in_channels, out_channels = filter_.shape
    stacked = taps[0] if width == 1 else tf.concat(taps, axis=-1)
    return pointwise(stacked, tf.reshape(filter_, [width * in_channels, out_channels]))


def pointwise(value, kernel):
    """A 1x1 convolution: ``[B, T, C_in] @ [C_in, C_out]`` as one large 2-D matmul."""
    batch, time = value.shape[0], value.shape[1]
    if batch is None or time is None:  # known while tracing, for a smaller graph
        shape = tf.shape(value)
        batch, time = shape[0], shape[1]
    flat = tf.reshape(value, [-1, kernel.shape[0]])
    return tf.reshape(tf.matmul(flat, kernel), [batch, time, kernel.shape[1]])


def causal_conv(value, filter_, dilation):
    """Causal dilated convolution of ``[B, T, C_in]`` with ``[width, C_in, C_out]``.

    Output length is ``T - (width - 1) * dilation``; output step ``t`` sees inputs
    ``t, t + dilation, ..., t + (width - 1) * dilation`` (the last one aligned with it).
    Computed as one matmul over stacked taps, which has a gradient on every device
    (``tf.nn.conv1d`` with dilation > 1 has none on the CPU).
    """
    value = tf.convert_to_tensor(value, tf.float32)
    filter_ = tf.convert_to_tensor(filter_, tf.float32)
    return conv_taps(causal_taps(value, filter_.shape[0], dilation), filter_)
