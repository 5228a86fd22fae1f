"""Generation throughput with the default network (random weights), measured side by side:

(a) the original's design: a Python loop calling the compiled incremental step once per
    sample and sampling in NumPy;
(b) the in-graph loop (wavenet.generation), batch 1;
(c) the in-graph loop, 16 speakers at once (aggregate samples/s);
(d) the in-graph loop, batch 1, for the same network as a vocoder (80 mel bands, hop 256,
    upsampling scales 4 x 4 x 4 x 4; SPEC section 9), beside (b): the cost of conditioning.

    python bench/generate.py [--repeats 3]
"""
import argparse
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from wavenet.features import MelFeatures  # noqa: E402
from wavenet.generation import (  # noqa: E402
    conditioning_rows,
    generate,
    start_waveform,
    uniform_streams,
)
from wavenet.params import build_model, load_params  # noqa: E402

PARAMS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      'wavenet_params.json')


def baseline(net, samples, temperature=1.0):
    """The original's loop: one compiled call per sample, sampling in NumPy."""
    step = tf.function(net.incremental_step)
    rng = np.random.default_rng(0)
    state = net.zero_incremental_state(1)
    code = np.array([net.quantization_channels // 2], np.int32)
    proba, state = step(code, state)  # compile
    began = time.perf_counter()
    for _ in range(samples):
        proba, state = step(code, state)
        scaled = np.log(proba.numpy()[0].astype(np.float64)) / temperature
        scaled = np.exp(scaled - np.logaddexp.reduce(scaled))
        code = np.array([rng.choice(net.quantization_channels, p=scaled)], np.int32)
    return samples / (time.perf_counter() - began)


VOCODER = dict(lc_channels=80, lc_hop_length=256, lc_upsample_scales=[4, 4, 4, 4])


def in_graph(net, rows, samples):
    """The compiled loop; samples/s summed over ``rows`` speakers. A vocoder voices random
    log-mel frames; the time includes upsampling them (once, before the loop)."""
    noise = uniform_streams(0, range(rows), samples + 1)
    start = start_waveform(net, noise[:, 0])
    began = time.perf_counter()
    lc_rows = None
    if net.local_condition_channels is not None:
        features = MelFeatures(16000, net.local_condition_channels, net.lc_hop_length)
        frames = np.random.default_rng(0).uniform(-11, 2, (
            rows, features.frame_count(samples), features.channels)).astype(np.float32)
        lc_rows = conditioning_rows(net, frames, start.shape[1], samples, features.silence)
    for _ in generate(net, start, noise[:, 1:], local_condition=lc_rows):
        pass
    return rows * samples / (time.perf_counter() - began)


def best_of(repeats, measure, *args):
    return max(measure(*args) for _ in range(repeats))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=3, help='best of this many runs')
    args = parser.parse_args()
    params = load_params(PARAMS)
    net = build_model(params)
    vocoder = build_model(dict(params, **VOCODER))
    print(f'default wavenet_params.json: receptive field {net.receptive_field}, '
          f'{sum(int(np.prod(v.shape)) for v in net.weights) * 4 / 1e6:.1f} MB of weights; '
          f'best of {args.repeats}')
    # Trace and compile, once per network and batch size.
    in_graph(net, 1, 1000), in_graph(net, 16, 1000), in_graph(vocoder, 1, 1000)
    figures = {
        '(a) baseline: compiled step per sample + NumPy sampling, batch 1':
            best_of(args.repeats, baseline, net, 300),
        '(b) in-graph loop, batch 1': best_of(args.repeats, in_graph, net, 1, 4000),
        '(c) in-graph loop, batch 16 (aggregate)': best_of(args.repeats, in_graph, net, 16, 1000),
        '(d) in-graph loop, batch 1, as a vocoder (80 mel bands)':
            best_of(args.repeats, in_graph, vocoder, 1, 4000),
    }
    base = next(iter(figures.values()))
    for name, rate in figures.items():
        print(f'{name:66s} {rate:8.0f} samples/s  {rate / base:6.1f}x')
    unconditioned = figures['(b) in-graph loop, batch 1']
    conditioned = figures['(d) in-graph loop, batch 1, as a vocoder (80 mel bands)']
    print(f'conditioned / unconditioned, batch 1: {conditioned / unconditioned:.3f} '
          '(target >= 0.85)')


if __name__ == '__main__':
    main()
