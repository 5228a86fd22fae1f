"""The training corpus: a folder of ``.wav`` files as a ``tf.data`` pipeline of batches.

Each file is loaded mono at the model's sample rate, trimmed of leading and trailing
silence, padded at the front with one receptive field of zeros and cut into overlapping
pieces, exactly as the original toolkit did; decoding runs in parallel and ahead of the
training step. For a vocoder (local conditioning) each piece also carries
its feature frames, computed from the trimmed clip and cut on the same frame boundaries.
"""
import dataclasses
import os
import re
import threading
import zlib

import librosa
import numpy as np
import soundfile
import tensorflow as tf

from .cli import warn

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


def held_out(path, fraction):
    """Whether the file at ``path`` (relative to the corpus) belongs to the validation set:
    a hash of the path, so the split is the same on every run and machine, and adding files
    never moves another from one side to the other."""
    return zlib.crc32(path.replace(os.sep, '/').encode()) / 2 ** 32 < fraction


def speaker_id(filename):
    """The VCTK speaker number in ``filename``, or ``None`` when it carries none."""
    match = SPEAKER_PATTERN.search(os.path.basename(filename))
    return int(match.group(1)) if match else None


def load_audio(filename, sample_rate):
    """The file's samples as mono float32 in [-1, 1] at ``sample_rate``."""
    # soundfile rather than librosa.load: a file it cannot read raises at once instead of
    # falling back to audioread with a warning of its own.
    audio, file_rate = soundfile.read(filename, dtype='float32', always_2d=True)
    # Float wavs can carry NaN or infinite samples, which would poison every loss and
    # feature they reach: such a file is as unreadable as a truncated one.
    if not np.isfinite(audio).all():
        raise ValueError('it holds NaN or infinite samples')
    audio = audio.mean(axis=1)
    if file_rate != sample_rate:
        audio = librosa.resample(audio, orig_sr=file_rate, target_sr=sample_rate,
                                 res_type='soxr_hq')
    return audio.astype(np.float32)


def loudest_frame(audio, frame_length=FRAME_LENGTH):
    """The highest frame RMS energy of ``audio``, as ``trim_silence`` measures it."""
    frame_length = min(frame_length, audio.size)
    return float(librosa.feature.rms(y=audio, frame_length=frame_length).max(initial=0))


def trim_silence(audio, threshold, frame_length=FRAME_LENGTH):
    """Removes silence at the beginning and end of ``audio`` (the original's code)."""
    if audio.size < frame_length:
        frame_length = audio.size
    energy = librosa.feature.rms(y=audio, frame_length=frame_length)
    frames = np.nonzero(energy > threshold)
    indices = librosa.frames_to_samples(frames)[1]
    # Note: indices can be an empty array, if the whole audio was silence.
    return audio[indices[0]:indices[-1]] if indices.size else audio[0:0]


def cut_pieces(audio, receptive_field, sample_size=None, equal=False):
    """Front-pads ``audio`` with ``receptive_field`` zeros and cuts it into pieces of
    ``receptive_field + sample_size`` samples that overlap by ``receptive_field``, so
    every sample is predicted exactly once; ``sample_size`` None or 0 keeps the whole clip
    (the original's ``if sample_size``). ``equal``: every piece full length (see
    ``_equal_lengths``)."""
    audio = np.pad(audio, (receptive_field, 0))
    if not sample_size:
        return [audio]
    length = receptive_field + sample_size
    starts = range(0, len(audio) - receptive_field, sample_size)
    if equal:
        audio, starts = _equal_lengths(audio, starts, length, 1)
    return [audio[start:start + length] for start in starts]


def cut_conditioned_pieces(audio, frames, features, receptive_field, sample_size=None,
                           equal=False):
    """``cut_pieces`` for a vocoder: ``(piece, piece_frames)`` pairs that start on frame
    boundaries. The front padding is rounded up to whole frames of silence (whose features
    are those of silence) and ``sample_size`` up to whole frames, so piece ``k`` starts at
    frame ``k * step / hop`` and ``piece_frames`` covers it (``ceil(len / hop)`` frames)."""
    hop = features.hop_length
    padding = features.frame_count(receptive_field)
    audio = np.pad(audio, (padding * hop, 0))
    frames = np.concatenate([features.silence(padding), frames])
    if not sample_size:
        return [(audio, frames)]
    step = features.frame_count(sample_size) * hop
    length = receptive_field + step
    if equal:  # a clip shorter than a piece gets whole frames of silence in front
        padding = features.frame_count(max(0, length - len(audio)))
        audio = np.pad(audio, (padding * hop, 0))
        frames = np.concatenate([features.silence(padding), frames])
    starts = range(0, len(audio) - receptive_field, step)
    if equal:
        audio, starts = _equal_lengths(audio, starts, length, hop)
    pieces = []
    for start in starts:
        piece = audio[start:start + length]
        first = start // hop
        pieces.append((piece, frames[first:first + features.frame_count(len(piece))]))
    return pieces


