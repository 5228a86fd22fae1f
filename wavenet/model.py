"""The WaveNet network: a Keras 3 model whose layers define the per-layer math once.

Every path through the network -- the training loss over a whole batch, ``predict_proba``
over a window, the queue-cached incremental step, the one-pass priming of those queues and
the steady state of a constant input -- runs the same ``_network`` function. They differ
only in where each convolution's taps come from (``taps_for``): slices of a whole sequence,
a queue of past inputs plus the newest one, or the one input repeated.

Local conditioning (a vocoder's mel frames) enters the same function as a
per-sample *projection*: the frames are upsampled to one row per sample, and every dilated
layer adds a 1x1 projection of its row to filter and gate. Row ``t`` conditions the
prediction of sample ``t``, so the network input at position ``t`` (which predicts
``t + 1``) is paired with row ``t + 1``. The projection is linear, so the layers' kernels
are applied in one matmul over all layers, ahead of the network (for generation: once per
chunk of samples, outside the per-sample loop).
"""
import contextlib
import math

import keras
import tensorflow as tf

from . import features, lpc, output, period
from .ops import causal_taps, conv_taps, pointwise

_zeros = keras.initializers.Zeros
# Whether new weights draw their random initial values (see ``weights_to_restore``).
_random_weights = True


def _glorot():
    return keras.initializers.GlorotUniform() if _random_weights else _zeros()


@contextlib.contextmanager
def weights_to_restore():
    """Networks built inside start with zeros for weights, without random draws: for a
    network whose every weight a checkpoint overwrites next, as generation's does, where
    drawing them is a good part of the start-up."""
    global _random_weights
    previous, _random_weights = _random_weights, False
    try:
        yield
    finally:
        _random_weights = previous


def _computed(layer, weight):
    """``weight`` (float32) in the dtype ``layer`` computes in: float32, or bfloat16 or
    float16 under a mixed precision policy, where weights stay float32."""
    return tf.cast(weight, layer.compute_dtype)


class IdentityOrGlorot(keras.initializers.Initializer):
    """The original's embedding-table initializer: identity when square, else Glorot."""

    def __call__(self, shape, dtype=None):
        if shape[0] == shape[1]:
            return tf.eye(shape[0], dtype=dtype)
        return _glorot()(shape, dtype=dtype)


class CausalLayer(keras.layers.Layer):
    """Maps the network input (one-hot codes or scalar audio) to residual channels."""

    def __init__(self, filter_width, input_channels, residual_channels, **kwargs):
        super().__init__(**kwargs)
        self.filter_width = filter_width
        self.dilation = 1
        self.input_channels = input_channels
        self.kernel = self.add_weight(name='filter', initializer=_glorot(),
                                      shape=(filter_width, input_channels, residual_channels))
        self.built = True

    def call(self, taps):
        return conv_taps(taps, _computed(self, self.kernel))


class LocalConditionUpsampling(keras.layers.Layer):
    """Frames ``[B, F, C]`` -> one row per sample ``[B, F * hop, C]``, hop = prod(scales).

    Each scale ``s`` stretches (repeats every row ``s`` times), then smooths along time with
    a learned kernel of ``2s + 1`` taps shared by all bands, starting as a plain average,
    the edges mirrored. Both are symmetric in time, so the rows of frame ``f`` stay at
    samples ``[f * hop, (f + 1) * hop)``.
    """

    def __init__(self, scales, **kwargs):
        super().__init__(**kwargs)
        self.scales = list(scales)
        self.hop_length = math.prod(self.scales)
        for i, scale in enumerate(self.scales):
            width = 2 * scale + 1
            # An attribute each, so that tf.train.Checkpoint finds them.
            setattr(self, f'smooth{i}', self.add_weight(
                name=f'smooth{i}', shape=(width,),
                initializer=keras.initializers.Constant(1 / width)))
        self.built = True

    def call(self, frames):
        rows = frames
        for i, scale in enumerate(self.scales):
            rows = _stretch_and_smooth(rows, _computed(self, getattr(self, f'smooth{i}')),
                                       scale)
        return rows


def _stretch_and_smooth(rows, kernel, scale):
    """Repeats each row ``scale`` times and smooths with ``kernel`` (2 * scale + 1 taps).

    Computed per input row rather than per output row: output ``j * scale + r`` mixes input
    rows ``j - 1, j, j + 1`` with weights that depend on ``r`` only (``phase_weights``), a
    small matmul instead of a long convolution. Mirroring the stretched edges by ``scale``
    samples is repeating the edge rows once.
    """
    padded = tf.concat([rows[:, :1], rows, rows[:, -1:]], axis=1)
    neighbours = tf.stack([padded[:, :-2], padded[:, 1:-1], padded[:, 2:]], axis=-1)
    # Tap k of output j * scale + r reads stretched sample j * scale + r + k - scale, which
    # lies in input row j + floor((r + k - scale) / scale), a neighbour m in {0, 1, 2}.
    taps = tf.range(2 * scale + 1)[:, tf.newaxis] + tf.range(scale)[tf.newaxis] - scale
    neighbour = tf.one_hot(tf.math.floordiv(taps, scale) + 1, 3, dtype=kernel.dtype)  # [taps, r, m]
    phase_weights = tf.einsum('k,krm->mr', kernel, neighbour)
    smoothed = tf.einsum('bfcm,mr->bfrc', neighbours, phase_weights)
    shape = tf.shape(rows)
    return tf.reshape(smoothed, [shape[0], shape[1] * scale, shape[2]])


