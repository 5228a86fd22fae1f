"""Linear prediction from a vocoder's features: the spectral envelope, taken from the
features instead of learned.

With ``"lpc_order": N`` a vocoder predicts each sample in two parts, as LPCNet does: a
linear prediction ``p_t = sum_k c_k * s_(t-k)`` from its last ``N`` samples, whose
coefficients ``c`` follow from the frame's mel spectrum, and the *excitation*
``e_t = s_t - p_t``, which is what the network's softmax models (as mu-law codes). The
formants and the tilt of the spectrum are then in the coefficients, exact from the first
step of training; the network only has to learn the excitation -- pulses at the pitch
period, noise in unvoiced sounds -- and its own sampling noise comes out shaped by the
speech's envelope rather than white.

The coefficients (``LinearPrediction.coefficients``): the mel magnitudes spread back over
the linear frequency bins (each bin a weighted mean of the bands that cover it), squared
to a power spectrum, its autocorrelation (an inverse cosine transform) narrowed by a
Gaussian lag window and lifted by a white-noise floor, so the fit is smooth and stable,
then the Levinson-Durbin recursion. Everything runs in float64.

Training, generation and prediction all call ``predict`` (the prediction from a window of
past samples), and the excitation is always ``output``'s code of a 16-bit sample less its
prediction (``excitation_codes``, ``next_sample``), so they cannot drift apart. The past is
the samples rounded to 16 bits, as generation has them (``next_sample``).
"""
import dataclasses
import functools

import librosa
import numpy as np
import tensorflow as tf

from .features import MelFeatures
from .output import Pcm16

# The samples of a vocoder with linear prediction: 16-bit, so that the prediction from
# them is as exact as in training (mu-law codes would add their coarse rounding to every
# sample, which the synthesis filter then amplifies in its resonances).
SAMPLES = Pcm16()

# The lag window's bandwidth, Hz: the envelope is smoothed over about this much, so that
# the low bands' harmonics do not pull poles onto single partials (the G.729 window).
LAG_WINDOW_HZ = 60.0
# How far beyond full scale the samples that the prediction reads may go (see
# ``next_sample``): far enough that no speech-like excitation reaches it, near enough that
# the filter's float32 state keeps the 16-bit resolution that the rounding needs.
HEADROOM = 8.0
# White noise at this fraction of the power (-40 dB) keeps the recursion well conditioned
# where the spectrum has deep valleys, such as a band-limited or silent frame.
NOISE_FLOOR = 1e-4


@dataclasses.dataclass(frozen=True)
class LinearPrediction:
    """Linear prediction of ``order`` taps for the vocoder whose features are ``features``
    (a ``MelFeatures``).

    ``expansion``: the poles pulled towards the origin (the bandwidth expansion of speech
    codecs: ``c_k`` becomes ``expansion ** k * c_k``, which widens every resonance, so that
    a formant the features blur is not a ringing peak).

    ``preemphasis`` ``a``: the analysis of the signal pre-emphasised by ``1 - a z^-1`` (its
    spectrum tilted up, so the prediction spends its poles on the high formants too, as
    LPCNet's), and generation de-emphasised after. Predicting ``p_t = s_t - a s_(t-1)``
    from the ``p`` before it and adding ``a s_(t-1)`` back is predicting ``s_t`` from the
    ``s`` before it with the coefficients convolved with ``(1, -a)``, one tap more: so the
    excitation is the pre-emphasised signal's, and every path keeps reading and writing
    the samples themselves."""
    order: int
    features: MelFeatures
    expansion: float = 1.0
    preemphasis: float = 0.0

    @property
    def taps(self):
        """How many past samples a prediction reads."""
        return self.order + bool(self.preemphasis)

    def coefficients(self, frames):
        """``[..., F, taps]`` float32 prediction coefficients ``c_1 .. c_taps`` of each
        log-mel frame ``[..., F, channels]`` (the features' convention)."""
        spread, cosines = _analysis_matrices(self.order, self.features, self.preemphasis)
        magnitude = tf.exp(tf.cast(frames, tf.float64)) @ tf.constant(spread)
        autocorrelation = (magnitude ** 2) @ tf.constant(cosines)
        coefficients = _levinson(autocorrelation, self.order)
        if self.expansion != 1.0:
            coefficients *= tf.constant(self.expansion ** np.arange(1, self.order + 1))
        if self.preemphasis:  # s_t - a s_(t-1) - sum c_k (s_(t-k) - a s_(t-k-1))
            padded = tf.pad(coefficients, [[0, 0]] * (coefficients.shape.rank - 1) + [[1, 0]])
            shifted = tf.pad(coefficients, [[0, 0]] * (coefficients.shape.rank - 1) + [[0, 1]])
            unit = tf.one_hot(0, self.order + 1, dtype=tf.float64)
            coefficients = shifted - self.preemphasis * padded + self.preemphasis * unit
        return tf.cast(coefficients, tf.float32)

    def per_sample(self, coefficients, hop_length):
        """Frame coefficients ``[B, F, order]`` -> one row per sample ``[B, F * hop, order]``
        (sample ``t`` predicted with frame ``t // hop``'s)."""
        return tf.repeat(coefficients, hop_length, axis=1)


