"""The pitch period as a vocoder's input (long-term prediction), as FARGAN and QPNet have
it beside a short-term linear prediction: the network also reads the excitation and the
signal one pitch period back, a few taps around it, through a 1x1 projection into every
layer, as the conditioning enters.

The period of each frame comes from its features alone (``PeriodInput.lags``), so that
training, full-window prediction and generation compute the same lags from the same
frames: the fine structure of the frame's low mel bands (each band less the mean of its
neighbours, which takes the spectral envelope away and leaves the harmonics' ripple) is
matched against that of flat harmonic combs at every candidate pitch, analysed by the very
same features (``_combs``), and the best match's period, rounded to whole samples, is
the frame's lag. The taps of sample ``t`` are then those a few samples either side of
``lag`` samples before it (``TAPS``), of the excitation and of the signal.

The same match says how voiced a frame is (``PeriodInput.voicing``), which generation's
voiced-only sharpening (``sharpening``, LPCNet's) reads.
"""
import dataclasses
import functools

import numpy as np
import tensorflow as tf

from .features import MelFeatures

# The pitches looked for, Hz, on a grid of PITCH_STEP cents.
LOWEST_PITCH, HIGHEST_PITCH, PITCH_STEP = 50.0, 500.0, 10.0
# The bands whose fine structure is matched: those centred below this frequency, where the
# mel bands are narrow enough to tell the harmonics apart.
MATCHED_BELOW_HZ = 2000.0
# The envelope taken away from each band: the mean of this many bands around it.
ENVELOPE_BANDS = 5
# Where the taps lie around the period: sample t reads t - lag + d for each d. Seven, not
# three: a frame's lag is one for its whole 16 ms and its pitch moves within them, and on
# recorded speech only about half the voiced frames' lags are within a sample of WORLD's
# period, two thirds within two, three quarters within three (docs/vocoder.md).
TAPS = (-3, -2, -1, 0, 1, 2, 3)


@dataclasses.dataclass(frozen=True)
class PeriodInput:
    """The period input of a vocoder whose features are ``features`` (a ``MelFeatures``)."""
    features: MelFeatures

    @property
    def longest_lag(self):
        """The longest lag a frame can have, in samples."""
        return int(round(self.features.sample_rate / LOWEST_PITCH))

    @property
    def reach(self):
        """How far back the taps read, in samples: part of the receptive field."""
        return self.longest_lag - min(TAPS)

    @property
    def channels(self):
        """What the network reads per sample: each tap of the excitation and the signal."""
        return 2 * len(TAPS)

    def lags(self, frames):
        """``[..., F]`` int32 periods in samples of log-mel frames ``[..., F, channels]``."""
        periods = tf.constant(_combs(self.features).periods)
        return tf.gather(periods, tf.argmax(self._match(frames), axis=-1, output_type=tf.int32))

    def voicing(self, frames):
        """``[..., F]`` float32 in [0, 1]: how much more like a harmonic comb each frame's
        fine structure is than white noise's (0: no more, 1: a comb exactly), a stand-in
        for the pitch correlation that LPCNet's features carry."""
        noise = _combs(self.features).noise_match
        return tf.clip_by_value((tf.reduce_max(self._match(frames), axis=-1) - noise)
                                / (1 - noise), 0.0, 1.0)

    def _match(self, frames):
        """``[..., F, pitches]``: each frame's fine structure against every comb's."""
        combs = _combs(self.features)
        fine = _fine_structure(tf.cast(frames, tf.float32)[..., :combs.bands])
        return tf.linalg.matvec(tf.constant(combs.templates), fine)

    def per_sample(self, lags, hop_length):
        """Frame lags ``[B, F]`` -> one per sample ``[B, F * hop]`` (sample ``t`` reads with
        frame ``t // hop``'s)."""
        return tf.repeat(lags, hop_length, axis=1)


def sharpening(voicing):
    """LPCNet's voiced-only sharpening: the exponent ``1 + max(0, 1.5 g - 0.5)`` that a
    sample's distribution is raised to, from its frame's ``voicing`` ``g`` (1 in frames
    that are noise-like, up to 2 in a clean comb)."""
    return 1 + tf.maximum(0.0, 1.5 * voicing - 0.5)


def tap_values(excitation, samples, lags, before=(0.0, 0.0)):
    """``[B, T, 2 * len(TAPS)]``: for every sample ``t`` of ``[B, T]`` sequences of
    excitation and sample values, their values at ``t - lags[:, t] + d`` for each ``d`` of
    ``TAPS`` (before the sequences begin, the two values ``before``), ``lags`` ``[B, T]``."""
    positions = tf.range(tf.shape(lags)[1])[tf.newaxis, :, tf.newaxis] - \
        lags[..., tf.newaxis] + tf.constant(TAPS)
    return _gathered(excitation, samples, positions, before)