class LocalConditionContext(keras.layers.Layer):
    """Frames ``[B, F, C]`` -> frames: each frame plus a learned function of it and its
    two neighbours (a width-3 convolution to ``hidden`` channels, ReLU, a 1x1 back to
    ``C``), the edges repeated. Its last layer starts at zero, so it starts as the
    identity. Per frame, not per sample, so it costs next to nothing; what it adds is a
    nonlinear reading of the spectrum (where its harmonics say the pitch is, whether it is
    voiced), which the per-layer projections, being linear, cannot make."""

    def __init__(self, channels, hidden, **kwargs):
        super().__init__(**kwargs)
        self.kernel_in = self.add_weight(name='kernel_in', shape=(3, channels, hidden),
                                         initializer=_glorot())
        self.bias_in = self.add_weight(name='bias_in', shape=(hidden,), initializer=_zeros())
        self.kernel_out = self.add_weight(name='kernel_out', shape=(1, hidden, channels),
                                          initializer=_zeros())
        self.bias_out = self.add_weight(name='bias_out', shape=(channels,),
                                        initializer=_zeros())
        self.built = True

    def call(self, frames):
        padded = tf.concat([frames[:, :1], frames, frames[:, -1:]], axis=1)
        hidden = tf.nn.relu(conv_taps(causal_taps(padded, 3, 1), _computed(self, self.kernel_in))
                            + _computed(self, self.bias_in))
        return frames + pointwise(hidden, _computed(self, self.kernel_out[0])) + \
            _computed(self, self.bias_out)


class ResidualBlock(keras.layers.Layer):
    """One dilated layer: gated activation, residual output and skip output."""

    def __init__(self, dilation, filter_width, residual_channels, dilation_channels,
                 skip_channels, use_biases, global_condition_channels=None,
                 local_condition_channels=None, period_channels=None, **kwargs):
        super().__init__(**kwargs)
        self.dilation = dilation
        self.filter_width = filter_width
        self.input_channels = residual_channels
        self.use_biases = use_biases
        self.filter, self.gate = self._filter_and_gate(
            '{}', (filter_width, residual_channels, dilation_channels))
        self.dense = self.add_weight(name='dense', initializer=_glorot(),
                                     shape=(1, dilation_channels, residual_channels))
        self.skip = self.add_weight(name='skip', initializer=_glorot(),
                                    shape=(1, dilation_channels, skip_channels))
        self.conditioned = global_condition_channels is not None
        if self.conditioned:
            self.gc_filter, self.gc_gate = self._filter_and_gate(
                'gc_{}', (1, global_condition_channels, dilation_channels))
        self.locally_conditioned = local_condition_channels is not None
        if self.locally_conditioned:
            self.lc_filter, self.lc_gate = self._filter_and_gate(
                'lc_{}', (1, local_condition_channels, dilation_channels))
        if period_channels:  # the pitch period's taps (wavenet.period), as conditioning
            self.period_filter, self.period_gate = self._filter_and_gate(
                'period_{}', (1, period_channels, dilation_channels))
        if use_biases:
            self.filter_bias, self.gate_bias = self._filter_and_gate(
                '{}_bias', (dilation_channels,), _zeros)
            self.dense_bias = self.add_weight(name='dense_bias', shape=(residual_channels,),
                                              initializer=_zeros())
            self.skip_bias = self.add_weight(name='skip_bias', shape=(skip_channels,),
                                             initializer=_zeros())
        self.built = True

    def _filter_and_gate(self, name, shape, initializer=_glorot):
        """A weight for each half of the gated activation, named as the original named
        them (``name`` formatted with 'filter' and 'gate'): checkpoints match by name."""
        return tuple(self.add_weight(name=name.format(half), shape=shape,
                                     initializer=initializer())
                     for half in ('filter', 'gate'))

    @property
    def lc_kernel(self):
        """``[lc_channels, 2 * dilation_channels]``: the local conditioning's projection
        into filter and gate (applied ahead of the network, see the module docstring)."""
        return _computed(self, tf.concat([self.lc_filter, self.lc_gate], axis=-1)[0])

    @property
    def period_kernel(self):
        """``[period channels, 2 * dilation_channels]``: the period taps' projection into
        filter and gate, added to the local conditioning's."""
        return _computed(self, tf.concat([self.period_filter, self.period_gate], axis=-1)[0])

    def gated_activation(self, taps, gc_embedding=None, lc_projection=None):
        """``tanh(filter) * sigmoid(gate)`` of the dilated convolution over ``taps``;
        ``lc_projection`` [B, >= T, 2 * dilation_channels] is this layer's projection of
        the local conditioning, its last rows aligned with the last output step."""
        # Filter and gate share their input, so one matmul computes both.
        kernel = tf.concat([self.filter, self.gate], axis=-1)
        z = conv_taps(taps, _computed(self, kernel))
        # The bias first: XLA makes a matmul and the add of a vector after it one kernel,
        # which a slice of the conditioning as that first addend prevented (a vocoder's
        # compiled loop then ran its matmuls as plain loops, at half the speed).
        if self.use_biases:
            z += _computed(self, tf.concat([self.filter_bias, self.gate_bias], axis=0))
        if self.conditioned:
            gc_kernel = tf.concat([self.gc_filter, self.gc_gate], axis=-1)[0]
            z += tf.expand_dims(tf.matmul(gc_embedding, _computed(self, gc_kernel)), 1)
        if self.locally_conditioned:
            z += lc_projection[:, -tf.shape(z)[1]:]
        conv_filter, conv_gate = tf.split(z, 2, axis=-1)
        return tf.tanh(conv_filter) * tf.sigmoid(conv_gate)

    def residual(self, out, layer_input):
        """The next layer's input: this layer's input plus the 1x1 'dense' transform."""
        transformed = pointwise(out, _computed(self, self.dense[0]))
        if self.use_biases:
            transformed += _computed(self, self.dense_bias)
        return layer_input + transformed


