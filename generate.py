"""Generates audio from a trained WaveNet checkpoint: ``python generate.py CHECKPOINT``.

The network description saved beside the checkpoint is used when present, so the
checkpoint and ``--gc_id`` are all a conditioned network needs; a vocoder also needs the
features to voice (``--lc_wav`` or ``--lc_features``). See the README.
"""
import argparse
import datetime
import math
import os
import random
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import wavenet  # noqa: E402, F401  (first: it loads TensorFlow with its start-up logs muted)

# isort: split
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from wavenet import checkpoints, generation, mu_law_decode  # noqa: E402
from wavenet.cli import (  # noqa: E402
    ArgumentParser,
    check_output_directory,
    check_output_file,
    native_stderr_silenced,
    positive,
    str_to_bool,
)
from wavenet.features import MelFeatures  # noqa: E402
from wavenet.params import build_model, receptive_field  # noqa: E402
from wavenet.summaries import write_audio  # noqa: E402

SAMPLES = 16000
TEMPERATURE = 1.0
LOGDIR = './logdir'


def speaker_ids(value):
    """An argparse type: one speaker id, or several separated by commas."""
    try:
        return [int(part) for part in value.split(',')]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got '{value}'") from None


speaker_ids.__name__ = 'speaker ids'


def random_seed(value):
    """An argparse type: a seed for TensorFlow's stateless random ops (a 64-bit int)."""
    try:
        seed = int(value)
    except ValueError:
        seed = None
    if seed is None or not -2 ** 63 <= seed < 2 ** 63:
        raise argparse.ArgumentTypeError(f"expected a 64-bit integer, got '{value}'")
    return seed


def get_arguments():
    parser = ArgumentParser(description='WaveNet generation script')
    parser.add_argument('checkpoint', type=str,
                        help='Which model checkpoint to generate from: a prefix such as '
                             'logdir/train/DATE/model.ckpt-80000, or a directory (its newest)')
    parser.add_argument('--samples', type=positive(int), default=None,
                        help=f'How many waveform samples to generate (default {SAMPLES}; '
                             'for a vocoder, all that its features describe)')
    parser.add_argument('--temperature', type=positive(float), default=TEMPERATURE,
                        help='Sampling temperature: below 1 sharpens the distribution')
    parser.add_argument('--logdir', type=str, default=LOGDIR,
                        help='TensorBoard summaries go to LOGDIR/generate/<timestamp>/')
    parser.add_argument('--wavenet_params', type=str, default=None,
                        help='JSON file with the network parameters (default '
                             f'{checkpoints.DEFAULT_PARAMS}); only needed when no '
                             'description was saved beside the checkpoint')
    parser.add_argument('--wav_out_path', type=str, default=None,
                        help='Path to output wav file (one per id with several --gc_id)')
    parser.add_argument('--save_every', type=positive(int), default=None,
                        help='How many samples before saving in-progress wav')
    parser.add_argument('--fast_generation', type=str_to_bool, default=True,
                        help='Use fast generation (queue-cached, in-graph loop)')
    parser.add_argument('--wav_seed', type=str, default=None,
                        help='The wav file to start generation from')
    parser.add_argument('--gc_channels', type=positive(int), default=None,
                        help='Number of global condition embedding channels')
    parser.add_argument('--gc_cardinality', type=positive(int), default=None,
                        help='Number of categories upon which we globally condition')
    parser.add_argument('--gc_id', type=speaker_ids, default=None,
                        help='ID of category to generate, if globally conditioned; several '
                             'separated by commas are generated together')
    parser.add_argument('--lc_wav', type=str, default=None,
                        help='Vocoder: voice the mel features of this wav (copy synthesis)')
    parser.add_argument('--lc_features', type=str, default=None,
                        help='Vocoder: voice these features, a .npy of [frames, lc_channels] '
                             'float32 log-mel frames (see wavenet/features.py)')
    parser.add_argument('--seed', type=random_seed, default=None,
                        help='Random seed; the same seed gives the same audio (default random)')
    return parser, parser.parse_args()


def check_speakers(description, gc_ids):
    """The original's checks of the conditioning flags, plus the range of each id."""
    cardinality = description['gc_cardinality']
    if description['gc_channels'] is None:
        if gc_ids is not None:
            raise ValueError('--gc_id given, but the network is not globally conditioned '
                             '(no gc_channels)')
        return
    if cardinality is None:
        raise ValueError('Globally conditioning but gc_cardinality not specified. '
                         'Use --gc_cardinality=377 for full VCTK corpus.')
    if gc_ids is None:
        raise ValueError('Globally conditioning, but global condition was not specified. '
                         'Use --gc_id to specify global condition.')
    for gc_id in gc_ids:
        if not 0 <= gc_id < cardinality:
            raise ValueError(f'--gc_id {gc_id} is outside [0, {cardinality})')
    if len(set(gc_ids)) < len(gc_ids):
        raise ValueError(f'--gc_id lists a speaker twice: {gc_ids}')


