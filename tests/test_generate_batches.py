"""Generation in batches and at length: independent streams, several
utterances of a vocoder, wavs written as they are generated, memory that does not grow
with the length, and the persistent compilation cache."""
import gc
import glob
import os
import tracemalloc

import numpy as np
import pytest
import soundfile
import tensorflow as tf
from helpers import describe, run_generate, save_checkpoint

from wavenet import WaveNetModel, mu_law_decode
from wavenet.generation import (
    UniformStreams,
    WavStream,
    generate,
    start_waveform,
    stream_key,
    uniform_streams,
)
from wavenet.output import MuLawSoftmax
from wavenet.params import build_model

RATE = 8000
PLAIN = dict(filter_width=2, sample_rate=RATE, dilations=[1, 2, 4, 8], residual_channels=8,
             dilation_channels=8, quantization_channels=64, skip_channels=16, use_biases=True,
             scalar_input=False, initial_filter_width=32)
VOCODER = dict(**PLAIN, lc_channels=8, lc_hop_length=16, lc_upsample_scales=[4, 4],
               lc_n_fft=64)


def read(path):
    return soundfile.read(str(path), dtype='int16')[0]


def test_uniform_streams_are_the_same_in_any_stretch():
    streams = UniformStreams(7, [1, stream_key(1, 1)])
    whole = streams(0, 2500).numpy()
    np.testing.assert_array_equal(streams(999, 3), whole[:, 999:1002])
    np.testing.assert_array_equal(uniform_streams(7, [1], 2500)[0], whole[0])
    assert not np.array_equal(whole[0], whole[1])  # a second stream is another stream
    assert 0 <= whole.min() and whole.max() < 1
    assert abs(whole.mean() - 0.5) < 0.02


def test_pcm_table_is_the_decoded_codes_in_16_bits():
    table = MuLawSoftmax(256).pcm_table()
    assert table.dtype == np.int16 and table.shape == (256,)
    decoded = mu_law_decode(np.arange(256), 256).numpy()
    np.testing.assert_allclose(table / 2 ** 15, decoded, atol=1 / 2 ** 15)
    assert table[0] == -2 ** 15 and table[-1] == 2 ** 15 - 1  # -1 and 1, clipped


def test_a_wav_stream_is_whole_at_every_save(tmp_path):
    path = tmp_path / 'out.wav'
    stream = WavStream(str(path), RATE)
    rng = np.random.default_rng(0)
    first, second = (rng.integers(-2 ** 15, 2 ** 15, n).astype(np.int16) for n in (300, 700))
    stream.append(first)
    stream.save()
    np.testing.assert_array_equal(read(path), first)
    stream.append(second)
    np.testing.assert_array_equal(read(path), first)  # until the next save
    stream.save()
    stream.close()
    np.testing.assert_array_equal(read(path), np.concatenate([first, second]))
    assert sorted(os.listdir(tmp_path)) == ['out.wav']  # no raw or temporary file left


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp('batches')
    t = np.arange(1200) / RATE
    for name, seconds in (('short', 0.06), ('long', 0.15)):
        n = int(seconds * RATE)
        soundfile.write(str(root / f'{name}.wav'), 0.5 * np.sin(2 * np.pi * 440 * t[:n]), RATE)
    return dict(root=root, speakers=save_checkpoint(root / 'speakers', describe(PLAIN, 4, 6)),
                vocoder=save_checkpoint(root / 'vocoder', describe(VOCODER)))