@functools.lru_cache(maxsize=8)
def _analysis_matrices(order, features, preemphasis=0.0):
    """``(spread [channels, bins], cosines [bins, order + 1])``: mel bands back to linear
    bins, and power spectrum (pre-emphasised) to windowed, floored autocorrelation (float64
    arrays)."""
    basis = librosa.filters.mel(sr=features.sample_rate, n_fft=features.n_fft,
                                n_mels=features.channels, fmin=features.fmin,
                                fmax=features.fmax).astype(np.float64)
    spread = basis / np.maximum(basis.sum(axis=0, keepdims=True), 1e-12)
    bins = features.n_fft // 2 + 1
    lags = np.arange(order + 1)
    # The autocorrelation of a one-sided power spectrum: an inverse real DFT, whose
    # interior bins count twice.
    weights = np.full(bins, 2.0)
    weights[0] = weights[-1] = 1.0
    cosines = weights[:, None] * np.cos(2 * np.pi * np.arange(bins)[:, None] * lags
                                        / features.n_fft) / features.n_fft
    window = np.exp(-0.5 * (2 * np.pi * LAG_WINDOW_HZ * lags / features.sample_rate) ** 2)
    window[0] *= 1 + NOISE_FLOOR
    # |1 - a e^(-jw)|^2: the power response of the pre-emphasis at every bin.
    emphasis = 1 + preemphasis ** 2 - 2 * preemphasis * np.cos(
        2 * np.pi * np.arange(bins) / features.n_fft)
    return spread, emphasis[:, None] * cosines * window


def _levinson(autocorrelation, order):
    """The Levinson-Durbin recursion: prediction coefficients ``[..., order]`` from the
    autocorrelation ``[..., order + 1]``."""
    r = autocorrelation
    error = tf.maximum(r[..., 0], 1e-30)
    c = tf.zeros_like(r[..., :0])
    for i in range(1, order + 1):
        # c holds c_1 .. c_(i-1); the reflection coefficient of step i:
        reflection = (r[..., i] - tf.reduce_sum(c * tf.reverse(r[..., 1:i], [-1]), axis=-1)) \
            / error
        c = tf.concat([c - reflection[..., None] * tf.reverse(c, [-1]),
                       reflection[..., None]], axis=-1)
        error = error * (1 - reflection ** 2)
    return c


def predict(past, coefficients):
    """The linear predictions ``[B, T]`` of ``T`` consecutive samples: ``past``
    ``[B, T + order - 1]`` holds the samples before them (the last ``order`` before the
    first prediction first), ``coefficients`` ``[B, T, order]`` the rows of the predicted
    samples."""
    order = coefficients.shape[-1]
    steps = tf.shape(coefficients)[1]
    # Tap k (k = 1 .. order) of prediction j reads past[j + order - k]. Summed in float64:
    # the compiled loop and the full-window path sum in different orders, and in float32
    # that moved a prediction across a 16-bit rounding boundary now and then, so the two
    # drew different samples from there on.
    past = tf.cast(past, tf.float64)
    taps = tf.stack([past[:, order - k:order - k + steps] for k in range(1, order + 1)],
                    axis=-1)
    return tf.cast(tf.reduce_sum(taps * tf.cast(coefficients, tf.float64), axis=-1),
                   tf.float32)


