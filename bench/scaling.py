"""Training across devices: predicted samples per second on one device, on two logical CPU
replicas (MirroredStrategy; every GPU instead when there are GPUs, with their count) and on
two localhost workers (MultiWorkerMirroredStrategy), the same global batch and network, side
by side in one run.

The step is train.py's (``make_train_step`` under the strategy, batches from
``distribute_batches``); the audio is random, so the input pipeline costs nothing and what
is measured is the step and the all-reduce. Each configuration runs in its own processes,
as devices and clusters are fixed when TensorFlow starts. The two localhost workers stand
for two machines, so each gets half of this machine's cores (as --cpu_devices gives each
logical CPU).

    python bench/scaling.py [--steps 20] [--batch_size 2] [--samples 8000]
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
sys.path.insert(0, ROOT)


def measure(args):
    """In a child process: the rate of ``args.steps`` steps under ``args.child``'s strategy."""
    import numpy as np
    import tensorflow as tf

    from wavenet import distribution, optimizer_factory
    from wavenet.checkpoints import create_checkpoint
    from wavenet.params import NetworkDescription, build_model
    from wavenet.training import make_train_step

    kind = {'single': 'none', 'replicas': 'mirrored', 'worker': 'multi_worker'}[args.child]
    gpus = tf.config.list_physical_devices('GPU')
    strategy = distribution.choose_strategy(
        kind, cpu_devices=2 if args.child == 'replicas' and not gpus else None)
    description = NetworkDescription.load(os.path.join(ROOT, 'wavenet_params.json'))
    length = description.receptive_field + args.samples
    with strategy.scope():
        net = build_model(description)
        optimizer = optimizer_factory['adam'](1e-3, None)
        create_checkpoint(net, optimizer)

    def make_dataset(batch_size, shards, shard):
        rng = np.random.default_rng(shard)
        audio = rng.uniform(-0.5, 0.5, (batch_size, length, 1)).astype(np.float32)
        return tf.data.Dataset.from_tensors((audio, np.zeros(batch_size, np.int32))).repeat()

    batches = distribution.distribute_batches(strategy, make_dataset, args.batch_size)
    step = make_train_step(net, optimizer, strategy=strategy)
    for _ in range(3):  # compile and warm up
        audio, _ = next(batches)
        float(step(audio)['loss'])
    start = time.perf_counter()
    for _ in range(args.steps):
        audio, _ = next(batches)
        float(step(audio)['loss'])
    elapsed = time.perf_counter() - start
    print(json.dumps({'rate': args.batch_size * args.samples * args.steps / elapsed,
                      'replicas': strategy.num_replicas_in_sync,
                      'gpus': len(gpus)}), flush=True)


def run_children(args, child, tf_configs=(None,)):
    """Starts one child per ``TF_CONFIG`` and returns the first one's result."""
    command = [sys.executable, os.path.abspath(__file__), '--child', child,
               '--steps', str(args.steps), '--batch_size', str(args.batch_size),
               '--samples', str(args.samples)]
    processes = []
    for tf_config in tf_configs:
        env = dict(os.environ)
        if tf_config is not None:
            env['TF_CONFIG'] = tf_config
            # Workers stand for machines: each gets its share of this machine's cores.
            env['TF_NUM_INTRAOP_THREADS'] = str(max(1, (os.cpu_count() or 1) // len(tf_configs)))
        processes.append(subprocess.Popen(command, env=env, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outputs = [p.communicate(timeout=1800) for p in processes]
    for p, (_, stderr) in zip(processes, outputs):
        if p.returncode:
            sys.exit(f'{child} failed:\n{stderr}')
    return json.loads(outputs[0][0].strip().splitlines()[-1])


def cluster_configs(workers):
    sockets = [socket.socket() for _ in range(workers)]
    for s in sockets:
        s.bind(('localhost', 0))
    hosts = [f'localhost:{s.getsockname()[1]}' for s in sockets]
    for s in sockets:
        s.close()
    return [json.dumps({'cluster': {'worker': hosts}, 'task': {'type': 'worker', 'index': i}})
            for i in range(workers)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--batch_size', type=int, default=2, help='the global batch')
    parser.add_argument('--samples', type=int, default=8000,
                        help='predicted samples per piece (plus the receptive field)')
    parser.add_argument('--child', choices=['single', 'replicas', 'worker'])
    args = parser.parse_args()
    if args.child:
        return measure(args)

    print(f'Default wavenet_params.json, global batch {args.batch_size} x {args.samples} '
          f'predicted samples, Adam, {args.steps} steps after 3 of warm-up (os.cpu_count() = '
          f'{os.cpu_count()})')
    single = run_children(args, 'single')
    mirrored = run_children(args, 'replicas')
    devices = f'{single["gpus"]} GPUs' if single['gpus'] else '2 logical CPUs'
    rows = [('(a) one device', single),
            (f'(b) mirrored over {devices}', mirrored),
            ('(c) 2 localhost workers (multi_worker)', run_children(args, 'worker',
                                                                     cluster_configs(2)))]
    for name, result in rows:
        print(f'{name:42s} {result["rate"]:9.0f} predicted samples/s  '
              f'{result["rate"] / single["rate"]:5.2f}x  ({result["replicas"]} replicas)')


if __name__ == '__main__':
    main()
