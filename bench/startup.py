"""Where a warm generate.py start-up goes, phase by phase, before and after the samples.

    python bench/startup.py [--repeats 3]

The default network with a 32-channel speaker embedding, trained for one step by this
checkout's train.py, generating 1000 samples for one speaker as ``generate.py`` does, in a
fresh process per repeat with the compiled loop already in the compilation cache (a first
process fills it). Each phase is timed in that process, in the order generate.py runs them:

- importing TensorFlow as the tools do, and reading the flags and the checkpoint's files;
- building the network (its weights zeros: the checkpoint overwrites them) and restoring it;
- the generation's inputs: the random streams, the start codes, the steady state of silence;
- tracing the compiled loop (Python builds its graph), and lowering that graph to XLA's HLO
  (TensorFlow does this on every first call, before it looks the executable up in the
  cache by the HLO's fingerprint; timed apart here, so the first call repeats it);
- the first call: lowering, loading the executable from the cache, one chunk of samples;
  the second call: one chunk alone, so the first less the second is the call's start-up;
- the TensorBoard summaries: the audio and its spectrogram picture.

Prints the median of each phase over ``--repeats`` processes, and their sum.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What one process runs (argv: the checkpoint, a work folder); prints its phases as JSON.
PHASES = r"""
import json, os, sys, time
began = time.perf_counter()
sys.path.insert(0, os.environ['WAVENET_ROOT'])
phases = {}
def phase(name, since):
    now = time.perf_counter()
    phases[name] = now - since
    return now
from wavenet import generate, load_tensorflow
checkpoint, work = sys.argv[1:3]
sys.argv = ['generate.py', checkpoint, '--samples', '1000', '--gc_id', '0', '--seed', '1',
            '--logdir', os.path.join(work, 'logdir')]
args = generate.get_arguments().parse_args()
generate.configure_runtime(args)
t = phase('Python and the flags', began)
tf = load_tensorflow()
t = phase('importing TensorFlow', t)
from wavenet import checkpoints, generation
from wavenet.params import build_model
prefix = checkpoints.find_checkpoint(args.checkpoint)
description, source = checkpoints.network_description(prefix, None, None, None)
checkpoints.check_checkpoint(prefix, description, source)
t = phase('reading the checkpoint files', t)
net = build_model(description, restoring=True)
t = phase('building the network', t)
checkpoints.restore_model(net, prefix)
t = phase('restoring its weights', t)
streams = generation.UniformStreams(1, [0])
start = generation.start_waveform(net, streams(0, 1)[:, 0], None)
inputs = generation._inputs(net, lambda begin, count: streams(begin + 1, count), 1000, [0],
                            1.0, generation.CHUNK, None)
run = generation._FastGeneration(net, start, inputs)
(group,) = run.groups
# The first chunk of drawn samples, called as a generation calls it.
call = group.loop_arguments(group.carry, *run._chunk_inputs(run.start.shape[1], run.drawn,
                                                           run._sample_draws(0)))
t = phase('inputs and the steady state', t)
run.loop.run.get_concrete_function(*call)
t = phase('tracing the loop', t)
run.loop.run.experimental_get_compiler_ir(*call)(stage='hlo_serialized')
t = phase('lowering it to HLO (apart)', t)
codes = run.loop.run(*call)[0].numpy()
t = phase('first call', t)
run.loop.run(*call)[0].numpy()
t = phase('second call (a chunk)', t)
plan = generate.Plan(net, prefix, description, None, [], [(None, 0, 0)], [[]], [])
generate.write_summaries(args, plan, [codes[0]])
t = phase('TensorBoard audio and picture', t)
print(json.dumps(phases))
"""


def train_checkpoint(work, env):
    """One training step of the default network with 32-channel speakers, as
    bench/generate.py trains it."""
    sys.path.insert(0, os.path.join(ROOT, 'bench'))
    from generate import GC_CHANNELS, train_one_step, write_corpus  # bench/generate.py's

    with open(os.path.join(ROOT, 'wavenet_params.json')) as default:
        params = json.load(default)
    return train_one_step(os.path.join(ROOT, 'train.py'), os.path.join(work, 'train'), params,
                          ['--gc_channels', str(GC_CHANNELS)],
                          write_corpus(os.path.join(work, 'corpus')), env)


def phases(checkpoint, work, env):
    """``{phase: seconds}`` of one process."""
    done = subprocess.run([sys.executable, '-c', PHASES, checkpoint, work], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f'the timed process failed:\n{done.stderr}')
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=3, help='warm processes timed')
    args = parser.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES='',
               WAVENET_ROOT=ROOT)
    with tempfile.TemporaryDirectory() as work:
        env['WAVENET_CACHE_DIR'] = os.path.join(work, 'cache')
        checkpoint = train_checkpoint(work, env)
        phases(checkpoint, work, env)  # fills the compilation cache
        runs = [phases(checkpoint, work, env) for _ in range(args.repeats)]
    print(f'A warm generate.py start-up, default network + 32-channel speakers, batch 1, '
          f'medians of {args.repeats} processes (seconds)')
    total = 0
    for name in runs[0]:
        seconds = statistics.median(run[name] for run in runs)
        total += 0 if name.endswith('(apart)') else seconds
        print(f'{name:>32} {seconds:6.2f}')
    print(f'{"all but the lowering apart":>32} {total:6.2f}')


if __name__ == '__main__':
    main()
