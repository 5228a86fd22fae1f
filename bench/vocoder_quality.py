"""How well a vocoder voices sentences it never heard, judged by the field's own measures.

Copy synthesis of the demo's held-out set (``demo/heldout``: three sentences by each of the
four demo voices, in no training file; ``demo/make_corpus.sh`` makes them) by

(a) each vocoder named (``generate.py CHECKPOINT --lc_wav ...``, all clips in one batch),
(b) Griffin-Lim from the same mel spectrogram (librosa, 100 iterations, no training),
(c) the recordings through the first vocoder's own codes (mu-law or 16-bit, then decoded;
    with linear prediction, their excitation's codes added back to the predictions): the
    best any vocoder of that output can do,

and with ``--teacher_forced``, to tell where a copy loses the recording,

(d) each vocoder's codes drawn from its distribution given the recording's own past at
    every sample (as training sees it), their errors added to the recording: one step's
    distribution, with nothing fed back,
(e) with linear prediction, the same drawn excitation run through the synthesis filter:
    the errors shaped by the envelope as in generation, the network still reading the
    true past (a's gap to e is what free running adds),

scored against the recordings by STOI (pystoi), wide-band PESQ (pesq), mel-cepstral
distortion, F0 RMSE and voicing error (pyworld), means over the set (``wavenet.quality``).
A measure whose library is missing is left out, with one line saying so.

Run the README's vocoder quick start first, then

    python bench/vocoder_quality.py [--vocoder logdir/vocoder [--vocoder other ...]]
                                    [--clips FOLDER] [--ema both] [--sharpen true|both]
                                    [--teacher_forced]

It also prints, for a vocoder with linear prediction, the teacher-forced R² of the
excitation on voiced samples: how much of it the network's mean explains given the
recording's past.

``bench/quality_curves.py`` draws the same measures against training minutes, from the
``quality/*`` scalars a training logs with ``--sample_every``.
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import scipy.signal  # noqa: E402
import soundfile  # noqa: E402

from wavenet import lpc, quality  # noqa: E402
from wavenet.audio_reader import cut_conditioned_pieces, load_audio  # noqa: E402
from wavenet.checkpoints import find_checkpoint, restore_model  # noqa: E402
from wavenet.params import NetworkDescription, build_model  # noqa: E402


def quantized(description, reference):
    """The recording through the codes of ``description``'s output and back; with linear
    prediction, its excitation's codes added back to the predictions (the filter of each
    frame's coefficients run over them)."""
    output = description.output
    prediction = description.linear_prediction
    if prediction is None:
        return output.decode(output.encode(reference)).numpy()
    coefficients = prediction.coefficients(prediction.features(reference)).numpy()
    rows = prediction.per_sample(coefficients[None], prediction.features.hop_length)
    codes = lpc.excitation_codes(output, reference[None], rows[:, :len(reference)])
    return synthesized(prediction, coefficients, output.decode(codes).numpy()[0])


def synthesized(prediction, coefficients, excitation):
    """The samples that ``excitation`` [T] gives through the all-pole filter of each frame's
    ``coefficients`` [F, order] (``prediction``'s, a ``LinearPrediction``)."""
    hop = prediction.features.hop_length
    audio, past = [], np.zeros(prediction.taps)
    for frame, first in enumerate(range(0, len(excitation), hop)):
        denominator = np.concatenate([[1], -coefficients[frame]])
        state = scipy.signal.lfiltic([1], denominator, past[::-1])
        samples, _ = scipy.signal.lfilter([1], denominator, excitation[first:first + hop],
                                          zi=state)
        audio.append(samples)
        past = np.concatenate([past, samples])[-prediction.taps:]
    return np.concatenate(audio)


