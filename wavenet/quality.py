"""How the field judges generated speech against the recording it should match.

Copy synthesis (a vocoder voicing a recording's own features) is judged by independent,
well-kept libraries, none of whose measures is written here:

- ``stoi``: short-time objective intelligibility (pystoi), 0 to 1, higher is better;
- ``pesq``: wide-band perceptual quality (pesq, ITU-T P.862.2), about 1 to 4.6, higher better;
- ``mcd``: mel-cepstral distortion in dB between WORLD spectral envelopes (pyworld's
  CheapTrick, coded to 25 mel-cepstral coefficients; c0, the loudness, left out), over the
  frames where the recording is active, lower is better;
- ``f0_rmse``: the RMS pitch error in cents (pyworld's Harvest) over the frames where the
  recording is active and both call voiced, lower is better;
- ``voicing_error``: the fraction of the recording's active frames whose voiced/unvoiced
  decision differs, lower is better.

A library that cannot be imported leaves its measures out (``missing`` says which and why);
nothing is faked in its place. Both signals are compared sample-aligned, as copy synthesis
is: the generated audio is cut or zero-padded to the recording's length.
"""
import dataclasses
import importlib
import warnings

import numpy as np

MEASURES = ('stoi', 'pesq', 'mcd', 'f0_rmse', 'voicing_error')
HIGHER_IS_BETTER = {'stoi': True, 'pesq': True, 'mcd': False, 'f0_rmse': False,
                    'voicing_error': False}
UNITS = {'stoi': '', 'pesq': '', 'mcd': 'dB', 'f0_rmse': 'cents', 'voicing_error': ''}
_LIBRARIES = {'stoi': 'pystoi', 'pesq': 'pesq', 'mcd': 'pyworld', 'f0_rmse': 'pyworld',
              'voicing_error': 'pyworld'}
# WORLD's frame period, ms, and the mel-cepstral order of the MCD.
FRAME_PERIOD = 5.0
CEPSTRAL_COEFFICIENTS = 25
# A frame of the recording is active when its energy is within this many dB of the loudest.
ACTIVE_DB = 40.0
DB_PER_NEPER_POWER = 10 / np.log(10)
# How many held-out clips a training's samples voice and judge.
HELD_OUT_CLIPS = 4
GRIFFIN_LIM_ITERATIONS = 100


def held_out_clips(files, count=HELD_OUT_CLIPS):
    """Up to ``count`` of ``files`` to judge a vocoder by: the first of each speaker
    (VCTK names) first, so that every voice is heard, then the others in order."""
    from .audio_reader import speaker_id
    firsts, seen = [], set()
    for filename in files:
        if speaker_id(filename) not in seen:
            seen.add(speaker_id(filename))
            firsts.append(filename)
    return (firsts + [f for f in files if f not in firsts])[:count]