class PostProcessing(keras.layers.Layer):
    """Sum of skips -> ReLU -> 1x1 -> ReLU -> 1x1 -> the output distribution's parameters
    (``output_width`` of them: for the softmax, its logits)."""

    def __init__(self, skip_channels, output_width, use_biases, **kwargs):
        super().__init__(**kwargs)
        self.use_biases = use_biases
        self.postprocess1 = self.add_weight(name='postprocess1', initializer=_glorot(),
                                            shape=(1, skip_channels, skip_channels))
        self.postprocess2 = self.add_weight(name='postprocess2', initializer=_glorot(),
                                            shape=(1, skip_channels, output_width))
        if use_biases:
            self.postprocess1_bias = self.add_weight(name='postprocess1_bias', initializer=_zeros(),
                                                     shape=(skip_channels,))
            self.postprocess2_bias = self.add_weight(name='postprocess2_bias', initializer=_zeros(),
                                                     shape=(output_width,))
        self.built = True

    def call(self, skip_sum):
        hidden = pointwise(tf.nn.relu(skip_sum), _computed(self, self.postprocess1[0]))
        if self.use_biases:
            hidden += _computed(self, self.postprocess1_bias)
        outputs = pointwise(tf.nn.relu(hidden), _computed(self, self.postprocess2[0]))
        if self.use_biases:
            outputs += _computed(self, self.postprocess2_bias)
        return outputs


