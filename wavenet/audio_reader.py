"""The training corpus: a folder of ``.wav`` files as a ``tf.data`` pipeline of batches.

Each file is loaded mono at the model's sample rate, trimmed of leading and trailing
silence, padded at the front with one receptive field of zeros and cut into overlapping
pieces, exactly as the original toolkit did; decoding runs in parallel and ahead of the
training step.
"""
import os
import re
import sys

import librosa
import numpy as np
import soundfile
import tensorflow as tf

# VCTK names its files p<speaker>_<utterance>.wav; the speaker number is the id.
SPEAKER_PATTERN = re.compile(r'p(\d+)_(\d+)\.wav')
FRAME_LENGTH = 2048
# Thresholds at or below this mean "do not trim" (train.py's --silence_threshold 0).
MIN_SILENCE_THRESHOLD = 0.001


def find_files(directory, extension='.wav'):
    """Every file below ``directory`` whose name ends in ``extension``, sorted."""
    return sorted(os.path.join(root, name)
                  for root, _, names in os.walk(directory)
                  for name in names if name.endswith(extension))


def speaker_id(filename):
    """The VCTK speaker number in ``filename``, or ``None`` when it carries none."""
    match = SPEAKER_PATTERN.search(os.path.basename(filename))
    return int(match.group(1)) if match else None


def load_audio(filename, sample_rate):
    """The file's samples as mono float32 in [-1, 1] at ``sample_rate``."""
    # soundfile rather than librosa.load: a file it cannot read raises at once instead of
    # falling back to audioread with a warning of its own.
    audio, file_rate = soundfile.read(filename, dtype='float32', always_2d=True)
    audio = audio.mean(axis=1)
    if file_rate != sample_rate:
        audio = librosa.resample(audio, orig_sr=file_rate, target_sr=sample_rate,
                                 res_type='soxr_hq')
    return audio.astype(np.float32)


def trim_silence(audio, threshold, frame_length=FRAME_LENGTH):
    """Removes silence at the beginning and end of ``audio`` (the original's code)."""
    if audio.size < frame_length:
        frame_length = audio.size
    energy = librosa.feature.rms(y=audio, frame_length=frame_length)
    frames = np.nonzero(energy > threshold)
    indices = librosa.frames_to_samples(frames)[1]
    # Note: indices can be an empty array, if the whole audio was silence.
    return audio[indices[0]:indices[-1]] if indices.size else audio[0:0]


def cut_pieces(audio, receptive_field, sample_size=None):
    """Front-pads ``audio`` with ``receptive_field`` zeros and cuts it into pieces of
    ``receptive_field + sample_size`` samples that overlap by ``receptive_field``, so
    every sample is predicted exactly once; ``sample_size`` None or 0 keeps the whole clip
    (the original's ``if sample_size``)."""
    audio = np.pad(audio, (receptive_field, 0))
    if not sample_size:
        return [audio]
    pieces = []
    while len(audio) > receptive_field:
        pieces.append(audio[:receptive_field + sample_size])
        audio = audio[sample_size:]
    return pieces


def warn(message):
    print(f'Warning: {message}', file=sys.stderr, flush=True)


class AudioReader:
    """Batches of ``(audio [B, T, 1] float32, gc_ids [B] int32)`` from every ``*.wav``
    below ``audio_dir``. Files come in a fresh random order each pass, pass after pass.

    Raises ``ValueError`` when the folder holds no ``.wav`` file, or when ``gc_enabled``
    and a file name carries no speaker id. Files that cannot be used are skipped, with
    one warning each, when the pipeline first meets them.
    """

    def __init__(self, audio_dir, sample_rate, gc_enabled, receptive_field, sample_size=None,
                 silence_threshold=None):
        self.audio_dir = audio_dir
        self.sample_rate = sample_rate
        self.gc_enabled = gc_enabled
        self.receptive_field = receptive_field
        self.sample_size = sample_size
        self.silence_threshold = silence_threshold
        self.files = find_files(audio_dir)
        if not self.files:
            raise ValueError(f"No audio files found in '{audio_dir}'.")
        self.speaker_ids = [speaker_id(f) for f in self.files]
        self.gc_category_cardinality = None
        if gc_enabled:
            for filename, speaker in zip(self.files, self.speaker_ids):
                if speaker is None:
                    raise ValueError(f"Global conditioning is enabled, but '{filename}' has no "
                                     f"speaker id (expected a name like p225_001.wav).")
            self.gc_category_cardinality = max(self.speaker_ids) + 1
            print(f'Detected --gc_cardinality={self.gc_category_cardinality}')
        # Files found unusable, so each is warned about once and not decoded again.
        self._skipped = set()

    def pieces(self, filename):
        """The training pieces of one file; ``[]`` (after a warning) when it is unusable."""
        if filename in self._skipped:
            return []
        try:
            audio = load_audio(filename, self.sample_rate)
        except Exception as e:  # whatever the decoder fails on, the file is skipped
            return self._skip(filename, f'{filename} was ignored as it could not be read '
                                        f'as audio ({e}).')
        if audio.size == 0:
            return self._skip(filename, f'{filename} was ignored as it contains no audio.')
        if self.silence_threshold is not None and self.silence_threshold > MIN_SILENCE_THRESHOLD:
            audio = trim_silence(audio, self.silence_threshold)
            if audio.size == 0:
                return self._skip(
                    filename, f'{filename} was ignored as it contains only silence. Consider '
                              'decreasing trim_silence threshold, or adjust volume of the audio.')
        return cut_pieces(audio, self.receptive_field, self.sample_size)

    def _skip(self, filename, message):
        if filename not in self._skipped:
            self._skipped.add(filename)
            warn(message)
        return []

    def _padded_pieces(self, filename):
        """``pieces`` as one zero-padded ``[n, longest]`` array plus the true lengths."""
        pieces = self.pieces(filename.decode())
        lengths = np.array([len(p) for p in pieces], np.int32)
        stacked = np.zeros([len(pieces), lengths.max(initial=0)], np.float32)
        for row, piece in zip(stacked, pieces):
            row[:len(piece)] = piece
        return stacked, lengths

    def dataset(self, batch_size, seed=None):
        """An endless ``tf.data.Dataset`` of ``(audio [B, T, 1], gc_ids [B])`` batches,
        shorter pieces zero-padded to the longest in their batch. It ends only if no file
        in the corpus is usable."""
        ids = [s if self.gc_enabled else 0 for s in self.speaker_ids]
        files = tf.data.Dataset.from_tensor_slices((self.files, tf.constant(ids, tf.int32)))
        files = files.shuffle(len(self.files), seed=seed, reshuffle_each_iteration=True)

        def load(filename, gc_id):
            pieces, lengths = tf.numpy_function(
                self._padded_pieces, [filename], [tf.float32, tf.int32])
            pieces = tf.ensure_shape(pieces, [None, None])
            gc_ids = tf.fill(tf.shape(lengths), gc_id)
            return pieces, tf.ensure_shape(lengths, [None]), gc_ids

        def unpad(piece, length, gc_id):
            return piece[:length, tf.newaxis], gc_id

        pieces = (files.map(load, num_parallel_calls=tf.data.AUTOTUNE)
                  .unbatch()
                  .map(unpad)
                  # After the decoding: a pass that yields nothing ends the repetition
                  # instead of spinning forever on a corpus of unusable files.
                  .repeat())
        return (pieces.padded_batch(batch_size, padded_shapes=([None, 1], []))
                .prefetch(tf.data.AUTOTUNE))
