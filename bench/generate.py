"""Generation as a user gets it: ``generate.py`` run as a command, side by side in one run.

    python bench/generate.py [--against REV | --serving] [--device cpu|gpu] [--repeats 3]

The network is the default wavenet_params.json with a 32-channel speaker embedding (16
speakers), and the same network as a vocoder (80 mel bands, hop 256, upsampling
4 x 4 x 4 x 4) voicing random log-mel frames. Each checkout trains its own checkpoint of
them for one step with its own ``train.py`` (so any two versions can be compared, whatever
their checkpoint format), then every figure comes from timing whole ``generate.py``
processes:

- the rate: from the difference of a long and a short (``--short``) run, so start-up
  cancels; batch 1 (one speaker), 16 speakers in one batch (aggregate), and the vocoder;
- warm start-up: the short run's time less its samples at that rate, with the compiled
  loop in the cache (a first run fills it), beyond the time it takes to import
  TensorFlow as this checkout's tools do (``wavenet.load_tensorflow``), timed in a
  process of its own just before each short run;
- peak RSS of the short and long runs (the same when memory does not grow with length).

With ``--against REV``, REV is checked out in a temporary git worktree and the two
checkouts run alternately, each measurement the median of ``--repeats``; the ratios are
above 1 when this checkout is faster: rates this / REV, start-up REV / this. A case a
checkout cannot run (a vocoder before vocoders existed) prints as a dash.

With ``--serving``, the second column is instead this checkout's checkpoints exported
(``python -m wavenet.export``) and run by a Python that does not import wavenet, the
SavedModel loaded and its signature called (``generate``, ``generate_batch`` with 16
speakers, ``vocode`` with the frames that cover the samples), timed the same way.
"""
import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GC_CHANNELS, SPEAKERS = 32, 16
VOCODER = dict(lc_channels=80, lc_hop_length=256, lc_upsample_scales=[4, 4, 4, 4])
# Samples of each case's long run: long enough that start-up's run-to-run variation is a
# few per cent of the difference to the short run.
LONG = {'batch 1': 161000, '16 speakers': 61000, 'vocoder': 161000}


# What a served run does: load the SavedModel (argv 1) and generate argv 3 samples of
# case argv 2 (the vocoder voicing the frames of argv 4 that cover them, argv 5 samples
# per frame; argv 6 speakers in a batch).
SERVE = """
import sys
import numpy as np
import tensorflow as tf
model, case, samples = tf.saved_model.load(sys.argv[1]), sys.argv[2], int(sys.argv[3])
common = dict(seed=tf.constant(1, tf.int64), temperature=tf.constant(1.0))
if case == 'vocoder':
    frames = np.load(sys.argv[4])[:-(-samples // int(sys.argv[5]))]
    model.signatures['vocode'](features=tf.constant(frames), **common)
elif case == 'batch 1':
    model.signatures['generate'](samples=samples, speaker=0, **common)
else:
    model.signatures['generate_batch'](samples=samples, speakers=list(range(int(sys.argv[6]))),
                                       **common)
"""


@dataclasses.dataclass
class Checkout:
    """A checkout of the toolkit (``name``: 'this' or a revision) and its checkpoints, or
    (``served``) the SavedModels exported from this checkout's."""
    name: str
    root: str
    checkpoints: dict = dataclasses.field(default_factory=dict)
    served: bool = False

    def offers(self, flag):
        """Whether its generate.py has ``flag`` (older versions lack some; newer keep the
        tool in wavenet/generate.py)."""
        scripts = [os.path.join(self.root, 'generate.py'),
                   os.path.join(self.root, 'wavenet', 'generate.py')]
        return any(f"'{flag}'" in open(path).read() for path in scripts if os.path.exists(path))


def worktree(revision, directory):
    """A detached git worktree of ``revision`` in ``directory``."""
    subprocess.run(['git', '-C', ROOT, 'worktree', 'add', '--detach', '--quiet', directory,
                    revision], check=True)
    return directory