class WaveNetModel(keras.Model):
    """Implements the WaveNet network for generative audio.

    Usage (with the architecture of the paper)::

        net = WaveNetModel(batch_size=1, dilations=[2 ** i for i in range(10)] * 5,
                           filter_width=2, residual_channels=16, dilation_channels=32,
                           skip_channels=16, quantization_channels=256)
        loss = net.loss(audio_batch)

    ``batch_size`` is kept for compatibility with the original; the batch size of every
    call comes from its input. ``output_distribution``: ``'softmax'`` (the original's, over
    ``quantization_channels`` mu-law codes) or ``'mixture_of_logistics'`` (of
    ``mixture_components`` logistics over 16-bit samples, their log-scales at least
    ``log_scale_min``; needs ``scalar_input``), see ``wavenet.output``.
    """

    def __init__(self, batch_size, dilations, filter_width, residual_channels,
                 dilation_channels, skip_channels, quantization_channels=2 ** 8,
                 use_biases=False, scalar_input=False, initial_filter_width=32,
                 histograms=False, global_condition_channels=None,
                 global_condition_cardinality=None, local_condition_channels=None,
                 lc_upsample_scales=None, lc_context_channels=0, output_distribution='softmax',
                 mixture_components=10, log_scale_min=-7.0, linear_prediction=None,
                 period_input=None, name='wavenet', **kwargs):
        # Long, and kept whole: it takes the original's arguments one by one (its API), and
        # each layer below is built from them once, in the order the checkpoints name them.
        super().__init__(name=name, **kwargs)
        # Keras' Trainer keeps a `loss` attribute for compile(); here `loss` is the
        # original API's method, and the model is trained by an explicit step instead.
        del self.loss
        self.batch_size = batch_size
        self.dilations = list(dilations)
        self.filter_width = filter_width
        self.residual_channels = residual_channels
        self.dilation_channels = dilation_channels
        self.skip_channels = skip_channels
        self.quantization_channels = quantization_channels
        # Everything that depends on what the network predicts (see wavenet.output).
        self.output_distribution = output.from_description(
            output_distribution, quantization_channels, mixture_components, log_scale_min)
        if output_distribution != 'softmax' and not scalar_input:
            raise ValueError(f'a {output_distribution} output needs scalar_input: a one-hot '
                             f'input of {quantization_channels} codes would be far too wide')
        self.use_biases = use_biases
        self.scalar_input = scalar_input
        self.initial_filter_width = initial_filter_width
        self.histograms = histograms
        self.global_condition_channels = global_condition_channels
        self.global_condition_cardinality = global_condition_cardinality
        self.local_condition_channels = local_condition_channels
        self.lc_context_channels = lc_context_channels if local_condition_channels else 0
        if (local_condition_channels is None) != (lc_upsample_scales is None):
            raise ValueError('local conditioning needs both local_condition_channels and '
                             'lc_upsample_scales')
        # A vocoder's linear prediction from its features (wavenet.lpc), or None. With
        # it the network reads and predicts the excitation, and the samples are 16-bit.
        self.linear_prediction = linear_prediction
        if linear_prediction is not None and local_condition_channels is None:
            raise ValueError('linear prediction needs local conditioning (a vocoder)')
        if linear_prediction is not None and output_distribution != 'softmax':
            raise ValueError('linear prediction needs the softmax output')
        # How the samples that the network generates are coded as ints.
        self.sample_coding = self.output_distribution if linear_prediction is None else \
            lpc.SAMPLES
        # The pitch period as an input (wavenet.period), or None: taps of the excitation
        # and the signal a period back, so it needs the linear prediction's excitation.
        self.period_input = period_input
        if period_input is not None and linear_prediction is None:
            raise ValueError('the period input needs linear prediction (lpc_order)')
        self.receptive_field = WaveNetModel.calculate_receptive_field(
            filter_width, self.dilations, scalar_input, initial_filter_width,
            0 if period_input is None else period_input.reach)

        if global_condition_channels is not None and global_condition_cardinality is not None:
            self.gc_embedding = self.add_weight(
                name='gc_embedding', initializer=IdentityOrGlorot(),
                shape=(global_condition_cardinality, global_condition_channels))
        input_channels = 1 if scalar_input else quantization_channels
        causal_width = initial_filter_width if scalar_input else filter_width
        self.causal_layer = CausalLayer(causal_width, input_channels, residual_channels,
                                        name='causal_layer')
        self.dilated_stack = [
            ResidualBlock(dilation, filter_width, residual_channels, dilation_channels,
                          skip_channels, use_biases, global_condition_channels,
                          local_condition_channels,
                          period_input.channels if period_input is not None else None,
                          name=f'layer{i}')
            for i, dilation in enumerate(self.dilations)]
        # Keras tracks the list for its own weight collection, but `tf.train.Checkpoint`
        # follows only attributes that are trackable objects, and a list is not one: without
        # an attribute per block, checkpoints would silently miss every dilated layer.
        for block in self.dilated_stack:
            setattr(self, block.name, block)
        self.postprocessing = PostProcessing(skip_channels, self.output_distribution.width,
                                             use_biases, name='postprocessing')
        if local_condition_channels is not None:
            self.lc_upsampling = LocalConditionUpsampling(lc_upsample_scales,
                                                          name='lc_upsampling')
            if lc_context_channels:
                self.lc_context = LocalConditionContext(local_condition_channels,
                                                        lc_context_channels, name='lc_context')
        self.built = True
        self._state = None
        self._step = tf.function(self.incremental_step, reduce_retracing=True)
        self._prime = tf.function(self.primed_state, reduce_retracing=True)
        self._window = tf.function(self._predict_window, reduce_retracing=True)

    @staticmethod
    def calculate_receptive_field(filter_width, dilations, scalar_input, initial_filter_width,
                                  reach=0):
        """How many samples before the next one the network reads: through its
        convolutions, or as far as a period input ``reach``es back (``PeriodInput``)."""
        receptive_field = (filter_width - 1) * sum(dilations) + 1
        if scalar_input:
            receptive_field += initial_filter_width - 1
        else:
            receptive_field += filter_width - 1
        return max(receptive_field, reach)

    @property
    def conv_layers(self):
        """Every convolution that looks into the past, in network order."""
        return [self.causal_layer] + self.dilated_stack

    @property
    def queue_lengths(self):
        """How many past inputs each of ``conv_layers`` needs: ``(width - 1) * dilation``."""
        return [(layer.filter_width - 1) * layer.dilation for layer in self.conv_layers]

    # -- the network ------------------------------------------------------------------

    def _network(self, network_input, gc_embedding, taps_for, output_width,
                 lc_projection=None):
        """The outputs (the distribution's parameters) for the last ``output_width`` steps;
        ``taps_for(i, value, layer)`` gives
        the taps of conv layer ``i`` whose input is ``value``; ``lc_projection`` (from
        ``project_local_condition``) is aligned with ``network_input``."""
        network_input = _computed(self, network_input)
        current = self.causal_layer(taps_for(0, network_input, self.causal_layer))
        outputs = []
        # A split, not one slice per layer: each slice's gradient is a full-size tensor.
        lc_per_layer = ([None] * len(self.dilated_stack) if lc_projection is None else
                        tf.split(lc_projection, len(self.dilated_stack), axis=-1))
        for i, (block, lc) in enumerate(zip(self.dilated_stack, lc_per_layer), start=1):
            taps = taps_for(i, current, block)
            out = block.gated_activation(taps, gc_embedding, lc)
            current = block.residual(out, taps[-1])
            # (A slice only where it cuts: fewer ops make tracing and compiling quicker.)
            whole = isinstance(output_width, int) and out.shape[1] == output_width
            outputs.append(out if whole else out[:, -output_width:])
        # Summing per-layer skip outputs equals one matmul over the concatenated layer
        # outputs, which is far cheaper than fifty matmuls and fifty adds.
        skip_kernel = tf.concat([block.skip for block in self.dilated_stack], axis=1)[0]
        skip_sum = pointwise(tf.concat(outputs, axis=-1), _computed(self, skip_kernel))
        if self.use_biases:
            skip_sum += _computed(self, tf.add_n([block.skip_bias
                                                  for block in self.dilated_stack]))
        return self.postprocessing(skip_sum)

    def _full_network(self, network_input, gc_embedding, output_width, lc_projection=None):
        def taps_for(_, value, layer):
            return causal_taps(value, layer.filter_width, layer.dilation)
        return self._network(network_input, gc_embedding, taps_for, output_width,
                             lc_projection)

    def call(self, network_input, gc_embedding=None, lc_projection=None):
        """Outputs ``[B, T - receptive_field + 1, width]`` (the output distribution's
        parameters: for the softmax, logits) for an encoded input ``[B, T, C]``."""
        output_width = tf.shape(network_input)[1] - self.receptive_field + 1
        return self._full_network(network_input, gc_embedding, output_width, lc_projection)

    # -- inputs -----------------------------------------------------------------------

    def embed_global_condition(self, global_condition):
        """``[B, gc_channels]`` embedding for speaker ids (or ``None`` without conditioning)."""
        if global_condition is None or self.global_condition_channels is None:
            return None
        if self.global_condition_cardinality is None:
            # Without a table the caller passes the embedding itself, as in the original.
            return tf.reshape(tf.cast(global_condition, self.compute_dtype),
                              [-1, self.global_condition_channels])
        ids = tf.reshape(tf.cast(global_condition, tf.int32), [-1])
        return _computed(self, tf.gather(self.gc_embedding, ids))

    def encode_codes(self, codes):
        """The network input for int codes ``[B, T]``: one-hot, or decoded audio if scalar."""
        if self.scalar_input:
            return self.output_distribution.decode(codes)[..., tf.newaxis]
        return tf.one_hot(codes, self.quantization_channels, dtype=tf.float32)

    @property
    def lc_hop_length(self):
        """Samples per conditioning frame (``None`` without local conditioning)."""
        if self.local_condition_channels is None:
            return None
        return self.lc_upsampling.hop_length

    def upsample_local_condition(self, frames):
        """Frames ``[F, C]`` or ``[B, F, C]`` -> rows ``[B, F * hop, C]``: row ``t`` is
        the conditioning of sample ``t``."""
        frames = tf.convert_to_tensor(frames, tf.float32)
        if frames.shape.rank == 2:
            frames = frames[tf.newaxis]
        frames = _computed(self, features.standardize(frames))
        if self.lc_context_channels:
            frames = self.lc_context(frames)
        return self.lc_upsampling(frames)

    def project_local_condition(self, rows):
        """Rows ``[B, T, C]`` -> ``[B, T, layers * 2 * dilation_channels]``: every dilated
        layer's filter and gate projection, in one matmul."""
        kernel = tf.concat([block.lc_kernel for block in self.dilated_stack], axis=-1)
        return pointwise(_computed(self, rows), kernel)

    def project_period(self, taps):
        """Period taps ``[B, T, channels]`` -> every dilated layer's filter and gate
        projection ``[B, T, layers * 2 * dilation_channels]``, as ``project_local_condition``
        gives the features'."""
        kernel = tf.concat([block.period_kernel for block in self.dilated_stack], axis=-1)
        return pointwise(_computed(self, taps), kernel)

    def lag_rows(self, frames):
        """Frames ``[B, F, C]`` -> the period of every sample ``[B, F * hop]``, in samples
        (a network with a period input)."""
        frames = tf.convert_to_tensor(frames, tf.float32)
        return self.period_input.per_sample(self.period_input.lags(frames), self.lc_hop_length)

    def coefficient_rows(self, frames):
        """Frames ``[B, F, C]`` -> the linear prediction coefficients of every sample
        ``[B, F * hop, lpc_order]``: row ``t`` those of sample ``t``."""
        frames = tf.convert_to_tensor(frames, tf.float32)
        return self.linear_prediction.per_sample(
            self.linear_prediction.coefficients(frames), self.lc_hop_length)

    def _check_gc(self, global_condition):
        if self.global_condition_channels is not None and global_condition is None:
            raise ValueError('this network is speaker-conditioned: pass global_condition')

    def _check_lc(self, local_condition):
        if self.local_condition_channels is not None and local_condition is None:
            raise ValueError('this network is locally conditioned (a vocoder): pass its '
                             'features as local_condition')
        if self.local_condition_channels is None and local_condition is not None:
            raise ValueError('local conditioning given to a network without it '
                             '(local_condition_channels is None)')

    def _check_no_linear_prediction(self, method):
        if self.linear_prediction is not None:
            raise ValueError(f'{method} takes one upsampled row per sample, which does not '
                             'carry the linear prediction of a network with lpc_order: use '
                             'predict_proba, or wavenet.generation.generate with a '
                             'ConditioningRows')

    def _upsampled_rows(self, frames, samples):
        """Rows ``[B, samples, C]`` for frames that must cover ``samples`` samples."""
        rows = self.upsample_local_condition(frames)
        if rows.shape[-1] != self.local_condition_channels:
            raise ValueError(f'local conditioning has {rows.shape[-1]} channels per frame, '
                             f'the network expects {self.local_condition_channels}')
        if rows.shape[1] is not None and isinstance(samples, int) and rows.shape[1] < samples:
            raise ValueError(f'{rows.shape[1] // self.lc_hop_length} frames cover '
                             f'{rows.shape[1]} samples, fewer than the {samples} needed')
        return rows[:, :samples]

    # -- training ---------------------------------------------------------------------

    def loss(self, input_batch, global_condition_batch=None, l2_regularization_strength=None,
             local_condition_batch=None, input_noise=0.0):
        """The mean negative log-likelihood (for the softmax, its cross-entropy) of each
        sample given its receptive field, under the output distribution (the arguments
        as ``teacher_forced``'s)."""
        outputs, targets = self.teacher_forced(input_batch, global_condition_batch,
                                               local_condition_batch, input_noise)
        loss = self.output_distribution.loss(outputs, targets)
        if not l2_regularization_strength:
            return loss
        return loss + l2_regularization_strength * self.l2_loss()

    def teacher_forced(self, input_batch, global_condition_batch=None,
                       local_condition_batch=None, input_noise=0.0):
        """``(outputs, targets)``: the output distribution's parameters ``[B, T - R, width]``
        of every sample after the first receptive field ``R`` of ``input_batch`` ``[B, T]``,
        each given the true samples before it (as training sees them), and the codes
        ``[B, T - R]`` they predict (with linear prediction, the excitation's).

        ``local_condition_batch``: frames ``[B, F, lc_channels]`` covering the audio
        (``F * hop >= T``), frame ``f`` describing samples ``[f * hop, (f + 1) * hop)``.
        ``input_noise``: the standard deviation of Gaussian noise added to the audio the
        network reads, not to the samples it predicts (training only).
        """
        self._check_gc(global_condition_batch)
        self._check_lc(local_condition_batch)
        input_batch = tf.convert_to_tensor(input_batch, tf.float32)
        if input_batch.shape.rank == 2:
            input_batch = input_batch[..., tf.newaxis]
        signal = input_batch
        if self.linear_prediction is not None:
            # The network reads and predicts the excitation instead (wavenet.lpc).
            length = tf.shape(input_batch)[1]
            codes = lpc.excitation_codes(
                self.output_distribution, input_batch[..., 0],
                self.coefficient_rows(local_condition_batch)[:, :length])
            signal = self.output_distribution.decode(codes)[..., tf.newaxis]
        else:
            codes = self.output_distribution.encode(input_batch[..., 0])
        heard, heard_codes = signal, codes
        if input_noise:
            heard = signal + tf.random.normal(tf.shape(signal), stddev=input_noise)
            heard_codes = self.output_distribution.encode(heard[..., 0])
        if self.scalar_input:
            network_input = heard
        else:
            network_input = tf.one_hot(heard_codes, self.quantization_channels, dtype=tf.float32)
        gc_embedding = self.embed_global_condition(global_condition_batch)
        lc_projection = None
        if local_condition_batch is not None:
            length = input_batch.shape[1] if input_batch.shape[1] is not None else \
                tf.shape(input_batch)[1]
            rows = self._upsampled_rows(local_condition_batch, length)
            # Input position t predicts sample t + 1, so it gets row t + 1.
            lc_projection = self.project_local_condition(rows[:, 1:])
        if self.period_input is not None:  # and the taps of sample t + 1
            lc_projection += self.project_period(self.period_taps(
                lpc.SAMPLES.encode(input_batch[..., 0]), codes, local_condition_batch)[:, 1:])
        # The last sample has nothing to be predicted from it, so the network never sees it.
        outputs = self(network_input[:, :-1], gc_embedding, lc_projection)
        return outputs, codes[:, self.receptive_field:]

    def period_taps(self, sample_codes, excitation_codes, frames):
        """The period taps ``[B, T, channels]`` of every sample of ``[B, T]`` 16-bit sample
        codes and their excitation's codes, from the lags of ``frames`` (silence before the
        sequences begin, as before a generation's start)."""
        length = tf.shape(sample_codes)[1]
        return period.tap_values(
            lpc.excitation_values(self.output_distribution, excitation_codes),
            lpc.SAMPLES.decode(sample_codes), self.lag_rows(frames)[:, :length],
            self.silent_values())

    def silent_values(self):
        """``(excitation, sample)`` values of silence: what the period taps read before a
        generation's start."""
        output = self.output_distribution
        return (lpc.excitation_values(output, [output.silence])[0],
                lpc.SAMPLES.decode(lpc.SAMPLES.silence))

    def l2_loss(self):
        """``sum(v**2) / 2`` over every trainable weight that is not a bias."""
        return tf.add_n([tf.nn.l2_loss(v) for v in self.trainable_variables
                         if 'bias' not in v.path])

    def write_histograms(self, step):
        """Writes a ``tf.summary`` histogram of every weight to the default writer."""
        for variable in self.trainable_variables:
            tf.summary.histogram(variable.path, variable, step=step)

    # -- prediction -------------------------------------------------------------------

    def predict_proba(self, waveform, global_condition=None, local_condition=None):
        """Distribution of the sample after int codes ``waveform`` ([T] or [B, T]).

        Only the last ``receptive_field`` codes matter; shorter waveforms are treated as
        preceded by zero network input (the incremental state instead starts with zero
        input at every layer: the two agree once a whole receptive field was pushed).
        ``local_condition``: frames ``[F, C]`` or ``[B, F, C]`` covering the ``T + 1``
        samples up to the predicted one. With linear prediction the network reads the
        waveform's excitation and the distribution is that of the sample, its prediction
        added to the excitation's (before the waveform counts as zeros).
        """
        self._check_gc(global_condition)
        self._check_lc(local_condition)
        waveform = tf.convert_to_tensor(waveform, tf.int32)
        unbatched = waveform.shape.rank == 1
        if unbatched:
            waveform = waveform[tf.newaxis]
        gc_embedding = self.embed_global_condition(global_condition)
        lc_rows = heard = None
        length = waveform.shape[1]
        if local_condition is not None:
            rows = self._upsampled_rows(local_condition, length + 1)
            lc_rows = rows[:, 1:][:, -self.receptive_field:]
        output = self.output_distribution
        period_taps = None
        if self.linear_prediction is not None:
            samples = self.sample_coding.decode(waveform)
            coefficients = self.coefficient_rows(local_condition)[:, :length + 1]
            heard = lpc.excitation_codes(output, samples, coefficients[:, :length])
            past = tf.pad(samples, [[0, 0], [self.linear_prediction.taps, 0]])
            prediction = lpc.predict(past[:, -self.linear_prediction.taps:],
                                     coefficients[:, length:])[:, 0]
        if self.period_input is not None:
            # Those of samples 1 .. T, the last the predicted one's (its own value unused).
            padded = [tf.pad(codes, [[0, 0], [0, 1]]) for codes in (waveform, heard)]
            period_taps = self.period_taps(*padded, local_condition)[:, 1:]
            period_taps = period_taps[:, -self.receptive_field:]
        outputs = self._window((waveform if heard is None else heard)[:, -self.receptive_field:],
                               gc_embedding, lc_rows, period_taps)
        proba = output.distribution(outputs)
        if self.linear_prediction is not None:
            proba = lpc.sample_distribution(output, proba, prediction)
        return proba[0] if unbatched else proba

    def _predict_window(self, codes, gc_embedding, lc_rows=None, period_taps=None):
        """The outputs of the next distribution after ``codes`` [B, <= receptive_field],
        whose position ``t`` is conditioned by ``lc_rows[:, t]`` (and with a period input,
        ``period_taps[:, t]``)."""
        network_input = self.encode_codes(codes)
        missing = tf.maximum(self.receptive_field - tf.shape(codes)[1], 0)
        network_input = tf.pad(network_input, [[0, 0], [missing, 0], [0, 0]])
        lc_projection = None
        if lc_rows is not None:
            lc_projection = self.project_local_condition(
                tf.pad(lc_rows, [[0, 0], [missing, 0], [0, 0]]))
        if period_taps is not None:
            lc_projection += self.project_period(
                tf.pad(period_taps, [[0, 0], [missing, 0], [0, 0]]))
        return self._full_network(network_input, gc_embedding, 1, lc_projection)[:, -1]

    # -- incremental prediction -------------------------------------------------------
    #
    # The incremental state is ``(position, queues)``: ``position`` counts the codes pushed,
    # and queue ``i`` is a ring buffer ``[length_i + 1, B, channels_i]`` of conv layer ``i``'s
    # inputs, the input of time ``t`` in row ``t % (length_i + 1)``; the last
    # ``length_i = (width - 1) * dilation`` of them are the layer's past taps. A ring buffer is
    # written in place, where a shifting FIFO would copy every queue at every step. The spare
    # row lets a step write its input before it reads its taps: a read of the old buffer
    # beside a write to it would make XLA copy the whole buffer.

    def zero_incremental_state(self, batch_size):
        """The state of ``reset_incremental_state``: zero input before the first code."""
        return tf.constant(0), [tf.zeros([length + 1, batch_size, layer.input_channels],
                                         self.compute_dtype)
                                for layer, length in zip(self.conv_layers, self.queue_lengths)]

    def reset_incremental_state(self):
        """Empties the queues of ``predict_proba_incremental`` (all zeros)."""
        self._state = None

    def predict_proba_incremental(self, waveform, global_condition=None, local_condition=None):
        """Pushes ONE code per batch row (scalar or [B]) and returns the next distribution.

        Each conv layer keeps its last ``(filter_width - 1) * dilation`` inputs, so one
        step costs one network column instead of a whole receptive field.
        ``local_condition``: the upsampled row (``upsample_local_condition``) of the sample
        to be predicted, ``[C]`` or ``[B, C]``.
        """
        self._check_gc(global_condition)
        self._check_lc(local_condition)
        self._check_no_linear_prediction('predict_proba_incremental')
        waveform = tf.convert_to_tensor(waveform, tf.int32)
        codes = tf.reshape(waveform, [-1])
        if self._state is None or self._state[1][0].shape[1] != codes.shape[0]:
            self._state = self.zero_incremental_state(codes.shape[0])
        gc_embedding = self.embed_global_condition(global_condition)
        lc_projection = None
        if local_condition is not None:
            row = tf.reshape(tf.convert_to_tensor(local_condition, tf.float32),
                             [-1, 1, self.local_condition_channels])
            lc_projection = self.project_local_condition(row)
        outputs, self._state = self._step(codes, self._state, gc_embedding, lc_projection)
        proba = self.output_distribution.distribution(outputs)
        return proba[0] if waveform.shape.rank == 0 else proba

    def prime_incremental_state(self, waveform, global_condition=None, local_condition=None):
        """Pushes int codes ``waveform`` ([T] or [B, T]) as ``predict_proba_incremental``
        would one by one after a reset, in one parallel pass; returns the next distribution.
        ``local_condition``: upsampled rows ``[T, C]`` or ``[B, T, C]``, row ``t`` the one
        of the sample after code ``t``."""
        self._check_gc(global_condition)
        self._check_lc(local_condition)
        self._check_no_linear_prediction('prime_incremental_state')
        waveform = tf.convert_to_tensor(waveform, tf.int32)
        codes = waveform[tf.newaxis] if waveform.shape.rank == 1 else waveform
        gc_embedding = self.embed_global_condition(global_condition)
        lc_projection = None
        if local_condition is not None:
            rows = tf.convert_to_tensor(local_condition, tf.float32)
            lc_projection = self.project_local_condition(
                rows[tf.newaxis] if rows.shape.rank == 2 else rows)
        outputs, self._state = self._prime(codes, gc_embedding, lc_projection)
        proba = self.output_distribution.distribution(outputs)
        return proba[0] if waveform.shape.rank == 1 else proba

    def incremental_step(self, codes, state, gc_embedding=None, lc_projection=None):
        """One network column for int ``codes`` [B]: the next distribution's outputs, and
        ``state``
        with each conv layer's new input pushed; ``lc_projection`` [B, 1, ...] is the
        projected conditioning of the next sample. Traceable: generation loops run it."""
        position, queues = state
        new_queues = []

        def taps_for(i, value, layer):
            size = self.queue_lengths[i] + 1
            if size == 1:
                new_queues.append(queues[i])
                return [value]
            queue = tf.tensor_scatter_nd_update(queues[i], [[position % size]],
                                                tf.transpose(value, [1, 0, 2]))
            new_queues.append(queue)
            # Tap k lies (width - 1 - k) * dilation steps in the past.
            ago = [(layer.filter_width - 1 - k) * layer.dilation
                   for k in range(layer.filter_width - 1)]
            past = tf.transpose(tf.gather(queue, (position - ago) % size), [1, 0, 2])
            return (tf.split(past, len(ago), axis=1) if len(ago) > 1 else [past]) + [value]

        network_input = self.encode_codes(codes[:, tf.newaxis])
        outputs = self._network(network_input, gc_embedding, taps_for, 1, lc_projection)
        return outputs[:, -1], (position + 1, new_queues)

    def steady_state(self, codes, gc_embedding=None, lc_projection=None):
        """The state after int ``codes`` [B] were pushed over and over, for ever (each time
        with the projected conditioning ``lc_projection`` [B, 1, ...]), and the next
        distribution's outputs. Every layer's input is then the same at every step, so one
        network column whose taps all hold that input computes it: a generation that starts
        from silence costs one column instead of a receptive field of steps."""
        queues = []

        def taps_for(i, value, layer):
            queues.append(tf.tile(tf.transpose(value, [1, 0, 2]),
                                  [self.queue_lengths[i] + 1, 1, 1]))
            return [value] * layer.filter_width

        outputs = self._network(self.encode_codes(codes[:, tf.newaxis]), gc_embedding,
                               taps_for, 1, lc_projection)
        return outputs[:, -1], (tf.constant(0), queues)

    def primed_state(self, codes, gc_embedding=None, lc_projection=None):
        """``incremental_step`` over int ``codes`` [B, T] from the zero state, in one pass:
        the last distribution's outputs and the state; ``lc_projection`` [B, T, ...].
        Traceable."""
        length_of_input = tf.shape(codes)[1]
        tails = []

        def taps_for(i, value, layer):
            # Zeros before the first code at every layer, as in the zero state, keep every
            # layer input (and so every queue) equal to the step-by-step one.
            length = self.queue_lengths[i]
            padded = tf.pad(value, [[0, 0], [length, 0], [0, 0]])
            tail = tf.pad(padded, [[0, 0], [1, 0], [0, 0]])[:, length_of_input:]
            tails.append(tf.ensure_shape(tail, [None, length + 1, None]))
            return causal_taps(padded, layer.filter_width, layer.dilation)

        outputs = self._network(self.encode_codes(codes), gc_embedding, taps_for, 1,
                                lc_projection)
        queues = [_ring_buffer(tail, length_of_input) for tail in tails]
        return outputs[:, -1], (length_of_input, queues)


def _ring_buffer(tail, position):
    """The ring buffer holding ``tail`` [B, size, C], the inputs up to ``position`` - 1."""
    return tf.roll(tf.transpose(tail, [1, 0, 2]), position % tail.shape[1], axis=0)

