"""The original's end-to-end test: learn the E-flat chord, then generate it back.

Each variant trains on sine waves sampled at 2 kHz until the loss is tiny, then generates
1000 samples through the incremental path (every speaker in one batch), checks that their
spectrum is the chord (or, with speaker conditioning, each speaker's own note), and that
the full-window path draws the same first 250 with the same random numbers.
"""
import numpy as np
import pytest
import tensorflow as tf
from helpers import NETWORK, NOTES, QUANTIZATION_CHANNELS, make_sine_waves, note_powers

from wavenet import WaveNetModel, mu_law_decode, optimizer_factory
from wavenet.training import make_train_step

GENERATE_SAMPLES = 1000
# The full-window path recomputes the whole receptive field for every sample; its first
# samples, drawn with the same random numbers, must already be the incremental path's.
FULL_WINDOW_SAMPLES = 250
MOMENTUM = 0.95

# The original's variants but one: its network with biases trained by SGD alone is what
# 'speakers' trains (biases, SGD, the same rate), and 'rmsprop' generates from biases
# without speakers.
VARIANTS = {
    'sgd': dict(net={}, optimizer='sgd', learning_rate=0.02, iterations=400),
    'rmsprop': dict(net=dict(use_biases=True), optimizer='rmsprop', learning_rate=0.001,
                    iterations=300),
    'scalar_input': dict(net=dict(use_biases=True, scalar_input=True, initial_filter_width=4),
                         optimizer='sgd', learning_rate=0.01, iterations=1000),
    'speakers': dict(net=dict(use_biases=True, global_condition_channels=len(NOTES),
                              global_condition_cardinality=len(NOTES)),
                     optimizer='sgd', learning_rate=0.02, iterations=800),
}


def generate_waveform(net, fast_generation, speakers, rng, samples=GENERATE_SAMPLES):
    """``[B, 1 + samples]``: for each of ``speakers`` (one batch row each; ``None`` for an
    unconditioned network's one row), the last code of a receptive field of silence (code
    128), then ``samples`` codes drawn after it."""
    global_condition = None if speakers is None else np.array(speakers)
    rows = 1 if speakers is None else len(speakers)
    waveform = np.full([rows, net.receptive_field], QUANTIZATION_CHANNELS // 2)
    if fast_generation:
        net.reset_incremental_state()
        for step in range(net.receptive_field - 1):
            net.predict_proba_incremental(waveform[:, step], global_condition)
    for _ in range(samples):
        if fast_generation:
            proba = net.predict_proba_incremental(waveform[:, -1], global_condition)
        else:
            proba = net.predict_proba(waveform[:, -net.receptive_field:], global_condition)
        proba = proba.numpy().astype(np.float64).reshape(rows, QUANTIZATION_CHANNELS)
        drawn = [rng.choice(QUANTIZATION_CHANNELS, p=row / row.sum()) for row in proba]
        waveform = np.concatenate([waveform, np.array(drawn)[:, None]], axis=1)
    return waveform[:, net.receptive_field - 1:]


@pytest.mark.parametrize('name', list(VARIANTS))
def test_end_to_end_training(name):
    variant = VARIANTS[name]
    net = WaveNetModel(**dict(NETWORK, **variant['net']))
    conditioned = 'global_condition_channels' in variant['net']
    audio, speakers = make_sine_waves(conditioned)
    # Lead in with silence, so the network learns to start the waves from silence, which
    # is what generation starts from.
    audio = tf.constant(np.pad(audio, ((0, 0), (net.receptive_field - 1, 0)))[..., None])
    optimizer = optimizer_factory[variant['optimizer']](learning_rate=variant['learning_rate'],
                                                        momentum=MOMENTUM)
    train_step = make_train_step(net, optimizer)
    initial_loss = float(net.loss(audio, speakers))
    for _ in range(variant['iterations']):
        loss = float(train_step(audio, speakers)['loss'])

    assert initial_loss > 0.1
    assert loss < 0.1
    assert initial_loss / loss > 50

    # The same random draws on both paths: their distributions agree to 1e-5, so they must
    # generate the same waveform, and it must be the chord (or each speaker's note).
    speakers = list(range(len(NOTES))) if conditioned else None
    full = generate_waveform(net, False, speakers, np.random.RandomState(42),
                             FULL_WINDOW_SAMPLES)
    fast = generate_waveform(net, True, speakers, np.random.RandomState(42))
    np.testing.assert_array_equal(fast[:, :full.shape[1]], full)
    for row, codes in enumerate(fast):
        at_note, total = note_powers(mu_law_decode(codes, QUANTIZATION_CHANNELS).numpy())
        if conditioned:
            others = np.delete(at_note, row)
            assert np.all(at_note[row] > 10 * others), (row, at_note)
        else:
            assert at_note.sum() > 0.7 * total, (at_note, total)
