"""The XLA-compiled training step: the uncompiled step's losses and updates, pieces of one
length for it, when ``--jit_compile=auto`` compiles, and where a training's time goes."""
import os

import numpy as np
import pytest
import tensorflow as tf
from helpers import (
    CORPUS_PARAMS,
    ROOT,
    FakeClock,
    build_under,
    describe,
    global_batch,
    mirrored,
)

from wavenet import training
from wavenet.audio_reader import cut_conditioned_pieces, cut_pieces
from wavenet.averaging import WeightAverage
from wavenet.features import MelFeatures
from wavenet.params import NetworkDescription, build_model
from wavenet.training import Stopwatch, compile_step, make_train_step


def steps_of(compiled, lc, l2, precision, set_precision):
    """Three steps of a fresh ``build_under`` network (the same initial weights every
    time) on ``global_batch``: ``(losses, weights, averaged weights)``."""
    set_precision(precision)
    net, optimizer = build_under(tf.distribute.get_strategy(), lc=lc)
    average = WeightAverage(net, 0.9)
    step = make_train_step(net, optimizer, l2, average=average, jit_compile=compiled)
    batch = global_batch(lc)
    losses = [{name: float(value) for name, value in step(*batch).items()} for _ in range(3)]
    averaged = [v.numpy() for v in average.averages]
    return losses, [v.numpy() for v in net.trainable_variables], averaged


@pytest.mark.parametrize('lc, l2, precision, tolerance', [
    (False, 1e-3, 'float32', 1e-5),
    (True, None, 'float32', 1e-5),
    # bfloat16 keeps 8 bits: XLA's fusions round at other places than TensorFlow's kernels.
    (True, None, 'mixed_bfloat16', 2e-2),
])
def test_the_compiled_step_takes_the_uncompiled_steps(mixed_precision, lc, l2, precision,
                                                      tolerance):
    want_losses, want_weights, want_average = steps_of(False, lc, l2, precision,
                                                       mixed_precision)
    losses, weights, average = steps_of(True, lc, l2, precision, mixed_precision)
    assert want_losses[2]['loss'] < want_losses[0]['loss']  # the steps did train
    for got, want in zip(losses, want_losses):
        assert set(got) == set(want)
        for name in want:
            assert got[name] == pytest.approx(want[name], rel=tolerance)
    # Adam's first steps move every weight by about the rate whatever its gradient: the
    # weights must agree to well below that rate (1e-2).
    for got, want in zip(weights + average, want_weights + want_average):
        np.testing.assert_allclose(got, want, atol=10 * tolerance, rtol=tolerance)


def test_the_compiled_step_takes_a_batch_of_another_length_too():
    net, optimizer = build_under(tf.distribute.get_strategy())
    step = make_train_step(net, optimizer, jit_compile=True)
    audio, speakers = global_batch()
    step(audio, speakers)
    # The loss a step returns is that of the weights before its update.
    before = float(net.loss(audio[:, :100], speakers))
    assert float(step(audio[:, :100], speakers)['loss']) == pytest.approx(before, rel=1e-5)
    assert float(net.loss(audio[:, :100], speakers)) < before


def test_auto_compiles_small_networks_trained_on_pieces():
    small = build_model(describe(CORPUS_PARAMS))
    default = build_model(NetworkDescription.load(os.path.join(ROOT, 'wavenet_params.json')))
    one = tf.distribute.get_strategy()
    assert compile_step('auto', small, one, 8000) == (True, None)
    assert compile_step('auto', small, one, 0) == (False, None)  # whole clips: many shapes
    assert default.count_params() > training.COMPILED_BELOW_WEIGHTS
    assert compile_step('auto', default, one, 16000) == (False, None)
    assert compile_step('true', default, one, 0) == (True, None)
    assert compile_step('false', small, one, 8000) == (False, None)


def test_a_step_over_several_replicas_is_not_compiled_and_says_why():
    net, _ = build_under(mirrored())
    assert compile_step('auto', net, mirrored(), 8000) == (False, None)
    compiled, note = compile_step('true', net, mirrored(), 8000)
    assert not compiled
    assert note.startswith('--jit_compile=true: ') and '\n' not in note


def test_equal_pieces_are_whole_and_cover_the_clip():
    audio = np.arange(1, 26, dtype=np.float32)  # 25 samples, none of them silence
    plain = cut_pieces(audio, 3, 10)
    equal = cut_pieces(audio, 3, 10, equal=True)
    assert [len(p) for p in plain] == [13, 13, 8]
    assert [len(p) for p in equal] == [13, 13, 13]
    np.testing.assert_array_equal(equal[:2], plain[:2])
    np.testing.assert_array_equal(equal[2], audio[-13:])  # the clip's last whole piece
    predicted = np.concatenate([p[3:] for p in equal])
    assert set(predicted) == set(audio)
    # A clip shorter than a piece: more silence in front.
    np.testing.assert_array_equal(cut_pieces(audio[:4], 3, 10, equal=True),
                                  [np.r_[np.zeros(9), audio[:4]]])


