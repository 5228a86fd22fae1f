"""Generation as a user gets it: ``generate.py`` run as a command, side by side in one run.

The network is the default wavenet_params.json with a 32-channel speaker embedding (16
speakers, random weights). Every figure comes from timing whole ``generate.py`` processes:

- the rate: from the difference of a ``--samples LONG`` and a ``--samples SHORT`` run, so
  start-up cancels; batch 1 (one speaker) and batch 16 (16 speakers at once, aggregate);
- start-up: the time of the short run less its samples at that rate, cold (an empty
  compilation cache) and warm (the second run of the same network), beside the time it
  takes Python to import TensorFlow and the toolkit (what no run can avoid);
- peak RSS of the short and long runs (the same when memory does not grow with length);
- the same network as a vocoder (80 mel bands, hop 256, upsampling 4 x 4 x 4 x 4; SPEC
  section 9) voicing random log-mel frames, batch 1: the cost of conditioning.

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
from wavenet.params import build_model, load_params, save_network_description
params = load_params({os.path.join(ROOT, 'wavenet_params.json')!r})
for name, description, gc in (('speakers', params, ({GC_CHANNELS}, {GC_CARDINALITY})),
                              ('vocoder', dict(params, **{VOCODER!r}),
                               (None, None))):
    directory = {work!r} + '/' + name
    net = build_model(description, *gc)
    checkpoint = create_checkpoint(net, optimizer_factory['adam'](1e-3, None))
    tf.train.CheckpointManager(checkpoint, directory, 1, checkpoint_name='model.ckpt').save(1)
    save_network_description(directory, description, *gc)
frames = -(-{samples} // {VOCODER['lc_hop_length']})
np.save({work!r} + '/frames.npy', np.random.default_rng(0).uniform(
    -11, 2, (frames, {VOCODER['lc_channels']})).astype(np.float32))
'''
    made = subprocess.run([sys.executable, '-c', script], env=environment(),
                          capture_output=True, text=True)
    if made.returncode:
        raise SystemExit(f'making the checkpoints failed:\n{made.stderr}')
    return os.path.join(work, 'speakers'), os.path.join(work, 'vocoder')


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


if __name__ == '__main__':
    main()
