"""Does the training step ever wait on audio? Reader throughput vs. training consumption.

Synthesises a VCTK-like corpus at 48 kHz (20 files of 4 s: noise-modulated tones with half a
second of silence at each end) and measures, in seconds of 16 kHz audio per wall-clock second:

- what ``AudioReader`` delivers: load, resample 48 -> 16 kHz, trim silence (threshold 0.3),
  cut into pieces of ``receptive_field + 100000`` samples, batch (train.py's defaults);
- what one training step of the default network (wavenet_params.json, batch 1) consumes,
  timed on pieces of ``receptive_field + 16000`` samples, as bench/train_step.py does (the
  step's cost grows linearly with the piece, so the rate is the same as with 100000), traced
  for pieces of any length as in train.py;
- the same step fed from the reader's pipeline (pieces of ``receptive_field + 16000``, a
  clip's last piece shorter) instead of a fixed batch: equal times mean no waiting on audio.

Run from the repository root: ``python bench/input_pipeline.py``.
"""
import os
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import soundfile  # noqa: E402
import tensorflow as tf  # noqa: E402

from wavenet import AudioReader, optimizer_factory  # noqa: E402
from wavenet.params import NetworkDescription, build_model  # noqa: E402
from wavenet.training import make_train_step  # noqa: E402

FILE_RATE = 48000
FILES = 20
SECONDS = 4.0
READER_SAMPLE_SIZE = 100000
STEP_SAMPLE_SIZE = 16000
PASSES = 3
STEPS = 5


def synthesise_corpus(directory, rng):
    t = np.arange(int(FILE_RATE * SECONDS)) / FILE_RATE
    silence = int(FILE_RATE * 0.5)
    for i in range(FILES):
        speaker = 225 + i % 4
        tone = np.sin(2 * np.pi * rng.uniform(100, 400) * t) * rng.uniform(0.4, 0.9, t.size)
        tone[:silence] = tone[-silence:] = 0
        path = os.path.join(directory, f'p{speaker}', f'p{speaker}_{i:03d}.wav')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        soundfile.write(path, 0.8 * tone, FILE_RATE, subtype='PCM_16')


def reader_rate(reader):
    """Seconds of new audio (pieces minus their receptive-field overlap) per second."""
    batches = iter(reader.dataset(batch_size=1, seed=0))
    for _ in range(FILES):  # one warm-up pass: lazy imports, resampler set-up
        next(batches)
    start, samples = time.perf_counter(), 0
    for _ in range(FILES * PASSES):
        audio, _ = next(batches)
        samples += audio.shape[1] - reader.receptive_field
    return samples / reader.sample_rate / (time.perf_counter() - start)


def relax(train_step, receptive_field):
    """Traces ``train_step`` for pieces of any length, as training on the reader's pieces
    does (a clip's last piece is shorter), so both measurements run the same graph."""
    for length in (STEP_SAMPLE_SIZE, STEP_SAMPLE_SIZE // 2, STEP_SAMPLE_SIZE):
        train_step(tf.zeros([1, receptive_field + length, 1]), None)


def step_rate(train_step, next_batch, receptive_field, sample_rate):
    next_batch()  # start-up latency of a pipeline is not a steady-state cost
    start, samples = time.perf_counter(), 0
    for _ in range(STEPS):
        audio, gc_ids = next_batch()
        float(train_step(audio, gc_ids)['loss'])
        samples += audio.shape[1] - receptive_field
    seconds = time.perf_counter() - start
    return samples / sample_rate / seconds, seconds / STEPS


def main():
    description = NetworkDescription.load(
        os.path.join(os.path.dirname(__file__), '..', 'wavenet_params.json'))
    net = build_model(description)
    rate = description.sample_rate
    with tempfile.TemporaryDirectory() as corpus:
        synthesise_corpus(corpus, np.random.default_rng(0))
        reader = AudioReader(corpus, rate, gc_enabled=False, receptive_field=net.receptive_field,
                             sample_size=READER_SAMPLE_SIZE, silence_threshold=0.3)
        delivered = reader_rate(reader)

        train_step = make_train_step(net, optimizer_factory['adam'](1e-3, 0.9))
        relax(train_step, net.receptive_field)
        fixed = tf.random.uniform([1, net.receptive_field + STEP_SAMPLE_SIZE, 1], -0.5, 0.5)
        consumed, step_seconds = step_rate(train_step, lambda: (fixed, None),
                                           net.receptive_field, rate)

        fed_reader = AudioReader(corpus, rate, gc_enabled=False,
                                 receptive_field=net.receptive_field,
                                 sample_size=STEP_SAMPLE_SIZE, silence_threshold=0.3)
        batches = iter(fed_reader.dataset(batch_size=1, seed=0))
        fed, _ = step_rate(train_step, lambda: (next(batches)[0], None), net.receptive_field,
                           rate)

    print(f'cores: {os.cpu_count()}, default network, receptive field {net.receptive_field}')
    print(f'reader delivers:   {delivered:8.2f} s of audio / s  (48 kHz wav -> {rate} Hz, '
          f'trimmed, {READER_SAMPLE_SIZE}-sample pieces)')
    print(f'training consumes: {consumed:8.2f} s of audio / s  ({step_seconds:.3f} s per step '
          f'of {STEP_SAMPLE_SIZE} samples, batch 1)')
    print(f'ratio:             {delivered / consumed:8.1f} x')
    print(f'training fed by the reader consumes: {fed:.2f} s of audio / s  (vs. {consumed:.2f} '
          'from a fixed batch)')


if __name__ == '__main__':
    main()
