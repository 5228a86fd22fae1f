"""What the tests share: the tools' paths and how they are run, small network descriptions
and checkpoints of them, the summaries the tools write, the mu-law written out in NumPy
(an independent reference for the toolkit's own), a small corpus and train.py's output, the
original's E-flat chord, and networks built under a distribution strategy."""
import concurrent.futures
import glob
import json
import os
import re
import socket
import subprocess
import sys

import keras
import numpy as np
import soundfile
import tensorflow as tf

from wavenet import WaveNetModel, distribution, optimizer_factory
from wavenet.checkpoints import create_checkpoint
from wavenet.params import NetworkDescription, build_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, 'train.py')
GENERATE = os.path.join(ROOT, 'generate.py')
# What a description holds beyond the original's ten fields when its file leaves them out,
# as every saved description spells them.
OPTIONAL_DEFAULTS = {
    'lc_channels': None, 'lc_hop_length': None, 'lc_upsample_scales': None, 'lc_n_fft': 1024,
    'lc_fmin': 0, 'lc_fmax': None, 'lc_context_channels': 0, 'lpc_order': 0,
    'lpc_bandwidth_expansion': 1.0, 'preemphasis': 0.0, 'period_input': False,
    'input_noise': 0.0,
    'output_distribution': 'softmax', 'mixture_components': 10, 'log_scale_min': -7.0,
}
# A small network of four layers, and the same as a vocoder of 8 mel channels; what the
# tools' tests generate from (with GC_CHANNELS and GC_CARDINALITY, as speakers).
SMALL = dict(filter_width=2, sample_rate=8000, dilations=[1, 2, 4, 8], residual_channels=8,
             dilation_channels=8, quantization_channels=64, skip_channels=16, use_biases=True,
             scalar_input=False, initial_filter_width=32)
SMALL_VOCODER = dict(SMALL, lc_channels=8, lc_hop_length=16, lc_upsample_scales=[4, 4],
                     lc_n_fft=64, lc_fmin=0, lc_fmax=None)
GC_CHANNELS, GC_CARDINALITY = 4, 6
# Ten layers: a receptive field (1055) longer than a short seed clip.
TEN_LAYERS = dict(SMALL, dilations=[2 ** k for k in range(10)])
# Every tool run is bounded, so that one that hangs fails its test instead of the suite.
TOOL_TIMEOUT = 300


