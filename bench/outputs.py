"""The two output distributions side by side: training steps and generated samples per
second of the demo vocoder (``demo/vocoder_params.json``) with the softmax over mu-law
codes and with the mixture of logistics over 16-bit samples (which reads the samples as a
scalar input), measured alternately in one run on random audio and features.

    python bench/outputs.py [--steps 20] [--samples 4000] [--repeats 3]
"""
import argparse
import dataclasses
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from wavenet import optimizer_factory  # noqa: E402
from wavenet.generation import (  # noqa: E402
    ConditioningRows,
    generate,
    start_waveform,
    uniform_streams,  # noqa: E402
)
from wavenet.params import NetworkDescription, build_model  # noqa: E402
from wavenet.training import make_train_step  # noqa: E402

PIECE = 8000  # predicted samples per training step, as the quick start


def networks():
    softmax = NetworkDescription.load(os.path.join(ROOT, 'demo', 'vocoder_params.json'))
    # Linear prediction needs the softmax (its excitation is mu-law codes): the mixture
    # predicts the 16-bit samples themselves.
    mixture = dataclasses.replace(
        softmax, output_distribution='mixture_of_logistics', scalar_input=True,
        quantization_channels=2 ** 16, mixture_components=10, log_scale_min=-7.0, lpc_order=0)
    return {'softmax (mu-law 256)': softmax, 'mixture of logistics (16 bit)': mixture}


def trainer(description, steps):
    net = build_model(description)
    features = description.features
    rng = np.random.default_rng(0)
    length = net.receptive_field + PIECE
    frames = -(-length // features.hop_length)
    audio = (0.3 * rng.standard_normal((1, length, 1))).clip(-1, 1).astype(np.float32)
    conditioning = rng.uniform(-11, 2, (1, frames, features.channels)).astype(np.float32)
    step = make_train_step(net, optimizer_factory['adam'](1e-3))
    step(audio, None, conditioning)  # traced and compiled

    def run():
        start = time.perf_counter()
        for _ in range(steps):
            float(step(audio, None, conditioning)['loss'])
        return steps / (time.perf_counter() - start)
    return net, run


def generator(net, description, samples):
    features = description.features
    frames = np.random.default_rng(1).uniform(
        -11, 2, (1, -(-samples // features.hop_length), features.channels)).astype(np.float32)
    noise = uniform_streams(3, [0], samples + 1)

    def run():
        start = start_waveform(net, noise[:, 0])
        rows = ConditioningRows(net, frames, start.shape[1], features)
        began = time.perf_counter()
        for _ in generate(net, start, noise[:, 1:], local_condition=rows):
            pass
        return samples / (time.perf_counter() - began)
    run()  # compiled
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--samples', type=int, default=4000)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    runs = {}
    for name, description in networks().items():
        net, train = trainer(description, args.steps)
        runs[name] = (train, generator(net, description, args.samples))
    rates = {name: ([], []) for name in runs}
    for _ in range(args.repeats):  # alternately, so that both see the same machine
        for name, (train, generate_run) in runs.items():
            rates[name][0].append(train())
            rates[name][1].append(generate_run())
    print(f'{"":34s}{"train steps/s":>16s}{"generated samples/s":>22s}  (medians of '
          f'{args.repeats}; steps of {PIECE} samples, batch 1; generation batch 1)')
    medians = {name: (np.median(t), np.median(g)) for name, (t, g) in rates.items()}
    for name, (train, generated) in medians.items():
        print(f'{name:34s}{train:16.2f}{generated:22.0f}')
    (a, b) = medians.values()
    print(f'{"mixture / softmax":34s}{b[0] / a[0]:15.2f}x{b[1] / a[1]:21.2f}x')


if __name__ == '__main__':
    main()
