import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile  # noqa: E402

from wavenet import distribution  # noqa: E402
from wavenet.distribution import configure_cpu_devices  # noqa: E402

# Two logical CPU devices for the whole session, before TensorFlow starts, so that
# mirrored training can be tested in this process (one device, with every core, is used
# unless a test asks for a strategy).
configure_cpu_devices(2, share_threads=False)

# isort: split
from helpers import (  # noqa: E402
    CORPUS_PARAMS,
    GC_CARDINALITY,
    GC_CHANNELS,
    SMALL,
    SMALL_VOCODER,
    TEN_LAYERS,
    describe,
    run_in_process,
    save_checkpoint,
    train_flags,
    write_corpus,
    write_json,
)

# The files whose tests take longest, run first: ci/test.sh hands whole files to its two
# processes, so a long file left for last keeps one process busy while the other idles
# (ci/test.sh keeps this order with --no-loadscope-reorder).
LONGEST_FIRST = ('test_end_to_end.py', 'test_train.py', 'test_vocoder_training.py',
                 'test_voicing_features.py', 'test_export.py', 'test_disk_faults.py',
                 'test_distribution.py', 'test_generated_wavs.py', 'test_compilation_cache.py',
                 'test_weight_average.py', 'test_generate_refusals.py', 'test_lpc.py',
                 'test_tf1_checkpoints.py', 'test_compiled_step.py',
                 'test_incremental_generation.py', 'test_output.py', 'test_package.py',
                 'test_logdir_lock.py', 'test_time_budget.py', 'test_model.py',
                 'test_summaries.py', 'test_period.py', 'test_sampling.py')


def pytest_collection_modifyitems(items):
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


# The tools keep compiled loops in a cache folder: the suite's own, not the user's.
_cache = tempfile.TemporaryDirectory(prefix='wavenet-cache-')
os.environ.setdefault('WAVENET_CACHE_DIR', _cache.name)


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same Python, NumPy and TensorFlow random state."""
    keras.utils.set_random_seed(1234)


@pytest.fixture
def mixed_precision():
    """Sets a mixed policy for one test and puts float32 back after it."""
    yield distribution.set_precision
    distribution.set_precision('float32')


def restored_after_the_test(monkeypatch, *variables):
    """Puts the environment ``variables`` back as they were after the test (unset where
    they were), so that no later tool run inherits what a tool run in the test's process set.
    (monkeypatch undoes only what it recorded: a variable it did not find is recorded by
    setting it first.)"""
    for variable in variables:
        original = os.environ.get(variable)
        monkeypatch.setenv(variable, original or '')
        if original is None:
            monkeypatch.delenv(variable)


@pytest.fixture
def train_main(monkeypatch, tmp_path):
    """``train.py``'s ``main`` run in this process, in an empty working directory, outside
    any cluster (no ``TF_CONFIG``)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'train.py')
    spec = importlib.util.spec_from_file_location('train_script', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, 'argv', ['train.py'])
    # A training's wall time (and a --max_minutes budget) counts from the tool's start: in
    # this process, from now.
    import wavenet.train
    monkeypatch.setattr(wavenet.train, 'STARTED', time.perf_counter())
    # train.py points TensorFlow's compilation cache at a folder through these: undone
    # after the test, so that no later tool run inherits them.
    restored_after_the_test(monkeypatch, 'TF_XLA_FLAGS', 'XLA_FLAGS')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('TF_CONFIG', raising=False)
    return module.main


@pytest.fixture
def train_in_process(train_main, capsys):
    """``helpers.run_train`` in this process (``train_main``, in the test's ``tmp_path``):
    ``(corpus, *flags) -> CompletedProcess``, for the trainings whose process is not what
    the test holds, so that they do not pay for importing TensorFlow again."""
    return lambda corpus, *flags: run_in_process('train.py', train_main,
                                                 train_flags(corpus, *flags), capsys)


@pytest.fixture
def generate_main(monkeypatch, capsys):
    """``generate.py`` run in this process on ``flags``, its exit status and output as the
    ``CompletedProcess`` of ``helpers.run_generate``: for its refusals, which end before
    any generation, so that a process of their own would only add the seconds of its
    TensorFlow import. (That a refusal is one line on the process's stderr, TensorFlow's
    native logs included, is held by tests that run the tool.)"""
    from wavenet import generate
    monkeypatch.setattr(sys, 'argv', ['generate.py'])
    # generate.py sets these for TensorFlow.
    restored_after_the_test(monkeypatch, 'TF_XLA_FLAGS', 'XLA_FLAGS', 'TF_NUM_INTRAOP_THREADS')
    return lambda *flags: run_in_process('generate.py', generate.main, flags, capsys)


@pytest.fixture(scope='session')
def speaker_files(tmp_path_factory):
    """A speaker-conditioned ``SMALL`` checkpoint with its description (``described``, its
    ``prefix``), the same checkpoint alone (``bare``), params files (``params``, and
    ``other_params`` and ``broken_params`` that contradict it) and a seed clip."""
    root = tmp_path_factory.mktemp('speakers')
    described = save_checkpoint(root / 'described', describe(SMALL, GC_CHANNELS,
                                                               GC_CARDINALITY), step=7)
    bare = root / 'bare'
    shutil.copytree(described, bare, ignore=shutil.ignore_patterns('wavenet_params.json'))
    t = np.arange(4000) / SMALL['sample_rate']
    soundfile.write(str(root / 'seed.wav'), 0.6 * np.sin(2 * np.pi * 220 * t), 8000)
    return dict(root=root, described=described, bare=bare,
                prefix=described / 'model.ckpt-7', seed=root / 'seed.wav',
                params=write_json(root / 'params.json', SMALL),
                other_params=write_json(root / 'other.json', dict(SMALL, residual_channels=16)),
                broken_params=write_json(root / 'broken.json', dict(SMALL, filter_width='2')))


@pytest.fixture(scope='session')
def plain_checkpoint(tmp_path_factory):
    """An unconditioned ``TEN_LAYERS`` network, its description beside it."""
    return save_checkpoint(tmp_path_factory.mktemp('plain'), describe(TEN_LAYERS), step=2)


@pytest.fixture(scope='session')
def small_vocoder(tmp_path_factory):
    """A ``SMALL_VOCODER`` checkpoint (``checkpoint``) and two tones to voice, 0.06 s and
    0.15 s long (``root`` / 'short.wav', 'long.wav')."""
    root = tmp_path_factory.mktemp('vocoder')
    rate = SMALL_VOCODER['sample_rate']
    for name, seconds in (('short', 0.06), ('long', 0.15)):
        t = np.arange(int(seconds * rate)) / rate
        soundfile.write(str(root / f'{name}.wav'), 0.5 * np.sin(2 * np.pi * 440 * t), rate)
    return dict(root=root, checkpoint=save_checkpoint(root / 'vocoder', describe(SMALL_VOCODER)))


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    """A ``write_corpus`` folder with the ``CORPUS_PARAMS`` network's params.json."""
    root = write_corpus(tmp_path_factory.mktemp('corpus'))
    (root / 'params.json').write_text(json.dumps(CORPUS_PARAMS))
    return root
