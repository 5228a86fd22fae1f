"""A vocoder learns what its features say: trained on tones whose pitch glides, it voices
a pitch track it never heard, frame by frame."""
import json

import numpy as np
import pytest
import soundfile
import tensorflow as tf
from helpers import describe, run_generate

from wavenet import WaveNetModel, mu_law_decode, optimizer_factory
from wavenet.audio_reader import cut_conditioned_pieces
from wavenet.features import MelFeatures
from wavenet.generation import conditioning_rows, generate, start_waveform, uniform_streams
from wavenet.training import make_train_step

RATE = 4000
FEATURES = MelFeatures(RATE, channels=20, hop_length=32, n_fft=128)


def glide(frequencies):
    """A tone whose frequency follows ``frequencies`` (Hz per sample)."""
    return (0.5 * np.sin(2 * np.pi * np.cumsum(frequencies) / RATE)).astype(np.float32)


def pitch_track(audio, frame=128):
    """The strongest frequency in each ``frame`` samples (zero-padded FFT, parabolic peak)."""
    window = np.hanning(frame)
    found = []
    for start in range(0, len(audio) - frame + 1, frame):
        spectrum = np.abs(np.fft.rfft(audio[start:start + frame] * window, 8 * frame))
        peak = int(np.argmax(spectrum[1:-1])) + 1
        a, b, c = np.log(spectrum[peak - 1:peak + 2] + 1e-12)
        found.append((peak + 0.5 * (a - c) / (a - 2 * b + c)) * RATE / (8 * frame))
    return np.array(found)


def test_vocoder_follows_a_new_pitch_track():
    # Trained as train.py's --jit_compile=auto trains a vocoder: the compiled step, on
    # pieces of one length cut from the clips, which must still carry their own frames
    # (the uncompiled step takes the same steps: test_compiled_step.py).
    rng = np.random.default_rng(0)
    tf.random.set_seed(0)
    net = WaveNetModel(batch_size=1, dilations=[1, 2, 4, 8, 16, 32], filter_width=2,
                       residual_channels=16, dilation_channels=16, skip_channels=32,
                       quantization_channels=64, use_biases=True, local_condition_channels=20,
                       lc_upsample_scales=[4, 8])
    train_step = make_train_step(net, optimizer_factory['adam'](3e-3, None), jit_compile=True)
    for _ in range(400):
        # Four tones gliding between random pitches in [150, 600] Hz, 1500 samples each.
        clips = [glide(np.geomspace(*rng.uniform(150, 600, 2), 1500)) for _ in range(4)]
        pieces = [cut_conditioned_pieces(clip, FEATURES(clip), FEATURES, net.receptive_field,
                                         1024, equal=True) for clip in clips]
        pieces = [clip_pieces[rng.integers(len(clip_pieces))] for clip_pieces in pieces]
        losses = train_step(np.stack([p for p, _ in pieces])[..., None], None,
                            np.stack([f for _, f in pieces]))
    assert float(losses['loss']) < 2.0

    # A track it never heard: up, then down, then up again.
    target = np.concatenate([np.geomspace(200, 500, 1200), np.geomspace(500, 250, 1200),
                             np.geomspace(250, 400, 1200)])
    wanted = pitch_track(glide(target))
    assert np.ptp(12 * np.log2(wanted)) > 12  # the track spans more than an octave
    # Voicing the track's features follows it; voicing a steady tone's features does not,
    # so what is followed is the conditioning, not a habit of the network.
    for voiced, follows in ((target, True), (np.full_like(target, 300), False)):
        semitones = 12 * np.abs(np.log2(copy_synthesis(net, glide(voiced)) / wanted))
        assert (np.median(semitones) < 0.5 and np.mean(semitones < 1) > 0.8) == follows


def copy_synthesis(net, audio):
    """The pitch track of what ``net`` generates from the features of ``audio``."""
    frames = FEATURES(audio)[np.newaxis]
    noise = uniform_streams(1, [0], len(audio) + 1)
    start = start_waveform(net, noise[:, 0])
    rows = conditioning_rows(net, frames, start.shape[1], len(audio), FEATURES)
    codes = np.concatenate(list(generate(net, start, noise[:, 1:], local_condition=rows)), 1)
    return pitch_track(mu_law_decode(codes[0], net.quantization_channels).numpy())


# -- a tone switched on and off, with digital silence between --------------------------