def local_condition(args, description):
    """``(frames, reference audio)`` for a vocoder, ``(None, None)`` otherwise; and sets
    ``args.samples`` when not given. The checks of SPEC section 9."""
    features = MelFeatures.from_params(description)
    given = [flag for flag in ('lc_wav', 'lc_features') if getattr(args, flag) is not None]
    if features is None:
        if given:
            raise ValueError(f'--{given[0]} given, but the network is not locally conditioned '
                             '(no lc_channels in its description)')
        args.samples = args.samples or SAMPLES
        return None, None
    if not given:
        raise ValueError(f'the network is a vocoder (lc_channels {features.channels}): give '
                         'the features to voice with --lc_wav or --lc_features')
    if len(given) > 1:
        raise ValueError('--lc_wav and --lc_features cannot be used together')
    if args.wav_seed is not None:
        raise ValueError('--wav_seed cannot be used with a vocoder: its features decide the '
                         'audio from the first sample')
    frames, reference = generation.load_local_condition(features, args.lc_wav,
                                                        args.lc_features)
    covered = len(frames) * features.hop_length
    if args.samples is not None and args.samples > covered:
        raise ValueError(f'--samples {args.samples} is more than the {len(frames)} frames of '
                         f'--{given[0]} describe ({covered} samples)')
    args.samples = args.samples or covered
    return frames, reference


def prepare(args):
    """The restored network and what generation needs, or a ``ValueError`` naming the
    flag, file or value at fault; checks run before the model is built where they can."""
    if args.save_every and not args.wav_out_path:
        raise ValueError('--save_every needs --wav_out_path')
    # Outputs are written after generating: a path that cannot be written would lose it all.
    if args.wav_out_path:
        for path in generation.wav_paths(args.wav_out_path, args.gc_id or [0]):
            check_output_file(path, '--wav_out_path')
    check_output_directory(args.logdir, '--logdir')
    prefix = checkpoints.find_checkpoint(args.checkpoint)
    description, source = checkpoints.network_description(
        prefix, args.wavenet_params, args.gc_channels, args.gc_cardinality)
    check_speakers(description, args.gc_id)
    checkpoints.check_checkpoint(prefix, description, source)
    frames, reference = local_condition(args, description)
    clip = None
    if args.wav_seed is not None:
        clip = generation.load_clip(args.wav_seed, description['sample_rate'],
                                    description['quantization_channels'],
                                    receptive_field(description))
    net = build_model(description, description['gc_channels'], description['gc_cardinality'])
    checkpoints.restore_model(net, prefix)
    return net, prefix, description, clip, frames, reference


def main():
    parser, args = get_arguments()
    try:
        # Quiet: TensorFlow's first touch of a device logs, and errors must be one line.
        with native_stderr_silenced():
            net, prefix, description, clip, frames, reference = prepare(args)
    except ValueError as e:
        parser.error(str(e))
    print(f'Restored model from {prefix}')

    keys = args.gc_id or [0]
    seed = random.randrange(2 ** 31) if args.seed is None else args.seed
    noise = generation.uniform_streams(seed, keys, args.samples + 1)
    start = generation.start_waveform(net, noise[:, 0], clip)
    rows = None
    if frames is not None:
        # Every speaker voices the same frames.
        features = MelFeatures.from_params(description)
        rows = generation.conditioning_rows(net, np.tile(frames, [len(keys), 1, 1]),
                                            start.shape[1], args.samples, features.silence)
    # The wav holds the seed clip (not the artificial silence start) and what follows.
    prefix_codes = np.tile(clip if clip is not None else [], [len(keys), 1]).astype(np.int32)
    paths = generation.wav_paths(args.wav_out_path, keys) if args.wav_out_path else []
    sample_rate = description['sample_rate']

    def audio_of(codes):
        return mu_law_decode(np.concatenate([prefix_codes] + codes, axis=1),
                             net.quantization_channels).numpy()

    # Chunks that divide --save_every make every save land on a multiple of it.
    chunk = math.gcd(args.save_every, generation.CHUNK) if args.save_every else generation.CHUNK
    chunks, done, chunk_began = [], 0, time.perf_counter()
    for codes in generation.generate(net, start, noise[:, 1:], args.gc_id, args.temperature,
                                     args.fast_generation, chunk, rows):
        chunks.append(codes.numpy())
        done += codes.shape[1]
        # The rate of the latest chunk: the first one also pays for compiling the loop.
        now = time.perf_counter()
        rate, chunk_began = codes.shape[1] / (now - chunk_began), now
        print(f'\rSample {done}/{args.samples} ({rate:.0f} samples/s'
              f'{" per speaker" if len(keys) > 1 else ""})', end='', file=sys.stderr, flush=True)
        if args.save_every and done % args.save_every == 0 and done < args.samples:
            for path, audio in zip(paths, audio_of(chunks)):
                generation.write_wav(path, audio, sample_rate)
    print(file=sys.stderr)

    audio = audio_of(chunks)
    for path, row in zip(paths, audio):
        generation.write_wav(path, row, sample_rate)
        print(f'The result was saved to {path}')
    logdir = os.path.join(args.logdir, 'generate',
                          datetime.datetime.now().strftime('%Y-%m-%dT%H-%M-%S'))
    with native_stderr_silenced(), tf.summary.create_file_writer(logdir).as_default():
        # A tag per speaker, so TensorBoard shows every speaker's clip at once; each with
        # its spectrogram picture.
        for key, row in zip(keys, audio):
            write_audio(f'generated/speaker_{key}' if args.gc_id else 'generated', row,
                        sample_rate, step=0)
        if reference is not None:  # copy synthesis: the original beside it
            write_audio('reference', reference[:args.samples], sample_rate, step=0)
    print('Finished generating. The result can be viewed in TensorBoard.')


if __name__ == '__main__':
    main()