def write_corpus(directory, sample_rate=16000):
    """One half-second tone per speaker, named as VCTK names them."""
    t = np.arange(sample_rate // 2) / sample_rate
    for speaker in range(SPEAKERS):
        path = os.path.join(directory, f'p{speaker}', f'p{speaker}_001.wav')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        soundfile.write(path, 0.5 * np.sin(2 * np.pi * 110 * (speaker + 1) * t), sample_rate)
    return directory


def train_checkpoints(checkout, work, corpus, env):
    """One training step of each network with the checkout's own train.py."""
    with open(os.path.join(ROOT, 'wavenet_params.json')) as default:
        params = json.load(default)
    networks = {'speakers': (params, ['--gc_channels', str(GC_CHANNELS)])}
    if checkout.offers('--lc_features'):
        networks['vocoder'] = (dict(params, **VOCODER), [])
    for name, (fields, flags) in networks.items():
        checkout.checkpoints[name] = train_one_step(
            os.path.join(checkout.root, 'train.py'), os.path.join(work, checkout.name, name),
            fields, flags, corpus, env)


def train_one_step(train, directory, fields, flags, corpus, env):
    """``directory``, holding a checkpoint of the network that the params ``fields``
    describe after one step of the training script ``train`` on ``corpus``."""
    os.makedirs(directory)
    params = os.path.join(directory, 'params.json')
    with open(params, 'w') as file:
        json.dump(fields, file)
    trained = subprocess.run([sys.executable, train, '--data_dir', corpus, '--logdir',
                              directory, '--num_steps', '1', '--wavenet_params', params,
                              '--silence_threshold', '0', *flags],
                             env=env, capture_output=True, text=True)
    if trained.returncode:
        raise SystemExit(f'{train} failed on the network of {params}:\n{trained.stderr}')
    return directory


def export_checkpoints(this, served, work, env):
    """Exports each of this checkout's checkpoints for ``served``."""
    for name, checkpoint in this.checkpoints.items():
        model = os.path.join(work, 'served', name)
        exported = subprocess.run([sys.executable, '-m', 'wavenet.export', checkpoint, model],
                                  cwd=ROOT, env=env, capture_output=True, text=True)
        if exported.returncode:
            raise SystemExit(f'exporting the {name} network failed:\n{exported.stderr}')
        served.checkpoints[name] = model


def write_frames(path, samples):
    """Random log-mel frames for ``samples`` samples of the vocoder."""
    count = -(-samples // VOCODER['lc_hop_length'])
    np.save(path, np.random.default_rng(0).uniform(
        -11, 2, (count, VOCODER['lc_channels'])).astype(np.float32))


def timed(command, env):
    """``(wall seconds, peak RSS in MB)`` of one process."""
    began = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f'{" ".join(command)} failed:\n{process.stderr.read()}')
    return wall, usage.ru_maxrss / 1024


def run(checkout, case, samples, work, env):
    """One generate.py process of ``case``; ``None`` when the checkout cannot run it."""
    if checkout.served:
        model = checkout.checkpoints['vocoder' if case == 'vocoder' else 'speakers']
        return timed([sys.executable, '-I', '-c', SERVE, model, case, str(samples),
                      os.path.join(work, 'frames.npy'), str(VOCODER['lc_hop_length']),
                      str(SPEAKERS)], env)
    if case == 'vocoder':
        if 'vocoder' not in checkout.checkpoints:
            return None
        checkpoint = checkout.checkpoints['vocoder']
        flags = ['--lc_features', os.path.join(work, 'frames.npy')]
    else:
        speakers = 1 if case == 'batch 1' else SPEAKERS
        checkpoint = checkout.checkpoints['speakers']
        flags = ['--gc_id', ','.join(str(s) for s in range(speakers))]
    if checkout.offers('--cache_dir'):
        flags += ['--cache_dir', os.path.join(work, checkout.name, 'cache')]
    return timed([sys.executable, os.path.join(checkout.root, 'generate.py'), checkpoint,
                  '--samples', str(samples), *flags, '--seed', '1',
                  '--wav_out_path', os.path.join(work, 'out.wav'),
                  '--logdir', os.path.join(work, 'logdir')], env)


@dataclasses.dataclass
class Figures:
    """One checkout's measurements of one case, a value per repeat."""
    rates: list = dataclasses.field(default_factory=list)
    starts: list = dataclasses.field(default_factory=list)  # beyond importing TensorFlow
    rss: tuple = (0, 0)

    def add(self, case, short, long, samples_short, imports):
        batch = SPEAKERS if case == '16 speakers' else 1
        rate = batch * (LONG[case] - samples_short) / (long[0] - short[0])
        self.rates.append(rate)
        self.starts.append(short[0] - batch * samples_short / rate - imports)
        self.rss = (short[1], long[1])


def measure(checkouts, repeats, short, work, env):
    """``({(checkout name, case): Figures}, [import seconds])``, the checkouts alternating,
    the first of each pair swapped from repeat to repeat; a first short run of each case
    fills the caches. Each short run follows a process that only imports TensorFlow, and
    its start-up is counted beyond that one's import: the import varies by seconds over a
    run of this bench, so it is timed beside what it is subtracted from."""
    figures, imports = {}, []
    for case in LONG:
        for checkout in checkouts:
            if run(checkout, case, short, work, env) is not None:
                figures[checkout.name, case] = Figures()
        for repeat in range(repeats):
            order = checkouts if repeat % 2 == 0 else checkouts[::-1]
            for checkout in order:
                if (checkout.name, case) in figures:
                    imports.append(import_seconds(env))
                    figures[checkout.name, case].add(
                        case, run(checkout, case, short, work, env),
                        run(checkout, case, LONG[case], work, env), short, imports[-1])
    return figures, imports


def import_seconds(env):
    """How long Python takes to import TensorFlow as this checkout's tools do (without
    scikit-learn, see ``wavenet.load_tensorflow``): what no run avoids."""
    command = [sys.executable, '-c', 'import sys; sys.path.insert(0, sys.argv[1]); '
               'import wavenet; wavenet.load_tensorflow()', ROOT]
    return timed(command, env)[0]


def report(checkouts, figures, imports, repeats, device):
    names = [checkout.name for checkout in checkouts]
    print(f'generate.py on the {device}, default network + {GC_CHANNELS}-channel speakers; '
          f'medians of {repeats}; rates from --samples {LONG["batch 1"]} (16 speakers: '
          f'{LONG["16 speakers"]}) minus --samples of the short run')
    print(f'importing TensorFlow as the tools do: {statistics.median(imports):.2f} s (median; '
          f'from {min(imports):.2f} to {max(imports):.2f} s)')
    # Each ratio is above 1 when this checkout is faster: a higher rate, a shorter start-up.
    tables = (('samples/s', lambda f: statistics.median(f.rates), '{:14.0f}', True),
              ('warm start-up beyond importing TensorFlow, s',
               lambda f: statistics.median(f.starts), '{:14.2f}', False))
    for title, value, cell, higher_is_faster in tables:
        ratio = '' if len(names) == 1 else \
            f'  this / {names[1]}' if higher_is_faster else f'  {names[1]} / this'
        print(f'\n{title}\n{"":>12}' + ''.join(f'{name[:12]:>14}' for name in names) + ratio)
        for case in LONG:
            found = [figures.get((name, case)) for name in names]
            values = [None if f is None else value(f) for f in found]
            line = f'{case:>12}' + ''.join(f'{"—":>14}' if v is None else cell.format(v)
                                           for v in values)
            if len(values) > 1 and None not in values:
                faster = values[0] / values[1] if higher_is_faster else values[1] / values[0]
                line += f'{faster:14.2f}×'
            print(line)
    print('\npeak RSS of the short / long run (this checkout)')
    for case in LONG:
        if ('this', case) in figures:
            short_rss, long_rss = figures['this', case].rss
            print(f'{case:>12} {short_rss:8.0f} MB / {long_rss:.0f} MB')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--against', metavar='REV', default=None,
                        help='a git revision to time side by side with this checkout')
    parser.add_argument('--serving', action='store_true',
                        help="time this checkout's networks exported as SavedModels beside it")
    parser.add_argument('--device', choices=['cpu', 'gpu'], default='cpu')
    parser.add_argument('--repeats', type=int, default=3, help='runs of each measurement')
    parser.add_argument('--short', type=int, default=1000, help='samples of the short run')
    args = parser.parse_args()
    if args.against and args.serving:
        parser.error('--against and --serving: one second column at a time')
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    if args.device == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''
    else:
        found = subprocess.run([sys.executable, '-c', 'import tensorflow as tf; '
                                'print(len(tf.config.list_physical_devices("GPU")))'],
                               env=env, capture_output=True, text=True).stdout.strip()
        if found in ('', '0'):
            raise SystemExit('--device gpu: TensorFlow sees no GPU here')
    with tempfile.TemporaryDirectory() as work:
        # The compiled loops go to this run's folders, not the user's cache.
        env['WAVENET_CACHE_DIR'] = os.path.join(work, 'cache')
        checkouts = [Checkout('this', ROOT)]
        if args.against:
            checkouts.append(Checkout(args.against, worktree(args.against,
                                                             os.path.join(work, 'against'))))
        try:
            corpus = write_corpus(os.path.join(work, 'corpus'))
            write_frames(os.path.join(work, 'frames.npy'), LONG['vocoder'])
            for checkout in checkouts:
                train_checkpoints(checkout, work, corpus, env)
            if args.serving:
                checkouts.append(Checkout('SavedModel', ROOT, served=True))
                export_checkpoints(checkouts[0], checkouts[1], work, env)
            figures, imports = measure(checkouts, args.repeats, args.short, work, env)
        finally:
            if args.against:
                subprocess.run(['git', '-C', ROOT, 'worktree', 'remove', '--force',
                                checkouts[1].root], check=False)
    report(checkouts, figures, imports, args.repeats, args.device)


if __name__ == '__main__':
    main()
