"""What generate.py writes, each against a reference of its own: the wav is the seed clip
followed by the drawn codes, decoded; speakers, streams and utterances in one batch get what
each gets alone; wavs are whole at every save; without a wav, TensorBoard alone hears it;
memory does not grow with the length."""
import gc
import glob
import os
import re
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import soundfile
import tensorflow as tf
from helpers import (
    GC_CARDINALITY,
    GC_CHANNELS,
    GENERATE,
    SMALL,
    SMALL_VOCODER,
    TEN_LAYERS,
    TRAIN,
    audio_summaries,
    describe,
    numpy_mu_law_decode,
    read_int16,
    run_generate,
    run_tool,
    write_json,
)

from wavenet import WaveNetModel, mu_law_decode
from wavenet.generation import UniformStreams, WavStream, generate, load_clip, start_waveform
from wavenet.output import MuLawSoftmax
from wavenet.params import build_model

Q = SMALL['quantization_channels']


def restored(prefix):
    net = build_model(describe(SMALL, GC_CHANNELS, GC_CARDINALITY))
    tf.train.Checkpoint(model=net).restore(str(prefix)).expect_partial()
    return net


def test_the_wav_is_the_seed_then_the_drawn_codes_decoded(speaker_files, tmp_path):
    out = tmp_path / 'out.wav'
    result = run_generate(speaker_files['prefix'], '--gc_id', 4, '--samples', 300, '--seed', 8,
                          '--wav_seed', speaker_files['seed'], '--wav_out_path', out,
                          '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    net = restored(speaker_files['prefix'])
    clip = load_clip(str(speaker_files['seed']), 8000, MuLawSoftmax(Q), net.receptive_field)
    streams = UniformStreams(8, [4])
    start = start_waveform(net, streams(0, 1)[:, 0], clip)
    codes = np.concatenate([c.numpy() for c in generate(
        net, start, lambda b, n: streams(b + 1, n), [4], samples=300)], axis=1)[0]
    expected = numpy_mu_law_decode(np.concatenate([clip, codes]), Q)
    audio = soundfile.read(str(out))[0]
    assert audio.shape == expected.shape
    np.testing.assert_allclose(audio, expected, atol=1.01 / 2 ** 15)


def test_several_speakers_with_seed_clip(speaker_files, tmp_path):
    out = tmp_path / 'out.wav'
    result = run_generate(speaker_files['prefix'], '--gc_id', '2,5', '--samples', 250,
                          '--wav_out_path', out, '--save_every', 100, '--seed', 4,
                          '--wav_seed', speaker_files['seed'], '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(
        'Finished generating. The result can be viewed in TensorBoard.')
    assert sorted(os.listdir(tmp_path)) == ['logs', 'out_gc2.wav', 'out_gc5.wav']
    clip = load_clip(str(speaker_files['seed']), 8000, MuLawSoftmax(Q),
                     describe(SMALL).receptive_field)
    for speaker in (2, 5):
        audio, sample_rate = soundfile.read(str(tmp_path / f'out_gc{speaker}.wav'))
        assert sample_rate == 8000 and audio.shape == (len(clip) + 250,)
        assert soundfile.info(str(tmp_path / f'out_gc{speaker}.wav')).subtype == 'PCM_16'
    assert sorted(audio_summaries(tmp_path / 'logs')) == [('generated/speaker_2', 0),
                                                          ('generated/speaker_5', 0)]

    # Alone, or through the full-window path, a speaker gets the same audio.
    for flags in ([], ['--fast_generation', 'false']):
        alone = tmp_path / 'alone.wav'
        result = run_generate(speaker_files['prefix'], '--gc_id', 5, '--samples', 250, '--seed', 4,
                              '--wav_out_path', alone, '--wav_seed', speaker_files['seed'],
                              '--logdir', tmp_path / 'logs', *flags)
        assert result.returncode == 0, result.stderr
        np.testing.assert_array_equal(soundfile.read(str(alone))[0],
                                      soundfile.read(str(tmp_path / 'out_gc5.wav'))[0])


def test_streams_and_speakers_in_one_batch(speaker_files, tmp_path):
    """--streams 2 with two speakers: four wavs, a TensorBoard tag each; every row gets what
    it gets alone (its stream keyed by speaker and stream)."""
    out = tmp_path / 'out.wav'
    result = run_generate(speaker_files['described'], '--gc_id', '1,4', '--streams', 2,
                          '--samples', 300, '--seed', 3, '--wav_out_path', out,
                          '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    names = ['out_gc1_s0.wav', 'out_gc1_s1.wav', 'out_gc4_s0.wav', 'out_gc4_s1.wav']
    assert sorted(os.listdir(tmp_path)) == ['logs'] + names
    audio = {name: read_int16(tmp_path / name) for name in names}
    assert all(len(a) == 300 for a in audio.values())
    assert not np.array_equal(audio['out_gc1_s0.wav'], audio['out_gc1_s1.wav'])
    alone = tmp_path / 'alone.wav'
    result = run_generate(speaker_files['described'], '--gc_id', 4, '--samples', 300,
                          '--seed', 3, '--wav_out_path', alone, '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(read_int16(alone), audio['out_gc4_s0.wav'])
    tags = set()
    for events in glob.glob(str(tmp_path / 'logs' / 'generate' / '*' / 'events.*')):
        for event in tf.compat.v1.train.summary_iterator(events):
            tags |= {value.tag for value in event.summary.value}
    assert {'generated/speaker_1/stream_0', 'generated/speaker_4/stream_1'} <= tags


def test_several_utterances_in_one_batch(small_vocoder, tmp_path):
    """Two --lc_wav of different lengths: a wav each, as long as its own frames describe,
    each the audio that utterance gets alone."""
    root, out = small_vocoder['root'], tmp_path / 'out.wav'
    result = run_generate(small_vocoder['checkpoint'], '--lc_wav', root / 'long.wav',
                          '--lc_wav', root / 'short.wav', '--seed', 2, '--wav_out_path', out,
                          '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == ['logs', 'out_long.wav', 'out_short.wav']
    features = describe(SMALL_VOCODER).features
    for name, seconds in (('short', 0.06), ('long', 0.15)):
        frames = features.frame_count(int(seconds * 8000))
        assert len(read_int16(tmp_path / f'out_{name}.wav')) == frames * 16
    alone = tmp_path / 'alone.wav'
    result = run_generate(small_vocoder['checkpoint'], '--lc_wav', root / 'short.wav', '--seed', 2,
                          '--wav_out_path', alone, '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(read_int16(alone), read_int16(tmp_path / 'out_short.wav'))


def test_an_unconditioned_network_with_a_short_seed(plain_checkpoint, tmp_path):
    """No --gc_id needed; a seed shorter than the receptive field is kept whole, silence
    before it, and the samples follow it."""
    t = np.arange(600) / 8000
    seed = tmp_path / 'short.wav'
    soundfile.write(str(seed), 0.8 * np.sin(2 * np.pi * 400 * t), 8000)
    out = tmp_path / 'out.wav'
    result = run_generate(plain_checkpoint, '--samples', 100, '--wav_seed', seed,
                          '--wav_out_path', out, '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    clip = load_clip(str(seed), 8000, MuLawSoftmax(Q), 10 ** 6)
    assert 0 < len(clip) < describe(TEN_LAYERS).receptive_field
    audio = soundfile.read(str(out))[0]
    assert audio.shape == (len(clip) + 100,)
    np.testing.assert_allclose(audio[:len(clip)], numpy_mu_law_decode(clip, Q),
                               atol=1.01 / 2 ** 15)
    assert sorted(audio_summaries(tmp_path / 'logs')) == [('generated', 0)]


def test_generates_from_a_checkpoint_written_by_train_py(tmp_path):
    t = np.arange(4000) / 16000
    for speaker in (1, 3):
        path = tmp_path / 'corpus' / f'p{speaker}' / f'p{speaker}_001.wav'
        path.parent.mkdir(parents=True)
        soundfile.write(str(path), 0.5 * np.sin(2 * np.pi * 150 * speaker * t), 16000)
    params = write_json(tmp_path / 'params.json', dict(SMALL, sample_rate=16000))
    train = run_tool(TRAIN, f'--data_dir={tmp_path / "corpus"}', f'--wavenet_params={params}',
                     f'--logdir={tmp_path / "train"}', '--num_steps=2', '--checkpoint_every=1',
                     '--sample_size=500', '--gc_channels=4')
    assert train.returncode == 0, train.stderr

    out = tmp_path / 'generated.wav'
    result = run_generate(tmp_path / 'train', '--gc_id', 3, '--samples', 300,
                          '--wav_out_path', out, '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    audio, sample_rate = soundfile.read(str(out))
    assert sample_rate == 16000 and audio.shape == (300,)
    assert sorted(audio_summaries(tmp_path / 'logs')) == [('generated/speaker_3', 0)]


def test_without_a_wav_only_tensorboard_hears_it(speaker_files, tmp_path):
    result = run_generate(speaker_files['prefix'], '--gc_id', 3, '--samples', 200,
                          '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    assert os.listdir(tmp_path) == ['logs']
    assert sorted(audio_summaries(tmp_path / 'logs')) == [('generated/speaker_3', 0)]
    assert 'The result was saved' not in result.stdout
    # The progress line, rewritten in place by every chunk (a carriage return, which text
    # mode reads as a newline), is on stdout; stderr holds nothing.
    assert re.search(r'^Sample 200/200 \(\d+ samples/s\)$', result.stdout, re.M), result.stdout
    assert result.stderr == '', result.stderr


def test_save_every_shows_whole_wavs_while_generating(speaker_files, tmp_path):
    """Read while it runs, the wav is always a whole file of a multiple of --save_every
    samples, and grows; no temporary file is left."""
    out = tmp_path / 'out.wav'
    process = subprocess.Popen(
        [sys.executable, GENERATE, str(speaker_files['prefix']), '--gc_id', '1',
         '--samples', '200000', '--save_every', '2000', '--wav_out_path', str(out),
         '--logdir', str(tmp_path / 'l')],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = set()
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if out.exists():
            seen.add(len(soundfile.read(str(out))[0]))  # a half-written file would fail here
        time.sleep(0.02)
    assert process.wait(timeout=10) == 0, process.stderr.read()
    assert all(n % 2000 == 0 for n in seen), seen
    assert len(seen - {200000}) >= 2, seen  # saw it grow before the end
    assert len(soundfile.read(str(out))[0]) == 200000
    assert sorted(os.listdir(tmp_path)) == ['l', 'out.wav']


def test_a_wav_stream_is_whole_at_every_save(tmp_path):
    path = tmp_path / 'out.wav'
    stream = WavStream(str(path), 8000)
    rng = np.random.default_rng(0)
    first, second = (rng.integers(-2 ** 15, 2 ** 15, n).astype(np.int16) for n in (300, 700))
    stream.append(first)
    stream.save()
    np.testing.assert_array_equal(read_int16(path), first)
    stream.append(second)
    np.testing.assert_array_equal(read_int16(path), first)  # until the next save
    stream.save()
    stream.close()
    np.testing.assert_array_equal(read_int16(path), np.concatenate([first, second]))
    assert sorted(os.listdir(tmp_path)) == ['out.wav']  # no raw or temporary file left


def test_pcm_table_is_the_decoded_codes_in_16_bits():
    table = MuLawSoftmax(256).pcm_table()
    assert table.dtype == np.int16 and table.shape == (256,)
    decoded = mu_law_decode(np.arange(256), 256).numpy()
    np.testing.assert_allclose(table / 2 ** 15, decoded, atol=1 / 2 ** 15)
    assert table[0] == -2 ** 15 and table[-1] == 2 ** 15 - 1  # -1 and 1, clipped


def test_memory_does_not_grow_with_the_length(tmp_path):
    """The codes go out chunk by chunk: 200000 more samples take no more memory (as NumPy
    arrays, which tracemalloc sees, they would hold at least 1.6 MB: codes and audio)."""
    net = WaveNetModel(1, [1, 2], 2, 4, 4, 8, 16)

    def peak(samples):
        streams = UniformStreams(0, [0])
        start = start_waveform(net, streams(0, 1)[:, 0])
        writer = WavStream(str(tmp_path / 'out.wav'), 8000)
        table = MuLawSoftmax(16).pcm_table()
        gc.collect()
        tracemalloc.start()
        for codes in generate(net, start, lambda b, n: streams(b + 1, n), samples=samples):
            writer.append(table[codes.numpy()[0]])
        writer.save()
        writer.close()
        used = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(read_int16(tmp_path / 'out.wav')) == samples
        return used

    peak(2000)  # compile
    short, long = peak(50000), peak(250000)
    assert long < short + 600_000, (short, long)  # TensorFlow's garbage comes and goes
