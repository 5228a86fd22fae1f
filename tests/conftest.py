import importlib.util
import os
import sys
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import keras  # noqa: E402
import pytest  # noqa: E402

from wavenet.distribution import configure_cpu_devices  # noqa: E402

# Two logical CPU devices for the whole session, before TensorFlow starts, so that
# mirrored training can be tested in this process (one device, with every core, is used
# unless a test asks for a strategy).
configure_cpu_devices(2, share_threads=False)

# The tools keep compiled loops in a cache folder: the suite's own, not the user's.
_cache = tempfile.TemporaryDirectory(prefix='wavenet-cache-')
os.environ.setdefault('WAVENET_CACHE_DIR', _cache.name)


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same Python, NumPy and TensorFlow random state."""
    keras.utils.set_random_seed(1234)


@pytest.fixture
def train_main(monkeypatch, tmp_path):
    """``train.py``'s ``main`` run in this process, in an empty working directory, outside
    any cluster (no ``TF_CONFIG``)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'train.py')
    spec = importlib.util.spec_from_file_location('train_script', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, 'argv', ['train.py'])
    # train.py points TensorFlow's compilation cache at a folder through these: undone
    # after the test, so that no later tool run inherits them.
    for variable in ('TF_XLA_FLAGS', 'XLA_FLAGS'):
        monkeypatch.setenv(variable, os.environ.get(variable, ''))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('TF_CONFIG', raising=False)
    return module.main
