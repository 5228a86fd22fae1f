"""How generation loops are compiled and threaded, and where they are kept between runs:
TensorFlow's and XLA's own persistent compilation caches, pointed at one folder the user
can change.

TensorFlow saves every executable that XLA compiles for a ``jit_compile`` function
(``--tf_xla_persistent_cache_directory``), so the next run of the same network loads the
generation loop instead of compiling it again; on a GPU, XLA also keeps the results of its
kernel autotuning (``--xla_gpu_per_fusion_autotune_cache_dir``). Both flags are read from
the environment when TensorFlow first compiles, so ``enable`` must run before that, and
is best run before TensorFlow is imported; so is ``threads_for``. Imports no TensorFlow.
"""
import hashlib
import importlib.metadata
import os
import platform

from . import cache_entries as entries
from .cli import check_output_directory, warn

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
    already set in ``TF_XLA_FLAGS``/``XLA_FLAGS`` win. A file where the directory should
    be is a ``ValueError`` naming ``flag``.

    The cache only saves time, so it never stops a run: an entry that TensorFlow could not
    read is put aside with a warning (and compiled again), and a folder that cannot be
    written (read-only, or a disk nearly full) is read but not written, with a warning."""
    if not directory:
        return None
    check_output_directory(directory, flag, writable=False)
    # A folder per TensorFlow version, processor and XLA flags: an executable compiled for
    # another machine's instructions (a home folder shared between machines) would crash
    # this one, and TensorFlow's cache key leaves XLA's flags out, though they change
    # what it compiles (``threads_for``).
    machine = os.path.join(directory, _machine() + _flags_suffix())
    tensorflow_cache = os.path.join(machine, 'xla')
    autotune_cache = os.path.join(machine, 'autotune')
    try:
        for path in (tensorflow_cache, autotune_cache):
            os.makedirs(path, exist_ok=True)
    except OSError as e:
        warn(f'{flag} {directory}: cannot be created ({e.strerror}); compiled loops are '
             'not kept between runs')
        return None
    folder = _flag_value('TF_XLA_FLAGS', 'tf_xla_persistent_cache_directory') \
        or tensorflow_cache
    if not entries.put_aside_damaged(folder):
        return None
    _add_flag('TF_XLA_FLAGS', 'tf_xla_persistent_cache_directory', tensorflow_cache)
    _add_flag('XLA_FLAGS', 'xla_gpu_per_fusion_autotune_cache_dir', autotune_cache)
    problem = entries.unwritable(folder)
    if problem:
        warn(f'{flag} {directory}: {problem}; compiled loops are read from it but not kept')
        _add_flag('TF_XLA_FLAGS', 'tf_xla_persistent_cache_read_only', 'true')
    return directory


def cpu_cores():
    """The CPU cores this process may run on."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def row_groups(batch):
    """How many groups of rows a CPU generation of ``batch`` rows runs side by side, each
    on its own thread: one per core, as XLA runs a loop on one core."""
    return min(batch, cpu_cores())


def threads_for(batch):
    """Sets how the generation loop of ``batch`` rows on a CPU uses TensorFlow's threads;
    must run before TensorFlow starts (its runtime and its first compilation). A setting
    the user made wins.

    XLA's CPU runtime runs a compiled loop on TensorFlow's intra-op threads, and starts
    each kernel of a step on any of them as soon as its inputs are ready. A step is a chain
    of hundreds of small kernels, so one row group runs on a single intra-op thread: with
    more, the step spends more on passing its kernels between cores than it gains from
    running some of them side by side. Several row groups need a thread each, and their
    products are compiled to stay on their group's thread, since otherwise each group's
    products also fan out over every core and the groups wait for each other's share
    (which changes what XLA compiles: run this before ``enable``, which keeps loops
    compiled with other XLA flags apart). With a GPU the loop runs there, and these
    settings reach only TensorFlow's CPU operations around it."""
    if row_groups(batch) == 1:
        os.environ.setdefault('TF_NUM_INTRAOP_THREADS', '1')
    else:
        _add_flag('XLA_FLAGS', 'xla_cpu_multi_thread_eigen', 'false')


def _flags_suffix():
    """``''``, or ``-`` and a hash of the XLA flags that change what XLA compiles."""
    flags = [flag for flag in os.environ.get('XLA_FLAGS', '').split()
             if not flag.startswith(('--xla_gpu_per_fusion_autotune_cache_dir=',
                                     '--xla_dump'))]
    if not flags:
        return ''
    return '-' + hashlib.sha256(' '.join(sorted(flags)).encode()).hexdigest()[:12]


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


def _flag_value(variable, name):
    """The value of ``--name=value`` in the environment variable's flags, or None."""
    for flag in os.environ.get(variable, '').split():
        if flag.startswith(f'--{name}='):
            return flag.split('=', 1)[1]
    return None


def _add_flag(variable, name, value):
    if _flag_value(variable, name) is None:
        os.environ[variable] = f'{os.environ.get(variable, "")} --{name}={value}'.strip()
