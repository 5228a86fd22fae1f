"""Generating audio from a trained network: sampling, the in-graph loop, and its inputs.

The loop over samples runs inside one XLA-compiled ``tf.function`` per chunk of samples,
carrying the network's incremental state (one queue per conv layer) from chunk to chunk,
so Python only sees progress. Randomness comes in as uniform noise, one stream per batch
row keyed by ``(seed, key)``: a row generates the same audio alone or in a batch.

A vocoder's feature frames are upsampled and projected into every layer a chunk of samples
at a time (``ConditioningRows``: only the frames near the chunk, in one matmul), so long
features never sit in memory as per-sample rows; each step of the loop reads one row.
"""
import concurrent.futures
import contextlib
import dataclasses
import os
import weakref

import numpy as np
import soundfile
import tensorflow as tf

from . import compilation_cache, lpc, period
from .audio_reader import load_audio, trim_silence
from .cli import native_stderr_filtered
from .features import frame_count
from .output import MuLawSoftmax

# Samples per compiled call: small enough to show progress, large enough that the call
# overhead (about a millisecond) is noise.
CHUNK = 1000
# TensorBoard hears at most this much of each generated clip (the wav holds all of it).
SUMMARY_SECONDS = 60
SEED_SILENCE_THRESHOLD = 0.1


# -- randomness ----------------------------------------------------------------------------

# Uniforms are drawn in blocks of this many per row, each block keyed by its index: any
# stretch of a stream costs its own length, however long the generation.
NOISE_BLOCK = 1000


class UniformStreams:
    """Uniforms in [0, 1), one stream per batch row: row ``b`` depends on ``(seed, keys[b])``
    only, so a batch of rows draws exactly what each row would draw alone. Calling it with
    ``(begin, count)`` gives draws ``[begin, begin + count)`` of every row, ``[B, count]``
    float64, computed on demand (an hour of audio needs no hour of noise in memory).
    Python ints or tensors alike: an exported model draws them in its graph."""

    def __init__(self, seed, keys):
        keys = tf.convert_to_tensor(keys, tf.int64)
        self.seeds = tf.stack([tf.fill(tf.shape(keys), tf.cast(seed, tf.int64)), keys], axis=1)

    def __call__(self, begin, count):
        first, end = begin // NOISE_BLOCK, -(-(begin + count) // NOISE_BLOCK)
        blocks = tf.range(first, end)

        def stream(seed):
            return tf.reshape(tf.map_fn(
                lambda block: tf.random.stateless_uniform(
                    [NOISE_BLOCK], seed=tf.random.experimental.stateless_fold_in(seed, block),
                    dtype=tf.float64),
                blocks, fn_output_signature=tf.float64), [-1])

        rows = tf.map_fn(stream, self.seeds, fn_output_signature=tf.float64)
        offset = begin - first * NOISE_BLOCK
        return rows[:, offset:offset + count]


def uniform_streams(seed, keys, length):
    """The first ``length`` draws of ``UniformStreams(seed, keys)``: ``[len(keys), length]``."""
    return UniformStreams(seed, keys)(0, length)


def stream_key(key, stream):
    """The random-stream key of the ``stream``-th independent stream of ``key`` (a speaker
    id, or 0): stream 0 is ``key`` itself."""
    return key + stream * 2 ** 32  # a tensor too (an exported model's streams)


def start_waveform(net, uniform, clip=None):
    """The ``receptive_field`` codes [B, receptive_field] that generation starts from: the
    ``clip`` codes preceded by silence (Q/2) when shorter, or without a clip silence and one
    random code per row, drawn with ``uniform`` [B] (the original's start). A vocoder
    starts from silence alone, as each of its training pieces did: a random code would be a
    click that its features never described."""
    silence, batch = net.sample_coding.silence, tf.shape(uniform)[0]
    if clip is None and net.local_condition_channels is not None:
        return tf.fill([batch, net.receptive_field], silence)
    if clip is None:
        first = tf.cast(tf.cast(uniform, tf.float64) * net.quantization_channels, tf.int32)
        rows = tf.fill([batch, net.receptive_field - 1], silence)
        return tf.concat([rows, first[:, tf.newaxis]], axis=1)
    clip = tf.convert_to_tensor(clip, tf.int32)[:net.receptive_field]
    padded = tf.pad(clip, [[net.receptive_field - len(clip), 0]], constant_values=silence)
    return tf.tile(padded[tf.newaxis], [batch, 1])


