"""The corpus reader: speaker ids, silence trimming, pieces, batches, resampling, bad files."""
import os

import numpy as np
import pytest
import soundfile

from wavenet.audio_reader import (
    AudioReader,
    cut_conditioned_pieces,
    cut_pieces,
    load_audio,
    trim_silence,
)
from wavenet.features import MelFeatures

SAMPLE_RATE = 16000
SILENCE_WARNING = ('Warning: {} was ignored as it contains only silence. Consider decreasing '
                   'trim_silence threshold, or adjust volume of the audio.')


def write_wav(path, audio, sample_rate=SAMPLE_RATE, subtype='FLOAT'):
    """Writes ``audio`` as a wav (32-bit float by default, so values come back exactly)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    soundfile.write(path, audio, sample_rate, subtype=subtype)
    return str(path)


def batches(reader, count, batch_size=1, seed=7):
    return [(audio.numpy(), gc_ids.numpy())
            for audio, gc_ids in reader.dataset(batch_size, seed=seed).take(count)]


def rms_trim_reference(audio, threshold, frame_length=2048, hop_length=512):
    """Silence trimming written out in numpy: centred frames over a zero-padded signal."""
    frame_length = min(frame_length, audio.size)
    padded = np.pad(audio, frame_length // 2)
    starts = range(0, padded.size - frame_length + 1, hop_length)
    energy = np.array([np.sqrt(np.mean(padded[s:s + frame_length] ** 2)) for s in starts])
    loud = np.nonzero(energy > threshold)[0] * hop_length
    return audio[loud[0]:loud[-1]] if loud.size else audio[:0]


def test_speaker_ids_and_cardinality(tmp_path, capsys):
    for name in ['p225/p225_001.wav', 'p225/p225_002.wav', 'p3/p3_010.wav', 'x/p17_001.wav']:
        write_wav(tmp_path / name, np.zeros(100, np.float32))
    reader = AudioReader(str(tmp_path), SAMPLE_RATE, gc_enabled=True, receptive_field=4)
    names = [os.path.relpath(f, tmp_path) for f in reader.files]
    assert names == ['p225/p225_001.wav', 'p225/p225_002.wav', 'p3/p3_010.wav',
                     'x/p17_001.wav']
    assert reader.speaker_ids == [225, 225, 3, 17]
    assert reader.gc_category_cardinality == 226
    assert capsys.readouterr().out == 'Detected --gc_cardinality=226\n'


def test_unlabelled_file_refused_only_with_global_conditioning(tmp_path):
    write_wav(tmp_path / 'p1_001.wav', np.zeros(100, np.float32))
    unlabelled = write_wav(tmp_path / 'sub' / 'speech.wav', np.zeros(100, np.float32))
    with pytest.raises(ValueError, match=f"'{unlabelled}' has no speaker id"):
        AudioReader(str(tmp_path), SAMPLE_RATE, gc_enabled=True, receptive_field=4)
    reader = AudioReader(str(tmp_path), SAMPLE_RATE, gc_enabled=False, receptive_field=4)
    assert reader.gc_category_cardinality is None
    assert len(reader.files) == 2


@pytest.mark.parametrize('names, voices', [
    (['vm-goodbye.wav', 'tt-weasels.wav'], 'no speaker ids in its file names'),
    (['p225_001.wav', 'p225_002.wav'], '1 speaker'),
    (['p225_001.wav', 'p226_001.wav', 'prompt.wav'], '2 speakers')])
def test_the_corpus_line_counts_the_speaker_ids_of_the_names(tmp_path, names, voices):
    for name in names:
        write_wav(tmp_path / name, np.zeros(SAMPLE_RATE // 2, np.float32))
    reader = AudioReader(str(tmp_path), SAMPLE_RATE, gc_enabled=False, receptive_field=4)
    assert reader.summary() == (f'Corpus {tmp_path}: {len(names)} files, {voices}, '
                                f'{0.5 * len(names):.1f} seconds of audio')


def test_empty_corpus_refused(tmp_path):
    (tmp_path / 'notes.txt').write_text('no audio here')
    with pytest.raises(ValueError, match=f"No audio files found in '{tmp_path}'"):
        AudioReader(str(tmp_path), SAMPLE_RATE, gc_enabled=False, receptive_field=4)


@pytest.mark.parametrize('length', [20000, 1500])  # the second is shorter than a frame
def test_trim_silence_matches_frame_rms(length):
    rng = np.random.default_rng(0)
    audio = np.zeros(length, np.float32)
    burst = slice(length // 4, 3 * length // 4)
    audio[burst] = rng.uniform(-1, 1, burst.stop - burst.start)
    expected = rms_trim_reference(audio, 0.3)
    trimmed = trim_silence(audio, 0.3)
    assert 0 < trimmed.size < length
    np.testing.assert_array_equal(trimmed, expected)
    assert trim_silence(audio * 0.01, 0.3).size == 0


def test_pieces_overlap_by_receptive_field_and_cover_every_sample_once():
    audio = np.arange(1, 24, dtype=np.float32)
    pieces = cut_pieces(audio, receptive_field=5, sample_size=10)
    assert [len(p) for p in pieces] == [15, 15, 8]
    np.testing.assert_array_equal(pieces[0][:5], np.zeros(5))
    np.testing.assert_array_equal(pieces[0][5:], audio[:10])
    for previous, piece in zip(pieces, pieces[1:]):
        np.testing.assert_array_equal(piece[:5], previous[-5:])
    # The samples each piece is trained to predict: everything after its receptive field.
    np.testing.assert_array_equal(np.concatenate([p[5:] for p in pieces]), audio)
    whole, = cut_pieces(audio, receptive_field=5, sample_size=None)
    np.testing.assert_array_equal(whole, np.concatenate([np.zeros(5), audio]))
    zero, = cut_pieces(audio, receptive_field=5, sample_size=0)  # 0 is "whole clips" too
    np.testing.assert_array_equal(zero, whole)


def test_batches_pad_shorter_pieces_with_zeros(tmp_path):
    # Constant clips, so every row of a batch shows which file it came from.
    lengths = {'p1_001.wav': 30, 'p2_001.wav': 50}
    for name, length in lengths.items():
        write_wav(tmp_path / name, np.full(length, 0.5 if name.startswith('p1') else -0.5))
    reader = AudioReader(str(tmp_path), SAMPLE_RATE, gc_enabled=True, receptive_field=4,
                         sample_size=None, silence_threshold=None)
    (audio, gc_ids), = batches(reader, 1, batch_size=2)
    assert audio.shape == (2, 54, 1) and audio.dtype == np.float32
    assert gc_ids.dtype == np.int32 and sorted(gc_ids) == [1, 2]
    for row, speaker in zip(audio[..., 0], gc_ids):
        length, value = (30, 0.5) if speaker == 1 else (50, -0.5)
        np.testing.assert_array_equal(row[:4], 0)
        np.testing.assert_array_equal(row[4:4 + length], value)
        np.testing.assert_array_equal(row[4 + length:], 0)


def test_every_file_once_per_pass_in_fresh_orders(tmp_path):
    for speaker in range(1, 7):
        write_wav(tmp_path / f'p{speaker}_001.wav', np.full(10, 0.1 * speaker))
    reader = AudioReader(str(tmp_path), SAMPLE_RATE, gc_enabled=True, receptive_field=2)
    order = [int(gc_ids[0]) for _, gc_ids in batches(reader, 6 * 4)]
    passes = [order[i:i + 6] for i in range(0, len(order), 6)]
    assert all(sorted(p) == [1, 2, 3, 4, 5, 6] for p in passes)
    assert len({tuple(p) for p in passes}) > 1
    assert order == [int(gc_ids[0]) for _, gc_ids in batches(reader, 6 * 4)]  # seeded


def test_pieces_in_the_pipeline(tmp_path):
    audio = np.linspace(-0.5, 0.5, 25, dtype=np.float32)
    write_wav(tmp_path / 'p1_001.wav', audio)
    reader = AudioReader(str(tmp_path), SAMPLE_RATE, gc_enabled=False, receptive_field=3,
                         sample_size=10)
    got = [a[0, :, 0] for a, _ in batches(reader, 3)]
    expected = cut_pieces(audio, 3, 10)
    assert [len(p) for p in got] == [13, 13, 8]
    for piece, want in zip(got, expected):
        np.testing.assert_array_equal(piece, want)


def test_shuffled_pieces_leave_their_files_order_and_each_comes_once(tmp_path):
    """--shuffle_pieces: every piece of a pass still comes once, but not in file order."""
    for speaker in (1, 2):
        write_wav(tmp_path / f'p{speaker}_001.wav',
                  speaker + np.arange(200, dtype=np.float32) / 1000)
    reader = AudioReader(str(tmp_path), SAMPLE_RATE, gc_enabled=False, receptive_field=2,
                         sample_size=10)
    pieces = len(cut_pieces(np.zeros(200), 2, 10)) * 2

    def first_samples(shuffle):
        return [float(a[0, -1, 0]) for a, _ in
                [(a.numpy(), g) for a, g in reader.dataset(1, seed=3, shuffle_pieces=shuffle)
                 .take(pieces)]]

    in_order, shuffled = first_samples(0), first_samples(64)
    assert sorted(in_order) == sorted(shuffled)
    assert len(set(in_order)) == pieces
    # In order: a file's pieces follow each other, ascending; shuffled, they do not.
    assert in_order == sorted(in_order[:pieces // 2]) + sorted(in_order[pieces // 2:])
    assert shuffled != in_order


def test_a_file_whose_features_fail_is_skipped_not_raised(tmp_path, capsys):
    """Whatever fails inside the pipeline on one file skips that file with one warning:
    an exception escaping a tf.data Python function ends training in a traceback."""
    write_wav(tmp_path / 'p1_001.wav', 0.5 * np.sin(np.arange(3000) / 5))
    odd = write_wav(tmp_path / 'p1_002.wav', 0.25 * np.sin(np.arange(3000) / 5))
    features = mel()

    class Failing:
        hop_length, channels = features.hop_length, features.channels
        frame_count, silence = features.frame_count, features.silence

        def __call__(self, audio):
            if abs(float(np.max(audio)) - 0.25) < 0.01:
                raise RuntimeError('a feature extractor failed')
            return features(audio)

    reader = AudioReader(str(tmp_path), SAMPLE_RATE, gc_enabled=False, receptive_field=4,
                         sample_size=1000, features=Failing())
    capsys.readouterr()
    got = [a.numpy() for a, _, _ in reader.dataset(1, seed=1).take(8)]
    assert all(abs(float(np.max(audio)) - 0.5) < 0.01 for audio in got)
    assert capsys.readouterr().err.splitlines() == [
        f'Warning: {odd} was ignored as it could not be cut into pieces (RuntimeError: a '
        'feature extractor failed).']


def test_resamples_48k_to_the_model_rate(tmp_path):
    seconds, frequency = 1.0, 440.0
    t = np.arange(int(48000 * seconds)) / 48000
    path = write_wav(tmp_path / 'p1_001.wav', 0.5 * np.sin(2 * np.pi * frequency * t), 48000,
                     subtype='PCM_16')
    audio = load_audio(path, SAMPLE_RATE)
    assert audio.dtype == np.float32 and audio.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(audio))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / audio.size
    assert abs(peak_hz - frequency) <= 1.0
    assert abs(np.abs(audio).max() - 0.5) < 0.02


def test_stereo_is_mixed_to_mono(tmp_path):
    stereo = np.stack([np.full(100, 0.2), np.full(100, 0.6)], axis=1)
    path = write_wav(tmp_path / 'p1_001.wav', stereo)
    np.testing.assert_allclose(load_audio(path, SAMPLE_RATE), 0.4, atol=1e-6)


def test_bad_files_skipped_with_one_warning_each(tmp_path, capsys):
    rng = np.random.default_rng(0)
    good = write_wav(tmp_path / 'p1' / 'p1_001.wav', rng.uniform(-0.9, 0.9, 3000))
    silent = write_wav(tmp_path / 'p2' / 'p2_001.wav', np.full(3000, 1e-3))
    empty_wav = write_wav(tmp_path / 'p2' / 'p2_002.wav', np.zeros(0))
    truncated = str(tmp_path / 'p2' / 'p2_003.wav')
    with open(good, 'rb') as f:
        (tmp_path / 'p2' / 'p2_003.wav').write_bytes(f.read(30))  # the header cut short
    not_audio = str(tmp_path / 'p3_001.wav')
    (tmp_path / 'p3_001.wav').write_text('this is not a wav file\n' * 10)
    empty = str(tmp_path / 'p4_001.wav')
    (tmp_path / 'p4_001.wav').write_bytes(b'')
    nan = write_wav(tmp_path / 'p5_001.wav', np.where(np.arange(3000) == 7, np.nan, 0.5))
    infinite = write_wav(tmp_path / 'p5_002.wav', np.where(np.arange(3000) == 9, np.inf, 0.5))
    reader = AudioReader(str(tmp_path), SAMPLE_RATE, gc_enabled=True, receptive_field=4,
                         sample_size=None, silence_threshold=0.3)
    capsys.readouterr()

    got = batches(reader, 5)  # five passes over the corpus: only the good file is used

    assert all(list(gc_ids) == [1] for _, gc_ids in got)
    assert all(np.isfinite(audio).all() for audio, _ in got)
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 7
    assert SILENCE_WARNING.format(silent) in warnings
    for bad in [empty_wav, truncated, not_audio, empty, nan, infinite]:
        assert sum(line.startswith(f'Warning: {bad} was ignored') for line in warnings) == 1
    assert f'Warning: {nan} was ignored as it could not be read as audio (it holds NaN or ' \
           'infinite samples).' in warnings


def test_a_vocoder_corpus_skips_a_wav_of_nan_samples(tmp_path, capsys):
    write_wav(tmp_path / 'p1_001.wav', 0.5 * np.sin(np.arange(3000) / 5))
    nan = write_wav(tmp_path / 'p1_002.wav', np.full(3000, np.nan))
    reader = AudioReader(str(tmp_path), SAMPLE_RATE, gc_enabled=False, receptive_field=4,
                         sample_size=1000, features=mel())
    capsys.readouterr()
    got = [(a.numpy(), f.numpy()) for a, _, f in reader.dataset(1, seed=1).take(8)]
    assert all(np.isfinite(audio).all() and np.isfinite(frames).all() for audio, frames in got)
    warnings = capsys.readouterr().err.splitlines()
    assert warnings == [f'Warning: {nan} was ignored as it could not be read as audio (it '
                        'holds NaN or infinite samples).']


def test_corpus_of_unusable_files_ends_the_dataset(tmp_path, capsys):
    (tmp_path / 'p1_001.wav').write_text('not audio')
    write_wav(tmp_path / 'p2_001.wav', np.zeros(5000))
    reader = AudioReader(str(tmp_path), SAMPLE_RATE, gc_enabled=False, receptive_field=4,
                         silence_threshold=0.3)
    assert list(reader.dataset(1)) == []
    assert len(capsys.readouterr().err.splitlines()) == 2


# -- a vocoder's pieces: audio with its feature frames ----------------------------------

def mel(hop=16):
    return MelFeatures(SAMPLE_RATE, channels=6, hop_length=hop, n_fft=64)


@pytest.mark.parametrize('sample_size', [None, 40, 64])
def test_conditioned_pieces_start_on_frames_and_carry_theirs(sample_size):
    features, receptive_field = mel(), 21
    audio = np.random.uniform(-0.5, 0.5, 300).astype(np.float32)
    clip_frames = features(audio)
    pieces = cut_conditioned_pieces(audio, clip_frames, features, receptive_field, sample_size)
    # The padding is rounded up to whole frames (2 of 16 samples), filled with silence.
    padded = np.concatenate([np.zeros(32, np.float32), audio])
    all_frames = np.concatenate([features.silence(2), clip_frames])
    step = 48 if sample_size == 40 else sample_size  # rounded up to whole frames
    starts = [0] if sample_size is None else list(range(0, len(padded) - receptive_field, step))
    assert len(pieces) == len(starts)
    predicted = []
    for start, (piece, frames) in zip(starts, pieces):
        assert start % 16 == 0
        np.testing.assert_array_equal(piece, padded[start:start + receptive_field + (
            step or len(padded))])
        assert len(frames) == -(-len(piece) // 16)
        np.testing.assert_array_equal(frames, all_frames[start // 16:start // 16 + len(frames)])
        predicted.extend(range(start + receptive_field, start + len(piece)))
    # Every sample of the clip is predicted exactly once.
    assert predicted == list(range(receptive_field, len(padded)))


def test_conditioned_batches(tmp_path):
    features = mel()
    long = write_wav(tmp_path / 'p1_001.wav', np.random.uniform(-0.5, 0.5, 200).astype('f4'))
    write_wav(tmp_path / 'p2_001.wav', np.random.uniform(-0.5, 0.5, 100).astype('f4'))
    reader = AudioReader(str(tmp_path), SAMPLE_RATE, gc_enabled=True, receptive_field=10,
                         features=features)
    audio, gc_ids, frames = next(iter(reader.dataset(2, seed=1)))
    assert audio.shape == (2, 16 + 200, 1) and frames.shape == (2, -(-216 // 16), 6)
    row = list(gc_ids.numpy()).index(1)
    np.testing.assert_array_equal(frames[row].numpy(), np.concatenate(
        [features.silence(1), features(load_audio(long, SAMPLE_RATE))]))
    # The shorter piece is padded with silence: zeros, and frames of silence.
    short = 1 - row
    assert not np.any(audio[short, 116:].numpy())
    np.testing.assert_array_equal(frames[short, -(-116 // 16):].numpy(), features.silence(6))


def test_validation_split_is_stable_disjoint_and_never_trains(tmp_path):
    names = [f'p{s}/p{s}_{u:03d}.wav' for s in range(1, 11) for u in range(1, 11)]
    level = {name: (i + 1) / 256 for i, name in enumerate(names)}  # each file its own value
    for name in names:
        write_wav(tmp_path / 'a' / name, np.full(600, level[name], np.float32))
    reader = AudioReader(str(tmp_path / 'a'), SAMPLE_RATE, gc_enabled=True, receptive_field=4,
                         validation_fraction=0.25)
    held = {os.path.relpath(f, tmp_path / 'a') for f in reader.validation_files}
    trains = {os.path.relpath(f, tmp_path / 'a') for f in reader.files}
    assert held.isdisjoint(trains) and held | trains == set(names)
    assert 15 <= len(held) <= 35  # about a quarter of 100
    # The speaker ids of held-out files still count; the training ids are the rest.
    assert reader.gc_category_cardinality == 11
    assert sorted(reader.speaker_ids) == sorted(int(n.split('/')[0][1:]) for n in trains)
    # The same files elsewhere, with more beside them: the same split of the old ones.
    level_b = dict(level, **{'p11/p11_001.wav': 0.875, 'p12/p12_001.wav': 0.9375})
    for name, value in level_b.items():
        write_wav(tmp_path / 'b' / name, np.full(600, value, np.float32))
    again = AudioReader(str(tmp_path / 'b'), SAMPLE_RATE, gc_enabled=True, receptive_field=4,
                        validation_fraction=0.25)
    again_held = {os.path.relpath(f, tmp_path / 'b') for f in again.validation_files}
    assert again_held - {'p11/p11_001.wav', 'p12/p12_001.wav'} == held
    # Nothing held out reaches a training batch: a pass over the files shows every training
    # file's value and no held-out one's.
    seen = {float(v) for audio, _ in batches(again, len(again.files), batch_size=1)
            for v in np.unique(audio) if v}
    assert seen == {level_b[n] for n in set(level_b) - again_held}
    pieces = reader.validation_pieces(reader.validation_files, 5)
    assert len(pieces) == 5 and pieces[0][0].shape == (1, 604, 1)
    assert pieces[0][1][0] == int(sorted(held)[0].split('/')[0][1:])
    with pytest.raises(ValueError, match='holds out none of the 100 files'):
        AudioReader(str(tmp_path / 'a'), SAMPLE_RATE, gc_enabled=True, receptive_field=4,
                    validation_fraction=1e-9)
