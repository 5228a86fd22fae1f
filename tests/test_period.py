"""The pitch period as a vocoder's input (``"period_input"``): the lags that the features
give against the periods of known signals, the taps against NumPy's indexing, and a network
that learns from them what a network without them cannot: where the next pulse is."""
import numpy as np
import pytest
import tensorflow as tf
from test_lpc import FEATURES, small_lpc_net

from wavenet import optimizer_factory, period
from wavenet.checkpoints import create_checkpoint
from wavenet.period import TAPS, PeriodInput
from wavenet.training import make_train_step

PERIOD = PeriodInput(FEATURES)
RATE = FEATURES.sample_rate


def pulse_train(spacing, seconds=1.0, seed=0, level=0.5):
    """Pulses every ``spacing`` samples, in a little noise."""
    audio = np.random.default_rng(seed).normal(0, 0.003, int(seconds * RATE))
    audio[::spacing] += level
    return audio.astype(np.float32)


def harmonic_glide(low, high, seconds=2.0):
    """Five harmonics (1, 1/2, 1/4, 1/5, 1/10) of a pitch gliding from ``low`` to ``high``
    Hz, geometrically; and its pitch at every sample."""
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = low * (high / low) ** (t / seconds)
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    audio = sum(a * np.sin(k * phase) for k, a in zip(range(1, 6), (1, .5, .25, .2, .1)))
    return (0.3 * audio).astype(np.float32), pitch


@pytest.mark.parametrize('spacing', [40, 64, 100, 137, 200, 270])
def test_a_pulse_train_s_frames_give_its_period(spacing):
    """From 400 Hz down to 59 Hz (below, the harmonics are closer than the mel bands,
    and now and then a frame takes the octave above)."""
    lags = PERIOD.lags(FEATURES(pulse_train(spacing))).numpy()
    # Away from the clip's edges, and within the candidate pitches' grid of 10 cents.
    assert np.all(np.abs(lags[3:-3] - spacing) <= 1 + 0.012 * spacing)


def test_the_lags_of_a_gliding_pitch_follow_it():
    """From 120 to 300 Hz over two seconds: most frames within two samples of the period
    at their centre (a frame holds a sixteenth of a second of the glide)."""
    audio, pitch = harmonic_glide(120, 300)
    lags = PERIOD.lags(FEATURES(audio)).numpy()
    centres = np.arange(len(lags)) * FEATURES.hop_length + FEATURES.hop_length // 2
    error = np.abs(lags - RATE / pitch[np.minimum(centres, len(pitch) - 1)])[3:-3]
    assert np.mean(error <= 2) > 0.8


def test_voicing_tells_a_comb_from_noise_and_silence():
    """A pulse train is all but a comb (and so sharpened almost twice), white noise and
    silence are not (and not sharpened at all)."""
    pulses = PERIOD.voicing(FEATURES(pulse_train(100))).numpy()[3:-3]
    noise = np.random.default_rng(2).normal(0, 0.1, RATE).astype(np.float32)
    noisy = PERIOD.voicing(FEATURES(noise)).numpy()
    silent = PERIOD.voicing(FEATURES.silence(5)).numpy()
    assert pulses.min() > 0.8 and np.median(noisy) < 0.1 and np.all(silent == 0)
    assert period.sharpening(pulses).numpy().min() > 1.7
    np.testing.assert_array_equal(period.sharpening(silent), 1.0)
    assert np.mean(period.sharpening(noisy).numpy() == 1.0) > 0.9


def test_the_taps_read_the_values_a_period_back():
    """Against NumPy's indexing, silence's values before the sequences begin."""
    rng = np.random.default_rng(1)
    excitation, samples = rng.normal(size=(2, 3, 500)).astype(np.float32)
    lags = rng.integers(32, 321, (3, 500)).astype(np.int32)
    taps = period.tap_values(excitation, samples, lags, before=(0.25, -0.5)).numpy()
    assert taps.shape == (3, 500, 2 * len(TAPS))
    for b, t in [(0, 499), (1, 400), (2, 333), (0, 40), (1, 3)]:
        for k, d in enumerate(TAPS):
            position = t - lags[b, t] + d
            inside = position >= 0
            assert taps[b, t, k] == (excitation[b, position] if inside else 0.25)
            assert taps[b, t, len(TAPS) + k] == (samples[b, position] if inside else -0.5)
    # A history's taps are the sequence's for the sample after it.
    history = period.history_taps(excitation[:, :400], samples[:, :400], lags[:, 400])
    np.testing.assert_array_equal(history, taps[:, 400])


def test_a_pulse_train_s_taps_hold_the_pulse_a_period_before():
    """Wrong by a sample too many, or by a period, the middle tap would miss it."""
    audio = pulse_train(100)
    lags = PERIOD.per_sample(PERIOD.lags(FEATURES(audio)[None]), FEATURES.hop_length)
    taps = period.tap_values(audio[None], audio[None], lags[:, :len(audio)]).numpy()[0]
    middle = TAPS.index(0)
    pulses = np.arange(300, len(audio) - 300, 100)
    assert np.all(taps[pulses, middle] > 0.45)
    between = np.setdiff1d(np.arange(300, len(audio) - 300), pulses)
    assert np.all(np.abs(taps[between, middle]) < 0.05)


def pulse_probability(period_input, steps=300):
    """A small vocoder with linear prediction trained on a pulse train: the mean
    probability that it gives, teacher-forced, to each held-out pulse's excitation. The
    features' projections are held at zero, so that the network hears the pulse train
    through its receptive field and the taps alone: a pulse train's features are the
    same in every frame, and a projection of them learnt as one more bias (with Adam,
    eighty times faster than a bias) shuts the gates long before the rare pulses among
    the noise have taught anything."""
    net = small_lpc_net(period_input=PERIOD if period_input else None)
    for variable in net.trainable_variables:
        if '/lc_' in variable.path:
            variable.assign(tf.zeros_like(variable))
            variable.trainable = False
    optimizer = optimizer_factory['adam'](3e-3, 0.9)
    create_checkpoint(net, optimizer)
    step = make_train_step(net, optimizer, jit_compile=True)
    audio = pulse_train(100, seconds=2.0)
    frames = FEATURES(audio)
    hop, length = FEATURES.hop_length, 8 * FEATURES.hop_length
    starts = range(0, len(audio) - length - hop, 2 * hop)
    for k in range(steps):
        first = starts[k % len(starts)]
        step(audio[None, first:first + length, None], None,
             frames[None, first // hop:(first + length) // hop])
    held = pulse_train(100, seconds=0.5, seed=9)
    outputs, codes = net.teacher_forced(held[None], local_condition_batch=FEATURES(held)[None])
    proba = net.output_distribution.distribution(outputs)[0].numpy()
    pulses = np.arange(0, len(held), 100) - net.receptive_field
    pulses = pulses[pulses >= 0]
    return np.mean(proba[pulses, codes[0].numpy()[pulses]])


def test_the_period_input_lets_a_network_foresee_the_next_pulse():
    """Its receptive field through the convolutions is 20 samples, the pulses 100 apart:
    without the period input nothing it reads tells it where the next pulse falls."""
    with_taps, without = pulse_probability(True), pulse_probability(False)
    assert with_taps > 0.5
    assert without < 0.1
