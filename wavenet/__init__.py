"""WaveNet for TensorFlow 2: a faithful port of the classic tensorflow-wavenet toolkit."""
from .cli import native_stderr_silenced

with native_stderr_silenced():
    from .audio_reader import AudioReader
    from .model import WaveNetModel
    from .ops import batch_to_time, causal_conv, mu_law_decode, mu_law_encode, time_to_batch
    from .optimizers import optimizer_factory

__all__ = ['AudioReader', 'WaveNetModel', 'batch_to_time', 'causal_conv', 'mu_law_decode',
           'mu_law_encode', 'optimizer_factory', 'time_to_batch']