def run_tool(script, *flags, cwd=None, env=None, cores=None):
    """Runs ``script`` (``TRAIN``, ``GENERATE``) as a user would, on the first ``cores``
    CPU cores when given; its ``CompletedProcess``."""
    pinned = None if cores is None else lambda: os.sched_setaffinity(0, range(cores))
    return subprocess.run([sys.executable, script, *map(str, flags)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=TOOL_TIMEOUT,
                          preexec_fn=pinned)


def run_generate(*flags, cwd=None, env=None, cores=None):
    return run_tool(GENERATE, *flags, cwd=cwd, env=env, cores=cores)


def run_in_process(tool, main, flags, capsys):
    """A tool's ``main`` run in this process on ``flags``, as ``run_tool`` runs the tool:
    its exit status and its Python-level output (``capsys``) as a ``CompletedProcess``. For
    refusals and short trainings, which would otherwise pay seconds for a process's
    TensorFlow import; TensorFlow's native logs are not in it."""
    flags = [str(flag) for flag in flags]
    capsys.readouterr()
    try:
        status = main(flags) or 0
    except SystemExit as e:
        status = e.code
    output = capsys.readouterr()
    return subprocess.CompletedProcess([tool, *flags], status, output.out, output.err)


def read_int16(path):
    """A wav's samples as the 16-bit integers written."""
    return soundfile.read(str(path), dtype='int16')[0]


def write_json(path, value):
    path.write_text(json.dumps(value))
    return path


def describe(fields, gc_channels=None, gc_cardinality=None):
    """The ``NetworkDescription`` of a params dict, with the speakers given."""
    return NetworkDescription(**fields).with_speakers(gc_channels, gc_cardinality)


def save_checkpoint(directory, description, step=1, net=None):
    """A checkpoint of ``net`` (random weights of ``description`` when not given) as
    train.py saves one, at ``step``, with its description beside it; returns ``directory``."""
    net = net or build_model(description)
    checkpoint = create_checkpoint(net, optimizer_factory['adam'](1e-3, 0.9))
    tf.train.CheckpointManager(checkpoint, str(directory), 5,
                               checkpoint_name='model.ckpt').save(step)
    description.save(str(directory))
    return directory


def audio_summaries(logdir):
    """``{(tag, step): summary value}`` of the audio summaries in every event file below
    ``logdir``."""
    found = {}
    for events in sorted(glob.glob(os.path.join(logdir, '**', 'events.out.tfevents.*'),
                                   recursive=True)):
        for event in tf.compat.v1.train.summary_iterator(events):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == 'audio':
                    found[value.tag, event.step] = value
    return found


def numpy_mu_law_encode(signal, quantization_channels):
    mu = quantization_channels - 1
    magnitude = np.log1p(mu * np.minimum(np.abs(signal), 1.0)) / np.log1p(mu)
    signal = np.sign(signal) * magnitude
    return ((signal + 1) / 2 * mu + 0.5).astype(np.int32)


def numpy_mu_law_decode(codes, quantization_channels):
    """Codes back to [-1, 1]."""
    mu = quantization_channels - 1
    signal = 2 * (np.asarray(codes, np.float64) / mu) - 1
    return np.sign(signal) * ((1 + mu) ** np.abs(signal) - 1) / mu


# A corpus of two speakers, and the network the training tests train on it.
CORPUS_PARAMS = dict(SMALL, sample_rate=16000, quantization_channels=256)
# train.py's progress line.
STEP_LINE = re.compile(r'^step (\d+) - loss = (\d+\.\d{3}), \(\d+\.\d{3} sec/step\)$', re.M)


def write_corpus(root, speakers=(1, 2)):
    """Two utterances per speaker: noisy tones, a quarter of a second each."""
    rng = np.random.default_rng(0)
    t = np.arange(4000) / 16000
    for speaker in speakers:
        for utterance in (1, 2):
            tone = 0.5 * np.sin(2 * np.pi * 110 * (speaker + utterance) * t)
            audio = tone * rng.uniform(0.5, 1.0, t.size)
            path = root / f'p{speaker}' / f'p{speaker}_{utterance:03d}.wav'
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(str(path), audio, 16000, subtype='PCM_16')
    return root


def train_flags(corpus, *flags):
    """train.py's flags for a ``write_corpus`` folder holding its params.json."""
    return [f'--data_dir={corpus}', f'--wavenet_params={corpus / "params.json"}',
            '--sample_size=500', '--silence_threshold=0', *flags]


def run_train(corpus, cwd, *flags):
    return run_tool(TRAIN, *train_flags(corpus, *flags), cwd=cwd)


def printed_steps(stdout):
    """``[(step, loss)]`` of train.py's progress lines."""
    return [(int(step), float(loss)) for step, loss in STEP_LINE.findall(stdout)]


def saved_state(prefix, gc_channels=GC_CHANNELS, gc_cardinality=3):
    """(step, optimizer iterations) restored from checkpoint ``prefix`` into a fresh network."""
    net = build_model(describe(CORPUS_PARAMS, gc_channels, gc_cardinality))
    checkpoint = create_checkpoint(net, optimizer_factory['adam'](1e-3, 0.9))
    checkpoint.restore(prefix).assert_existing_objects_matched().expect_partial()
    return int(checkpoint.step.numpy()), int(checkpoint.optimizer.iterations.numpy())


def checkpoint_numbers(logdir):
    """The steps of the checkpoints ``logdir`` keeps."""
    state = tf.train.get_checkpoint_state(str(logdir))
    return [int(p.rsplit('-', 1)[1]) for p in state.all_model_checkpoint_paths]


# The original's end-to-end test: the E-flat chord, sampled at 2 kHz.
SAMPLE_RATE_HZ = 2000.0
SAMPLE_DURATION = 0.5  # seconds
QUANTIZATION_CHANNELS = 256
NOTES = [155.56, 196.00, 233.08]  # E-flat, G and B-flat in Hz
NETWORK = dict(batch_size=1, dilations=[1, 2, 4, 8, 16, 32, 64] * 2, filter_width=2,
               residual_channels=32, dilation_channels=32, skip_channels=32,
               quantization_channels=QUANTIZATION_CHANNELS)


def make_sine_waves(conditioned):
    """The chord as one clip, or with conditioning one note per speaker (a batch of 3)."""
    times = np.arange(0.0, SAMPLE_DURATION, 1.0 / SAMPLE_RATE_HZ)
    notes = np.stack([0.25 * np.sin(2 * np.pi * f * times) for f in NOTES])
    if conditioned:
        return notes.astype(np.float32), np.arange(len(NOTES), dtype=np.int32)
    return notes.sum(axis=0, keepdims=True).astype(np.float32), None


def note_powers(waveform):
    """Power at each note and the total power up to 500 Hz."""
    power = np.abs(np.fft.rfft(waveform)) ** 2
    freqs = np.fft.rfftfreq(waveform.size, 1.0 / SAMPLE_RATE_HZ)
    power, freqs = power[freqs <= 500.0], freqs[freqs <= 500.0]
    at_note = [power[np.abs(freqs - f).argmin()] for f in NOTES]
    return np.array(at_note), power.sum()


class FakeClock:
    """A stand-in for ``time.perf_counter`` that moves only when a test moves it."""

    def __init__(self, now=100.0):
        self.now = now

    def __call__(self):
        return self.now


# Training under a tf.distribute strategy.
def build_under(strategy, gc=True, lc=False, optimizer='adam'):
    """A small network (speakers, frames) and its optimizer made in ``strategy``'s scope,
    with the same initial weights under every strategy."""
    with strategy.scope():
        keras.utils.set_random_seed(7)
        net = WaveNetModel(2, [1, 2, 4, 1, 2, 4], 2, 8, 8, 16, 64, use_biases=True,
                           global_condition_channels=4 if gc else None,
                           global_condition_cardinality=5 if gc else None,
                           local_condition_channels=6 if lc else None,
                           lc_upsample_scales=[2, 4] if lc else None)
        chosen = optimizer_factory[optimizer](1e-2, 0.9)
        create_checkpoint(net, chosen)
    return net, chosen


def global_batch(lc=False):
    """Four pieces of the same length, two speakers (and with ``lc`` their frames)."""
    rng = np.random.default_rng(3)
    t = np.arange(160) / 16000
    audio = np.stack([0.4 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(t.size)
                      for f in (200, 300, 450, 700)])[..., None].astype(np.float32)
    batch = (audio, np.array([1, 4, 1, 2], np.int32))
    if lc:
        batch += (rng.standard_normal((4, 20, 6)).astype(np.float32) - 4,)
    return batch


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(('localhost', 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(corpus, folders, *flags, worker_flags=((), ())):
    """Two train.py workers of one cluster on free localhost ports, worker ``i`` in
    ``folders[i]`` with ``flags`` and ``worker_flags[i]``, training without end
    (``--num_steps`` left at its default)."""
    cluster = {'worker': [f'localhost:{p}' for p in free_ports(2)]}
    processes = []
    for index, (folder, own) in enumerate(zip(folders, worker_flags)):
        tf_config = json.dumps({'cluster': cluster, 'task': {'type': 'worker', 'index': index}})
        processes.append(subprocess.Popen(
            [sys.executable, TRAIN, f'--data_dir={corpus}',
             f'--wavenet_params={corpus}/params.json', '--sample_size=500',
             '--silence_threshold=0', '--batch_size=2', '--logdir=logdir', *flags, *own],
            cwd=folder, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=dict(os.environ, TF_CONFIG=tf_config, PYTHONUNBUFFERED='1')))
    return processes


def communicate_all(processes, timeout):
    """``[(stdout, stderr)]`` of every process, read all at once: workers of one cluster
    step together, so one whose pipe nobody reads while another's is read fills it, blocks
    on its next print, and stalls them all."""
    with concurrent.futures.ThreadPoolExecutor(len(processes)) as pool:
        reads = [pool.submit(p.communicate, timeout=timeout) for p in processes]
        return [read.result() for read in reads]


def mirrored():
    """The strategy over the session's two logical CPU devices (see conftest)."""
    return distribution.choose_strategy('mirrored')


# Checkpoints of the original TF 1 toolkit, written as it wrote them.
ORIGINAL_STEP = 80


def original_shapes(p, gc_channels=None, gc_cardinality=None):
    """The original's variables, in its creation order, as it created them (biases as
    ``None`` names: TF numbers them ``Variable``, ``Variable_1``, ... in their scope)."""
    r, d, s, q = (p['residual_channels'], p['dilation_channels'], p['skip_channels'],
                  p['quantization_channels'])
    causal = ([p['initial_filter_width'], 1, r] if p['scalar_input'] else
              [p['filter_width'], q, r])
    scopes = [('causal_layer', [('filter', causal)])]
    for i in range(len(p['dilations'])):
        weights = [('filter', [p['filter_width'], r, d]), ('gate', [p['filter_width'], r, d]),
                   ('dense', [1, d, r]), ('skip', [1, d, s])]
        if gc_channels:
            weights += [('gc_gate', [1, gc_channels, d]), ('gc_filter', [1, gc_channels, d])]
        if p['use_biases']:
            weights += [(None, [d]), (None, [d]), (None, [r]), (None, [s])]
        scopes.append((f'dilated_stack/layer{i}', weights))
    post = [('postprocess1', [1, s, s]), ('postprocess2', [1, s, q])]
    if p['use_biases']:
        post += [(None, [s]), (None, [q])]
    scopes.append(('postprocessing', post))
    if gc_channels:
        scopes.append(('embeddings', [('gc_embedding', [gc_cardinality, gc_channels])]))
    return scopes


def write_original_checkpoint(folder, params, gc_channels=None, gc_cardinality=None,
                              change=None, step=ORIGINAL_STEP, seed=0):
    """A TF 1 checkpoint ``folder/model.ckpt-<step>`` of random values; ``change(scopes)``
    may edit the variable list first. Returns ``(prefix, {name: value})``."""
    rng = np.random.default_rng(seed)
    scopes = original_shapes(params, gc_channels, gc_cardinality)
    if change:
        change(scopes)
    values = {}
    with tf.Graph().as_default():
        variables = []
        for scope, weights in scopes:
            with tf.compat.v1.variable_scope(f'wavenet/{scope}'):
                for name, shape in weights:
                    value = rng.normal(0, 0.3, shape).astype(np.float32)
                    if name is None:  # the original's tf.Variable(value, 'name') quirk
                        variable = tf.compat.v1.Variable(value)
                    else:
                        variable = tf.compat.v1.get_variable(name, initializer=value)
                    variables.append(variable)
                    values[variable.op.name] = value
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            prefix = saver.save(session, os.path.join(folder, 'model.ckpt'), global_step=step)
    return prefix, values
