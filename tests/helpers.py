"""What the tests share: the tools' paths and how they are run, small network descriptions
and checkpoints of them, the summaries the tools write, and the mu-law written out in NumPy
(an independent reference for the toolkit's own)."""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import soundfile
import tensorflow as tf

from wavenet import optimizer_factory
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
    'input_noise': 0.0, 'output_distribution': 'softmax', 'mixture_components': 10,
    'log_scale_min': -7.0,
}
# A small network of four layers, and the same as a vocoder of 8 mel channels; what the
# tools' tests generate from (with GC_CHANNELS and GC_CARDINALITY, as speakers).
SMALL = dict(filter_width=2, sample_rate=8000, dilations=[1, 2, 4, 8], residual_channels=8,
             dilation_channels=8, quantization_channels=64, skip_channels=16, use_biases=True,
             scalar_input=False, initial_filter_width=32)
SMALL_VOCODER = dict(SMALL, lc_channels=8, lc_hop_length=16, lc_upsample_scales=[4, 4],
                     lc_n_fft=64)
GC_CHANNELS, GC_CARDINALITY = 4, 6
# Ten layers: a receptive field (1055) longer than a short seed clip.
TEN_LAYERS = dict(SMALL, dilations=[2 ** k for k in range(10)])
# Every tool run is bounded, so that one that hangs fails its test instead of the suite.
TOOL_TIMEOUT = 300


def run_tool(script, *flags, cwd=None, env=None):
    """Runs ``script`` (``TRAIN``, ``GENERATE``) as a user would; its ``CompletedProcess``."""
    return subprocess.run([sys.executable, script, *map(str, flags)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=TOOL_TIMEOUT)


def run_generate(*flags, cwd=None, env=None):
    return run_tool(GENERATE, *flags, cwd=cwd, env=env)


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
