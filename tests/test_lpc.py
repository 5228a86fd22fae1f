"""Linear prediction from the features (``"lpc_order"``): the coefficients against NumPy
and SciPy, on known signals, and a network that reads and predicts the excitation."""
import librosa
import numpy as np
import pytest
import scipy.linalg
import scipy.signal
import tensorflow as tf

from wavenet import lpc
from wavenet.features import MelFeatures
from wavenet.generation import ConditioningRows, generate, start_waveform, uniform_streams
from wavenet.output import MuLawSoftmax
from wavenet.period import PeriodInput

FEATURES = MelFeatures(16000, 80, 256)
ORDER = 16
PREDICTION = lpc.LinearPrediction(ORDER, FEATURES)
SOFTMAX = MuLawSoftmax(256)


def numpy_coefficients(frames, features=FEATURES, order=ORDER, preemphasis=0.0):
    """The coefficients as a textbook computes them: the mel magnitudes spread back over
    the bins, the inverse FFT of their power (pre-emphasised) for the autocorrelation, the
    lag window and noise floor, and the normal equations solved by SciPy's Toeplitz
    solver."""
    basis = librosa.filters.mel(sr=features.sample_rate, n_fft=features.n_fft,
                                n_mels=features.channels).astype(np.float64)
    spread = basis / np.maximum(basis.sum(axis=0), 1e-12)
    power = (np.exp(frames.astype(np.float64)) @ spread) ** 2
    emphasis = np.abs(1 - preemphasis * np.exp(-2j * np.pi * np.arange(power.shape[-1])
                                               / features.n_fft)) ** 2
    power = power * emphasis
    autocorrelation = np.fft.irfft(power, n=features.n_fft, axis=-1)[:, :order + 1]
    lags = np.arange(order + 1)
    autocorrelation *= np.exp(-0.5 * (2 * np.pi * lpc.LAG_WINDOW_HZ * lags
                                      / features.sample_rate) ** 2)
    autocorrelation[:, 0] *= 1 + lpc.NOISE_FLOOR
    return np.stack([scipy.linalg.solve_toeplitz(r[:order], r[1:]) for r in autocorrelation])


def residual_energy(audio, coefficients, hop=256):
    """The energy of what the coefficients (one row per frame) leave of ``audio`` when each
    sample is predicted from the samples before it, over the energy of ``audio``."""
    rows = np.repeat(coefficients, hop, axis=0)[:len(audio)]
    past = np.stack([np.pad(audio, (k, 0))[:len(audio)] for k in range(1, ORDER + 1)], 1)
    error = audio - np.sum(rows * past, axis=1)
    return np.sum(error[ORDER:] ** 2) / np.sum(audio[ORDER:] ** 2)


