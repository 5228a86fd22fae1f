"""What --sample_every costs a training: the default network with speakers, one training
step on train.py's default pieces (100000 predicted samples) beside one sampling of
--sample_seconds for four speakers (the first, which also compiles the loop, and a later
one), and the slowdown that makes at --sample_every 1000.

    python bench/sampling.py [--steps 3] [--sample_seconds 1]
"""
import argparse
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from wavenet import optimizer_factory  # noqa: E402
from wavenet.checkpoints import create_checkpoint  # noqa: E402
from wavenet.params import NetworkDescription, build_model  # noqa: E402
from wavenet.summaries import Sampler  # noqa: E402
from wavenet.training import make_train_step  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=3)
    parser.add_argument('--samples', type=int, default=100000)
    parser.add_argument('--sample_seconds', type=float, default=1.0)
    parser.add_argument('--sample_every', type=int, default=1000)
    args = parser.parse_args()

    description = NetworkDescription.load(
        os.path.join(ROOT, 'wavenet_params.json')).with_speakers(32, 229)
    net = build_model(description)
    optimizer = optimizer_factory['adam'](1e-3, None)
    create_checkpoint(net, optimizer)
    step = make_train_step(net, optimizer)
    rng = np.random.default_rng(0)
    audio = rng.uniform(-0.5, 0.5, (1, description.receptive_field + args.samples, 1))
    audio, speaker = tf.constant(audio, tf.float32), tf.constant([225])
    float(step(audio, speaker)['loss'])  # compile
    began = time.perf_counter()
    for _ in range(args.steps):
        float(step(audio, speaker)['loss'])
    step_seconds = (time.perf_counter() - began) / args.steps

    sampler = Sampler(net, description.sample_rate, args.sample_seconds, [225, 226, 227, 228])
    writer = tf.summary.create_noop_writer()
    began = time.perf_counter()
    sampler(0, writer)
    first = time.perf_counter() - began
    began = time.perf_counter()
    sampler(1000, writer)
    later = time.perf_counter() - began

    training = args.sample_every * step_seconds
    print(f'Default wavenet_params.json with speakers, batch 1 x {args.samples} samples')
    print(f'  training step:                       {step_seconds:8.2f} s')
    print(f'  sampling 4 x {args.sample_seconds:g} s, first (compiles): {first:8.2f} s')
    print(f'  sampling 4 x {args.sample_seconds:g} s, later:            {later:8.2f} s')
    print(f'  slowdown at --sample_every {args.sample_every}: {100 * later / training:.2f} % '
          f'({100 * first / training:.2f} % for the first {args.sample_every} steps)')


if __name__ == '__main__':
    main()
