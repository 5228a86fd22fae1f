"""Hearing and seeing a training in TensorBoard (SPEC section 12): audio with its
spectrogram picture, and the samples a training generates while it runs."""
import numpy as np
import tensorflow as tf

from . import generation
from .audio_reader import MIN_SILENCE_THRESHOLD, load_audio, trim_silence
from .cli import native_stderr_silenced
from .features import MelFeatures
from .ops import mu_law_decode

# The picture: a mel spectrogram in dB, as a person reads speech.
MELS = 80
N_FFT = 1024
HOP = 256
TOP_DB = 80
SILENT_POWER = 1e-2  # mel power of audio around -60 dBFS


def spectrogram_picture(audio, sample_rate):
    """An RGBA picture ``[height, width, 4]`` (uint8) of ``audio``'s mel spectrogram in dB,
    time in seconds along x, frequency on a (HTK) mel scale along y, with a colour bar."""
    import librosa.display
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # TensorFlow's STFT and mel filterbank, already loaded: librosa's would cost a tool a
    # second and a half of start-up. Frames are centred on their hop, as librosa's are.
    audio = np.asarray(audio, np.float32)
    audio = np.pad(audio, N_FFT // 2, mode='reflect' if len(audio) > N_FFT // 2 else 'constant')
    power = tf.abs(tf.signal.stft(audio, N_FFT, HOP, N_FFT)) ** 2
    filterbank = tf.signal.linear_to_mel_weight_matrix(MELS, N_FFT // 2 + 1, sample_rate,
                                                       0.0, sample_rate / 2)
    mel = (power @ filterbank).numpy().T
    # 0 dB is the loudest cell, but never less than a floor, so silence draws black.
    decibels = 10 * np.log10(np.maximum(mel, 1e-10) / max(float(mel.max()), SILENT_POWER))
    decibels = np.maximum(decibels, decibels.max() - TOP_DB)
    figure = Figure(figsize=(6, 3), dpi=100)  # a Figure of its own: no pyplot global state
    canvas = FigureCanvasAgg(figure)
    # Fixed margins that fit the labels: tight_layout measured every label at every call
    # (about 10 ms of a picture's 75).
    figure.subplots_adjust(left=0.12, right=0.99, bottom=0.16, top=0.97)
    axes = figure.add_subplot()
    image = librosa.display.specshow(decibels, sr=sample_rate, hop_length=HOP, x_axis='s',
                                     y_axis='mel', htk=True, fmax=sample_rate / 2,
                                     cmap='magma', ax=axes, vmin=-TOP_DB, vmax=0)
    figure.colorbar(image, ax=axes, format='%+2.0f dB')
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def write_audio(tag, audio, sample_rate, step):
    """``audio`` (1-D floats) as TensorBoard audio under ``tag`` and its spectrogram as an
    image under ``tag/spectrogram``, to the default writer."""
    audio = np.asarray(audio, np.float32)
    # Quiet: encoding the wav logs a oneDNN line about string tensors on some processors.
    with native_stderr_silenced():
        tf.summary.audio(tag, audio[np.newaxis, :, np.newaxis], sample_rate, step=step,
                         max_outputs=1)
    tf.summary.image(f'{tag}/spectrogram', spectrogram_picture(audio, sample_rate)[np.newaxis],
                     step=step, max_outputs=1)


class Sampler:
    """Generates ``seconds`` of audio per speaker (``speakers``: ids, or ``None`` for one
    stream) with the in-graph loop and writes them, with pictures, as
    ``samples/speaker_<id>`` (or ``samples``). For a vocoder, ``frames`` of a held-out
    clip are voiced instead (by the first speaker, if any), beside ``reference``, its audio.
    """

    def __init__(self, net, sample_rate, seconds, speakers=None, frames=None, reference=None,
                 silence=None):
        self.net = net
        self.sample_rate = sample_rate
        self.speakers = speakers
        self.frames = frames
        self.reference = reference
        self.silence = silence
        self.samples = int(seconds * sample_rate)
        if frames is not None:
            self.speakers = speakers[:1] if speakers else None
            self.samples = min(self.samples, len(frames) * net.lc_hop_length)
        self.reference_written = False

    @classmethod
    def for_corpus(cls, net, params, reader, seconds, silence_threshold):
        """What a training samples: the first four speakers that train (``reader``'s,
        one stream without speakers), or for a vocoder the features of a held-out clip
        (the corpus's first file without a validation set), trimmed as the corpus is."""
        speakers = sorted(set(reader.speaker_ids))[:4] if reader.gc_enabled else None
        if params['lc_channels'] is None:
            return cls(net, params['sample_rate'], seconds, speakers)
        features = MelFeatures.from_params(params)
        audio = load_audio(next(iter(reader.validation_files), reader.files[0]),
                           params['sample_rate'])
        trimmed = (trim_silence(audio, silence_threshold)
                   if silence_threshold > MIN_SILENCE_THRESHOLD else audio)
        audio = (trimmed if trimmed.size else audio)[:int(seconds * params['sample_rate'])]
        return cls(net, params['sample_rate'], seconds, speakers, frames=features(audio),
                   reference=audio, silence=features.silence)

    def __call__(self, step, writer):
        keys = self.speakers or [0]
        noise = generation.uniform_streams(step, keys, self.samples + 1)
        start = generation.start_waveform(self.net, noise[:, 0])
        rows = None
        if self.frames is not None:
            rows = generation.conditioning_rows(
                self.net, np.tile(self.frames[np.newaxis], [len(keys), 1, 1]), start.shape[1],
                self.samples, self.silence)
        chunks = [c.numpy() for c in generation.generate(
            self.net, start, noise[:, 1:], self.speakers, local_condition=rows)]
        audio = mu_law_decode(np.concatenate(chunks, axis=1),
                              self.net.quantization_channels).numpy()
        with writer.as_default(step=step):
            for key, row in zip(keys, audio):
                write_audio(f'samples/speaker_{key}' if self.speakers else 'samples', row,
                            self.sample_rate, step)
            if self.reference is not None and not self.reference_written:
                write_audio('samples/reference', self.reference[:self.samples],
                            self.sample_rate, step)
                self.reference_written = True
        writer.flush()
