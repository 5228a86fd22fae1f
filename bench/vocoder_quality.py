"""How close a vocoder's copy synthesis comes to the real clip, side by side in one run.

On a clip no network trained on (by default the demo's held-out clip), the log-mel spectral
distance in dB (per frame, the RMS over mel bands of the difference in dB; then the mean
over frames) between the clip and

(a) the vocoder's copy synthesis of the clip's features (generate.py --lc_wav),
(b) Griffin-Lim from the same mel spectrogram (librosa.feature.inverse.mel_to_audio),
(c) the unconditioned demo model's output (generate.py, same length, the clip's speaker).

Run the two README quick starts first (logdir/vocoder and logdir/demo), then

    python bench/vocoder_quality.py [--vocoder logdir/vocoder] [--unconditioned logdir/demo]
"""
import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import soundfile  # noqa: E402

from wavenet.audio_reader import load_audio  # noqa: E402
from wavenet.features import MelFeatures  # noqa: E402
from wavenet.params import NETWORK_FILE, load_params  # noqa: E402

DB_PER_NEPER = 20 / np.log(10)  # the features are natural logs of mel magnitudes


def log_mel_distance(features, reference, audio):
    """Mean over frames of the RMS over bands of the log-mel difference, in dB."""
    ours, theirs = features(reference), features(audio[:len(reference)])
    frames = min(len(ours), len(theirs))
    difference = DB_PER_NEPER * (ours[:frames] - theirs[:frames])
    return float(np.mean(np.sqrt(np.mean(difference ** 2, axis=1))))


def griffin_lim(features, reference):
    """Griffin-Lim from the clip's mel magnitudes, aligned as the features are."""
    magnitudes = np.exp(features(reference)).T
    audio = librosa.feature.inverse.mel_to_audio(
        magnitudes, sr=features.sample_rate, n_fft=features.n_fft,
        hop_length=features.hop_length, power=1.0, fmin=features.fmin, fmax=features.fmax)
    # librosa centres frame f on sample f * hop; ours is centred on f * hop + hop / 2.
    return np.concatenate([np.zeros(features.hop_length // 2, np.float32), audio])


def generate(*flags):
    """Runs generate.py as a user would; its wav."""
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, 'out.wav')
        result = subprocess.run([sys.executable, os.path.join(ROOT, 'generate.py'), *flags,
                                 '--wav_out_path', out, '--logdir', scratch],
                                capture_output=True, text=True)
        if result.returncode:
            sys.exit(f'generate.py {" ".join(flags)} failed:\n{result.stderr}')
        return soundfile.read(out, dtype='float32')[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--vocoder', default='logdir/vocoder',
                        help='the vocoder quick start\'s logdir (or a checkpoint prefix)')
    parser.add_argument('--unconditioned', default='logdir/demo',
                        help='the unconditioned quick start\'s logdir (or a checkpoint prefix)')
    parser.add_argument('--clip', default=os.path.join(ROOT, 'demo/heldout/p225_006.wav'),
                        help='the held-out clip')
    parser.add_argument('--gc_id', default='225', help='the clip\'s speaker, for (c)')
    parser.add_argument('--seed', default='1', help='generate.py --seed')
    args = parser.parse_args()
    for logdir in (args.vocoder, args.unconditioned):
        directory = logdir if os.path.isdir(logdir) else os.path.dirname(logdir)
        if not os.path.exists(os.path.join(directory, NETWORK_FILE)):
            sys.exit(f'{logdir}: no trained network there; run the README quick starts first')
    features = MelFeatures.from_params(load_params(
        os.path.join(args.vocoder if os.path.isdir(args.vocoder)
                     else os.path.dirname(args.vocoder), NETWORK_FILE)))
    reference = load_audio(args.clip, features.sample_rate)
    candidates = {
        '(a) vocoder copy synthesis (generate.py --lc_wav)':
            generate(args.vocoder, '--lc_wav', args.clip, '--seed', args.seed),
        '(b) Griffin-Lim from the same mel spectrogram': griffin_lim(features, reference),
        '(c) unconditioned demo model, same length':
            generate(args.unconditioned, '--gc_id', args.gc_id, '--samples',
                     str(len(reference)), '--seed', args.seed),
    }
    print(f'{args.clip}: {len(reference) / features.sample_rate:.2f} s; log-mel spectral '
          f'distance to it ({features.channels} bands, hop {features.hop_length}), lower is '
          'closer')
    distances = {name: log_mel_distance(features, reference, audio)
                 for name, audio in candidates.items()}
    griffin = distances['(b) Griffin-Lim from the same mel spectrogram']
    for name, distance in distances.items():
        print(f'{name:52s} {distance:6.2f} dB   {distance / griffin:5.2f}x Griffin-Lim')


if __name__ == '__main__':
    main()