def teacher_forced(checkpoint, description, references, seed, ema='true', temperature=1.0):
    """Each clip's codes drawn from the vocoder's distribution given the *recording's* past
    at every sample (as training sees it), not its own: ``(added, filtered)``, lists of
    clips. ``added``: the recording with each drawn code's error (drawn less true value)
    added, so no error feeds back or is filtered; ``filtered`` (linear prediction only,
    else None): the drawn excitation run through the synthesis filter, as generation runs
    it, so the errors are shaped by the envelope but the network still reads the true
    past. Beside free running, they tell where a copy loses the recording."""
    net = build_model(description, restoring=True)
    restore_model(net, find_checkpoint(checkpoint), averaged=ema == 'true')
    features, output = description.features, description.output
    prediction = description.linear_prediction
    uniform = np.random.default_rng(seed)
    added, filtered = [], []
    for reference in references:
        frames = features(reference)
        (piece, padded), = cut_conditioned_pieces(reference, frames, features,
                                                  net.receptive_field)
        outputs, codes = net.teacher_forced(piece[None], local_condition_batch=padded[None])
        outputs, codes = outputs[0, -len(reference):], codes[0, -len(reference):]
        drawn = output.sample(outputs, temperature, uniform.random(len(reference)))
        drawn, true = output.decode(drawn).numpy(), output.decode(codes).numpy()
        added.append(reference + drawn - true)
        if prediction is not None:
            coefficients = prediction.coefficients(frames).numpy()
            filtered.append(synthesized(prediction, coefficients, drawn))
    return added, filtered if prediction is not None else None


def excitation_r2(checkpoint, description, references, ema='true'):
    """How much of the excitation the network's mean explains on voiced samples, given
    the recording's past (teacher-forced): ``1 - sum (e - E[e])^2 / sum (e - mean e)^2``
    over the samples WORLD calls voiced, every clip together. A diagnostic of one step's
    distribution that needs no free running; ``None`` without linear prediction."""
    if description.linear_prediction is None:
        return None
    pyworld, _ = quality._library('pyworld')
    net = build_model(description, restoring=True)
    restore_model(net, find_checkpoint(checkpoint), averaged=ema == 'true')
    features, output = description.features, description.output
    levels = output.decode(np.arange(output.codes)).numpy()
    errors, spreads = [], []
    for reference in references:
        (piece, padded), = cut_conditioned_pieces(reference, features(reference), features,
                                                  net.receptive_field)
        outputs, codes = net.teacher_forced(piece[None], local_condition_batch=padded[None])
        proba = output.distribution(outputs[0, -len(reference):]).numpy()
        excitation = levels[codes[0, -len(reference):].numpy()]
        f0, _ = pyworld.harvest(reference.astype(np.float64), features.sample_rate,
                                frame_period=quality.FRAME_PERIOD)
        hop = features.sample_rate * quality.FRAME_PERIOD / 1000
        frame = np.minimum(np.round(np.arange(len(reference)) / hop).astype(int), len(f0) - 1)
        voiced = f0[frame] > 0
        errors.append((excitation - proba @ levels)[voiced])
        spreads.append(excitation[voiced])
    errors, spreads = np.concatenate(errors), np.concatenate(spreads)
    return float(1 - np.sum(errors ** 2) / np.sum((spreads - spreads.mean()) ** 2))


def copy_synthesis(checkpoint, clips, seed, ema='true', temperature=1.0, sharpen='false'):
    """Runs generate.py as a user would, every clip in one batch; one wav per clip."""
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, 'copy.wav')
        flags = [checkpoint, '--seed', str(seed), '--wav_out_path', out, '--logdir', scratch,
                 '--ema', ema, '--temperature', str(temperature), '--sharpen', sharpen]
        for clip in clips:
            flags += ['--lc_wav', clip]
        result = subprocess.run([sys.executable, os.path.join(ROOT, 'generate.py'), *flags],
                                capture_output=True, text=True)
        if result.returncode:
            sys.exit(f'generate.py {checkpoint} failed:\n{result.stderr}')
        if len(clips) == 1:
            return [soundfile.read(out, dtype='float32')[0]]
        names = [os.path.splitext(os.path.basename(c))[0] for c in clips]
        return [soundfile.read(os.path.join(scratch, f'copy_{name}.wav'), dtype='float32')[0]
                for name in names]


def description_of(checkpoint):
    directory = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint)
    description = NetworkDescription.beside(directory)
    if description is None:
        sys.exit(f'{checkpoint}: no trained vocoder there; run the README vocoder quick start '
                 'first')
    if description.lc_channels is None:
        sys.exit(f'{checkpoint}: not a vocoder (its network has no lc_channels)')
    return description


def row(name, means, name_width, width):
    cells = ''.join(f'{means.get(m, float("nan")):>{width}.3f}' for m in quality.MEASURES)
    return f'{name:{name_width}s}{cells}'


def table(candidates):
    """The means of every candidate, a row each."""
    width = 17
    header = ''.join(f'{m + (" (" + quality.UNITS[m] + ")" if quality.UNITS[m] else ""):>{width}}'
                     for m in quality.MEASURES)
    name_width = max(len(name) for name in candidates) + 2
    lines = [f'{"":{name_width}s}{header}']
    for name, means in candidates.items():
        lines.append(row(name, means, name_width, width))
    return '\n'.join(lines)