def history_taps(excitation, samples, lags):
    """``[B, 2 * len(TAPS)]``: the taps of the sample after histories ``[B, H]`` of the
    excitation and sample values (their last the latest), for its ``lags`` [B]."""
    size = tf.shape(samples)[1]
    positions = size - lags[:, tf.newaxis] + tf.constant(TAPS)
    return _gathered(excitation, samples, positions)


def silent_history(before, batch, size):
    """Histories ``(excitation, samples)`` [batch, size] of endless ``before`` values."""
    return tuple(tf.fill([batch, size], value) for value in before)


def silent_taps(before, batch):
    """``[batch, 1, 2 * len(TAPS)]``: the taps of a sample after endless ``before``."""
    return tf.concat([tf.fill([batch, 1, len(TAPS)], value) for value in before], axis=-1)


def advance(history, excitation, sample):
    """The histories ``(excitation, samples)`` [B, H] after one more sample's values [B]."""
    return tuple(tf.concat([values[:, 1:], new[:, tf.newaxis]], axis=1)
                 for values, new in zip(history, (excitation, sample)))


def _gathered(excitation, samples, positions, before=(0.0, 0.0)):
    inside = positions >= 0
    # (A position past the end is only ever one of the padding rows of a last chunk.)
    positions = tf.clip_by_value(positions, 0, tf.shape(samples)[1] - 1)
    values = [tf.where(inside, tf.gather(sequence, positions, batch_dims=1), value)
              for sequence, value in zip((excitation, samples), before)]
    return tf.concat(values, axis=-1)


def _fine_structure(bands):
    """Each band less the mean of the ``ENVELOPE_BANDS`` around it (the edges repeated),
    then the frame's mean taken away and scaled to unit length: the harmonics' ripple."""
    half = ENVELOPE_BANDS // 2
    padded = tf.concat([tf.repeat(bands[..., :1], half, axis=-1), bands,
                        tf.repeat(bands[..., -1:], half, axis=-1)], axis=-1)
    envelope = tf.add_n([padded[..., k:k + bands.shape[-1]] for k in range(ENVELOPE_BANDS)])
    fine = bands - envelope / ENVELOPE_BANDS
    fine -= tf.reduce_mean(fine, axis=-1, keepdims=True)
    return tf.math.l2_normalize(fine, axis=-1)


@dataclasses.dataclass(frozen=True)
class _Combs:
    templates: np.ndarray  # [pitches, bands]: each comb's fine structure
    periods: np.ndarray  # [pitches]: each comb's period in whole samples
    bands: int  # how many of the low bands are matched
    noise_match: float  # the mean best match of white noise's frames


@functools.lru_cache(maxsize=8)
def _combs(features):
    """The fine structure of a flat harmonic comb at every candidate pitch, as ``features``
    analyse it (a ``_Combs``)."""
    steps = int(1200 * np.log2(HIGHEST_PITCH / LOWEST_PITCH) / PITCH_STEP)
    pitches = LOWEST_PITCH * 2 ** (np.arange(steps + 1) * PITCH_STEP / 1200)
    bands = int(np.sum(_band_centres(features) < MATCHED_BELOW_HZ))
    # The combs' harmonics up to a little above the matched bands (those above reach them
    # only through the window's side lobes), analysed all at once.
    rate, length = features.sample_rate, 2 * features.n_fft
    t = np.arange(length) / rate
    rng = np.random.default_rng(0)
    phases = rng.uniform(0, 2 * np.pi, 256)
    combs = np.zeros([len(pitches), length], np.float32)
    for comb, pitch in zip(combs, pitches):
        harmonics = np.arange(1, int(1.5 * MATCHED_BELOW_HZ / pitch) + 1)
        comb[:] = np.cos(2 * np.pi * pitch * harmonics[:, None] * t
                         + phases[:len(harmonics), None]).sum(axis=0) / len(harmonics)
    frames = features(combs)
    noise = features(rng.normal(0, 0.1, 64 * features.hop_length).astype(np.float32))
    with tf.init_scope():
        templates = _fine_structure(tf.constant(frames[:, frames.shape[1] // 2, :bands]))
        matches = tf.linalg.matvec(templates, _fine_structure(tf.constant(noise[:, :bands])))
        noise_match = float(tf.reduce_mean(tf.reduce_max(matches, axis=-1)))
    periods = np.round(rate / pitches).astype(np.int32)
    return _Combs(templates.numpy(), periods, bands, noise_match)


def _band_centres(features):
    import librosa
    fmax = features.fmax or features.sample_rate / 2
    return librosa.mel_frequencies(features.channels + 2, fmin=features.fmin, fmax=fmax)[1:-1]