# -- the loop ------------------------------------------------------------------------------

class ConditioningRows:
    """The upsampled conditioning of a generation, computed a stretch at a time: called
    with ``(begin, count)``, rows ``[begin, begin + count)`` as ``[B, count, C]``. Row
    ``i`` goes with network input ``i`` of the start codes followed by the generated ones,
    so it is the row of the sample that input predicts (``i + 1``).

    ``frames`` [B, F, C] describe the generated samples; the start codes get the frames of
    silence of ``features`` (the network's ``MelFeatures``), as the receptive-field padding
    of every training clip did, and the frames are upsampled together with them.
    Only the frames near a stretch are upsampled for it: an hour of upsampled rows would
    take 18 GB, its frames 72 MB. Stretches may be Python ints or tensors (in the graph of
    an exported model, whose frames' length is known only when it runs).
    """

    def __init__(self, net, frames, start_length, features):
        frames = tf.convert_to_tensor(frames, tf.float32)
        self.net, self.hop, self.features = net, net.lc_hop_length, features
        before = frame_count(start_length, self.hop)
        # One more frame after the end: the step after the last sample reads a row too.
        shape = tf.shape(frames)
        padding = [tf.broadcast_to(features.silence(n), [shape[0], n, shape[2]])
                   for n in (before, 1)]
        self.frames = tf.concat([padding[0], frames, padding[1]], axis=1)
        self.origin = before * self.hop - start_length + 1  # the frames' row of row 0
        # Every upsampling scale mixes rows at most one row (of its input) apart, so the
        # rows of a stretch depend on frames at most this many away from it
        # (and the context network, when there is one, one frame more).
        self.margin = len(net.lc_upsampling.scales) + 1 + bool(net.lc_context_channels)
        self._coefficients = self._lags = self._sharpness = None

    def __call__(self, begin, count):
        first = self.origin + begin
        low = tf.maximum(first // self.hop - self.margin, 0)
        high = tf.minimum(-(-(first + count) // self.hop) + self.margin,
                          tf.shape(self.frames)[1])
        rows = self.net.upsample_local_condition(self.frames[:, low:high])
        return rows[:, first - low * self.hop:first - low * self.hop + count]

    def coefficients(self, begin, count):
        """The linear prediction coefficients ``[B, count, order]`` of the samples that
        rows ``[begin, begin + count)`` condition (a network with ``lpc_order``)."""
        if self._coefficients is None:
            self._coefficients = self.net.linear_prediction.coefficients(self.frames)
        return self._of_samples(self._coefficients, begin, count)

    def lags(self, begin, count):
        """The period lags ``[B, count]`` of the samples that rows ``[begin, begin +
        count)`` condition (a network with a period input)."""
        if self._lags is None:
            self._lags = self.net.period_input.lags(self.frames)
        return self._of_samples(self._lags, begin, count)

    def sharpness(self, begin, count):
        """The exponent ``[B, count]`` that voiced-only sharpening raises the distribution
        of each of those samples to (``period.sharpening``)."""
        if self._sharpness is None:
            voicing = period.PeriodInput(self.features).voicing(self.frames)
            self._sharpness = period.sharpening(voicing)
        return self._of_samples(self._sharpness, begin, count)

    def _of_samples(self, per_frame, begin, count):
        first = self.origin + begin
        frames = tf.range(first, first + count) // self.hop
        return tf.gather(per_frame, tf.minimum(frames, tf.shape(self.frames)[1] - 1), axis=1)


def conditioning_rows(net, frames, start_length, samples, features):
    """All ``start_length + samples`` rows of ``ConditioningRows`` at once."""
    return ConditioningRows(net, frames, start_length, features)(0, start_length + samples)


@dataclasses.dataclass(frozen=True)
class _Inputs:
    """What both loops read besides the start codes, each as a function of a stretch
    ``(begin, count)`` of the generated samples' positions."""
    draws_of: object  # -> [B, count] uniforms
    samples: int
    gc_embedding: object  # [B, gc_channels] or None
    temperature: tf.Tensor
    chunk: int
    rows_of: object = None  # a vocoder's conditioning rows -> [B, count, C]
    coefficients_of: object = None  # linear prediction coefficients -> [B, count, order]
    lags_of: object = None  # the period input's lags -> [B, count]
    sharpness_of: object = None  # voiced-only sharpening's exponents -> [B, count]


def generate(net, start, noise, global_condition=None, temperature=1.0, fast=True,
             chunk=CHUNK, local_condition=None, samples=None, sharpen=False):
    """Yields int32 code chunks [B, n], ``samples`` in all, that continue ``start`` (codes
    [B, T], at least a receptive field, as ``start_waveform`` makes). ``noise`` holds one
    uniform draw per sample: ``[B, samples]``, or a function ``(begin, count) -> [B,
    count]`` (such as a shifted ``UniformStreams``) with ``samples`` given.
    ``local_condition``: for a vocoder, the rows of ``conditioning_rows``, or a
    ``ConditioningRows``. ``temperature`` is rounded to float32, as an exported model
    takes it. ``sharpen`` (a vocoder with a ``ConditioningRows``): LPCNet's voiced-only
    sharpening, each sample's temperature divided by its frame's ``period.sharpening``
    exponent and light branches of the code tree dropped (``output.clamp_branches``).

    ``fast`` runs the compiled loop, which pushes ``start`` into the incremental state
    (from the steady state of silence) and then draws; otherwise each sample runs the
    whole network on the last receptive field, as the original's slow path did. Both
    sample the same draws identically.
    """
    inputs = _inputs(net, noise, samples, global_condition, temperature, chunk,
                     local_condition, sharpen)
    start = tf.convert_to_tensor(start, tf.int32)
    if not fast:
        yield from _slow_loop(net, start, inputs)
        return
    generation = _FastGeneration(net, start, inputs)
    try:
        yield from generation.run()
    finally:
        generation.close()


def generate_all(net, start, noise, samples, global_condition=None, temperature=1.0,
                 local_condition=None, sharpen=False):
    """``generate``'s compiled loop as one traceable computation, the whole batch as one
    row group: every code ``[B, samples]`` at once, the same codes ``generate`` yields.
    ``samples`` may be a tensor, ``noise`` must be a function. What an exported model runs
    (``wavenet.export``)."""
    inputs = _inputs(net, noise, samples, global_condition, temperature, CHUNK,
                     local_condition, sharpen)
    start = tf.convert_to_tensor(start, tf.int32)
    return _FastGeneration(net, start, inputs, groups=[slice(None)]).all_codes()


def _inputs(net, noise, samples, global_condition, temperature, chunk, local_condition,
            sharpen=False):
    """The ``_Inputs`` of ``generate``'s arguments."""
    if not callable(noise):
        noise = tf.convert_to_tensor(noise, tf.float64)
        samples = noise.shape[1]
    rows_of = local_condition
    if local_condition is not None and not callable(local_condition):
        rows_of = _stretches(tf.convert_to_tensor(local_condition, tf.float32))
    coefficients_of = None
    if net.linear_prediction is not None:
        if not isinstance(local_condition, ConditioningRows):
            raise ValueError('a network with linear prediction generates from a '
                             'ConditioningRows (its coefficients come from the frames)')
        coefficients_of = local_condition.coefficients
    lags_of = None if net.period_input is None else local_condition.lags
    if sharpen and not (isinstance(local_condition, ConditioningRows)
                        and isinstance(net.output_distribution, MuLawSoftmax)):
        raise ValueError('sharpening needs a vocoder with the softmax output, generating '
                         'from a ConditioningRows (its voicing comes from the frames)')
    temperature = tf.cast(tf.cast(temperature, tf.float32), tf.float64)
    return _Inputs(noise if callable(noise) else _stretches(noise), samples,
                   net.embed_global_condition(global_condition), temperature, chunk,
                   rows_of, coefficients_of, lags_of,
                   local_condition.sharpness if sharpen else None)


def _stretches(rows):
    """``rows`` [B, T, ...] as a function of a stretch ``(begin, count)``."""
    return lambda begin, count: rows[:, begin:begin + count]


class _FastGeneration:
    """One run of the compiled loop: the start codes go to it as forced codes (pushed,
    not drawn), whole chunks of them preceded by silence (with a vocoder's first
    conditioning row), then chunks of drawn samples. ``run`` gives each group of batch
    rows a thread, on which its chunks run in order, so the next chunk can start before
    the caller has handled (written) the last one; ``all_codes`` runs the same chunks in
    one traced computation (an exported model's)."""

    def __init__(self, net, start, inputs, groups=None):
        self.loop, self.inputs = _fast_loop(net), inputs
        chunk, silence = inputs.chunk, net.sample_coding.silence
        begun = start.shape[1]
        self.lead = -begun % chunk
        self.start = tf.pad(start, [[0, 0], [self.lead, 0]], constant_values=silence)
        # Each row starts in the steady state of endless silence, which a receptive field
        # of silence reaches too (no sample depends on codes further back): only the
        # chunks from the first code (or conditioning row) that differs need pushing.
        rows_of, coefficients_of = inputs.rows_of, inputs.coefficients_of
        start_rows = None if rows_of is None else rows_of(0, begun)
        self.settled = (self.lead + _silent_length(self.start[:, self.lead:], start_rows,
                                                   silence)) // chunk * chunk
        projection = None if rows_of is None else net.project_local_condition(rows_of(0, 1))
        coefficients = None if coefficients_of is None else coefficients_of(0, 1)
        batch = tf.shape(start)[0]
        self.groups = [_RowGroup(net, group, tf.shape(start[group])[0], inputs.gc_embedding,
                                 projection, coefficients)
                       for group in groups or _row_groups(start.shape[0])]
        self.threads = []
        self.drawn = tf.fill([batch, chunk], -1)
        self.silent = tf.zeros([batch, chunk], tf.float64)

    def run(self):
        """Pushes the start codes, then yields the drawn codes chunk by chunk."""
        chunk, samples = self.inputs.chunk, self.inputs.samples
        self.threads = [concurrent.futures.ThreadPoolExecutor(1) for _ in self.groups]
        # The first call compiles the loop, or loads it from the compilation cache, and
        # XLA logs a false alarm as it reads the file.
        with native_stderr_filtered():
            for first in range(int(self.settled), self.start.shape[1], chunk):
                self._submit(first, self.start[:, first:first + chunk], self.silent)()
        ahead = self._submit_samples(0) if samples > 0 else None
        for begin in range(0, samples, chunk):
            count, codes = ahead
            if begin + chunk < samples:
                ahead = self._submit_samples(begin + chunk)
            yield codes()[:, :count]

    def all_codes(self):
        """Every drawn code ``[B, samples]`` (``samples`` may be a tensor), by the chunks
        of ``run`` in ``tf.while_loop``s, one row group (the whole batch): traceable."""
        (group,) = self.groups
        chunk, samples, begun = self.inputs.chunk, self.inputs.samples, self.start.shape[1]
        carry = group.carry

        def push(first, carry):
            forced = self.start[:, first:first + chunk]
            _, carry = group.run_chunk(self.loop, carry, *self._chunk_inputs(
                first, forced, self.silent))
            return first + chunk, carry

        _, carry = tf.while_loop(lambda first, _: first < begun, push,
                                 (self.settled, carry))

        def draw(begin, carry, codes):
            draws = self._sample_draws(begin)
            drawn, carry = group.run_chunk(self.loop, carry, *self._chunk_inputs(
                begun + begin, self.drawn, draws))
            return begin + chunk, carry, codes.write(begin // chunk, drawn)

        chunks = -(-samples // chunk)
        _, _, codes = tf.while_loop(
            lambda begin, *_: begin < samples, draw,
            (tf.constant(0), carry, tf.TensorArray(tf.int32, size=chunks)))
        return tf.reshape(tf.transpose(codes.stack(), [1, 0, 2]),
                          [tf.shape(self.start)[0], chunks * chunk])[:, :samples]

    def close(self):
        for thread in self.threads:
            thread.shutdown()

    def _chunk_inputs(self, first, forced, draws):
        """What ``_RowGroup.run_chunk`` reads for the chunk of pushed codes ``[first, first +
        chunk)``: the codes to force, the draws, the temperature and the conditioning.
        Each a whole chunk long, also where the graph of ``all_codes`` cannot know it."""
        chunk = self.inputs.chunk
        forced = tf.ensure_shape(forced, [None, chunk])
        draws = tf.ensure_shape(draws, [None, chunk])
        return (forced, draws, self.inputs.temperature,
                self._chunk_rows(first, self.inputs.rows_of),
                self._chunk_rows(first, self.inputs.coefficients_of),
                self._chunk_rows(first, self.inputs.lags_of),
                # A step draws the sample after the code the step before pushed.
                self._chunk_rows(first - 1, self.inputs.sharpness_of))

    def _submit(self, first, forced, draws):
        """Starts the chunk of pushed codes ``[first, first + chunk)`` on every row group;
        returns a function that waits for its codes."""
        inputs = self._chunk_inputs(first, forced, draws)
        runs = [thread.submit(group.run, self.loop, *inputs)
                for thread, group in zip(self.threads, self.groups)]
        return lambda: tf.concat([run.result() for run in runs], axis=0)

    def _sample_draws(self, begin):
        # Every call gets a full chunk, so XLA compiles one shape; the surplus samples of
        # the last one are dropped.
        chunk = self.inputs.chunk
        draws = self.inputs.draws_of(begin, tf.minimum(chunk, self.inputs.samples - begin))
        return tf.pad(draws, [[0, 0], [0, chunk - tf.shape(draws)[1]]])

    def _submit_samples(self, begin):
        count = min(self.inputs.chunk, self.inputs.samples - begin)
        return count, self._submit(self.start.shape[1] + begin, self.drawn,
                                   self._sample_draws(begin))

    def _chunk_rows(self, first, rows_of):
        """The conditioning (``rows_of``'s rows) of pushed codes ``[first, first +
        chunk)``, counted from the silence before the start."""
        if rows_of is None:
            return None
        chunk, lead = self.inputs.chunk, self.lead
        begin = tf.maximum(first - lead, 0)
        rows = rows_of(begin, first + chunk - lead - begin)
        if lead:  # the silence before the start: the first row repeated
            rows = tf.concat([tf.repeat(rows_of(0, 1), tf.maximum(lead - first, 0), axis=1),
                              rows], axis=1)
        inner = rows.shape.rank - 2  # per row: a vector (conditioning) or a number (a lag)
        rows = tf.pad(rows, [[0, 0], [0, chunk - tf.shape(rows)[1]]] + [[0, 0]] * inner)
        return tf.ensure_shape(rows, [None, chunk] + [None] * inner)


def _slow_loop(net, start, inputs):
    """``generate``'s slow path: every sample from the whole network over the last
    receptive field of its input, as the original's slow path; chunk by chunk."""
    output, coefficients_of = net.output_distribution, inputs.coefficients_of
    begun, field = start.shape[1], net.receptive_field
    window = start[:, -field:]  # the sample codes
    heard = window  # what the network reads of them
    if coefficients_of is not None:
        # Their excitation, predicted as the fast loop predicts it: from silence before
        # the start, and the first row's coefficients for the first sample.
        rows = coefficients_of(0, begun)
        rows = tf.concat([rows[:, :1], rows[:, :-1]], axis=1)
        coding = net.sample_coding
        heard = lpc.excitation_codes(output, coding.decode(start), rows,
                                     before=coding.decode(coding.silence))
        # A period input's histories: every value since the start.
        history = (lpc.excitation_values(output, heard), coding.decode(start))
        heard = heard[:, -field:]
        past = coding.decode(window[:, -net.linear_prediction.taps:])  # what predicts
    for begin in range(0, inputs.samples, inputs.chunk):
        draws = inputs.draws_of(begin, min(inputs.chunk, inputs.samples - begin))
        # The rows of this chunk's windows (a receptive field before each sample).
        first = max(begun + begin - field, 0)
        rows = None if inputs.rows_of is None else \
            inputs.rows_of(first, begun + begin + draws.shape[1] - first)
        codes = []
        for t in range(begin, begin + draws.shape[1]):
            position = begun + t  # of the sample being drawn
            window_rows = None if rows is None else \
                rows[:, max(position - field, 0) - first:position - first]
            taps = None if inputs.lags_of is None else \
                _window_taps(net, inputs.lags_of, history, position)[:, -field:]
            outputs = net._window(heard, inputs.gc_embedding, window_rows, taps)
            sharpness = None if inputs.sharpness_of is None else \
                inputs.sharpness_of(position - 1, 1)[:, 0]
            code = pushed = _draw(output, outputs, inputs.temperature, draws[:, t - begin],
                                  sharpness)
            if coefficients_of is not None:
                prediction = lpc.predict_next(past, coefficients_of(position - 1, 1)[:, 0])
                code, pushed, value = lpc.next_sample(output, tf.fill(tf.shape(code), -1),
                                                      code, prediction)
                past = tf.concat([past[:, 1:], value[:, tf.newaxis]], axis=1)
                history = tuple(tf.concat([values, new[:, tf.newaxis]], axis=1) for values, new
                                in zip(history, (lpc.excitation_values(output, pushed), value)))
            codes.append(code)
            window = tf.concat([window[:, 1:], code[:, tf.newaxis]], axis=1)
            heard = tf.concat([heard[:, 1:], pushed[:, tf.newaxis]], axis=1)
        yield tf.stack(codes, axis=1)


def _window_taps(net, lags_of, history, position):
    """The period taps of samples 1 .. ``position`` (the one being drawn), from the
    ``history`` of every value before it (silence before that) and the lags of
    ``lags_of``."""
    lags = tf.concat([lags_of(0, 1), lags_of(0, position)], axis=1)  # of samples 0 .. position
    padded = [tf.pad(values, [[0, 0], [0, 1]]) for values in history]
    return period.tap_values(*padded, lags, net.silent_values())[:, 1:]


def _row_groups(batch):
    """The batch rows' groups that run side by side, one per CPU core: XLA runs a loop on
    one core, and the rows are independent. One group on a GPU."""
    if tf.config.list_logical_devices('GPU'):
        return [slice(0, batch)]
    count = compilation_cache.row_groups(batch)
    bounds = [batch * k // count for k in range(count + 1)]
    return [slice(first, end) for first, end in zip(bounds, bounds[1:])]


def _silent_length(start, rows, silence):
    """How many of the first ``start`` codes [B, T] are silence for every row, with (for a
    vocoder) the same conditioning as the first: what a silent steady state accounts for.
    Rows upsampled from the same silence frames differ by rounding only."""
    same = tf.reduce_all(start == silence, axis=0)
    if rows is not None:
        rows = rows[:, :start.shape[1]]
        first = rows[:, :1]
        close = tf.abs(rows - first) <= 1e-6 + 1e-6 * tf.abs(first)  # as np.isclose
        same &= tf.reduce_all(close, axis=(0, 2))
    # The first row that differs, or all of them.
    return tf.argmin(tf.concat([tf.cast(same, tf.int32), [0]], axis=0), output_type=tf.int32)


class _RowGroup:
    """The generation state of some batch rows (``carry``: the next distribution's
    outputs, the network's state and, with linear prediction, the prediction's),
    carried from chunk to chunk; it starts in the steady state of endless silence."""

    def __init__(self, net, rows, size, gc_embedding, lc_projection, coefficients=None):
        self.rows = rows  # a slice of the batch, ``size`` rows
        self.gc_embedding = None if gc_embedding is None else gc_embedding[rows]
        lc_projection = None if lc_projection is None else lc_projection[rows]
        if net.period_input is not None:  # whose taps then read silence too
            lc_projection += net.project_period(period.silent_taps(net.silent_values(), size))
        # The network's input of silence (with linear prediction, an excitation of zero).
        outputs, state = net.steady_state(
            tf.fill([size], net.output_distribution.silence), self.gc_embedding, lc_projection)
        # With linear prediction: the last samples and the prediction of the next one.
        prediction_state = ()
        if coefficients is not None:
            samples = net.sample_coding
            past = tf.fill([size, net.linear_prediction.taps],
                           samples.decode(samples.silence))
            prediction_state = (past, lpc.predict_next(past, coefficients[rows][:, 0]))
        if net.period_input is not None:
            # The excitation's and the samples' values that a period input reads.
            prediction_state += period.silent_history(net.silent_values(), size,
                                                      net.period_input.reach)
        self.carry = (outputs, state, prediction_state)

    def run_chunk(self, loop, carry, *inputs):
        """One chunk of the compiled loop from ``carry``: ``(codes, the next carry)``."""
        codes, *carry = loop.run(*self.loop_arguments(carry, *inputs))
        return codes, tuple(carry)

    def loop_arguments(self, carry, forced, noise, temperature, lc_rows, lpc_rows,
                       lag_rows=None, sharpness_rows=None):
        """What ``_FastLoop.run`` takes for one chunk of this group's rows from ``carry``."""
        outputs, state, prediction_state = carry
        return (outputs, state, self.gc_embedding, forced[self.rows], noise[self.rows],
                temperature, *(None if rows is None else rows[self.rows]
                               for rows in (lc_rows, lpc_rows, lag_rows, sharpness_rows)),
                prediction_state)

    def run(self, loop, *inputs):
        codes, self.carry = self.run_chunk(loop, self.carry, *inputs)
        return codes


class _FastLoop:
    """A network's compiled generation loop; tracing and compiling cost seconds, so each
    network keeps one (and the compiled loop is kept on disk, see ``compilation_cache``).
    Written without AutoGraph, which only slows tracing here."""

    def __init__(self, net):
        @tf.function(jit_compile=True, autograph=False)
        def run(outputs, state, gc_embedding, forced, noise, temperature, lc_rows=None,
                lpc_rows=None, lag_rows=None, sharpness_rows=None, prediction_state=()):
            """Pushes one code per row and step: ``forced`` [B, n] where it is >= 0, else
            one drawn from the distribution of ``outputs`` with ``noise`` [B, n]; returns
            the codes pushed. With linear prediction, ``prediction_state`` holds the last
            samples and the next one's prediction (and with a period input, the histories
            of the excitation's and the samples' values), ``lpc_rows`` [B, n, order] the
            coefficients of the sample after each pushed code (``lag_rows`` [B, n], its
            period); ``sharpness_rows`` [B, n], voiced-only sharpening's exponent of each
            drawn sample."""
            # The whole chunk's conditioning, projected into every layer in one matmul, time
            # first: XLA miscompiled the step's row taken as lc_projection[:, t:t + 1].
            lc_projection = None if lc_rows is None else tf.transpose(
                net.project_local_condition(lc_rows), [1, 0, 2])
            coefficients = None if lpc_rows is None else tf.transpose(lpc_rows, [1, 0, 2])
            lags = None if lag_rows is None else tf.transpose(lag_rows)
            sharpness = None if sharpness_rows is None else tf.transpose(sharpness_rows)
            steps = noise.shape[1]
            output = net.output_distribution

            def step(t, codes, outputs, state, prediction_state):
                drawn = _draw(output, outputs, temperature, noise[:, t],
                              None if sharpness is None else sharpness[t])
                if prediction_state:
                    # The network draws and reads the excitation; the sample is its sum
                    # with the prediction.
                    past, prediction, *history = prediction_state
                    code, pushed, value = lpc.next_sample(output, forced[:, t], drawn,
                                                          prediction)
                else:
                    code = pushed = tf.where(forced[:, t] >= 0, forced[:, t], drawn)
                step_projection = None if lc_projection is None else \
                    lc_projection[t][:, tf.newaxis]
                if prediction_state and history:
                    history = period.advance(history, lpc.excitation_values(output, pushed),
                                             value)
                    taps = period.history_taps(*history, lags[t])
                    step_projection += net.project_period(taps[:, tf.newaxis])
                outputs, state = net.incremental_step(pushed, state, gc_embedding,
                                                      step_projection)
                if prediction_state:
                    prediction_state = (*lpc.advance(past, value, coefficients[t]), *history)
                return t + 1, codes.write(t, code), outputs, state, prediction_state

            _, codes, outputs, state, prediction_state = tf.while_loop(
                lambda t, *_: t < steps, step,
                (tf.constant(0), tf.TensorArray(tf.int32, size=steps), outputs, state,
                 prediction_state))
            return tf.transpose(codes.stack()), outputs, state, prediction_state

        self.run = run


def _draw(output, outputs, temperature, uniform, sharpness=None):
    """One code per row from the distribution of ``outputs``; with ``sharpness`` [B],
    voiced-only sharpened (its exponent per row, and light branches dropped)."""
    if sharpness is None:
        return output.sample(outputs, temperature, uniform)
    return output.sample(outputs, temperature / tf.cast(sharpness, tf.float64), uniform,
                         clamp=True)


_fast_loops = weakref.WeakKeyDictionary()


def _fast_loop(net):
    if net not in _fast_loops:
        _fast_loops[net] = _FastLoop(net)
    return _fast_loops[net]


# -- files ---------------------------------------------------------------------------------

def load_clip(path, sample_rate, output, receptive_field):
    """The codes of a seed clip (``output``'s, a ``wavenet.output`` distribution): loaded,
    silence-trimmed, at most one receptive field."""
    try:
        audio = load_audio(path, sample_rate)
    except Exception as e:  # soundfile and libsndfile raise several kinds
        raise ValueError(f'cannot read {path} as audio ({e})') from None
    audio = trim_silence(audio, SEED_SILENCE_THRESHOLD)
    if not audio.size:
        raise ValueError(f'{path} is silent (nothing above {SEED_SILENCE_THRESHOLD} RMS)')
    return output.encode(audio[:receptive_field]).numpy()


def load_local_condition(features, lc_wav=None, lc_features=None):
    """``(frames [F, C], reference audio or None)`` of a vocoder's input: the features of
    ``lc_wav`` (copy synthesis), or the frames saved in ``lc_features`` (.npy)."""
    if lc_wav is not None:
        try:
            audio = load_audio(lc_wav, features.sample_rate)
        except Exception as e:  # soundfile and libsndfile raise several kinds
            raise ValueError(f'--lc_wav {lc_wav}: cannot read it as audio ({e})') from None
        if not audio.size:
            raise ValueError(f'--lc_wav {lc_wav}: contains no audio')
        return features(audio), audio
    try:
        frames = np.load(lc_features, allow_pickle=False)
    except Exception as e:  # a missing file, a pickle, not an .npy at all
        raise ValueError(f'--lc_features {lc_features}: cannot read it as a NumPy .npy file '
                         f'({type(e).__name__}: {e})') from None
    if frames.ndim != 2 or frames.shape[1] != features.channels:
        raise ValueError(f'--lc_features {lc_features}: expected [frames, {features.channels}]'
                         f' features (lc_channels of the network), got shape {frames.shape}')
    if not frames.shape[0]:
        raise ValueError(f'--lc_features {lc_features}: holds no frames')
    if not np.issubdtype(frames.dtype, np.number) or not np.isfinite(frames).all():
        raise ValueError(f'--lc_features {lc_features}: features must be finite numbers')
    return frames.astype(np.float32), None


class WavStream:
    """A wav file written as its samples are generated, without holding them in memory.

    Appended 16-bit samples go to a raw file beside the wav (``<path>.part``); ``save``
    (re)writes the wav from it atomically (a temporary file renamed over the old one), so
    a reader, or a crash, never sees half a wav; ``close`` removes the raw file.
    """

    def __init__(self, path, sample_rate):
        self.path, self.sample_rate = path, sample_rate
        self.part = f'{path}.part'
        self.raw = open(self.part, 'wb')

    def append(self, pcm):
        np.asarray(pcm, '<i2').tofile(self.raw)

    def save(self):
        self.raw.flush()
        temporary = f'{self.path}.tmp'
        try:
            with soundfile.SoundFile(temporary, 'w', self.sample_rate, 1, 'PCM_16',
                                     format='WAV') as wav, open(self.part, 'rb') as raw:
                while block := raw.read(1 << 16):
                    wav.write(np.frombuffer(block, '<i2'))
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(temporary)
            raise

    def close(self, keep_samples=False):
        """Closes the raw file and removes it, unless ``keep_samples`` (what a run that
        could not finish its wav leaves to the user)."""
        with contextlib.suppress(OSError):  # a full disk fails the last flush
            self.raw.close()
        with contextlib.suppress(OSError):
            if not keep_samples:
                os.remove(self.part)
            elif os.path.getsize(self.part) % 2:  # a sample cut in half by a full disk
                os.truncate(self.part, os.path.getsize(self.part) - 1)

