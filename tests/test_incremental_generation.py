"""Incremental generation computes what the full window computes: the compiled loop, its
priming, chunks and batches of speakers against running the whole network on the window
for every sample; a vocoder's conditioning rows against the whole conditioning at once."""
import numpy as np
import pytest
import tensorflow as tf

from wavenet import WaveNetModel
from wavenet.features import MelFeatures
from wavenet.generation import (
    ConditioningRows,
    conditioning_rows,
    generate,
    start_waveform,
    uniform_streams,
)

Q = 32
VARIANTS = {
    'width 2, biases': dict(filter_width=2, use_biases=True),
    'width 3, biases, speakers': dict(filter_width=3, use_biases=True,
                                      global_condition_channels=3,
                                      global_condition_cardinality=6),
    'scalar input': dict(filter_width=2, use_biases=True, scalar_input=True,
                         initial_filter_width=5),
    'width 3, scalar input, speakers': dict(filter_width=3, scalar_input=True,
                                            initial_filter_width=3,
                                            global_condition_channels=2,
                                            global_condition_cardinality=4),
}


def small_net(**overrides):
    """A small network whose biases are far from their zero start, so that a bias in the
    wrong place (e.g. in a queue meant to hold zeros) shows."""
    arguments = dict(batch_size=1, dilations=[1, 2, 4, 1, 2, 4], filter_width=2,
                     residual_channels=8, dilation_channels=6, skip_channels=12,
                     quantization_channels=Q)
    net = WaveNetModel(**dict(arguments, **overrides))
    for variable in net.weights:
        if 'bias' in variable.path:
            variable.assign(tf.random.normal(variable.shape, stddev=0.5))
    return net


def speakers_for(net, rows=1):
    return None if net.global_condition_channels is None else np.arange(rows) % 3 + 1


def full_window_codes(net, start, noise, global_condition):
    return np.concatenate(list(generate(net, start, noise, global_condition, fast=False)), 1)


@pytest.mark.parametrize('variant', VARIANTS)
def test_fast_generation_equals_full_window(variant):
    """Along 500 generated samples: the compiled loop draws what the full-window path
    draws, and the incremental distributions equal predict_proba's to 1e-5."""
    net = small_net(**VARIANTS[variant])
    speakers = speakers_for(net)
    noise = uniform_streams(5, [0], 501)
    start = start_waveform(net, noise[:, 0])
    codes = np.concatenate(list(generate(net, start, noise[:, 1:], speakers)), axis=1)
    assert codes.shape == (1, 500)
    np.testing.assert_array_equal(codes, full_window_codes(net, start, noise[:, 1:], speakers))

    waveform = np.concatenate([start, codes], axis=1)[0]
    fast = [net.prime_incremental_state(waveform[:net.receptive_field], speakers)]
    fast += [net.predict_proba_incremental(code, speakers) for code in codes[0, :-1]]
    windows = np.stack([waveform[t:t + net.receptive_field] for t in range(500)])
    full = net.predict_proba(windows, None if speakers is None else np.repeat(speakers, 500))
    np.testing.assert_allclose(np.squeeze(np.stack(fast)), full, atol=1e-5)


@pytest.mark.parametrize('variant', VARIANTS)
def test_priming_in_one_pass_equals_step_by_step(variant):
    net = small_net(**VARIANTS[variant])
    speakers = speakers_for(net, rows=2)
    rng = np.random.default_rng(0)
    for length in (1, 5, net.receptive_field, net.receptive_field + 9):
        codes = rng.integers(0, Q, (2, length))
        net.reset_incremental_state()
        for t in range(length):
            stepped = net.predict_proba_incremental(codes[:, t], speakers)
        primed = net.prime_incremental_state(codes, speakers)
        np.testing.assert_allclose(primed, stepped, atol=1e-6)
        # The queues are equal too: the next step agrees.
        after_priming = net.predict_proba_incremental(codes[:, -1], speakers)
        net.reset_incremental_state()
        for t in range(length):
            net.predict_proba_incremental(codes[:, t], speakers)
        np.testing.assert_allclose(after_priming,
                                   net.predict_proba_incremental(codes[:, -1], speakers),
                                   atol=1e-6)
        if length >= net.receptive_field:
            np.testing.assert_allclose(primed, net.predict_proba(codes, speakers), atol=1e-5)


