"""The field's measures of generated speech (wavenet.quality), on signals whose answer is
known: a recording against itself, a tone against the tone a semitone higher, speech-like
bursts against noise, and a measure whose library is missing."""
import builtins

import numpy as np
import pytest

from wavenet import quality
from wavenet.features import MelFeatures

RATE = 16000


def voiced(f0, seconds=1.5, seed=0):
    """A buzz at ``f0`` Hz with ten harmonics, in three syllables of 0.3 s with silence
    between: pitched and speech-like enough for Harvest, STOI and PESQ."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    harmonics = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.3)) / k
                    for k in range(1, 11))
    phase = np.minimum(t % 0.5, 0.3) / 0.3
    envelope = np.sqrt(np.sin(np.pi * phase))
    return (0.2 * harmonics * envelope).astype(np.float64)


def pyworld_f0(audio):
    """Harvest's pitch track of ``audio``, Hz per frame (0: unvoiced)."""
    import pyworld
    return pyworld.harvest(audio, RATE, frame_period=quality.FRAME_PERIOD)[0]


def test_a_recording_against_itself_is_perfect():
    audio = voiced(150)
    scores = quality.judge(audio, audio, RATE)
    assert set(scores) == set(quality.MEASURES)
    assert scores['stoi'] == pytest.approx(1, abs=1e-6)
    assert scores['pesq'] > 4.4
    assert scores['mcd'] == pytest.approx(0, abs=1e-6)
    assert scores['f0_rmse'] == pytest.approx(0, abs=1e-6)
    assert scores['voicing_error'] == 0


def test_a_semitone_higher_is_a_hundred_cents_off():
    scores = quality.judge(voiced(150), voiced(150 * 2 ** (1 / 12)), RATE)
    assert scores['f0_rmse'] == pytest.approx(100, abs=15)
    assert scores['voicing_error'] < 0.1


def test_pitch_far_below_the_speech_is_not_judged():
    # The same syllables, then a buzz 60 dB below them that is 700 cents off in the copy:
    # Harvest calls it voiced in both, but it is no part of the speech.
    def with_quiet_tail(f0):
        return np.concatenate([voiced(150), 1e-3 * voiced(f0, seed=1)[:int(0.3 * RATE)]])
    recording, copy = with_quiet_tail(150), with_quiet_tail(150 * 2 ** (7 / 12))
    _, errors = quality.pitch_errors(recording, copy, RATE)
    assert len(errors) > 100 and np.allclose(errors, 0, atol=1e-3)
    assert quality.judge(recording, copy, RATE)['f0_rmse'] == pytest.approx(0, abs=1e-3)
    # Counted, the tail's frames would be the error's whole RMS.
    f0_ref, f0 = (pyworld_f0(x) for x in (recording, copy))
    tail = (f0_ref > 0) & (f0 > 0) & (np.arange(len(f0)) * quality.FRAME_PERIOD > 1500)
    assert tail.sum() > 20 and np.all(np.abs(1200 * np.log2(f0[tail] / f0_ref[tail])) > 600)


def test_noise_scores_worse_the_louder_it_is():
    audio = voiced(120)
    rng = np.random.default_rng(1)
    noise = rng.normal(size=audio.shape) * np.sqrt(np.mean(audio ** 2))
    slight, loud = (quality.judge(audio, audio + gain * noise, RATE) for gain in (0.03, 1.0))
    for measure in ('stoi', 'pesq'):
        assert slight[measure] > loud[measure]
    assert slight['mcd'] < loud['mcd']
    pure = quality.judge(audio, noise, RATE)
    assert pure['stoi'] < 0.5 and pure['voicing_error'] > 0.5 and pure['mcd'] > 10


def test_griffin_lim_from_the_features_keeps_the_pitch():
    audio = voiced(150).astype(np.float32)
    features = MelFeatures(RATE, 80, 256)
    rebuilt = quality.griffin_lim(features, audio)
    scores = quality.judge(audio, rebuilt, RATE)
    assert scores['stoi'] > 0.8 and scores['f0_rmse'] < 100  # within a semitone


def test_a_missing_library_leaves_its_measures_out(monkeypatch):
    real_import = builtins.__import__

    def without_pyworld(name, *args, **kwargs):
        if name == 'pyworld':
            raise ImportError('No module named pyworld')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', without_pyworld)
    monkeypatch.setattr(quality.importlib, 'import_module',
                        lambda name: without_pyworld(name))
    missing = quality.missing()
    assert set(missing) == {'mcd', 'f0_rmse', 'voicing_error'}
    assert 'pyworld cannot be imported' in missing['mcd']
    audio = voiced(150)
    assert set(quality.judge(audio, audio, RATE)) == {'stoi', 'pesq'}


def test_held_out_clips_hear_every_voice_first():
    files = ['h/p1_001.wav', 'h/p1_002.wav', 'h/p2_001.wav', 'h/p3_001.wav', 'h/p3_002.wav']
    assert quality.held_out_clips(files, 4) == ['h/p1_001.wav', 'h/p2_001.wav',
                                                'h/p3_001.wav', 'h/p1_002.wav']


def test_scores_average_what_each_clip_has():
    scores = quality.Scores()
    scores.add({'stoi': 0.5, 'pesq': float('nan')})
    scores.add({'stoi': 0.7, 'pesq': 2.0})
    assert scores.mean() == pytest.approx({'stoi': 0.6, 'pesq': 2.0})
