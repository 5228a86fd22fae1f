import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import keras  # noqa: E402
import pytest  # noqa: E402

from wavenet.distribution import configure_cpu_devices  # noqa: E402

# Two logical CPU devices for the whole session, before TensorFlow starts, so that
# mirrored training can be tested in this process (one device, with every core, is used
# unless a test asks for a strategy).
configure_cpu_devices(2, share_threads=False)


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same Python, NumPy and TensorFlow random state."""
    keras.utils.set_random_seed(1234)