@pytest.mark.parametrize('variant', [*VARIANTS, 'vocoder'])
def test_steady_state_equals_a_receptive_field_of_one_code(variant):
    """The steady state of a code (and a conditioning row) repeated for ever is the state a
    receptive field of it reaches step by step: the same distribution, and every later
    step agrees until each queue entry was replaced."""
    vocoder = variant == 'vocoder'
    net = small_net(**(dict(local_condition_channels=2, lc_upsample_scales=[2]) if vocoder
                       else VARIANTS[variant]))
    rng = np.random.default_rng(1)
    gc = net.embed_global_condition(speakers_for(net, rows=2))
    projection = net.project_local_condition(
        rng.normal(size=(2, 1, 2)).astype(np.float32)) if vocoder else None
    codes = tf.constant([Q // 2, 7])
    pushed = tf.repeat(codes[:, tf.newaxis], net.receptive_field, axis=1)
    proba = net.output_distribution.distribution
    primed_outputs, primed = net.primed_state(
        pushed, gc, tf.repeat(projection, net.receptive_field, axis=1) if vocoder else None)
    steady_outputs, steady = net.steady_state(codes, gc, projection)
    np.testing.assert_allclose(proba(steady_outputs), proba(primed_outputs), atol=1e-6)
    for code in rng.integers(0, Q, (2 * net.receptive_field, 2)):
        after_priming, primed = net.incremental_step(tf.constant(code, tf.int32), primed, gc,
                                                     projection)
        after_steady, steady = net.incremental_step(tf.constant(code, tf.int32), steady, gc,
                                                    projection)
        np.testing.assert_allclose(proba(after_steady), proba(after_priming), atol=1e-6)


def test_a_batch_of_speakers_equals_separate_runs():
    net = small_net(**VARIANTS['width 3, biases, speakers'])
    speakers = [4, 1, 5]
    noise = uniform_streams(11, speakers, 301)
    together = np.concatenate(list(generate(net, start_waveform(net, noise[:, 0]),
                                            noise[:, 1:], speakers, chunk=128)), axis=1)
    assert len({row.tobytes() for row in together}) == 3
    for row, speaker in enumerate(speakers):
        alone = uniform_streams(11, [speaker], 301)
        codes = np.concatenate(list(generate(net, start_waveform(net, alone[:, 0]),
                                             alone[:, 1:], [speaker], chunk=128)), axis=1)
        np.testing.assert_array_equal(codes[0], together[row])


VOCODERS = {
    'vocoder, width 2': dict(filter_width=2, use_biases=True),
    'vocoder, width 3, speakers': dict(filter_width=3, use_biases=True,
                                       global_condition_channels=3,
                                       global_condition_cardinality=6),
}


@pytest.mark.parametrize('variant', VOCODERS)
def test_vocoder_fast_generation_equals_full_window(variant):
    """With local conditioning: the compiled loop (chunks of 128, so the conditioning rows
    cross chunk boundaries) draws what the full-window path draws, and a batch of speakers
    voicing the same frames draws what each speaker draws alone."""
    net = small_net(**VOCODERS[variant], local_condition_channels=4, lc_upsample_scales=[2, 4])
    features = MelFeatures(8000, 4, 8)
    frames = np.random.default_rng(2).uniform(-11, 2, (1, 40, 4)).astype(np.float32)
    speakers = None if net.global_condition_channels is None else [1, 4]
    rows = len(speakers or [0])
    noise = uniform_streams(5, speakers or [0], 301)
    start = start_waveform(net, noise[:, 0])
    np.testing.assert_array_equal(start, Q // 2)  # a vocoder starts from silence alone
    lc_rows = conditioning_rows(net, np.repeat(frames, rows, axis=0), start.shape[1], 300,
                                features)
    assert lc_rows.shape == (rows, net.receptive_field + 300, 4)
    codes = np.concatenate(list(generate(net, start, noise[:, 1:], speakers, chunk=128,
                                         local_condition=lc_rows)), axis=1)
    slow = np.concatenate(list(generate(net, start, noise[:, 1:], speakers, fast=False,
                                        local_condition=lc_rows)), axis=1)
    np.testing.assert_array_equal(codes, slow)
    if speakers:
        alone = uniform_streams(5, [4], 301)
        single = np.concatenate(list(generate(
            net, start[:1], alone[:, 1:], [4], chunk=128, local_condition=lc_rows[:1])), axis=1)
        np.testing.assert_array_equal(single[0], codes[1])
    # Other frames, other audio.
    other = conditioning_rows(net, np.repeat(frames[:, ::-1], rows, axis=0), start.shape[1],
                              300, features)
    changed = np.concatenate(list(generate(net, start, noise[:, 1:], speakers,
                                           local_condition=other)), axis=1)
    assert np.any(changed != codes)


def test_conditioning_rows_put_silence_before_the_frames():
    """Row i goes with input i and is the row of sample i + 1: the start's rows are those of
    silence frames upsampled together with the given frames, the generated samples' rows
    those of the frames."""
    net = small_net(local_condition_channels=2, lc_upsample_scales=[2, 4])
    features = MelFeatures(8000, 2, 8)
    frames = np.random.default_rng(4).uniform(-11, 2, (1, 5, 2)).astype(np.float32)
    rows = conditioning_rows(net, frames, 20, 40, features).numpy()
    # 20 start samples need 3 frames of silence before the first generated sample.
    padded = np.concatenate([features.silence(3)[None], frames, features.silence(1)[None]], 1)
    upsampled = net.upsample_local_condition(padded).numpy()
    np.testing.assert_array_equal(rows, upsampled[:, 24 - 20 + 1:24 + 40 + 1])


@pytest.mark.parametrize('scales, context', [([2, 4], 0), ([1, 3], 0), ([4, 4, 4, 4], 0),
                                            ([2, 4], 5)])
def test_conditioning_rows_a_stretch_at_a_time_equal_the_whole(scales, context):
    """Any stretch of rows, at the start, in the middle, across the end, is what upsampling
    every frame at once gives (also through a context network over neighbouring frames);
    and each stretch upsamples only frames near it, so an hour of conditioning never sits
    in memory upsampled."""
    net = small_net(local_condition_channels=3, lc_upsample_scales=scales,
                    lc_context_channels=context)
    hop = net.lc_hop_length
    weights = net.lc_upsampling.weights + (net.lc_context.weights if context else [])
    for layer_weight in weights:  # smoothing far from a plain average, context far from 0
        layer_weight.assign(np.random.default_rng(5).uniform(0, 1, layer_weight.shape))
    features = MelFeatures(8000, 3, hop)
    frames = np.random.default_rng(6).uniform(-11, 2, (2, 40, 3)).astype(np.float32)
    start, samples = 3 * hop + 5, 40 * hop
    before = -(-start // hop)
    padded = np.concatenate([np.repeat(features.silence(before)[None], 2, 0), frames,
                             np.repeat(features.silence(1)[None], 2, 0)], 1)
    whole = net.upsample_local_condition(padded).numpy()[:, before * hop - start + 1:]
    rows = ConditioningRows(net, frames, start, features)
    upsampled = []
    original = net.upsample_local_condition
    net.upsample_local_condition = lambda f: upsampled.append(f.shape[1]) or original(f)
    for begin, count in [(0, 7), (0, start + samples), (1, hop), (start - 3, 2 * hop + 1),
                         (17 * hop - 1, 3 * hop + 2), (start + samples - 5, 5)]:
        np.testing.assert_allclose(rows(begin, count), whole[:, begin:begin + count],
                                   rtol=0, atol=1e-6)
    assert upsampled[2] <= 1 + 2 * (len(scales) + 1 + bool(context)) + 1  # a few frames


def test_a_context_network_starts_as_the_identity():
    """Its last layer starts at zero: a new vocoder with one upsamples its frames as one
    without; once that layer moves, each frame hears its two neighbours."""
    frames = np.random.default_rng(7).uniform(-11, 2, (1, 6, 3)).astype(np.float32)
    arguments = dict(batch_size=1, dilations=[1, 2], filter_width=2, residual_channels=4,
                     dilation_channels=4, skip_channels=4, quantization_channels=Q,
                     use_biases=True, local_condition_channels=3, lc_upsample_scales=[2, 4])
    plain = WaveNetModel(**arguments)
    net = WaveNetModel(**arguments, lc_context_channels=4)
    np.testing.assert_allclose(net.upsample_local_condition(frames),
                               plain.upsample_local_condition(frames), atol=1e-6)
    net.lc_context.kernel_out.assign(np.ones(net.lc_context.kernel_out.shape))
    changed = frames.copy()
    changed[0, 2] += 1  # frame 2 moves the context's frames 1 to 3, and no others
    difference = np.abs(net.lc_context(changed).numpy() - net.lc_context(frames).numpy())
    np.testing.assert_array_equal(difference[0].sum(axis=1) > 0, [0, 1, 1, 1, 0, 0])


def test_chunks_carry_the_state():
    net = small_net()
    noise = uniform_streams(3, [0], 201)
    start = start_waveform(net, noise[:, 0])
    pieces = list(generate(net, start, noise[:, 1:], chunk=64))
    assert [piece.shape[1] for piece in pieces] == [64, 64, 64, 8]
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1),
                                  next(generate(net, start, noise[:, 1:], chunk=200)))


def test_the_compiled_loop_generates_with_the_weights_of_the_moment():
    """As in training, whose samples come from the same network step after step: once a
    dilated layer's weights change, the loop (traced and compiled before the change) draws
    what the full window draws with the new weights, and no longer what it drew before."""
    net = small_net()
    noise = uniform_streams(4, [0], 301)
    start = start_waveform(net, noise[:, 0])
    before = next(generate(net, start, noise[:, 1:]))
    for variable in net.dilated_stack[2].weights:
        variable.assign(variable * 3.0 + 0.5)
    after = next(generate(net, start, noise[:, 1:]))
    np.testing.assert_array_equal(after, full_window_codes(net, start, noise[:, 1:], None))
    assert np.mean(after != before) > 0.2  # the same noise: only some draws change


def test_the_window_starts_as_silence_then_the_seed_clip():
    net = small_net()
    silence = start_waveform(net, tf.constant([0.999, 0.0], tf.float64))
    assert silence.shape == (2, net.receptive_field)
    np.testing.assert_array_equal(silence[:, :-1], Q // 2)
    np.testing.assert_array_equal(silence[:, -1], [Q - 1, 0])
    seeded = start_waveform(net, tf.zeros([1], tf.float64), clip=[3, 4, 5])
    np.testing.assert_array_equal(seeded[0, -3:], [3, 4, 5])
    np.testing.assert_array_equal(seeded[0, :-3], Q // 2)
    long_clip = np.arange(net.receptive_field + 10) % Q
    np.testing.assert_array_equal(start_waveform(net, tf.zeros([1], tf.float64), long_clip)[0],
                                  long_clip[:net.receptive_field])