def test_streams_and_speakers_in_one_batch(checkpoints, tmp_path):
    """--streams 2 with two speakers: four wavs, a TensorBoard tag each; every row gets what
    it gets alone (its stream keyed by speaker and stream)."""
    out = tmp_path / 'out.wav'
    result = run_generate(checkpoints['speakers'], '--gc_id', '1,4', '--streams', 2,
                          '--samples', 300, '--seed', 3, '--wav_out_path', out,
                          '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    names = ['out_gc1_s0.wav', 'out_gc1_s1.wav', 'out_gc4_s0.wav', 'out_gc4_s1.wav']
    assert sorted(os.listdir(tmp_path)) == ['logs'] + names
    audio = {name: read(tmp_path / name) for name in names}
    assert all(len(a) == 300 for a in audio.values())
    assert not np.array_equal(audio['out_gc1_s0.wav'], audio['out_gc1_s1.wav'])
    alone = tmp_path / 'alone.wav'
    result = run_generate(checkpoints['speakers'], '--gc_id', 4, '--samples', 300,
                          '--seed', 3, '--wav_out_path', alone, '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(read(alone), audio['out_gc4_s0.wav'])
    tags = set()
    for events in glob.glob(str(tmp_path / 'logs' / 'generate' / '*' / 'events.*')):
        for event in tf.compat.v1.train.summary_iterator(events):
            tags |= {value.tag for value in event.summary.value}
    assert {'generated/speaker_1/stream_0', 'generated/speaker_4/stream_1'} <= tags


def test_several_utterances_in_one_batch(checkpoints, tmp_path):
    """Two --lc_wav of different lengths: a wav each, as long as its own frames describe,
    each the audio that utterance gets alone."""
    root, out = checkpoints['root'], tmp_path / 'out.wav'
    result = run_generate(checkpoints['vocoder'], '--lc_wav', root / 'long.wav',
                          '--lc_wav', root / 'short.wav', '--seed', 2, '--wav_out_path', out,
                          '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == ['logs', 'out_long.wav', 'out_short.wav']
    features = describe(VOCODER).features
    for name, seconds in (('short', 0.06), ('long', 0.15)):
        frames = features.frame_count(int(seconds * RATE))
        assert len(read(tmp_path / f'out_{name}.wav')) == frames * 16
    alone = tmp_path / 'alone.wav'
    result = run_generate(checkpoints['vocoder'], '--lc_wav', root / 'short.wav', '--seed', 2,
                          '--wav_out_path', alone, '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(read(alone), read(tmp_path / 'out_short.wav'))


def test_two_utterances_of_one_name_refused(checkpoints, tmp_path):
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'short.wav').write_bytes((checkpoints['root'] / 'short.wav').read_bytes())
    result = run_generate(checkpoints['vocoder'], '--lc_wav', checkpoints['root'] / 'short.wav',
                          '--lc_wav', other / 'short.wav', '--wav_out_path', tmp_path / 'o.wav')
    assert result.returncode == 2
    assert 'names two files of the same name' in result.stderr.strip()


def test_memory_does_not_grow_with_the_length(tmp_path):
    """The codes go out chunk by chunk: 200000 more samples take no more memory (as NumPy
    arrays, which tracemalloc sees, they would hold at least 1.6 MB: codes and audio)."""
    net = WaveNetModel(1, [1, 2], 2, 4, 4, 8, 16)

    def peak(samples):
        streams = UniformStreams(0, [0])
        start = start_waveform(net, streams(0, 1)[:, 0])
        writer = WavStream(str(tmp_path / 'out.wav'), RATE)
        table = MuLawSoftmax(16).pcm_table()
        gc.collect()
        tracemalloc.start()
        for codes in generate(net, start, lambda b, n: streams(b + 1, n), samples=samples):
            writer.append(table[codes.numpy()[0]])
        writer.save()
        writer.close()
        used = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(read(tmp_path / 'out.wav')) == samples
        return used

    peak(2000)  # compile
    short, long = peak(50000), peak(250000)
    assert long < short + 600_000, (short, long)  # TensorFlow's garbage comes and goes


def test_a_second_run_loads_the_compiled_loop(checkpoints, tmp_path):
    """The first run fills the cache folder, the second adds nothing and draws the same
    audio; an empty --cache_dir keeps none."""
    cache = tmp_path / 'cache'
    flags = [checkpoints['speakers'], '--gc_id', 2, '--samples', 200, '--seed', 5,
             '--logdir', tmp_path / 'logs', '--cache_dir', cache]
    first = run_generate(*flags, '--wav_out_path', tmp_path / 'first.wav')
    assert first.returncode == 0, first.stderr
    machine, = os.listdir(cache)  # tensorflow-<version>-<architecture>-<processor>
    assert machine.startswith('tensorflow-2.')
    entries = sorted(os.listdir(cache / machine / 'xla'))
    assert entries and all(name.endswith('.pb') for name in entries)
    second = run_generate(*flags, '--wav_out_path', tmp_path / 'second.wav')
    assert second.returncode == 0, second.stderr
    assert sorted(os.listdir(cache / machine / 'xla')) == entries
    # Loading logs nothing: stderr holds the progress line alone.
    assert second.stderr.strip().startswith('Sample 200/200'), second.stderr
    assert len(second.stderr.strip().splitlines()) == 1, second.stderr
    np.testing.assert_array_equal(read(tmp_path / 'first.wav'), read(tmp_path / 'second.wav'))
    env = dict(os.environ)
    env.pop('WAVENET_CACHE_DIR', None)
    env['XDG_CACHE_HOME'] = str(tmp_path / 'home')
    off = run_generate(*flags[:-2], '--cache_dir', '', '--wav_out_path', tmp_path / 'off.wav',
                       env=env)
    assert off.returncode == 0, off.stderr
    assert not (tmp_path / 'home' / 'wavenet').exists()
    np.testing.assert_array_equal(read(tmp_path / 'off.wav'), read(tmp_path / 'first.wav'))


def test_an_unwritable_cache_dir_is_one_line(checkpoints, tmp_path):
    (tmp_path / 'file').write_text('')
    result = run_generate(checkpoints['speakers'], '--gc_id', 2,
                          '--cache_dir', tmp_path / 'file' / 'cache')
    assert result.returncode == 2
    assert result.stderr.strip() == (f'generate.py: error: --cache_dir {tmp_path}/file/cache: '
                                     f'{tmp_path}/file is a file, not a directory')


@pytest.mark.skipif(not tf.config.list_physical_devices('GPU'), reason='needs a GPU')
def test_gpu_and_cpu_draw_the_same_samples():
    net = build_model(describe(dict(PLAIN, dilations=[1, 2, 4, 8, 16, 32]), 4, 6))
    streams = UniformStreams(9, [1, 3])

    def codes(device):
        with tf.device(device):
            start = start_waveform(net, streams(0, 1)[:, 0])
            return np.concatenate([c.numpy() for c in generate(
                net, start, lambda b, n: streams(b + 1, n), [1, 3], samples=400)], axis=1)

    np.testing.assert_array_equal(codes('/GPU:0'), codes('/CPU:0'))