def speech_like(seconds, seed):
    """Vowel-like audio: a 150 Hz pulse train through two resonances, gliding."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    pitch = 150 * (1 + 0.1 * np.sin(2 * np.pi * t))
    pulses = np.diff(np.floor(np.cumsum(pitch) / 16000), prepend=0.0)
    audio = pulses + rng.normal(0, 0.01, len(t))
    for centre in (700, 1800):
        audio = scipy.signal.lfilter([1], [1, -2 * 0.97 * np.cos(2 * np.pi * centre / 16000),
                                           0.97 ** 2], audio)
    return (0.5 * audio / np.abs(audio).max()).astype(np.float32)


def test_coefficients_solve_the_normal_equations_of_the_features_spectrum():
    """Speech-like frames (a tilted spectrum with two formants) and random ones: the
    Levinson-Durbin recursion on the cosine transform equals SciPy's Toeplitz solve on
    NumPy's inverse FFT."""
    rng = np.random.default_rng(0)
    mel = librosa.mel_frequencies(80, fmax=8000)
    formants = -((mel - 700) / 200) ** 2 - ((mel - 1800) / 300) ** 2 / 2
    speechlike = (np.maximum(formants, -8) - mel / 2000)[None] + rng.normal(0, 0.3, (6, 80))
    frames = np.concatenate([speechlike, rng.uniform(-11, 2, (6, 80))]).astype(np.float32)
    np.testing.assert_allclose(PREDICTION.coefficients(frames).numpy(),
                               numpy_coefficients(frames), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('expansion', [0.95, 0.98])
def test_bandwidth_expansion_pulls_every_pole_towards_the_origin(expansion):
    """A vowel's synthesis filter: with the expansion, each pole (a root of
    z^order - c_1 z^(order-1) - ... - c_order) is the same pole moved towards the origin by
    the factor, so each resonance is wider and rings less."""
    frames = FEATURES(speech_like(0.5, 5))[5:6]
    plain = PREDICTION.coefficients(frames).numpy()[0].astype(np.float64)
    expanded = lpc.LinearPrediction(ORDER, FEATURES, expansion).coefficients(frames)
    poles = np.roots(np.concatenate([[1], -plain]))
    moved = np.roots(np.concatenate([[1], -expanded.numpy()[0].astype(np.float64)]))
    by_angle = lambda roots: roots[np.lexsort([roots.imag, roots.real])]  # noqa: E731
    np.testing.assert_allclose(by_angle(moved), by_angle(expansion * poles), atol=2e-3)
    assert np.abs(poles).max() > 0.95  # the vowel's formants: poles near the unit circle


def test_preemphasis_predicts_the_pre_emphasised_signal():
    """With pre-emphasis a, the prediction of a sample from the samples before it leaves
    the excitation that predicting the pre-emphasised signal p_t = s_t - a s_(t-1) from its
    own past leaves, with the coefficients of the pre-emphasised spectrum (NumPy)."""
    audio = speech_like(0.3, 6).astype(np.float64)
    frames = FEATURES(audio.astype(np.float32))
    emphasised = lpc.LinearPrediction(ORDER, FEATURES, preemphasis=0.85)
    assert emphasised.taps == ORDER + 1
    taps = np.repeat(emphasised.coefficients(frames).numpy(), 256, axis=0)[:len(audio)]
    past = np.stack([np.pad(audio, (k, 0))[:len(audio)] for k in range(1, ORDER + 2)], 1)
    ours = audio - np.sum(taps * past, axis=1)
    p = audio - 0.85 * np.pad(audio, (1, 0))[:-1]
    c = np.repeat(numpy_coefficients(frames, preemphasis=0.85), 256, axis=0)[:len(audio)]
    p_past = np.stack([np.pad(p, (k, 0))[:len(p)] for k in range(1, ORDER + 1)], 1)
    textbook = p - np.sum(c * p_past, axis=1)
    np.testing.assert_allclose(ours[ORDER + 1:], textbook[ORDER + 1:], atol=2e-4)
    assert np.std(ours) < np.std(audio) / 3  # it predicts


def test_silence_predicts_nothing():
    """Silence has a flat spectrum: its coefficients all but vanish, and its excitation is
    the code of silence."""
    coefficients = PREDICTION.coefficients(FEATURES.silence(3)[None])
    assert np.max(np.abs(coefficients)) < 0.01
    excitation = lpc.excitation_codes(SOFTMAX, np.zeros([1, 768], np.float32),
                                      PREDICTION.per_sample(coefficients, 256))
    np.testing.assert_array_equal(excitation, SOFTMAX.silence)


def test_the_features_of_a_chord_predict_it_and_those_of_noise_do_not():
    """A known signal: three sustained tones are predicted from their own past to within
    a hundredth of their energy by the coefficients of their features; white noise, whose
    spectrum is flat, keeps almost all of its energy."""
    t = np.arange(16000) / 16000
    chord = sum(0.2 * np.sin(2 * np.pi * f * t + f) for f in (220, 660, 1500))
    noise = np.random.default_rng(1).normal(0, 0.2, 16000)
    for audio, low, high in [(chord, 0, 0.01), (noise, 0.9, 1.1)]:
        coefficients = PREDICTION.coefficients(FEATURES(audio.astype(np.float32))).numpy()
        assert low <= residual_energy(audio, coefficients) <= high


def test_the_excitation_added_to_the_predictions_gives_back_the_audio():
    """A round trip: the excitation codes of a clip, added back to the predictions from
    the samples made so far, one at a time as generation adds them, give back the clip up
    to the excitation's rounding, shaped by the prediction: 30 dB below it."""
    audio = speech_like(0.25, 1)
    rows = PREDICTION.per_sample(PREDICTION.coefficients(FEATURES(audio)[None]), 256)
    excitation = lpc.excitation_codes(SOFTMAX, audio[None], rows[:, :len(audio)])
    assert np.std(SOFTMAX.decode(excitation)) < np.std(audio) / 3  # it did predict

    @tf.function  # one traced step, called per sample (eager ops would take a minute)
    def step(past, row, forced_excitation):
        prediction = lpc.predict(past, row)[:, 0]
        code, pushed, value = lpc.next_sample(SOFTMAX, tf.constant([-1]), forced_excitation,
                                              prediction)
        return code, pushed, tf.concat([past[:, 1:], value[:, None]], axis=1)

    past = tf.zeros([1, ORDER])
    codes = []
    for t in range(len(audio)):
        code, pushed, past = step(past, rows[:, t:t + 1], excitation[:, t])
        assert pushed.numpy() == excitation[0, t]
        codes.append(int(code[0]))
    error = lpc.SAMPLES.decode(codes).numpy() - audio
    assert 10 * np.log10(np.sum(audio ** 2) / np.sum(error ** 2)) > 30


def test_a_generation_driven_past_full_scale_decays_as_its_filter_does():
    """An overflow: one full-scale excitation into the filter of a speech-like frame takes
    the samples far past full scale. The wav's codes are the samples clipped; the
    prediction reads them unclipped, so the samples then decay as the linear filter's
    response does, where a filter fed its clipped output (NumPy) locks into a full-scale
    oscillation."""
    coefficients = PREDICTION.coefficients(FEATURES(speech_like(0.5, 5)))[:1]  # [1, order]
    excitation = np.full(3000, int(SOFTMAX.encode(0.0)), np.int32)
    excitation[0] = SOFTMAX.codes - 1  # the largest excitation

    @tf.function
    def step(past, prediction, drawn):
        code, _, value = lpc.next_sample(SOFTMAX, tf.constant([-1]), drawn, prediction)
        return (code, value) + lpc.advance(past, value, coefficients)

    past, prediction = tf.zeros([1, ORDER]), tf.zeros([1])
    codes, values = [], []
    for drawn in excitation:
        code, value, past, prediction = step(past, prediction, tf.constant([drawn]))
        codes.append(int(code[0]))
        values.append(float(value[0]))
    values = np.array(values)
    assert np.abs(values).max() > 2  # far past full scale
    np.testing.assert_array_equal(codes, lpc.SAMPLES.encode(values).numpy())
    assert np.sqrt(np.mean(values[-1000:] ** 2)) < 0.01  # -40 dBFS

    c = coefficients.numpy()[0].astype(np.float64)
    clipped = np.zeros(ORDER + len(excitation))  # the filter fed its clipped output
    for t, level in enumerate(SOFTMAX.decode(excitation).numpy()):
        prediction = c @ clipped[t:t + ORDER][::-1]
        clipped[t + ORDER] = np.clip(np.round((prediction + level) * 32768) / 32768, -1, 1)
    assert np.sqrt(np.mean(clipped[-1000:] ** 2)) > 0.5


def small_lpc_net(**overrides):
    from wavenet import WaveNetModel
    arguments = dict(batch_size=1, dilations=[1, 2, 4, 8, 1, 2], filter_width=2,
                     residual_channels=8, dilation_channels=6, skip_channels=12,
                     quantization_channels=256, use_biases=True, local_condition_channels=80,
                     lc_upsample_scales=[4, 4, 4, 4], linear_prediction=PREDICTION)
    net = WaveNetModel(**dict(arguments, **overrides))
    for variable in net.weights:
        if 'bias' in variable.path:
            variable.assign(tf.random.normal(variable.shape, stddev=0.5))
    return net


def test_the_network_reads_and_predicts_the_excitation():
    """The excitation codes are each 16-bit sample less its prediction from the samples
    before it (NumPy here, up to a code at a rounding boundary); the loss is their
    cross-entropy under the network run on their one-hot encoding."""
    net = small_lpc_net()
    audio = speech_like(0.2, 2)[None]
    frames = FEATURES(audio[0])[None]
    rows = np.repeat(numpy_coefficients(frames[0]), 256, axis=0)[:audio.shape[1]]
    samples = np.round(audio[0].astype(np.float64) * 32768) / 32768  # 16-bit
    past = np.stack([np.pad(samples, (k, 0))[:len(samples)] for k in range(1, ORDER + 1)], 1)
    expected = SOFTMAX.encode(samples - np.sum(rows * past, axis=1)).numpy()
    excitation = lpc.excitation_codes(SOFTMAX, audio, net.coefficient_rows(frames)[
        :, :audio.shape[1]]).numpy()[0]
    assert np.mean(excitation != expected) < 0.005
    assert np.max(np.abs(excitation - expected)) <= 1
    assert np.std(SOFTMAX.decode(excitation)) < np.std(audio) / 3

    logits = net(tf.one_hot(excitation[None, :-1], 256),
                 lc_projection=net.project_local_condition(
                     net.upsample_local_condition(frames)[:, 1:audio.shape[1]])).numpy()[0]
    targets = excitation[net.receptive_field:]
    log_softmax = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    cross_entropy = -np.mean(log_softmax[np.arange(len(targets)), targets])
    assert float(net.loss(audio, local_condition_batch=frames)) == pytest.approx(
        cross_entropy, rel=1e-5)


@pytest.mark.parametrize('period_input, sharpen', [(False, False), (True, False),
                                                   (False, True)],
                         ids=['lpc', 'lpc and period', 'lpc, sharpened'])
def test_fast_generation_equals_full_window_and_batches_equal_rows_alone(period_input,
                                                                          sharpen):
    """The compiled loop (chunks of 128) draws what the full-window path draws, a row
    generated in a batch what it draws alone, and predict_proba gives the distribution of
    each sample that the loop drew from; with the period input too (its histories in the
    loop's state, its taps over the whole window in the other paths), and sharpened (the
    same exponents on both paths, fewer distinct excitations drawn)."""
    net = small_lpc_net(period_input=PeriodInput(FEATURES) if period_input else None)
    # Small excitations more likely than large ones, as a trained vocoder's: the samples
    # stay below full scale (a clipped sample is read unclipped by the loop's prediction,
    # clipped by predict_proba's).
    net.postprocessing.postprocess2_bias.assign(-0.1 * np.abs(np.arange(256) - 128.0))
    frames = np.stack([FEATURES(speech_like(0.3, seed)) for seed in (3, 4)])
    noise = uniform_streams(7, [0, 1], 401)
    start = start_waveform(net, noise[:, 0])
    rows = ConditioningRows(net, frames, start.shape[1], FEATURES)
    fast = np.concatenate(list(generate(net, start, noise[:, 1:], chunk=128,
                                        local_condition=rows, sharpen=sharpen)), axis=1)
    slow = np.concatenate(list(generate(net, start, noise[:, 1:], fast=False,
                                        local_condition=rows, sharpen=sharpen)), axis=1)
    np.testing.assert_array_equal(fast, slow)
    assert len(np.unique(fast)) > 20  # the predictions and draws make a signal
    alone = ConditioningRows(net, frames[1:], start.shape[1], FEATURES)
    single = np.concatenate(list(generate(net, start[1:], noise[1:, 1:], chunk=128,
                                          local_condition=alone, sharpen=sharpen)), axis=1)
    np.testing.assert_array_equal(single[0], fast[1])
    if sharpen:  # the excitation drawn, sharpened and not: fewer distinct ones
        plain = np.concatenate(list(generate(net, start, noise[:, 1:], chunk=128,
                                             local_condition=rows)), axis=1)
        excitation = [lpc.excitation_codes(SOFTMAX, lpc.SAMPLES.decode(codes),
                                           net.coefficient_rows(frames)[:, :codes.shape[1]])
                      for codes in (fast, plain)]
        assert len(np.unique(excitation[0])) < len(np.unique(excitation[1]))
        return
    # The distribution of sample n of row 0 given those before it: the draw inverts its
    # cumulative distribution at the loop's uniform.
    padded = np.concatenate([FEATURES.silence(-(-start.shape[1] // 256))[None],
                             frames[:1]], axis=1)
    offset = -(-start.shape[1] // 256) * 256 - start.shape[1]
    assert not np.isin(fast, [0, lpc.SAMPLES.codes - 1]).any()
    for n in (100, 200, 399):
        waveform = np.concatenate([start[:1], fast[:1, :n]], axis=1)
        padded_waveform = np.concatenate([np.full((1, offset), lpc.SAMPLES.silence),
                                          waveform], axis=1)
        proba = net.predict_proba(padded_waveform, local_condition=padded)[0].numpy()
        assert proba.sum() == pytest.approx(1, abs=1e-5)
        cdf = np.cumsum(proba)
        u = float(noise[0, 1 + n])
        assert fast[0, n] == np.searchsorted(cdf, u * cdf[-1], side='right')


def test_the_incremental_api_refuses_a_network_with_linear_prediction():
    net = small_lpc_net()
    row = net.upsample_local_condition(FEATURES.silence(1))[0, :1]
    with pytest.raises(ValueError, match='predict_proba_incremental.*lpc_order'):
        net.predict_proba_incremental(128, local_condition=row)
    with pytest.raises(ValueError, match='prime_incremental_state.*lpc_order'):
        net.prime_incremental_state([128, 128], local_condition=np.zeros([2, 80]))
