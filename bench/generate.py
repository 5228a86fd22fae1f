"""Generation as a user gets it: ``generate.py`` run as a command, side by side in one run.

The network is the default wavenet_params.json with a 32-channel speaker embedding (16
speakers, random weights). Every figure comes from timing whole ``generate.py`` processes:

- the rate: from the difference of a ``--samples LONG`` and a ``--samples SHORT`` run, so
  start-up cancels; batch 1 (one speaker) and batch 16 (16 speakers at once, aggregate);
- start-up: the time of the short run less its samples at that rate, cold (an empty
  compilation cache) and warm (the second run of the same network), beside the time it
  takes Python to import TensorFlow and the toolkit (what no run can avoid);
- peak RSS of the short and long runs (the same when memory does not grow with length);
- the same network as a vocoder (80 mel bands, hop 256, upsampling 4 x 4 x 4 x 4)
  voicing random log-mel frames, batch 1: the cost of conditioning;
- on the CPU, what the machine allows: NumPy doing only the network's largest matrix
  products, as a bandwidth (batch 1 reads every weight once per sample) and as GFLOP/s
  (batch 16), turned into samples/s.

    python bench/generate.py [--device cpu|gpu] [--short 1000] [--long 9000] [--repeats 2]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATE = os.path.join(ROOT, 'generate.py')
GC_CHANNELS, GC_CARDINALITY = 32, 16
VOCODER = dict(lc_channels=80, lc_hop_length=256, lc_upsample_scales=[4, 4, 4, 4])


def make_checkpoints(work, samples):
    """The default network with speakers and the default network as a vocoder, random
    weights, saved as train.py saves them; and random log-mel frames for ``samples``."""
    script = f'''
import sys
sys.path.insert(0, {ROOT!r})
import numpy as np
import tensorflow as tf
from wavenet import optimizer_factory
from wavenet.checkpoints import create_checkpoint
from wavenet.params import NetworkDescription, build_model
described = NetworkDescription.load({os.path.join(ROOT, 'wavenet_params.json')!r})
for name, description in (
        ('speakers', described.with_speakers({GC_CHANNELS}, {GC_CARDINALITY})),
        ('vocoder', NetworkDescription.checked(dict(described.as_json(), **{VOCODER!r}),
                                               'vocoder'))):
    directory = {work!r} + '/' + name
    net = build_model(description)
    checkpoint = create_checkpoint(net, optimizer_factory['adam'](1e-3, None))
    tf.train.CheckpointManager(checkpoint, directory, 1, checkpoint_name='model.ckpt').save(1)
    description.save(directory)
frames = -(-{samples} // {VOCODER['lc_hop_length']})
np.save({work!r} + '/frames.npy', np.random.default_rng(0).uniform(
    -11, 2, (frames, {VOCODER['lc_channels']})).astype(np.float32))
'''
    made = subprocess.run([sys.executable, '-c', script], env=environment(),
                          capture_output=True, text=True)
    if made.returncode:
        raise SystemExit(f'making the checkpoints failed:\n{made.stderr}')
    return os.path.join(work, 'speakers'), os.path.join(work, 'vocoder')


CEILINGS = r'''
import json, sys, threading, time
import numpy as np
params = json.load(open(sys.argv[1]))
layers, width = len(params['dilations']), params['filter_width']
residual, dilation = params['residual_channels'], params['dilation_channels']
skip, quantization = params['skip_channels'], params['quantization_channels']
# Every weight matrix a generated sample multiplies: per layer filter + gate and dense;
# the skip outputs of all layers; the two post-processing layers.
shapes = [(width * residual, 2 * dilation), (dilation, residual)] * layers + \
    [(layers * dilation, skip), (skip, skip), (skip, quantization)]
rng = np.random.default_rng(0)
weights = [rng.standard_normal(shape, dtype=np.float32) for shape in shapes]
flops = sum(2 * k * n for k, n in shapes)

def seconds_per_step(products, rows, threads, steps):
    inputs = [rng.standard_normal((rows, w.shape[0]), dtype=np.float32) for w in products]
    def run():
        for _ in range(steps):
            for x, w in zip(inputs, products):
                x @ w
    run()
    began = time.perf_counter()
    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return (time.perf_counter() - began) / steps

big = weights[-3:]  # large enough that NumPy's call overhead is noise
bandwidth = sum(w.nbytes for w in big) / seconds_per_step(big, 1, 1, 2000)
gflops = sum(2 * 8 * w.size for w in big) * 2 / seconds_per_step(big, 8, 2, 500) / 1e9
print(bandwidth / sum(w.nbytes for w in weights), gflops * 1e9 / flops,
      bandwidth / 1e9, gflops, sum(w.nbytes for w in weights) / 1e6, flops / 1e6)
'''


def ceilings(env):
    """What this machine's memory and arithmetic allow, from NumPy (OpenBLAS, one thread
    per row group) doing only the network's largest matrix products: batch 1 must read
    every weight once per sample (at the bandwidth of a [1, K] x [K, N] product), batch
    16 must do every multiply-add (at the speed of [8, K] x [K, N] products on 2 cores)."""
    env = dict(env, OPENBLAS_NUM_THREADS='1', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    result = subprocess.run([sys.executable, '-c', CEILINGS,
                             os.path.join(ROOT, 'wavenet_params.json')],
                            env=env, capture_output=True, text=True, check=True)
    return [float(value) for value in result.stdout.split()]


def environment(device='cpu'):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    if device == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''
    return env


def timed(command, env):
    """``(wall seconds, peak RSS in MB)`` of one process."""
    began = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f'{" ".join(command)} failed:\n{process.stderr.read()}')
    return wall, usage.ru_maxrss / 1024


def generate(checkpoint, cache, work, speakers, samples, env):
    conditioning = ['--gc_id', ','.join(map(str, range(speakers)))] if speakers else \
        ['--lc_features', os.path.join(work, 'frames.npy')]
    return timed([sys.executable, GENERATE, checkpoint, '--samples', str(samples),
                  *conditioning, '--seed', '1', '--wav_out_path', os.path.join(work, 'out.wav'),
                  '--logdir', os.path.join(work, 'logdir'), '--cache_dir', cache], env)


def best_of(repeats, measure, *args):
    return min(measure(*args) for _ in range(repeats))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=['cpu', 'gpu'], default='cpu')
    parser.add_argument('--short', type=int, default=1000, help='samples of the short runs')
    parser.add_argument('--long', type=int, default=9000, help='samples of the long runs')
    parser.add_argument('--repeats', type=int, default=2,
                        help='warm runs: the fastest of this many (cold runs happen once)')
    args = parser.parse_args()
    env = environment(args.device)
    with tempfile.TemporaryDirectory() as work:
        cache = os.path.join(work, 'cache')
        speakers_checkpoint, vocoder_checkpoint = make_checkpoints(work, args.long)
        if args.device == 'gpu':
            found = subprocess.run(
                [sys.executable, '-c', 'import tensorflow as tf; '
                 'print(len(tf.config.list_physical_devices("GPU")))'],
                env=env, capture_output=True, text=True).stdout.strip()
            if found in ('', '0'):
                raise SystemExit('--device gpu: TensorFlow sees no GPU here')
            print(f'{found} GPU(s); generation runs on the first')
        limits = ceilings(env) if args.device == 'cpu' else None
        imports, _ = timed([sys.executable, '-c', 'import sys; sys.path.insert(0, sys.argv[1]); '
                            'import wavenet; wavenet.load_tensorflow(); '
                            'import wavenet.generation', ROOT], env)
        rows = []
        for name, checkpoint, speakers in (('1', speakers_checkpoint, 1),
                                           ('16', speakers_checkpoint, 16),
                                           ('1 vocoder', vocoder_checkpoint, 0)):
            cold, _ = generate(checkpoint, cache, work, speakers, args.short, env)
            warm, short_rss = best_of(args.repeats, generate, checkpoint, cache, work,
                                      speakers, args.short, env)
            long, long_rss = best_of(args.repeats, generate, checkpoint, cache, work,
                                     speakers, args.long, env)
            batch = max(speakers, 1)
            rate = batch * (args.long - args.short) / (long - warm)
            work_time = batch * args.short / rate
            rows.append((name, rate, cold - work_time, warm - work_time, short_rss, long_rss))
    print(f'generate.py on the {args.device}, default network + {GC_CHANNELS}-channel '
          f'speakers; rates from --samples {args.long} minus --samples {args.short}')
    print(f'importing TensorFlow and the toolkit: {imports:.2f} s')
    print(f'{"batch":>9} {"samples/s":>10} {"start-up cold":>14} {"start-up warm":>14} '
          f'{"beyond imports":>15} {"peak RSS":>21}')
    for name, rate, cold, warm, short_rss, long_rss in rows:
        print(f'{name:>9} {rate:10.0f} {cold:12.2f} s {warm:12.2f} s '
              f'{warm - imports:13.2f} s {short_rss:6.0f} MB / {long_rss:6.0f} MB')
    print(f'batch 16 / batch 1: {rows[1][1] / rows[0][1]:.2f}; vocoder / unconditioned, '
          f'batch 1: {rows[2][1] / rows[0][1]:.3f} (target >= 0.85)')
    print(f'(peak RSS of the --samples {args.short} / {args.long} runs; targets on the 2-core '
          'CPU: batch 1 >= 8000/s, batch 16 >= 45000/s, warm start-up <= 5 s and <= 1.5 s '
          'beyond imports)')
    if limits:
        batch_1, batch_16, bandwidth, gflops, megabytes, megaflops = limits
        print(f'this machine, NumPy doing only the matrix products: batch 1 reads '
              f'{megabytes:.1f} MB of weights per sample at {bandwidth:.1f} GB/s on one core '
              f'-> at most {batch_1:.0f} samples/s; batch 16 does {megaflops:.2f} MFLOP per '
              f'sample at {gflops:.0f} GFLOP/s on 2 cores -> at most {batch_16:.0f} samples/s')


if __name__ == '__main__':
    main()
