"""The training step compiled by XLA (``train.py --jit_compile=true``) and not, side by side
in one run: the demo vocoder, the demo network and the default network, each at the piece
length its recipe trains on, on random audio (and features). Every network and mode runs in
a process of its own, alternately, ``--repeats`` times; a figure is the median over the
repeats of each process's median step after its warm-up.

    python bench/compiled_step.py [--steps 30] [--warmup 10] [--repeats 2]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# name: (params file, predicted samples per piece, speakers), as the recipes train them.
NETWORKS = {
    'demo vocoder': ('demo/vocoder_params.json', 8000, None),
    'demo network': ('demo/wavenet_params.json', 8000, (32, 229)),
    'default network': ('wavenet_params.json', 16000, (32, 377)),
}


def measure(name, compiled, steps, warmup):
    """In a child process: one network's step, printed as a JSON line of seconds."""
    import numpy as np

    from wavenet import optimizer_factory
    from wavenet.params import NetworkDescription, build_model
    from wavenet.training import make_train_step

    path, samples, speakers = NETWORKS[name]
    description = NetworkDescription.load(os.path.join(ROOT, path))
    if speakers:
        description = description.with_speakers(*speakers)
    net = build_model(description)
    rng = np.random.default_rng(0)
    features = description.features
    if features:  # the reader rounds a vocoder's pieces up to whole frames
        samples = features.frame_count(samples) * features.hop_length
    length = net.receptive_field + samples
    audio = (0.3 * rng.standard_normal((1, length, 1))).clip(-1, 1).astype(np.float32)
    gc_ids = np.array([225], np.int32) if speakers else None
    frames = None
    if features:
        frames = rng.uniform(-11, 2, (1, features.frame_count(length), features.channels))
        frames = frames.astype(np.float32)
    step = make_train_step(net, optimizer_factory['adam'](1e-3), jit_compile=compiled)
    start = time.perf_counter()
    float(step(audio, gc_ids, frames)['loss'])
    first = time.perf_counter() - start
    times = []
    for _ in range(warmup + steps):
        start = time.perf_counter()
        float(step(audio, gc_ids, frames)['loss'])
        times.append(time.perf_counter() - start)
    print(json.dumps({'first': first, 'step': statistics.median(times[warmup:]),
                      'weights': net.count_params()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=10)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--only', nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        return measure(args.only[0], args.only[1] == 'compiled', args.steps, args.warmup)

    figures = {}
    for _ in range(args.repeats):
        for name in NETWORKS:
            for mode in ('compiled', 'not'):
                out = subprocess.run([sys.executable, __file__, '--only', name, mode,
                                      '--steps', str(args.steps), '--warmup', str(args.warmup)],
                                     check=True, capture_output=True, text=True).stdout
                figures.setdefault((name, mode), []).append(json.loads(out.splitlines()[-1]))
    print(f'training step, batch 1, median of {args.steps} steps after {args.warmup}, '
          f'median of {args.repeats} processes each, {os.cpu_count()} CPU cores')
    print(f'{"network":16s} {"weights":>9s} {"not compiled":>13s} {"compiled":>9s} '
          f'{"speed-up":>9s} {"first step, not / compiled":>28s}')
    for name in NETWORKS:
        plain, compiled = figures[(name, 'not')], figures[(name, 'compiled')]

        def median(runs, key):
            return statistics.median(run[key] for run in runs)
        print(f'{name:16s} {plain[0]["weights"]:9d} {median(plain, "step"):11.3f} s '
              f'{median(compiled, "step"):7.3f} s '
              f'{median(plain, "step") / median(compiled, "step"):8.2f}x '
              f'{median(plain, "first"):15.1f} s / {median(compiled, "first"):.1f} s')


if __name__ == '__main__':
    main()
