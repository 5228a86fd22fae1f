"""A vocoder learns what its features say: trained on tones whose pitch glides, it voices
a pitch track it never heard, frame by frame."""
import numpy as np
import tensorflow as tf

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
    rng = np.random.default_rng(0)
    tf.random.set_seed(0)
    net = WaveNetModel(batch_size=1, dilations=[1, 2, 4, 8, 16, 32], filter_width=2,
                       residual_channels=16, dilation_channels=16, skip_channels=32,
                       quantization_channels=64, use_biases=True, local_condition_channels=20,
                       lc_upsample_scales=[4, 8])
    train_step = make_train_step(net, optimizer_factory['adam'](3e-3, None))
    for _ in range(400):
        # Four tones gliding between random pitches in [150, 600] Hz, 1500 samples each.
        clips = [glide(np.geomspace(*rng.uniform(150, 600, 2), 1500)) for _ in range(4)]
        pieces = [cut_conditioned_pieces(clip, FEATURES(clip), FEATURES,
                                         net.receptive_field)[0] for clip in clips]
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
    rows = conditioning_rows(net, frames, start.shape[1], len(audio), FEATURES.silence)
    codes = np.concatenate(list(generate(net, start, noise[:, 1:], local_condition=rows)), 1)
    return pitch_track(mu_law_decode(codes[0], net.quantization_channels).numpy())