def _equal_lengths(audio, starts, length, alignment):
    """The audio and piece starts of ``equal`` pieces, all ``length`` long, so that a
    compiled training step sees one shape (XLA compiles once per shape): a clip shorter
    than one piece is front-padded with more silence, and the last piece, which would be
    short, is the clip's last whole piece starting on a multiple of ``alignment`` (it
    overlaps the one before; at most ``alignment - 1`` samples at the end are in none)."""
    audio = np.pad(audio, (max(0, length - len(audio)), 0))
    starts = [start for start in starts if start + length <= len(audio)]
    last = (len(audio) - length) // alignment * alignment
    if not starts or starts[-1] < last:
        starts.append(last)
    return audio, starts


@dataclasses.dataclass(eq=False)  # a reader is mutable state: equal only to itself
class AudioReader:
    """Batches of ``(audio [B, T, 1] float32, gc_ids [B] int32)`` from every ``*.wav``
    below ``audio_dir``, plus ``frames [B, ceil(T / hop), C]`` with ``features`` (a
    ``wavenet.features.MelFeatures``). Files come in a fresh random order each pass,
    pass after pass.

    Raises ``ValueError`` when the folder holds no ``.wav`` file, or when ``gc_enabled``
    and a file name carries no speaker id. Files that cannot be used are skipped, with
    one warning each, when the pipeline first meets them.
    """

    audio_dir: str
    sample_rate: int
    gc_enabled: bool
    receptive_field: int
    sample_size: int | None = None
    silence_threshold: float | None = None
    features: object = None  # a wavenet.features.MelFeatures, for a vocoder
    validation_fraction: float = 0

    def __post_init__(self):
        audio_dir, validation_fraction = self.audio_dir, self.validation_fraction
        self.files = find_files(audio_dir)
        if not self.files:
            raise ValueError(f"No audio files found in '{audio_dir}'.")
        # Held-out files never train; the speaker ids below cover them too.
        self.validation_files = [f for f in self.files
                                 if held_out(os.path.relpath(f, audio_dir), validation_fraction)]
        if validation_fraction and not self.validation_files:
            raise ValueError(f'--validation_fraction {validation_fraction} holds out none of '
                             f'the {len(self.files)} files; raise it or use --validation_dir')
        if len(self.validation_files) == len(self.files):
            raise ValueError(f'--validation_fraction {validation_fraction} holds out all '
                             f'{len(self.files)} files, leaving none to train on')
        all_speaker_ids = [speaker_id(f) for f in self.files]
        self.gc_category_cardinality = None
        if self.gc_enabled:
            for filename, speaker in zip(self.files, all_speaker_ids):
                if speaker is None:
                    raise ValueError(f"Global conditioning is enabled, but '{filename}' has no "
                                     f"speaker id (expected a name like p225_001.wav).")
            self.gc_category_cardinality = max(all_speaker_ids) + 1
            print(f'Detected --gc_cardinality={self.gc_category_cardinality}')
        held = set(self.validation_files)
        self.files = [f for f in self.files if f not in held]
        self.speaker_ids = [speaker_id(f) for f in self.files]
        # Files found unusable, so each is warned about once and not decoded again.
        self._skipped = set()
        # The loudest frame of the files dropped as silence, for the hint when all are;
        # files are decoded on several threads at once.
        self._loudest_silence = None
        self._lock = threading.Lock()

    def hold_out(self, files):
        """Moves ``files`` (e.g. those of a --validation_dir inside the corpus) out of
        training into the validation files."""
        held = set(files)
        self.validation_files += [f for f in self.files if f in held]
        self.files = [f for f in self.files if f not in held]
        self.speaker_ids = [speaker_id(f) for f in self.files]
        if not self.files:
            raise ValueError('every file of the corpus is held out for validation, leaving '
                             'none to train on')

    def summary(self):
        """One line on the corpus: files, speakers (distinct ids in the names), hours.
        A ``ValueError`` when not one training file can be read as audio (a header read
        each, so before any work)."""
        seconds, readable, problem = 0.0, 0, None
        for index, filename in enumerate(self.files + self.validation_files):
            try:
                seconds += soundfile.info(filename).duration
                readable += index < len(self.files)  # a training file
            except Exception as e:  # unreadable: warned about when the pipeline meets it
                problem = problem or f'{filename}: {e}'
        if not readable:
            raise ValueError(f'no usable audio: not one of the {len(self.files)} training '
                             f'files can be read as audio ({problem})')
        speakers = len({speaker_id(f) for f in self.files + self.validation_files} - {None})
        # A folder of prompts has no VCTK names to count speakers by: say so, not "0".
        voices = {0: 'no speaker ids in its file names', 1: '1 speaker'}.get(
            speakers, f'{speakers} speakers')
        if seconds >= 3600:
            length = f'{seconds / 3600:.1f} hours'
        elif seconds >= 60:
            length = f'{seconds / 60:.1f} minutes'
        else:
            length = f'{seconds:.1f} seconds'
        held = (f' ({len(self.validation_files)} held out for validation)'
                if self.validation_files else '')
        return (f'Corpus {self.audio_dir}: {len(self.files) + len(self.validation_files)} '
                f'files{held}, {voices}, {length} of audio')

    def silence_hint(self):
        """When files were dropped as silence: the loudest frame RMS among them and a
        ``--silence_threshold`` that would have kept it (``''`` otherwise)."""
        loudest = self._loudest_silence
        if loudest is None:
            return ''
        if loudest <= MIN_SILENCE_THRESHOLD:
            return (f'; the loudest frame RMS found was {loudest:.2g}: the audio is silent '
                    '(--silence_threshold=0 turns trimming off)')
        keep = float(f'{loudest / 2:.1g}')  # half of the loudest, one significant digit
        return (f'; the loudest frame RMS found was {loudest:.3g}: '
                f'--silence_threshold={keep:g} would keep it')

    def pieces(self, filename, equal=False):
        """The training pieces of one file (with ``features``: ``(piece, frames)`` pairs);
        ``[]`` (after a warning) when it is unusable. ``equal``: all of one length
        (``cut_pieces``)."""
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
            trimmed = trim_silence(audio, self.silence_threshold)
            if trimmed.size == 0:
                loudest = loudest_frame(audio)
                with self._lock:
                    self._loudest_silence = max(self._loudest_silence or 0.0, loudest)
                return self._skip(
                    filename, f'{filename} was ignored as it contains only silence. Consider '
                              'decreasing trim_silence threshold, or adjust volume of the audio.')
            audio = trimmed
        try:
            if self.features is not None:
                return cut_conditioned_pieces(audio, self.features(audio), self.features,
                                              self.receptive_field, self.sample_size, equal)
            return cut_pieces(audio, self.receptive_field, self.sample_size, equal)
        except Exception as e:
            # This runs inside the tf.data pipeline: an exception escaping it ends the
            # training in a traceback, and can leave the process waiting for ever on a
            # prefetch thread as it exits. A file that cannot be cut is skipped instead.
            return self._skip(filename, f'{filename} was ignored as it could not be cut '
                                        f'into pieces ({type(e).__name__}: {e}).')

    def validation_pieces(self, files, count):
        """At most ``count`` pieces of ``files`` (in their sorted order, so always the
        same), each ``(audio [1, T, 1], gc_ids [1] or None, frames [1, F, C] or None)``."""
        pieces = []
        for filename in files:
            for piece in self.pieces(filename):
                audio, frames = piece if self.features is not None else (piece, None)
                gc_ids = np.array([speaker_id(filename)], np.int32) if self.gc_enabled else None
                pieces.append((audio[np.newaxis, :, np.newaxis], gc_ids,
                               None if frames is None else frames[np.newaxis]))
                if len(pieces) == count:
                    return pieces
        return pieces

    def _skip(self, filename, message):
        if filename not in self._skipped:
            self._skipped.add(filename)
            warn(message)
        return []

    def _padded_pieces(self, filename, equal=False):
        """``pieces`` as one zero-padded ``[n, longest]`` array plus the true lengths (and
        with ``features``, their frames ``[n, most, C]`` and frame counts)."""
        pieces = self.pieces(filename.decode(), equal)
        if self.features is None:
            return _stack(pieces)
        return _stack([p for p, _ in pieces]) + _stack([f for _, f in pieces],
                                                       self.features.channels)

    def dataset(self, batch_size, seed=None, shards=1, shard=0, shuffle_pieces=0,
                equal_pieces=False):
        """An endless ``tf.data.Dataset`` of ``(audio [B, T, 1], gc_ids [B])`` batches,
        shorter pieces zero-padded to the longest in their batch. It ends only if no file
        in the corpus is usable. ``shard`` of ``shards``: only every ``shards``-th file,
        from the ``shard``-th on (one worker's part of a multi-worker training).
        ``shuffle_pieces``: draw pieces at random from a buffer of this many, instead of
        each file's pieces in order (as the original), so that neighbouring steps see
        other files and speakers (0 or 1: in order). ``equal_pieces``: every piece
        ``receptive_field + sample_size`` long (``cut_pieces``), for a compiled step."""
        ids = [s if self.gc_enabled else 0 for s in self.speaker_ids]
        files = tf.data.Dataset.from_tensor_slices((self.files, tf.constant(ids, tf.int32)))
        files = files.shard(shards, shard)
        files = files.shuffle(len(self.files), seed=seed, reshuffle_each_iteration=True)

        conditioned = self.features is not None
        outputs = [tf.float32, tf.int32] * (2 if conditioned else 1)

        def load(filename, gc_id):
            arrays = tf.numpy_function(lambda name: self._padded_pieces(name, equal_pieces),
                                       [filename], outputs)
            pieces, lengths = tf.ensure_shape(arrays[0], [None, None]), arrays[1]
            gc_ids = tf.fill(tf.shape(lengths), gc_id)
            loaded = (pieces, tf.ensure_shape(lengths, [None]), gc_ids)
            if conditioned:
                frames = tf.ensure_shape(arrays[2], [None, None, self.features.channels])
                loaded += (frames, tf.ensure_shape(arrays[3], [None]))
            return loaded

        def unpad(piece, length, gc_id, frames=None, frame_count=None):
            if frames is None:
                return piece[:length, tf.newaxis], gc_id
            return piece[:length, tf.newaxis], gc_id, frames[:frame_count]

        pieces = (files.map(load, num_parallel_calls=tf.data.AUTOTUNE)
                  .unbatch()
                  .map(unpad)
                  .shuffle(max(shuffle_pieces, 1), seed=seed)
                  # After the decoding: a pass that yields nothing ends the repetition
                  # instead of spinning forever on a corpus of unusable files.
                  .repeat())
        shapes, padding = ([None, 1], []), (0.0, 0)
        if conditioned:
            # Frames past a piece's end pad it like its audio: with silence.
            shapes += ([None, self.features.channels],)
            padding += (self.features.silence(1)[0, 0],)
        return (pieces.padded_batch(batch_size, padded_shapes=shapes, padding_values=padding)
                .prefetch(tf.data.AUTOTUNE))