def test_equal_vocoder_pieces_start_on_frames_and_carry_their_own():
    features = MelFeatures(sample_rate=8000, channels=8, hop_length=16, n_fft=64)
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal(1000)).astype(np.float32)
    frames = features(audio)
    # Pieces of 40 + 112 samples (seven frames of new samples) and 10 frames, the
    # receptive field's padding three frames of silence.
    pieces = cut_conditioned_pieces(audio, frames, features, 40, 100, equal=True)
    padded = np.r_[np.zeros(48, np.float32), audio]
    all_frames = np.concatenate([features.silence(3), frames])
    assert len(pieces) == 9 and {len(p) for p, _ in pieces} == {152}
    assert {len(f) for _, f in pieces} == {10}
    for piece, piece_frames in pieces:
        start = int(np.flatnonzero([np.array_equal(padded[s:s + len(piece)], piece)
                                    for s in range(0, len(padded), 16)])[0]) * 16
        np.testing.assert_array_equal(piece_frames, all_frames[start // 16:start // 16 + 10])
    last = pieces[-1][0]
    assert len(padded) - 16 < (len(padded) - len(last)) // 16 * 16 + len(last) <= len(padded)
    # A clip shorter than a piece: whole frames of silence in front (its last samples,
    # fewer than a frame, in no piece).
    (short, short_frames), = cut_conditioned_pieces(audio[:50], features(audio[:50]),
                                                    features, 40, 100, equal=True)
    assert len(short) == 152 and len(short_frames) == 10
    np.testing.assert_array_equal(short, np.r_[np.zeros(112), audio[:40]])
    np.testing.assert_array_equal(short_frames[:7], features.silence(7))
    np.testing.assert_array_equal(short_frames[7:], features(audio[:50])[:3])


@pytest.mark.parametrize('equal', [False, True])
@pytest.mark.parametrize('length, receptive_field, sample_size', [
    (1000, 40, 100), (1000, 48, 112), (1003, 37, 90), (150, 40, 100), (33, 5, 200)])
def test_every_piece_carries_the_frames_of_its_own_audio(equal, length, receptive_field,
                                                         sample_size):
    # A piece whose frames were cut one frame off its audio trains a vocoder that ignores
    # its conditioning: each frame must be what the piece's own samples analyse to,
    # wherever its window lies on the clip (the padding is silence, which a clip of a
    # constant offset never holds).
    features = MelFeatures(sample_rate=8000, channels=8, hop_length=16, n_fft=64)
    rng = np.random.default_rng(length + receptive_field)
    audio = (0.3 + 0.1 * rng.standard_normal(length)).astype(np.float32)
    pieces = cut_conditioned_pieces(audio, features(audio), features, receptive_field,
                                    sample_size, equal)
    hop, half = features.hop_length, features.n_fft // 2
    compared = 0
    for piece, frames in pieces:
        assert len(frames) == features.frame_count(len(piece))
        own, clip = features(piece), np.flatnonzero(piece)
        for f in range(len(frames)):
            low, high = f * hop + hop // 2 - half, f * hop + hop // 2 + half
            if clip.size and low >= clip[0] and high <= clip[-1] + 1:
                np.testing.assert_allclose(frames[f], own[f], atol=1e-4)
                compared += 1
    assert compared or length < features.n_fft


def test_the_stopwatch_counts_each_part_once(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(training.time, 'perf_counter', clock)
    stopwatch = Stopwatch(started=90.0)  # ten seconds of start-up before it
    stopwatch.seconds['start-up'] = 10.0
    with stopwatch.timing('steps'):
        clock.now += 3
    with stopwatch.timing('samples'):
        clock.now += 2
        with stopwatch.timing('quality measures'):
            clock.now += 4
        clock.now += 1
    clock.now += 5  # nothing timed
    breakdown = stopwatch.breakdown()
    assert breakdown == dict.fromkeys(Stopwatch.PARTS, 0.0) | {
        'start-up': 10.0, 'steps': 3.0, 'samples': 3.0, 'quality measures': 4.0, 'other': 5.0}
    assert stopwatch.wall() == sum(breakdown.values()) == 25.0
    assert stopwatch.line() == ('Wall time 25 s: start-up 10 s (40 %), steps 3 s (12 %), '
                                'samples 3 s (12 %), quality measures 4 s (16 %), '
                                'other 5 s (20 %)')
