"""Log-mel features: frame count, alignment, values against NumPy."""
import librosa
import numpy as np
import pytest

from wavenet.features import LOG_FLOOR, SILENCE, frame_count, log_mel
from wavenet.params import NetworkDescription

SR, HOP, N_FFT, MELS = 16000, 256, 1024, 40


def features(audio):
    return log_mel(audio, SR, MELS, HOP, N_FFT)


@pytest.mark.parametrize('samples', [1, 255, 256, 257, 1000, 4096])
def test_a_clip_of_n_samples_has_ceil_n_over_hop_frames(samples):
    frames = features(np.random.uniform(-0.5, 0.5, samples))
    assert frames.shape == (-(-samples // HOP), MELS) == (frame_count(samples, HOP), MELS)
    assert frames.dtype == np.float32


def test_no_audio_has_no_frames():
    assert features(np.zeros(0)).shape == (0, MELS)


def test_silence_is_the_log_floor():
    np.testing.assert_array_equal(features(np.zeros(1000)), SILENCE)
    assert SILENCE == pytest.approx(np.log(LOG_FLOOR))


@pytest.mark.parametrize('k', [1000, 1025, 1100, 1279, 2222, 3000])
def test_a_click_moves_exactly_the_frames_whose_window_covers_it(k):
    """Frame f's window spans [f*hop - (n_fft - hop)/2, ... + n_fft), centred on the
    middle of samples [f*hop, (f+1)*hop): the click changes the frames whose window holds
    it (with weight > 0), and frame k // hop the most."""
    audio = np.zeros(4000, np.float32)
    audio[k] = 1.0
    changed = np.any(features(audio) != SILENCE, axis=1)
    first_sample = np.arange(len(changed)) * HOP - (N_FFT - HOP) // 2
    # The periodic Hann window is zero at its first sample, so that frame cannot move.
    covering = (first_sample < k) & (k < first_sample + N_FFT)
    np.testing.assert_array_equal(changed, covering)
    assert np.argmax(features(audio).sum(axis=1)) == k // HOP


def test_values_equal_a_numpy_stft_through_the_mel_filterbank():
    rng = np.random.default_rng(3)
    audio = rng.uniform(-0.5, 0.5, 3000).astype(np.float32)
    frames = frame_count(len(audio), HOP)
    before = (N_FFT - HOP) // 2
    padded = np.zeros(before + frames * HOP + N_FFT)
    padded[before:before + len(audio)] = audio
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    spectra = np.stack([np.abs(np.fft.rfft(padded[f * HOP:f * HOP + N_FFT] * window))
                        for f in range(frames)])
    basis = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=MELS)
    expected = np.log(np.maximum(spectra @ basis.T, LOG_FLOOR))
    np.testing.assert_allclose(features(audio), expected, atol=2e-4)


def test_a_sine_lights_the_band_of_its_frequency():
    t = np.arange(SR) / SR
    for frequency in (300.0, 1000.0, 3000.0):
        frames = features(0.5 * np.sin(2 * np.pi * frequency * t))
        centres = librosa.mel_frequencies(MELS + 2, fmax=SR / 2)[1:-1]
        band = np.argmax(frames[10:-10].mean(axis=0))
        assert abs(centres[band] - frequency) <= np.diff(centres)[max(band - 1, 0)]


def test_fmin_and_fmax_limit_the_bands():
    t = np.arange(SR) / SR
    low = 0.5 * np.sin(2 * np.pi * 200 * t)
    limited = log_mel(low, SR, MELS, HOP, N_FFT, fmin=1000, fmax=4000)
    full = log_mel(low, SR, MELS, HOP, N_FFT)
    # 200 Hz is outside [1000, 4000]: only leakage reaches the limited bands.
    assert limited.max() < full.max() - 5


def test_settings_of_a_network_description():
    plain = dict(filter_width=2, sample_rate=SR, dilations=[1], residual_channels=2,
                 dilation_channels=2, quantization_channels=256, skip_channels=2,
                 use_biases=False, scalar_input=False, initial_filter_width=2)
    assert NetworkDescription(**plain).features is None
    settings = NetworkDescription(**plain, lc_channels=MELS, lc_hop_length=HOP,
                                  lc_n_fft=N_FFT, lc_fmin=0, lc_fmax=None).features
    audio = np.random.uniform(-0.5, 0.5, 2000)
    np.testing.assert_array_equal(settings(audio), features(audio))
    assert settings.frame_count(257) == 2
    np.testing.assert_array_equal(settings.silence(3), np.full((3, MELS), SILENCE))