ON_OFF_RATE = 8000
ON_OFF = dict(filter_width=2, sample_rate=ON_OFF_RATE, dilations=[1, 2, 4, 8, 16, 32, 64],
              residual_channels=16, dilation_channels=16, quantization_channels=256,
              skip_channels=32, use_biases=True, scalar_input=False, initial_filter_width=32,
              lc_channels=20, lc_hop_length=64, lc_upsample_scales=[4, 16], lc_n_fft=256)
# Two remedies for a vocoder that falls silent: noise on what it reads, or (the demo
# vocoder's) linear prediction from its features, the network reading and drawing only
# the excitation. Each with the training steps it needs: the excitation's level is learnt
# more slowly, and after 400 steps some seeds still voice the tone well below the clip.
REMEDIES = {'input noise': (dict(input_noise=0.015), 400),
            'linear prediction': (dict(lpc_order=8), 800)}


def bursts(rng, seconds):
    """A 300-500 Hz tone at 0.5 peak switched on and off for 0.1-0.3 s at a time, exact
    zeros between (as the silences of synthetic speech are)."""
    pieces, on = [], bool(rng.integers(2))
    while sum(map(len, pieces)) < seconds * ON_OFF_RATE:
        t = np.arange(int(rng.uniform(0.1, 0.3) * ON_OFF_RATE)) / ON_OFF_RATE
        # Speech-like onsets: the tone swells in over 40 ms and fades out likewise.
        swell = np.minimum(1, np.minimum(t, t[-1] - t) / 0.04)
        tone = 0.5 * swell * np.sin(2 * np.pi * rng.uniform(300, 500) * t + rng.uniform(0, 6.3))
        pieces.append(tone if on else np.zeros_like(t))
        on = not on
    return np.concatenate(pieces).astype(np.float32)


def frame_states(features, audio):
    """Per feature frame: +1 where the features say loud (the frame and both neighbours
    within 8 nepers of the loudest band of a tone), -1 where they say silence (the frame
    and both neighbours exactly the features of silence), 0 in between."""
    frames = features(audio)

    def with_neighbours(flags):
        return flags & np.roll(flags, 1) & np.roll(flags, -1)

    silent = with_neighbours(np.all(frames == features.silence(1), axis=1))
    loud = with_neighbours(frames.max(axis=1) > -3)
    return np.where(silent, -1, np.where(loud, 1, 0))


@pytest.mark.parametrize('remedy', REMEDIES)
def test_a_vocoder_voices_tone_bursts_and_the_silences_between(tmp_path, train_main, remedy):
    """Trained on tone bursts with digital silence between, a vocoder generating freely
    through generate.py is loud in the frames its features call loud and silent in the
    frames they call silent: it neither stays in silence nor hisses through it."""
    rng = np.random.default_rng(0)
    corpus = tmp_path / 'corpus'
    corpus.mkdir()
    for i in range(6):
        soundfile.write(str(corpus / f'bursts{i}.wav'), bursts(rng, 3), ON_OFF_RATE)
    params, steps = REMEDIES[remedy]
    (tmp_path / 'params.json').write_text(json.dumps(dict(ON_OFF, **params)))
    train_main(['--data_dir', str(corpus), '--wavenet_params', str(tmp_path / 'params.json'),
                '--logdir', str(tmp_path / 'logdir'), '--num_steps', str(steps),
                '--sample_size', '2000', '--batch_size', '2', '--learning_rate', '3e-3',
                '--silence_threshold', '0', '--checkpoint_every', str(steps)])
    unseen = bursts(rng, 4)
    soundfile.write(str(tmp_path / 'unseen.wav'), unseen, ON_OFF_RATE)
    result = run_generate(tmp_path / 'logdir', '--lc_wav', tmp_path / 'unseen.wav', '--seed', 1,
                          '--wav_out_path', tmp_path / 'out.wav', '--logdir', tmp_path)
    assert result.returncode == 0, result.stderr
    generated, _ = soundfile.read(str(tmp_path / 'out.wav'), dtype='float32')
    features = describe(ON_OFF).features
    states = frame_states(features, unseen)
    hop = features.hop_length
    states = states[:len(unseen) // hop]
    rms, clip_rms = (np.sqrt(np.mean(audio[:len(states) * hop].reshape(-1, hop) ** 2, axis=1))
                     for audio in (generated, unseen))
    loud, silent = states == 1, states == -1
    assert loud.sum() > 100 and silent.sum() > 100
    # Loud frames come within 10 dB of the clip's own (a vocoder fallen silent is some 30 dB
    # below it), silent ones stay below -40 dBFS.
    assert np.mean(rms[loud] > clip_rms[loud] / np.sqrt(10)) > 0.8
    assert np.mean(rms[silent] < 0.01) > 0.9