def validation_pieces(reader, count, folder=None):
    """At most ``count`` held-out pieces (``AudioReader.validation_pieces``), or ``None``
    without a validation set: of ``folder`` (the reader of a --validation_dir, whose files
    then leave ``reader``'s training files if the corpus holds them) or of ``reader``'s
    held-out fraction."""
    files, source = reader.validation_files, '--validation_fraction'
    if folder is not None:
        files, source = folder.files, f'--validation_dir {folder.audio_dir}'
        reader.hold_out(files)
        cardinality = reader.gc_category_cardinality
        if cardinality is not None:
            outside = [f for f, s in zip(folder.files, folder.speaker_ids) if s >= cardinality]
            if outside:
                raise ValueError(f'{source}: {outside[0]} has a speaker id beyond the '
                                 f"training corpus's {cardinality - 1}")
    if not files:
        return None
    pieces = reader.validation_pieces(files, count)
    if not pieces:
        raise ValueError(f'{source}: no usable audio in the held-out files')
    return pieces


def _stack(arrays, channels=None):
    """``arrays`` (1-D, or 2-D of ``channels`` columns) zero-padded into one array, plus
    their lengths."""
    lengths = np.array([len(a) for a in arrays], np.int32)
    shape = [len(arrays), lengths.max(initial=0)] + ([] if channels is None else [channels])
    stacked = np.zeros(shape, np.float32)
    for row, array in zip(stacked, arrays):
        row[:len(array)] = array
    return stacked, lengths