def beats(means, griffin):
    return [m for m in quality.MEASURES if m in means and m in griffin
            and quality.better(m, means[m], griffin[m])]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--vocoder', action='append',
                        help="a vocoder's logdir or checkpoint prefix (repeatable; default "
                             'logdir/vocoder)')
    parser.add_argument('--clips', default=os.path.join(ROOT, 'demo', 'heldout'),
                        help='folder of held-out recordings')
    parser.add_argument('--seed', default=1, type=int, help='generate.py --seed')
    parser.add_argument('--temperature', default=1.0, type=float,
                        help='generate.py --temperature')
    parser.add_argument('--sharpen', default='false', choices=['true', 'false', 'both'],
                        help="generate.py --sharpen: LPCNet's voiced-only sharpening, or both "
                             'ways, a row each')
    parser.add_argument('--ema', default='true', choices=['true', 'false', 'both'],
                        help="generate.py --ema: a checkpoint's averaged weights (when it "
                             "holds them), its own, or both, a row each")
    parser.add_argument('--teacher_forced', action='store_true',
                        help="also each vocoder's codes drawn given the recording's past "
                             'instead of its own (rows d and e): where a copy loses the '
                             'recording')
    args = parser.parse_args()
    vocoders = args.vocoder or ['logdir/vocoder']
    descriptions = {v: description_of(v) for v in vocoders}
    clips = sorted(glob.glob(os.path.join(args.clips, '*.wav')))
    if not clips:
        sys.exit(f'{args.clips}: no .wav files (demo/make_corpus.sh makes the held-out set)')
    for measure, reason in quality.missing().items():
        print(f'{measure} left out: {reason}')
    first = descriptions[vocoders[0]]
    features = first.features
    references = [load_audio(c, features.sample_rate) for c in clips]
    seconds = sum(len(r) for r in references) / features.sample_rate
    print(f'{len(clips)} held-out clips of {args.clips} ({seconds:.1f} s), means over the set')

    def judged(outputs):
        return quality.judge_all(references, outputs, features.sample_rate)

    candidates = {}
    both = {'both': ['true', 'false']}
    rows = [(v, ema, sharpen) for v in vocoders for ema in both.get(args.ema, [args.ema])
            for sharpen in both.get(args.sharpen, [args.sharpen])]
    names = {row: f'(a) vocoder {row[0]}' + (f', --ema {row[1]}' if args.ema == 'both' else '')
             + (f', --sharpen {row[2]}' if args.sharpen != 'false' else '') for row in rows}
    for vocoder, ema, sharpen in rows:
        outputs = copy_synthesis(vocoder, clips, args.seed, ema, args.temperature, sharpen)
        candidates[names[vocoder, ema, sharpen]] = judged(outputs)
        if args.teacher_forced and sharpen == 'false':
            added, filtered = teacher_forced(vocoder, descriptions[vocoder], references,
                                             args.seed, ema, args.temperature)
            given = f'{names[vocoder, ema, sharpen][len("(a) vocoder "):]}, given the ' \
                'recording\'s past'
            candidates[f'(d) {given}, errors added'] = judged(added)
            if filtered is not None:
                candidates[f'(e) {given}, through the synthesis filter'] = judged(filtered)
    explained = {(v, ema): excitation_r2(v, descriptions[v], references, ema)
                 for v, ema, _ in rows}
    griffin = judged([quality.griffin_lim(features, r) for r in references])
    candidates['(b) Griffin-Lim, same mel spectrogram'] = griffin
    candidates["(c) recordings through the first vocoder's codes"] = judged(
        [quantized(first, r) for r in references])
    print(table(candidates))
    for key in rows:
        won = beats(candidates[names[key]], griffin)
        print(f'{names[key][len("(a) vocoder "):]} beats Griffin-Lim on {len(won)} of '
              f'{len(quality.MEASURES)}' + (f' ({", ".join(won)})' if won else ''))
    for (vocoder, ema), r2 in explained.items():
        if r2 is not None:
            print(f'{vocoder}' + (f', --ema {ema}' if args.ema == 'both' else '') +
                  f': teacher-forced R² of the excitation on voiced samples {r2:.3f}')


if __name__ == '__main__':
    main()
