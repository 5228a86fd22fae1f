"""Where a vocoder's pitch errors lie: its copies of held-out recordings against the
recordings, frame by frame, beside Griffin-Lim from the same features.

``bench/vocoder_quality.py`` gives one F0 RMSE per clip; that one figure mixes small
errors with octave jumps, and a pitch pulled towards the voice's middle with random
jitter. This pools the frames of every clip where the recording is active (as the F0 RMSE
counts them) and WORLD's Harvest calls both voiced, and prints, per candidate, how many
are within 50 cents of the recording, how many are off by more than 300 (gross errors:
octave jumps, a wrong harmonic), the RMS error of the rest (fine), and the median error of
the frames in each band of the recording's pitch: a network that regresses towards the
middle of the voice's range is sharp in the low bands and flat in the high ones.

    python bench/pitch_errors.py --vocoder logdir/vocoder_real \
        --clips demo/real_voice/heldout --sharpen true
"""
import argparse
import glob
import os
import sys

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
sys.path.insert(0, os.path.dirname(BENCH))

import numpy as np  # noqa: E402
from vocoder_quality import copy_synthesis, description_of  # noqa: E402

from wavenet import quality  # noqa: E402
from wavenet.audio_reader import load_audio  # noqa: E402

BANDS_HZ = (0, 125, 160, 200, 250, 1000)  # of the recording's pitch
FINE_CENTS, GROSS_CENTS = 50, 300


def pitch_errors(references, outputs, sample_rate):
    """``(reference pitch [N] Hz, error [N] cents)`` of every clip's frames, pooled."""
    pitches, errors = zip(*(quality.pitch_errors(reference, audio, sample_rate)
                            for reference, audio in zip(references, outputs)))
    return np.concatenate(pitches), np.concatenate(errors)


def summary(pitches, errors):
    """One row of figures: shares, fine RMS and the median error of each pitch band."""
    gross = np.abs(errors) > GROSS_CENTS
    cells = [f'{len(errors):7d}', f'{np.mean(np.abs(errors) <= FINE_CENTS):8.1%}',
             f'{np.mean(gross):7.1%}', f'{np.sqrt(np.mean(errors[~gross] ** 2)):7.1f}']
    for low, high in zip(BANDS_HZ[:-1], BANDS_HZ[1:]):
        band = (pitches >= low) & (pitches < high) & ~gross
        cells.append(f'{np.median(errors[band]):+11.1f}' if band.any() else f'{"-":>11s}')
    return ''.join(cells)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--vocoder', action='append',
                        help="a vocoder's logdir or checkpoint prefix (repeatable; default "
                             'logdir/vocoder)')
    parser.add_argument('--clips', default=os.path.join(os.path.dirname(BENCH), 'demo',
                                                        'heldout'),
                        help='folder of held-out recordings')
    parser.add_argument('--seed', default=1, type=int, help='generate.py --seed')
    parser.add_argument('--sharpen', default='false', choices=['true', 'false'],
                        help="generate.py --sharpen")
    args = parser.parse_args()
    vocoders = args.vocoder or ['logdir/vocoder']
    features = {v: description_of(v).features for v in vocoders}
    clips = sorted(glob.glob(os.path.join(args.clips, '*.wav')))
    if not clips:
        sys.exit(f'{args.clips}: no .wav files')
    rate = features[vocoders[0]].sample_rate
    references = [load_audio(c, rate) for c in clips]
    rows = {f'vocoder {v}, --sharpen {args.sharpen}':
            copy_synthesis(v, clips, args.seed, sharpen=args.sharpen) for v in vocoders}
    rows['Griffin-Lim, same mel spectrogram'] = [
        quality.griffin_lim(features[vocoders[0]], r) for r in references]
    bands = ''.join(f'{f"{low}-{high} Hz":>11s}' if high < BANDS_HZ[-1] else
                    f'{f"{low}+ Hz":>11s}' for low, high in zip(BANDS_HZ[:-1], BANDS_HZ[1:]))
    width = max(len(name) for name in rows) + 2
    print(f'{len(clips)} clips of {args.clips}: active frames voiced in both, pooled; cents')
    print(f'{"":{width}s} frames  ≤{FINE_CENTS}c   >{GROSS_CENTS}c  fine   median error by the '
          "recording's pitch")
    print(f'{"":{width}s}{"":31s}{bands}')
    for name, outputs in rows.items():
        pitches, errors = pitch_errors(references, outputs, rate)
        print(f'{name:{width}s}{summary(pitches, errors)}')
    counts = np.histogram(pitches, BANDS_HZ)[0]
    print(f'{"frames in each band (the last row)":{width}s}{"":31s}'
          + ''.join(f'{count:11d}' for count in counts))


if __name__ == '__main__':
    main()