def predict_next(past, coefficients):
    """The prediction [B] of the sample after ``past`` [B, order] (the last samples'
    values) with that sample's ``coefficients`` [B, order]."""
    return predict(past, coefficients[:, tf.newaxis])[:, 0]


def advance(past, value, coefficients):
    """A generation's prediction state after a sample of ``value`` [B] (``next_sample``'s):
    the last ``order`` samples' values, and the prediction of the next sample from its
    ``coefficients`` [B, order]."""
    past = tf.concat([past[:, 1:], value[:, tf.newaxis]], axis=1)
    return past, predict_next(past, coefficients)


def excitation_codes(output, audio, coefficient_rows, before=0.0):
    """The excitation of every sample of ``audio`` ``[B, T]`` as ``output``'s codes: what
    the network reads and predicts. Each 16-bit sample less its prediction from the
    samples before it (``before``, the value of those before the first);
    ``coefficient_rows`` ``[B, T, order]``, row ``t`` that of sample ``t``."""
    order = coefficient_rows.shape[-1]
    samples = SAMPLES.decode(SAMPLES.encode(audio))
    past = tf.pad(samples, [[0, 0], [order, 0]], constant_values=before)[:, :-1]
    return output.encode(samples - predict(past, coefficient_rows))


def next_sample(output, forced, drawn, prediction):
    """``(sample codes, excitation codes, sample values)`` [B] of the next sample of a
    generation: where ``forced`` (16-bit codes) is >= 0 that sample and its excitation,
    else the ``drawn`` excitation code (``output``'s) added to the sample's ``prediction``.

    The codes (what the wav holds) are clipped to 16 bits; the values, which the
    prediction of the samples after it reads, are rounded as the codes are but clipped
    only at ``HEADROOM`` times full scale. The synthesis filter is stable, but fed its own
    output clipped at full scale its poles near the unit circle can hold it there (an
    overflow oscillation: a tone at full scale that the excitation can no longer steer);
    with the headroom it decays as the linear filter does. Training never clips: its
    recordings are below full scale."""
    given, forced_value = forced >= 0, SAMPLES.decode(forced)
    drawn_value = tf.clip_by_value(prediction + excitation_values(output, drawn), -HEADROOM,
                                   HEADROOM)
    value = tf.where(given, forced_value, SAMPLES.rounded(drawn_value))
    excitation = tf.where(given, output.encode(forced_value - prediction), drawn)
    return SAMPLES.encode(value), excitation, value


def excitation_values(output, codes):
    """The excitation that ``output``'s ``codes`` stand for, the same float32 values on
    every path (``output.decode`` under XLA differs from the eager kernel's in the last
    bit, which moved a sample across a 16-bit rounding boundary now and then)."""
    return tf.gather(_levels(output), codes)


@functools.lru_cache(maxsize=8)
def _levels(output):
    with tf.init_scope():  # eagerly, even when called while tracing
        return output.decode(np.arange(output.codes)).numpy()


def sample_distribution(output, proba, prediction):
    """The distribution over 16-bit sample codes ``[B, 65536]`` that an excitation
    distribution ``proba`` [B, Q] over ``output``'s codes implies, given the
    ``prediction`` [B]."""
    codes = SAMPLES.encode(prediction[:, None] + _levels(output)[None])
    rows = tf.range(tf.shape(codes)[0])[:, None] * SAMPLES.codes
    summed = tf.math.unsorted_segment_sum(tf.reshape(proba, [-1]), tf.reshape(codes + rows, [-1]),
                                          tf.shape(codes)[0] * SAMPLES.codes)
    return tf.reshape(summed, [-1, SAMPLES.codes])
