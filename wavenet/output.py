"""What the network predicts: the distribution of the next sample.

One class per kind of output distribution, chosen from the network description, holds all
that depends on it: how many outputs the network's last layer has (``width``), the codes a
waveform is predicted as (``encode`` / ``decode``), the training loss, the distribution
itself and how a sample is drawn from it at a temperature. The network, its training step
and the generation loops call these and nothing else, so another distribution (a mixture of
logistics, say) is another class here and a description field that chooses it.
"""
import dataclasses
import io
from typing import ClassVar

import numpy as np
import tensorflow as tf

from .ops import mu_law_decode, mu_law_encode


@dataclasses.dataclass(frozen=True)
class MuLawSoftmax:
    """The original's output: a softmax over ``quantization_channels`` mu-law codes of the
    next sample. The network's outputs are the logits."""
    quantization_channels: int

    name: ClassVar[str] = 'softmax'  # in the description's "output_distribution"

    @property
    def width(self):
        """Outputs per sample of the network's last layer."""
        return self.quantization_channels

    @property
    def codes(self):
        """How many codes a sample can take."""
        return self.quantization_channels

    @property
    def silence(self):
        """The code of a zero sample."""
        return self.quantization_channels // 2

    def encode(self, audio):
        """Samples in [-1, 1] -> the int codes the network predicts."""
        return mu_law_encode(audio, self.quantization_channels)

    def decode(self, codes):
        """Int codes -> samples in [-1, 1]."""
        return mu_law_decode(codes, self.quantization_channels)

    def loss(self, outputs, targets):
        """The mean negative log-likelihood, in nats, of int ``targets`` under ``outputs``
        (one distribution per target); in float32 even under mixed precision."""
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=targets, logits=tf.cast(outputs, tf.float32)))

    def distribution(self, outputs):
        """The probabilities of every code, ``[..., quantization_channels]`` float32."""
        # Softmax in float64, as the original, so tiny probabilities are not rounded to zero.
        return tf.cast(tf.nn.softmax(tf.cast(outputs, tf.float64)), tf.float32)

    def sample(self, outputs, temperature, uniform, clamp=False):
        """One code per row of ``outputs`` [B, width], drawn from the distribution scaled by
        ``temperature`` (``p' ∝ exp(log p / temperature)``; a number, or one per row [B])
        by inverting its cumulative distribution at ``uniform`` [B] in [0, 1); with
        ``clamp``, light branches of the code tree dropped first (``clamp_branches``)."""
        proba = scale_temperature(self.distribution(outputs), temperature)
        return inverse_cdf(clamp_branches(proba) if clamp else proba, uniform)

    def pcm_table(self):
        """The 16-bit sample of every code, as soundfile (libsndfile) writes its decoded
        value to a wav, so that generated codes become a wav's samples by one lookup."""
        import soundfile
        wav = io.BytesIO()
        soundfile.write(wav, self.decode(np.arange(self.codes)).numpy(), 8000,
                        subtype='PCM_16', format='WAV')
        wav.seek(0)
        return soundfile.read(wav, dtype='int16')[0]


def scale_temperature(proba, temperature):
    """``p' ∝ exp(log p / temperature)`` over the last axis of ``proba`` [B, Q], in
    float64; ``temperature`` a number or one per row [B]."""
    temperature = tf.cast(temperature, tf.float64)
    if temperature.shape.rank:
        temperature = temperature[:, tf.newaxis]
    return tf.nn.softmax(tf.math.log(tf.cast(proba, tf.float64)) / temperature)


def sample_codes(proba, temperature, uniform):
    """One code per row of ``proba`` [B, Q], drawn from the temperature-scaled distribution
    by inverting its cumulative distribution at ``uniform`` [B] in [0, 1)."""
    return inverse_cdf(scale_temperature(proba, temperature), uniform)


def inverse_cdf(proba, uniform):
    """The code where the cumulative distribution of ``proba`` [B, Q] (float64, not
    necessarily normalised) crosses ``uniform`` [B] in [0, 1)."""
    cdf = tf.cumsum(proba, axis=-1)
    below = cdf <= tf.cast(uniform, tf.float64)[:, tf.newaxis] * cdf[:, -1:]
    return tf.minimum(tf.reduce_sum(tf.cast(below, tf.int32), axis=-1), proba.shape[-1] - 1)


