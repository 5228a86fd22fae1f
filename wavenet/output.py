"""What the network predicts: the distribution of the next sample.

One class per kind of output distribution, chosen from the network description, holds all
that depends on it: how many outputs the network's last layer has (``width``), the codes a
waveform is predicted as (``encode`` / ``decode``), the training loss, the distribution
itself and how a sample is drawn from it at a temperature. The network, its training step
and the generation loops call these and nothing else, so another distribution (a mixture of
logistics, say) is another class here and a description field that chooses it.
"""
import dataclasses

import tensorflow as tf

from .ops import mu_law_decode, mu_law_encode


@dataclasses.dataclass(frozen=True)
class MuLawSoftmax:
    """The original's output: a softmax over ``quantization_channels`` mu-law codes of the
    next sample. The network's outputs are the logits."""
    quantization_channels: int

    @property
    def width(self):
        """Outputs per sample of the network's last layer."""
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

    def sample(self, outputs, temperature, uniform):
        """One code per row of ``outputs`` [B, width], drawn from the distribution scaled by
        ``temperature`` (``p' ∝ exp(log p / temperature)``) by inverting its cumulative
        distribution at ``uniform`` [B] in [0, 1)."""
        return sample_codes(self.distribution(outputs), temperature, uniform)


def scale_temperature(proba, temperature):
    """``p' ∝ exp(log p / temperature)`` over the last axis, in float64."""
    return tf.nn.softmax(tf.math.log(tf.cast(proba, tf.float64)) / temperature)


def sample_codes(proba, temperature, uniform):
    """One code per row of ``proba`` [B, Q], drawn from the temperature-scaled distribution
    by inverting its cumulative distribution at ``uniform`` [B] in [0, 1)."""
    cdf = tf.cumsum(scale_temperature(proba, temperature), axis=-1)
    below = cdf <= tf.cast(uniform, tf.float64)[:, tf.newaxis] * cdf[:, -1:]
    return tf.minimum(tf.reduce_sum(tf.cast(below, tf.int32), axis=-1), proba.shape[-1] - 1)
