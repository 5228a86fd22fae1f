"""The README's picture: one held-out sentence as its recording, a trained vocoder's copy
of it (``generate.py --lc_wav``, as a user runs it) and Griffin-Lim's from the same features,
as mel spectrograms one above the other.

    python bench/copy_picture.py [--vocoder logdir/vocoder] [--wav demo/heldout/p225_006.wav]
                                 [--seed 1] [--picture docs/copy_synthesis.png]
"""
import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import soundfile  # noqa: E402

from wavenet import quality  # noqa: E402
from wavenet.audio_reader import load_audio  # noqa: E402
from wavenet.params import NetworkDescription  # noqa: E402

MELS, N_FFT, HOP, TOP_DB = 80, 1024, 256, 80


def mel_decibels(audio, sample_rate):
    import librosa
    mel = librosa.feature.melspectrogram(y=audio, sr=sample_rate, n_fft=N_FFT,
                                         hop_length=HOP, n_mels=MELS)
    return librosa.power_to_db(mel, ref=np.max, top_db=TOP_DB)


def draw(rows, sample_rate, picture):
    from librosa.display import specshow
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(9, 7.5), dpi=80)
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(rows), 1, sharex=True)
    for axis, (title, audio) in zip(axes, rows):
        image = specshow(mel_decibels(audio, sample_rate), sr=sample_rate, hop_length=HOP,
                         x_axis='time', y_axis='mel', ax=axis, cmap='magma',
                         vmin=-TOP_DB, vmax=0)
        axis.set_title(title, fontsize=11)
        axis.label_outer()
    figure.colorbar(image, ax=list(axes), format='%+2.0f dB')
    figure.savefig(picture)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--vocoder', default='logdir/vocoder')
    parser.add_argument('--wav', default=os.path.join('demo', 'heldout', 'p225_006.wav'))
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--picture', default=os.path.join('docs', 'copy_synthesis.png'))
    args = parser.parse_args()
    description = NetworkDescription.load(os.path.join(args.vocoder, 'wavenet_params.json'))
    rate = description.sample_rate
    recording = load_audio(args.wav, rate)
    with tempfile.TemporaryDirectory() as scratch:
        copy_path = os.path.join(scratch, 'copy.wav')
        subprocess.run([sys.executable, os.path.join(ROOT, 'generate.py'), args.vocoder,
                        f'--lc_wav={args.wav}', f'--wav_out_path={copy_path}',
                        f'--seed={args.seed}', f'--logdir={scratch}'], check=True)
        copy = soundfile.read(copy_path, dtype='float32')[0][:len(recording)]
    griffin_lim = quality.griffin_lim(description.features, recording)
    name = os.path.basename(args.wav)
    rows = [(f'{name}, the recording', recording),
            (f'the vocoder ({args.vocoder}), from its mel spectrogram', copy),
            ('Griffin-Lim, 100 iterations, from the same mel spectrogram', griffin_lim)]
    draw(rows, rate, args.picture)
    reference = loudness(recording, rate)
    for title, audio in rows:
        level = loudness(audio[:len(recording)], rate)
        line = (f'{title}: {np.mean(level > -40):.0%} of 16 ms frames above -40 dBFS, '
                f'their levels correlate with the recording\'s at '
                f'{np.corrcoef(level, reference)[0, 1]:.2f}')
        if audio is not recording:
            measures = quality.judge(recording, audio[:len(recording)], rate)
            line += '; ' + ', '.join(f'{k} {v:.3g}' for k, v in measures.items())
        print(line)
    print(f'wrote {args.picture}')


def loudness(audio, sample_rate, frame_seconds=0.016):
    """The level of every frame of ``audio`` in dB of full scale (floored at -100)."""
    frame = int(frame_seconds * sample_rate)
    audio = np.pad(audio, (0, -len(audio) % frame)).reshape(-1, frame)
    return 10 * np.log10(np.maximum(np.mean(audio ** 2, axis=1), 1e-10))


if __name__ == '__main__':
    main()