# LPCNet's sampling floor: drawn bit by bit, a branch of the code tree holding less than
# this fraction of its parent's probability is never taken.
BRANCH_FLOOR = 0.025


def clamp_branches(proba, floor=BRANCH_FLOOR):
    """``proba`` [B, Q] (Q a power of two) with every code zeroed whose path through the
    binary tree of codes (most significant bit first) passes a branch holding less than
    ``floor`` of its parent's mass, as LPCNet's bit-by-bit sampling drops it. The masses
    are the unclamped ones: a branch dropped higher up removes its whole subtree anyway."""
    codes = proba.shape[-1]
    keep = tf.ones_like(proba, tf.bool)
    for level in range(1, codes.bit_length()):
        width = codes >> level  # codes under each node of this level
        nodes = tf.reduce_sum(tf.reshape(proba, [-1, codes // width, width]), axis=-1)
        parents = tf.repeat(tf.reduce_sum(tf.reshape(nodes, [-1, codes // width // 2, 2]),
                                          axis=-1), 2, axis=-1)
        light = nodes < floor * parents
        keep &= ~tf.repeat(light, width, axis=-1)
    return tf.where(keep, proba, tf.zeros_like(proba))


@dataclasses.dataclass(frozen=True)
class Pcm16:
    """16-bit samples as codes: code ``c`` in ``[0, 65536)`` is the sample ``c - 32768``,
    the value ``(c - 32768) / 32768``. What a mixture of logistics predicts, and the
    samples of a vocoder with linear prediction (whose network predicts their excitation
    instead, see ``wavenet.lpc``)."""
    codes: ClassVar[int] = 2 ** 16
    silence: ClassVar[int] = 2 ** 15  # the code of a zero sample
    HALF: ClassVar[int] = 2 ** 15  # a sample's value is (code - HALF) / HALF

    def encode(self, audio):
        """Samples in [-1, 1] -> 16-bit codes, rounded to the nearest and clipped."""
        scaled = tf.round(tf.cast(audio, tf.float32) * self.HALF)
        return tf.cast(tf.clip_by_value(scaled, -self.HALF, self.HALF - 1), tf.int32) + self.HALF

    def decode(self, codes):
        return tf.cast(tf.convert_to_tensor(codes) - self.HALF, tf.float32) / self.HALF

    def rounded(self, audio):
        """Samples rounded to the nearest 16-bit value, as ``decode(encode(audio))`` gives
        them, but not clipped to [-1, 1)."""
        return tf.round(tf.cast(audio, tf.float32) * self.HALF) / self.HALF

    def pcm_table(self):
        """Every code's 16-bit sample: the code itself, offset."""
        return (np.arange(self.codes) - self.HALF).astype(np.int16)


@dataclasses.dataclass(frozen=True)
class MixtureOfLogistics(Pcm16):
    """A discretized mixture of ``components`` logistic distributions over 16-bit samples
    (PixelCNN++, as Parallel WaveNet and r9y9/wavenet_vocoder use it). Code ``c`` (see
    ``Pcm16``) stands for the bin of width ``1 / 32768`` around its value; the lowest and
    highest bins also take the tails beyond them. The network's outputs are, per
    component, the logit of its weight, its mean and its log-scale (bounded below by
    ``log_scale_min``)."""
    components: int = 10
    log_scale_min: float = -7.0

    name: ClassVar[str] = 'mixture_of_logistics'

    @property
    def width(self):
        return 3 * self.components

    def parameters(self, outputs, dtype=tf.float32):
        """``(log weights, means, scales)`` of ``outputs`` [..., width], each [..., K]."""
        outputs = tf.cast(outputs, dtype)
        logits, means, log_scales = tf.split(outputs, 3, axis=-1)
        log_scales = tf.maximum(log_scales, self.log_scale_min)
        return tf.nn.log_softmax(logits, axis=-1), means, tf.exp(log_scales)

    def log_likelihood(self, outputs, targets, dtype=tf.float32):
        """``log P(target code)`` under ``outputs``, per target."""
        log_weights, means, scales = self.parameters(outputs, dtype)
        value = tf.cast(self.decode(targets), dtype)[..., tf.newaxis]
        half_bin = 1.0 / self.HALF / 2
        upper = (value + half_bin - means) / scales
        lower = (value - half_bin - means) / scales
        middle = (value - means) / scales
        # log(sigmoid(upper) - sigmoid(lower)), and where the two are too close to subtract
        # in float32, the density at the bin's centre times the bin's width.
        in_bin = tf.sigmoid(upper) - tf.sigmoid(lower)
        density = middle - tf.math.log(scales) - 2 * tf.nn.softplus(middle)
        inside = tf.where(in_bin > 1e-5, tf.math.log(tf.maximum(in_bin, 1e-12)),
                          density + tf.math.log(tf.cast(2 * half_bin, dtype)))
        codes = tf.convert_to_tensor(targets)[..., tf.newaxis]
        log_bin = tf.where(codes == 0, upper - tf.nn.softplus(upper),       # log sigmoid
                           tf.where(codes == self.codes - 1, -tf.nn.softplus(lower), inside))
        return tf.reduce_logsumexp(log_weights + log_bin, axis=-1)

    def loss(self, outputs, targets):
        return -tf.reduce_mean(self.log_likelihood(outputs, targets))

    def distribution(self, outputs):
        """The probabilities of every 16-bit code, ``[..., 65536]`` float32 (from the
        mixture's cumulative distribution at the bins' edges, in float64)."""
        log_weights, means, scales = self.parameters(outputs, tf.float64)
        edges = (tf.range(1, self.codes, dtype=tf.float64) - self.HALF - 0.5) / self.HALF
        cdf = tf.sigmoid((edges[:, tf.newaxis] - means[..., tf.newaxis, :])
                         / scales[..., tf.newaxis, :])
        shape = tf.concat([tf.shape(cdf)[:-2], [1, self.components]], axis=0)
        cdf = tf.concat([tf.zeros(shape, tf.float64), cdf, tf.ones(shape, tf.float64)], axis=-2)
        per_component = cdf[..., 1:, :] - cdf[..., :-1, :]
        return tf.cast(tf.reduce_sum(per_component * tf.exp(log_weights)[..., tf.newaxis, :],
                                     axis=-1), tf.float32)

    def sample(self, outputs, temperature, uniform):
        """One code per row, drawn with one uniform [B] per row: it picks a component by
        the weights' cumulative sum, and what is left of it within that component's share,
        again uniform, draws from the logistic by its inverse CDF. ``temperature`` below 1
        sharpens, weights ∝ w^(1/T) and every scale times T (1: the mixture itself)."""
        log_weights, means, scales = self.parameters(outputs, tf.float64)
        temperature = tf.cast(temperature, tf.float64)
        weights = tf.nn.softmax(log_weights / temperature, axis=-1)
        cumulative = tf.cumsum(weights, axis=-1)
        u = tf.cast(uniform, tf.float64)[:, tf.newaxis] * cumulative[:, -1:]
        chosen = tf.minimum(tf.reduce_sum(tf.cast(cumulative <= u, tf.int32), axis=-1),
                            self.components - 1)
        below = tf.gather(cumulative - weights, chosen, batch_dims=1)
        share = tf.gather(weights, chosen, batch_dims=1)
        rest = tf.clip_by_value((u[:, 0] - below) / share, 1e-12, 1 - 1e-12)
        value = (tf.gather(means, chosen, batch_dims=1) + tf.gather(scales, chosen, batch_dims=1)
                 * temperature * (tf.math.log(rest) - tf.math.log1p(-rest)))
        return self.encode(tf.cast(value, tf.float32))


def from_description(output_distribution='softmax', quantization_channels=256,
                     mixture_components=10, log_scale_min=-7.0):
    """The output of a network description's fields."""
    if output_distribution == MuLawSoftmax.name:
        return MuLawSoftmax(quantization_channels)
    if output_distribution == MixtureOfLogistics.name:
        return MixtureOfLogistics(mixture_components, log_scale_min)
    raise ValueError(f'unknown output distribution {output_distribution!r}')
