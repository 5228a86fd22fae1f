"""Where compiled generation loops are kept between runs: TensorFlow's and XLA's own
persistent compilation caches, pointed at one folder the user can change.

TensorFlow saves every executable that XLA compiles for a ``jit_compile`` function
(``--tf_xla_persistent_cache_directory``), so the next run of the same network loads the
generation loop instead of compiling it again; on a GPU, XLA also keeps the results of its
kernel autotuning (``--xla_gpu_per_fusion_autotune_cache_dir``). Both flags are read from
the environment when TensorFlow first compiles, so ``enable`` must run before that, and
is best run before TensorFlow is imported. Imports no TensorFlow.
"""
import hashlib
import importlib.metadata
import os
import platform

from .cli import check_output_directory

ENVIRONMENT = 'WAVENET_CACHE_DIR'


def default_directory():
    """``$WAVENET_CACHE_DIR``, else ``$XDG_CACHE_HOME/wavenet`` (``~/.cache/wavenet``)."""
    if os.environ.get(ENVIRONMENT):
        return os.environ[ENVIRONMENT]
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'wavenet')


def enable(directory, flag='--cache_dir'):
    """Keeps compiled executables below ``directory`` (created if needed), in a folder for
    this TensorFlow and processor; an empty string leaves caching off. Flags the user
    already set in ``TF_XLA_FLAGS``/``XLA_FLAGS`` win. A directory that cannot be written
    is a ``ValueError`` naming ``flag``."""
    if not directory:
        return None
    check_output_directory(directory, flag)
    # A folder per TensorFlow version and processor: an executable compiled for another
    # machine's instructions (a home folder shared between machines) would crash this one.
    machine = os.path.join(directory, _machine())
    tensorflow_cache = os.path.join(machine, 'xla')
    autotune_cache = os.path.join(machine, 'autotune')
    for path in (tensorflow_cache, autotune_cache):
        os.makedirs(path, exist_ok=True)
    _add_flag('TF_XLA_FLAGS', 'tf_xla_persistent_cache_directory', tensorflow_cache)
    _add_flag('XLA_FLAGS', 'xla_gpu_per_fusion_autotune_cache_dir', autotune_cache)
    return directory


def _machine():
    """``tensorflow-<version>-<architecture>-<hash of the processor's features>``."""
    try:
        version = importlib.metadata.version('tensorflow')
    except importlib.metadata.PackageNotFoundError:
        version = 'unknown'
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            features = next((line for line in cpuinfo if line.startswith('flags')), '')
    except OSError:
        features = platform.processor()
    digest = hashlib.sha256(features.encode()).hexdigest()[:12]
    return f'tensorflow-{version}-{platform.machine()}-{digest}'


def _add_flag(variable, name, value):
    flags = os.environ.get(variable, '')
    if f'--{name}=' not in flags:
        os.environ[variable] = f'{flags} --{name}={value}'.strip()
