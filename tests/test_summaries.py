"""Hearing and seeing a training: spectrogram pictures, samples generated
while training (per speaker; a vocoder's copy synthesis beside its reference) and
generate.py's pictures, read back with TensorBoard's own event reader."""
import io
import json
import os

import numpy as np
import pytest
import soundfile
import tensorflow as tf
from helpers import CORPUS_PARAMS, GENERATE, SMALL_VOCODER, TRAIN, write_corpus
from helpers import run_tool as run
from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

from wavenet import quality
from wavenet.audio_reader import held_out
from wavenet.summaries import spectrogram_picture


def brightness_by_row(picture):
    """Mean luminance of each picture row over the middle of the time axis."""
    rgb = picture[..., :3].astype(np.float64)
    luminance = rgb @ [0.299, 0.587, 0.114]
    width = picture.shape[1]
    return luminance[:, width // 4:width // 2].mean(axis=1)


def test_spectrogram_picture_puts_a_tone_where_its_frequency_is():
    t = np.arange(16000) / 16000
    # Silence is black (-80 dB) everywhere inside the axes: that locates the plot's rows
    # (the margins are white).
    silence = spectrogram_picture(np.zeros(16000), 16000)
    inside = brightness_by_row(silence) < 20
    assert 150 < inside.sum() < 300
    rows = {}
    for frequency in (300, 1000, 2000, 4000):
        picture = spectrogram_picture(0.5 * np.sin(2 * np.pi * frequency * t), 16000)
        assert picture.dtype == np.uint8 and picture.shape == (300, 600, 4)
        rows[frequency] = int(np.argmax(np.where(inside, brightness_by_row(picture), -1)))
    # Higher tones are higher up (smaller row); above 1 kHz librosa's mel axis is
    # logarithmic (base 2), so the octaves 1-2 kHz and 2-4 kHz are equally tall.
    assert rows[4000] < rows[2000] < rows[1000] < rows[300]
    octaves = rows[1000] - rows[2000], rows[2000] - rows[4000]
    assert octaves[0] > 15 and abs(octaves[0] - octaves[1]) <= 0.15 * octaves[0], rows
    assert brightness_by_row(picture)[inside].max() > 200  # the tone is bright


class Events:
    """The summaries in ``logdir``, as TensorBoard itself reads them (every one kept)."""

    def __init__(self, logdir):
        self.accumulator = EventAccumulator(str(logdir), size_guidance={'tensors': 0})
        self.accumulator.Reload()

    def tags(self, plugin):
        """The tags of a TensorBoard tab's plugin: 'audio', 'images' or 'scalars'."""
        return sorted(self.accumulator.PluginTagToContent(plugin))

    def steps(self, tag):
        return [event.step for event in self.accumulator.Tensors(tag)]

    def values(self, tag):
        return [tf.make_ndarray(event.tensor_proto) for event in self.accumulator.Tensors(tag)]

    def audio(self, tag):
        """The clips of an audio tag, decoded."""
        # Each value holds the encoded wav of every clip (here one).
        return [soundfile.read(io.BytesIO(value.reshape(-1)[0]))[0]
                for value in self.values(tag)]

    def image_width(self, tag):
        return int(self.values(tag)[0].reshape(-1)[0])  # [width, height, png...]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp('summaries')
    corpus = write_corpus(root / 'corpus', speakers=(1, 2, 3, 4, 5))
    (root / 'params.json').write_text(json.dumps(CORPUS_PARAMS))
    result = run(TRAIN, f'--data_dir={corpus}', f'--wavenet_params={root / "params.json"}',
                 f'--logdir={root / "logdir"}', '--sample_size=500', '--silence_threshold=0',
                 '--gc_channels=4', '--num_steps=4', '--checkpoint_every=2',
                 '--sample_every=2', '--sample_seconds=0.05', '--validation_fraction=0.3')
    assert result.returncode == 0, result.stderr
    return root


def test_training_writes_samples_pictures_and_validation(trained):
    events = Events(trained / 'logdir')
    # The first four of the speakers that train (with 0.3 held out, all of speaker 3's
    # files happen to be), each under its own tag, every 2 steps and at the end.
    training = sorted({s for s in range(1, 6) for u in (1, 2)
                       if not held_out(f'p{s}/p{s}_{u:03d}.wav', 0.3)})
    assert training == [1, 2, 4, 5]
    speakers = [f'samples/speaker_{s}' for s in training[:4]]
    assert events.tags('audio') == speakers
    assert events.tags('images') == [f'{s}/spectrogram' for s in speakers]
    for tag in speakers:
        assert events.steps(tag) == [0, 2, 3]
        assert all(clip.shape == (800,) for clip in events.audio(tag))  # 0.05 s at 16 kHz
        assert events.steps(f'{tag}/spectrogram') == [0, 2, 3]
        assert events.image_width(f'{tag}/spectrogram') == 600
    assert {'loss', 'validation_loss'} <= set(events.tags('scalars'))
    assert events.steps('validation_loss') == [0, 2]
    # Different speakers drew different audio.
    last = [events.audio(tag)[-1] for tag in speakers]
    assert all(not np.array_equal(last[0], other) for other in last[1:])


def test_generate_writes_a_picture_per_speaker(trained, tmp_path):
    result = run(GENERATE, trained / 'logdir', '--gc_id', '2,3', '--samples', 400,
                 '--logdir', tmp_path)
    assert result.returncode == 0, result.stderr
    (run_dir,) = os.listdir(tmp_path / 'generate')
    events = Events(tmp_path / 'generate' / run_dir)
    assert events.tags('audio') == ['generated/speaker_2', 'generated/speaker_3']
    assert events.tags('images') == ['generated/speaker_2/spectrogram',
                                     'generated/speaker_3/spectrogram']
    assert events.audio('generated/speaker_2')[0].shape == (400,)


def test_a_vocoder_voices_a_held_out_clip_beside_its_reference(tmp_path):
    corpus = tmp_path / 'corpus'
    t = np.arange(4000) / 8000
    for utterance in (1, 2, 3):
        path = corpus / f'p1_{utterance:03d}.wav'
        path.parent.mkdir(exist_ok=True)
        soundfile.write(str(path), 0.4 * np.sin(2 * np.pi * 200 * utterance * t), 8000)
    (tmp_path / 'params.json').write_text(json.dumps(SMALL_VOCODER))
    result = run(TRAIN, f'--data_dir={corpus}', f'--wavenet_params={tmp_path / "params.json"}',
                 f'--logdir={tmp_path / "logdir"}', '--sample_size=400', '--num_steps=2',
                 '--silence_threshold=0', '--sample_every=1', '--sample_seconds=0.1',
                 f'--validation_dir={corpus}')
    # Every file held out is refused, so hold out a folder of its own instead.
    assert result.returncode == 2 and 'leaving none to train on' in result.stderr
    (corpus / 'held').mkdir()
    os.replace(corpus / 'p1_002.wav', corpus / 'held' / 'p1_002.wav')
    result = run(TRAIN, f'--data_dir={corpus}', f'--wavenet_params={tmp_path / "params.json"}',
                 f'--logdir={tmp_path / "logdir"}', '--sample_size=400', '--num_steps=2',
                 '--silence_threshold=0', '--sample_every=1', '--sample_seconds=0.1',
                 f'--validation_dir={corpus / "held"}')
    assert result.returncode == 0, result.stderr
    events = Events(tmp_path / 'logdir')
    assert events.tags('audio') == ['samples', 'samples/reference']
    assert events.tags('images') == ['samples/reference/spectrogram', 'samples/spectrogram']
    assert events.steps('samples') == [0, 1]
    # The clip's frames cover 0.1 s: 800 samples, generated and reference alike; the
    # reference is the held-out clip itself.
    assert events.audio('samples')[0].shape == (800,)
    reference = events.audio('samples/reference')[0]
    held, _ = soundfile.read(str(corpus / 'held' / 'p1_002.wav'))
    np.testing.assert_allclose(reference, held[:800], atol=1e-3)
    # Every sample is judged against the held-out recording by the field's measures, and
    # Griffin-Lim from the same features once, for a baseline (a measure undefined on such
    # a short clip, as F0 RMSE without a voiced frame in common, is not logged).
    for measure in ('mcd', 'voicing_error'):
        assert events.steps(f'quality/{measure}') == [0, 1]
        assert events.steps(f'griffin_lim/{measure}') == [0]
    judged = quality.judge(held[:800], events.audio('samples')[-1], 8000)
    for measure in ('mcd', 'voicing_error'):
        logged = float(events.values(f'quality/{measure}')[-1])
        assert logged == pytest.approx(judged[measure], rel=0.05, abs=0.02)
