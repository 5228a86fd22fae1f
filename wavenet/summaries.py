"""Hearing and seeing a training in TensorBoard: audio with its
spectrogram picture, and the samples a training generates while it runs."""
import contextlib

import numpy as np
import tensorflow as tf

from . import generation, quality
from .audio_reader import MIN_SILENCE_THRESHOLD, load_audio, trim_silence
from .averaging import averaged_weights
from .cli import native_stderr_silenced

# The picture: a mel spectrogram in dB, as a person reads speech.
MELS = 80
N_FFT = 1024
HOP = 256
TOP_DB = 80
SILENT_POWER = 1e-2  # mel power of audio around -60 dBFS


def spectrogram_picture(audio, sample_rate):
    """An RGBA picture ``[height, width, 4]`` (uint8) of ``audio``'s mel spectrogram in dB,
    time in seconds along x, frequency along y on librosa's mel axis (linear up to 1 kHz,
    logarithmic above), with a colour bar."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    # TensorFlow's STFT and mel filterbank, already loaded: librosa's would add its own
    # imports to a tool's start-up. Frames are centred on their hop, as librosa's are.
    audio = np.asarray(audio, np.float32)
    audio = np.pad(audio, N_FFT // 2, mode='reflect' if len(audio) > N_FFT // 2 else 'constant')
    power = tf.abs(tf.signal.stft(audio, N_FFT, HOP, N_FFT)) ** 2
    filterbank = tf.signal.linear_to_mel_weight_matrix(MELS, N_FFT // 2 + 1, sample_rate,
                                                       0.0, sample_rate / 2)
    mel = (power @ filterbank).numpy().T
    # 0 dB is the loudest cell, but never less than a floor, so silence draws black.
    decibels = 10 * np.log10(np.maximum(mel, 1e-10) / max(float(mel.max()), SILENT_POWER))
    decibels = np.maximum(decibels, decibels.max() - TOP_DB)
    times = np.arange(mel.shape[1]) * HOP / sample_rate
    # The bands' centres, evenly spaced on the HTK mel scale (as TensorFlow's filterbank).
    top = 2595 * np.log10(1 + sample_rate / 2 / 700)
    hertz = 700 * (10 ** (np.linspace(0, top, MELS) / 2595) - 1)
    figure = Figure(figsize=(6, 3), dpi=100)  # a Figure of its own: no pyplot global state
    canvas = FigureCanvasAgg(figure)
    # Fixed margins that fit the labels: tight_layout measured every label at every call.
    figure.subplots_adjust(left=0.12, right=0.99, bottom=0.16, top=0.97)
    axes = figure.add_subplot()
    image = axes.pcolormesh(times, hertz, decibels, shading='auto', cmap='magma',
                            vmin=-TOP_DB, vmax=0, rasterized=True)
    # The frequency axis of librosa's specshow(y_axis='mel'), drawn by matplotlib alone:
    # librosa.display's mel axis imports numba, which would add to every tool's start-up.
    axes.set_yscale('symlog', base=2, linthresh=1000)
    axes.set_xlim(times[0], times[-1] if len(times) > 1 else HOP / sample_rate)
    axes.set_ylim(hertz[0], hertz[-1])
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f'{value:g}'))
    axes.set_xlabel('Time (s)')
    axes.set_ylabel('Hz')
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
    ``samples/speaker_<id>`` (or ``samples``). A vocoder instead voices the features of
    held-out ``clips`` (recordings, by the first speaker if any), all in one batch: the
    first as ``samples`` beside ``samples/reference`` (its recording), and the field's
    measures of all of them against their recordings as ``quality/<measure>`` scalars
    (``wavenet.quality``), with Griffin-Lim's from the same features once, as
    ``griffin_lim/<measure>``, for a baseline. With ``average`` (a training's
    ``WeightAverage``) the samples are drawn from the averaged weights, as generation
    would draw them from the checkpoint.
    """

    def __init__(self, net, sample_rate, seconds, speakers=None, clips=None, features=None,
                 average=None):
        self.net = net
        self.average = average
        self.sample_rate = sample_rate
        self.speakers = speakers
        self.samples = int(seconds * sample_rate)
        self.features = features
        self.references = self.frames = None
        if clips:
            self.speakers = speakers[:1] if speakers else None
            self.references = [clip[:self.samples] for clip in clips]
            self.samples = max(len(r) for r in self.references)
            # Every clip's frames, padded with silence to the longest.
            frames = [features(r) for r in self.references]
            longest = max(len(f) for f in frames)
            self.frames = np.stack([np.concatenate([f, features.silence(longest - len(f))])
                                    for f in frames])
        self.baseline_written = False

    @classmethod
    def for_corpus(cls, net, description, reader, seconds, silence_threshold, average=None):
        """What a training samples: the first four speakers that train (``reader``'s,
        one stream without speakers), or for a vocoder up to ``HELD_OUT_CLIPS`` held-out
        clips (``quality.held_out_clips``; the corpus's first file without a validation
        set), trimmed as the corpus is."""
        speakers = sorted(set(reader.speaker_ids))[:4] if reader.gc_enabled else None
        features = description.features
        if features is None:
            return cls(net, description.sample_rate, seconds, speakers, average=average)
        clips = []
        for filename in quality.held_out_clips(reader.validation_files) or reader.files[:1]:
            audio = load_audio(filename, description.sample_rate)
            trimmed = (trim_silence(audio, silence_threshold)
                       if silence_threshold > MIN_SILENCE_THRESHOLD else audio)
            clips.append(trimmed if trimmed.size else audio)
        return cls(net, description.sample_rate, seconds, speakers, clips, features, average)

    def __call__(self, step, writer, stopwatch=None):
        """Samples at ``step`` into ``writer``; a training's ``stopwatch`` counts the
        quality measures apart."""
        keys, streams = self.speakers or [0], None
        if self.frames is not None:
            # One row per clip, each with a random stream of its own.
            keys = keys[:1] * len(self.frames)
            streams = [generation.stream_key(key, i) for i, key in enumerate(keys)]
        noise = generation.uniform_streams(step, streams or keys, self.samples + 1)
        start = generation.start_waveform(self.net, noise[:, 0])
        speakers = None if self.speakers is None else keys
        with averaged_weights(self.net, self.average):
            rows = None if self.frames is None else generation.ConditioningRows(
                self.net, self.frames, start.shape[1], self.features)
            chunks = [c.numpy() for c in generation.generate(
                self.net, start, noise[:, 1:], speakers, local_condition=rows)]
        audio = self.net.sample_coding.decode(np.concatenate(chunks, axis=1)).numpy()
        with writer.as_default(step=step):
            if self.references is None:
                for key, row in zip(keys, audio):
                    write_audio(f'samples/speaker_{key}' if self.speakers else 'samples', row,
                                self.sample_rate, step)
            else:
                measuring = (stopwatch.timing('quality measures') if stopwatch
                             else contextlib.nullcontext())
                self._write_copies(audio, step, measuring)
        writer.flush()

    def _write_copies(self, audio, step, measuring):
        first = self.references[0]
        write_audio('samples', audio[0][:len(first)], self.sample_rate, step)
        with measuring:
            measures = quality.judge_all(self.references, audio, self.sample_rate)
            if not self.baseline_written:
                griffin_lim = [quality.griffin_lim(self.features, r) for r in self.references]
                baseline = quality.judge_all(self.references, griffin_lim, self.sample_rate)
        for name, value in measures.items():
            tf.summary.scalar(f'quality/{name}', value)
        if not self.baseline_written:
            write_audio('samples/reference', first, self.sample_rate, step)
            for name, value in baseline.items():
                tf.summary.scalar(f'griffin_lim/{name}', value)
            self.baseline_written = True

