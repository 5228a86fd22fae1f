"""WaveNet for TensorFlow 2: a faithful port of the classic tensorflow-wavenet toolkit.

The public names load on first use (and with them TensorFlow, its start-up logs muted),
so that a tool can parse its flags, or fail on them, without paying for TensorFlow.
"""
import importlib
import os
import sys

from .cli import native_stderr_silenced

__version__ = '1.0.0'

_MODULE_OF = {
    'AudioReader': 'audio_reader',
    'WaveNetModel': 'model',
    'batch_to_time': 'ops',
    'causal_conv': 'ops',
    'mu_law_decode': 'ops',
    'mu_law_encode': 'ops',
    'time_to_batch': 'ops',
    'optimizer_factory': 'optimizers',
}

__all__ = sorted(_MODULE_OF)

# What Keras imports if it can, and copes without (see load_tensorflow).
_UNUSED_BY_KERAS = ('sklearn', 'matplotlib', 'IPython')


def __getattr__(name):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'wavenet' has no attribute '{name}'")
    with native_stderr_silenced():
        module = importlib.import_module(f'.{_MODULE_OF[name]}', __name__)
    return getattr(module, name)


def load_tensorflow():
    """Imports TensorFlow with the native log lines of its loading muted; returns it.

    Its C++ info and warning lines stay muted afterwards too, unless the user set
    ``TF_CPP_MIN_LOG_LEVEL``: a tool's output is its own lines and one-line errors.

    Keras, which TensorFlow loads, imports scikit-learn when it is installed (librosa
    installs it), matplotlib's pyplot and IPython, for wrappers, plots and a notebook's
    display this toolkit never uses: a share of every tool's start-up, skipped by hiding
    them during the import (the toolkit's own pictures import matplotlib later, as they
    need it)."""
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    hidden = [name for name in _UNUSED_BY_KERAS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # what Python takes as "not installed"
    try:
        with native_stderr_silenced():
            import tensorflow
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    return tensorflow
