"""Log-mel features: what a vocoder (a locally conditioned WaveNet) hears.

One definition, used by training, generation and the tests alike.

**Alignment.** Frame ``f`` describes samples ``[f * hop, (f + 1) * hop)``: its analysis
window (Hann, ``n_fft`` long) is centred on the middle of that span, so a clip of ``n``
samples has ``ceil(n / hop)`` frames and the network generating sample ``t`` is told frame
``t // hop``. Audio outside the clip counts as silence (zeros).

**Values.** The magnitude spectrogram through librosa's (Slaney) mel filterbank, then the
natural log with a floor of ``LOG_FLOOR``, so silence is ``log(LOG_FLOOR)`` in every band
(``SILENCE``). Features computed elsewhere (``generate.py --lc_features``) must follow the
same convention to be understood.
"""
import dataclasses
import functools

import librosa
import numpy as np

LOG_FLOOR = 1e-5
# In float32, as the features are: what zero audio gives, exactly.
SILENCE = float(np.log(np.float32(LOG_FLOOR)))


def frame_count(samples, hop_length):
    """How many frames describe ``samples`` samples: ``ceil(samples / hop_length)``."""
    return -(-samples // hop_length)


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate, n_fft, channels, fmin, fmax):
    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=channels, fmin=fmin,
                               fmax=fmax).astype(np.float32)


def log_mel(audio, sample_rate, channels, hop_length, n_fft=1024, fmin=0.0, fmax=None):
    """``[ceil(n / hop_length), channels]`` float32 log-mel frames of mono audio of ``n``
    samples (``[..., frames, channels]`` of several clips ``[..., n]`` alike)."""
    audio = np.asarray(audio, np.float32)
    frames = frame_count(audio.shape[-1], hop_length)
    if frames == 0:
        return np.zeros([*audio.shape[:-1], 0, channels], np.float32)
    # Window f starts at f * hop - before, so that its centre is f * hop + hop / 2.
    before = (n_fft - hop_length) // 2
    after = (frames - 1) * hop_length + n_fft - before - audio.shape[-1]
    padded = np.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(before, after)])
    magnitude = np.abs(librosa.stft(padded, n_fft=n_fft, hop_length=hop_length,
                                    window='hann', center=False))
    mel = _mel_basis(sample_rate, n_fft, channels, fmin, fmax) @ magnitude
    return np.swapaxes(np.log(np.maximum(mel, LOG_FLOOR)), -1, -2).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class MelFeatures:
    """The feature settings of one network description, callable on audio."""
    sample_rate: int
    channels: int
    hop_length: int
    n_fft: int = 1024
    fmin: float = 0.0
    fmax: float | None = None

    def __call__(self, audio):
        return log_mel(audio, self.sample_rate, self.channels, self.hop_length, self.n_fft,
                       self.fmin, self.fmax)

    def frame_count(self, samples):
        return frame_count(samples, self.hop_length)

    def silence(self, frames):
        """``frames`` frames of silence: what zero audio gives."""
        return np.full([frames, self.channels], SILENCE, np.float32)


def standardize(frames):
    """What the network sees of log-mel frames: a fixed affine map that puts silence at -2
    and a mel magnitude of 1 at +2, so speech lies around 0 with a spread of about 1.
    As they are (about -12 to 3), the Glorot-initialised projections would start the gates
    saturated, and the features' large mean would drown their variation in the gradients."""
    return (frames - SILENCE / 2) / (-SILENCE / 4)
