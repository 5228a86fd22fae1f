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
    installs it), for wrappers this toolkit never uses: 0.6 s of every tool's start-up,
    skipped by hiding it during the import."""
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    hidden = 'sklearn' not in sys.modules
    if hidden:
        sys.modules['sklearn'] = None  # what Python takes as "not installed"
    try:
        with native_stderr_silenced():
            import tensorflow
    finally:
        if hidden and sys.modules.get('sklearn', 0) is None:
            del sys.modules['sklearn']
    return tensorflow