def griffin_lim(features, recording):
    """The baseline a user could pick instead of a vocoder: Griffin-Lim (librosa) from
    ``recording``'s mel magnitudes (``features``, a ``MelFeatures``), aligned as they are."""
    import librosa
    spectrogram = librosa.feature.inverse.mel_to_stft(
        np.exp(features(recording)).T, sr=features.sample_rate, n_fft=features.n_fft,
        power=1.0, fmin=features.fmin, fmax=features.fmax)
    # Seeded: its first phases are random, and a baseline should not change between runs.
    audio = librosa.griffinlim(spectrogram, n_iter=GRIFFIN_LIM_ITERATIONS,
                               hop_length=features.hop_length, n_fft=features.n_fft,
                               random_state=0)
    # librosa centres frame f on sample f * hop; ours is centred on f * hop + hop / 2.
    return np.concatenate([np.zeros(features.hop_length // 2, np.float32), audio])


def _library(name):
    try:
        with warnings.catch_warnings():
            # pyworld imports pkg_resources, which setuptools 80 warns about on stderr: a
            # line for its authors, not for a user of these measures.
            warnings.filterwarnings('ignore', 'pkg_resources is deprecated')
            return importlib.import_module(name), None
    except Exception as e:  # not installed, or its native part failed to load
        return None, f'{name} cannot be imported ({type(e).__name__}: {e})'


def missing():
    """``{measure: reason}`` for every measure whose library cannot be imported."""
    reasons = {}
    for measure in MEASURES:
        _, reason = _library(_LIBRARIES[measure])
        if reason:
            reasons[measure] = reason
    return reasons


def _aligned(reference, audio):
    reference = np.asarray(reference, np.float64)
    audio = np.asarray(audio, np.float64)[:len(reference)]
    return reference, np.pad(audio, (0, len(reference) - len(audio)))


def _world(audio, sample_rate):
    """``(f0 [frames], coded envelope [frames, CEPSTRAL_COEFFICIENTS])`` by WORLD."""
    import pyworld
    f0, times = pyworld.harvest(audio, sample_rate, frame_period=FRAME_PERIOD)
    envelope = pyworld.cheaptrick(audio, f0, times, sample_rate)
    return f0, pyworld.code_spectral_envelope(envelope, sample_rate, CEPSTRAL_COEFFICIENTS)


def _active_frames(reference, sample_rate, frames):
    """Which of WORLD's ``frames`` frames of ``reference`` are within ``ACTIVE_DB`` of its
    loudest (energy over a frame period around each frame's centre)."""
    hop = int(sample_rate * FRAME_PERIOD / 1000)
    centres = np.arange(frames) * hop
    padded = np.pad(reference, hop)
    energy = np.array([np.mean(padded[c:c + 2 * hop] ** 2) for c in centres]) + 1e-12
    decibels = DB_PER_NEPER_POWER * np.log(energy / energy.max())
    return decibels > -ACTIVE_DB


def _world_measures(reference, audio, sample_rate):
    f0_ref, cepstrum_ref = _world(reference, sample_rate)
    f0, cepstrum = _world(audio, sample_rate)
    frames = min(len(f0_ref), len(f0))
    active = _active_frames(reference, sample_rate, frames)
    difference = cepstrum_ref[:frames, 1:] - cepstrum[:frames, 1:]
    # The usual MCD constant: 10 / ln 10 * sqrt(2 * sum of squared differences).
    distortion = DB_PER_NEPER_POWER * np.sqrt(2 * np.sum(difference ** 2, axis=1))
    voiced_ref, voiced = f0_ref[:frames] > 0, f0[:frames] > 0
    _, cents = _voiced_in_both(f0_ref, f0, active)
    return {
        'mcd': float(np.mean(distortion[active])) if active.any() else float('nan'),
        'f0_rmse': float(np.sqrt(np.mean(cents ** 2))) if cents.size else float('nan'),
        'voicing_error': (float(np.mean(voiced_ref[active] != voiced[active]))
                          if active.any() else float('nan')),
    }


def _voiced_in_both(f0_ref, f0, active):
    """``(reference pitch, error in cents)`` of the ``active`` frames both pitch tracks call
    voiced. Only active ones: Harvest calls breath and room noise far below the speech
    voiced too, at a pitch that is chance in both signals and that no listener hears."""
    frames = min(len(f0_ref), len(f0))
    both = (f0_ref[:frames] > 0) & (f0[:frames] > 0) & active[:frames]
    return f0_ref[:frames][both], 1200 * np.log2(f0[:frames][both] / f0_ref[:frames][both])


def pitch_errors(reference, audio, sample_rate):
    """``(reference pitch [N] Hz, error [N] cents)`` of ``audio`` against ``reference`` over
    the active frames Harvest calls voiced in both: what ``f0_rmse`` is the RMS of."""
    import pyworld
    reference, audio = _aligned(reference, audio)
    f0_ref, f0 = (pyworld.harvest(x, sample_rate, frame_period=FRAME_PERIOD)[0]
                  for x in (reference, audio))
    active = _active_frames(reference, sample_rate, min(len(f0_ref), len(f0)))
    return _voiced_in_both(f0_ref, f0, active)


def judge(reference, audio, sample_rate):
    """``{measure: value}`` of ``audio`` against ``reference`` (1-D float arrays at
    ``sample_rate``), for every measure whose library is there. PESQ needs 8 or 16 kHz
    (other rates are resampled to 16 kHz); a clip PESQ finds no speech in scores NaN."""
    reference, audio = _aligned(reference, audio)
    scores = {}
    pystoi, _ = _library('pystoi')
    if pystoi is not None:
        scores['stoi'] = float(pystoi.stoi(reference, audio, sample_rate, extended=False))
    pesq, _ = _library('pesq')
    if pesq is not None:
        scores['pesq'] = _pesq(pesq, reference, audio, sample_rate)
    pyworld, _ = _library('pyworld')
    if pyworld is not None:
        scores.update(_world_measures(reference, audio, sample_rate))
    return scores


def _pesq(pesq, reference, audio, sample_rate):
    if sample_rate != 16000:
        import librosa
        reference, audio = (librosa.resample(x, orig_sr=sample_rate, target_sr=16000)
                            for x in (reference, audio))
    try:
        return float(pesq.pesq(16000, reference, audio, 'wb'))
    except Exception:  # pesq.NoUtterancesError and kin: nothing it can score
        return float('nan')


@dataclasses.dataclass
class Scores:
    """Measures of several clips, kept per clip so that their means can be printed."""
    per_clip: list = dataclasses.field(default_factory=list)

    def add(self, scores):
        self.per_clip.append(scores)

    def mean(self):
        """``{measure: mean over the clips that have it}`` (NaNs left out)."""
        means = {}
        for measure in MEASURES:
            values = [s[measure] for s in self.per_clip
                      if measure in s and np.isfinite(s[measure])]
            if values:
                means[measure] = float(np.mean(values))
        return means


def judge_all(references, outputs, sample_rate):
    """The mean of each measure over clips: ``outputs[i]`` against ``references[i]``."""
    scores = Scores()
    for reference, audio in zip(references, outputs):
        scores.add(judge(reference, audio, sample_rate))
    return scores.mean()


def better(measure, ours, theirs):
    """Whether ``ours`` is better than ``theirs`` on ``measure``."""
    return ours > theirs if HIGHER_IS_BETTER[measure] else ours < theirs
