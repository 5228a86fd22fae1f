"""Generates audio from a trained WaveNet checkpoint: ``python generate.py CHECKPOINT`` in
a checkout, as the original's, or ``wavenet-generate`` / ``python -m wavenet.generate``
once installed; the same flags.

The network description saved beside the checkpoint is used when present, so the
checkpoint and ``--gc_id`` are all a conditioned network needs; a vocoder also needs the
features to voice (``--lc_wav`` or ``--lc_features``). See docs/generating.md.
"""
import argparse
import dataclasses
import datetime
import math
import os
import random
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# TensorFlow loads after the flags are read (it is imported where it is needed): flag
# errors and --help come at once, and the compilation cache is set before TensorFlow reads
# its flags.
from . import compilation_cache, load_tensorflow  # noqa: E402
from .cli import (  # noqa: E402
    ArgumentParser,
    DiskFull,
    add_checkpoint_flags,
    check_output_directory,
    check_output_file,
    disk_full,
    fail,
    native_stderr_silenced,
    positive,
    run,
    str_to_bool,
)

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
    parser.add_argument('--sharpen', type=str_to_bool, default=False,
                        help='Vocoder: sharpen each sample\'s distribution as voiced its frame '
                             'is (LPCNet\'s voiced-only sharpening: raised to the power '
                             '1 + max(0, 1.5 g - 0.5) of the frame\'s voicing g, light branches '
                             'of the code tree dropped). Default: false')
    parser.add_argument('--logdir', type=str, default=LOGDIR,
                        help='TensorBoard summaries go to LOGDIR/generate/<timestamp>/')
    add_checkpoint_flags(parser)
    parser.add_argument('--wav_out_path', type=str, default=None,
                        help='Path to output wav file (one per id with several --gc_id)')
    parser.add_argument('--save_every', type=positive(int), default=None,
                        help='How many samples before saving in-progress wav')
    parser.add_argument('--fast_generation', type=str_to_bool, default=True,
                        help='Use fast generation (queue-cached, in-graph loop)')
    parser.add_argument('--wav_seed', type=str, default=None,
                        help='The wav file to start generation from')
    parser.add_argument('--gc_id', type=speaker_ids, default=None,
                        help='ID of category to generate, if globally conditioned; several '
                             'separated by commas are generated together')
    parser.add_argument('--lc_wav', type=str, action='append', default=None,
                        help='Vocoder: voice the mel features of this wav (copy synthesis); '
                             'repeat the flag to voice several in one batch')
    parser.add_argument('--lc_features', type=str, action='append', default=None,
                        help='Vocoder: voice these features, a .npy of [frames, lc_channels] '
                             'float32 log-mel frames (see wavenet/features.py); repeatable')
    parser.add_argument('--streams', type=positive(int), default=1,
                        help='Independent samples generated per speaker (and utterance), all '
                             'in one batch')
    parser.add_argument('--seed', type=random_seed, default=None,
                        help='Random seed; the same seed gives the same audio (default random)')
    parser.add_argument('--cache_dir', type=str,
                        default=compilation_cache.default_directory(),
                        help='Where compiled generation loops are kept, so that the next run '
                             'of the same network starts at once (default '
                             f'${compilation_cache.ENVIRONMENT} or ~/.cache/wavenet; an '
                             'empty string turns the cache off)')
    return parser


def check_speakers(description, gc_ids):
    """The original's checks of the conditioning flags, plus the range of each id."""
    cardinality = description.gc_cardinality
    if description.gc_channels is None:
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
    """The utterances a vocoder voices, ``[(name, frames, reference audio or None)]``, or
    ``[]`` for a network without local conditioning; and sets ``args.samples`` when not
    given. The checks docs/vocoder.md lists for a vocoder."""
    from . import generation
    features = description.features
    given = [flag for flag in ('lc_wav', 'lc_features') if getattr(args, flag) is not None]
    if features is None:
        if given or args.sharpen:
            flag = f'--{given[0]}' if given else '--sharpen'
            raise ValueError(f'{flag} given, but the network is not locally conditioned '
                             '(no lc_channels in its description)')
        args.samples = args.samples or SAMPLES
        return []
    if not given:
        raise ValueError(f'the network is a vocoder (lc_channels {features.channels}): give '
                         'the features to voice with --lc_wav or --lc_features')
    if len(given) > 1:
        raise ValueError('--lc_wav and --lc_features cannot be used together')
    if args.wav_seed is not None:
        raise ValueError('--wav_seed cannot be used with a vocoder: its features decide the '
                         'audio from the first sample')
    codes = description.quantization_channels
    if args.sharpen and (description.output_distribution != 'softmax' or codes & (codes - 1)):
        raise ValueError('--sharpen needs the softmax output over a power of two of codes '
                         '(it drops branches of the binary tree of its codes)')
    flag = given[0]
    utterances = []
    for path in getattr(args, flag):
        frames, reference = generation.load_local_condition(
            features, **{flag: path})
        covered = len(frames) * features.hop_length
        if args.samples is not None and args.samples > covered:
            raise ValueError(f'--samples {args.samples} is more than the {len(frames)} frames '
                             f'of --{flag} {path} describe ({covered} samples)'
                             if len(getattr(args, flag)) > 1 else
                             f'--samples {args.samples} is more than the {len(frames)} frames '
                             f'of --{flag} describe ({covered} samples)')
        name = os.path.splitext(os.path.basename(path))[0]
        utterances.append((name, frames, reference))
    names = [name for name, _, _ in utterances]
    if len(set(names)) < len(names):
        raise ValueError(f'--{flag} names two files of the same name ({", ".join(names)}): '
                         'their outputs would overwrite each other')
    args.samples = args.samples or max(len(frames) for _, frames, _ in utterances) * \
        features.hop_length
    return utterances


def batch_rows(args, utterances):
    """One ``(utterance index or None, speaker id or None, stream)`` per batch row."""
    return [(utterance, speaker, stream)
            for utterance in (range(len(utterances)) if utterances else [None])
            for speaker in (args.gc_id or [None])
            for stream in range(args.streams)]


def batch_size(args):
    """How many rows ``batch_rows`` makes, from the flags alone (before TensorFlow starts):
    one utterance per --lc_wav or --lc_features file."""
    return len(batch_rows(args, args.lc_wav or args.lc_features or []))


def row_names(rows, utterances):
    """Each row's ``(kind, value)`` parts that tell it apart from the other rows: its
    ``utterance`` (file name), ``speaker`` and ``stream``, where the batch has several."""
    kinds = ('utterance', 'speaker', 'stream')
    several = [len({row[k] for row in rows}) > 1 for k in range(3)]
    return [[(kind, utterances[value][0] if kind == 'utterance' else value)
             for kind, value, varies in zip(kinds, row, several) if varies]
            for row in rows]


def output_paths(path, names):
    """``out.wav`` for one row; ``out_<utterance>_gc<id>_s<stream>.wav`` for several."""
    root, extension = os.path.splitext(path)
    prefix = {'utterance': '', 'speaker': 'gc', 'stream': 's'}
    return [root + ''.join(f'_{prefix[kind]}{value}' for kind, value in parts) + extension
            for parts in names]


def summary_tags(names, speakers):
    """``generated`` for one row; ``generated/<utterance>/speaker_<id>/stream_<k>`` for
    several. A conditioned network's tags always name the speaker."""
    tags = []
    for row, parts in enumerate(names):
        if speakers is not None and 'speaker' not in dict(parts):
            parts = sorted(parts + [('speaker', speakers[row])],
                           key=lambda part: ('utterance', 'speaker', 'stream').index(part[0]))
        tags.append('/'.join(['generated'] + [value if kind == 'utterance' else
                                              f'{kind}_{value}' for kind, value in parts]))
    return tags


@dataclasses.dataclass(frozen=True)
class Plan:
    """A generation, every input checked: the restored network and its batch rows."""
    net: object  # the WaveNetModel, its weights restored
    prefix: str  # of the checkpoint
    description: object  # the NetworkDescription
    clip: object  # the seed clip's codes, or None
    utterances: list  # what a vocoder voices: [(name, frames, reference audio or None)]
    rows: list  # of batch_rows
    names: list  # of row_names
    paths: list  # one wav per row, or none


def prepare(args):
    """The ``Plan`` of a generation, or a ``ValueError`` naming the flag, file or value at
    fault; checks run before the model is built where they can."""
    from . import checkpoints, generation
    from .params import build_model

    if args.save_every and not args.wav_out_path:
        raise ValueError('--save_every needs --wav_out_path')
    check_output_directory(args.logdir, '--logdir')
    prefix = checkpoints.find_checkpoint(args.checkpoint)
    description, source = checkpoints.network_description(
        prefix, args.wavenet_params, args.gc_channels, args.gc_cardinality)
    check_speakers(description, args.gc_id)
    checkpoints.check_checkpoint(prefix, description, source)
    utterances = local_condition(args, description)
    rows = batch_rows(args, utterances)
    names = row_names(rows, utterances)
    paths = output_paths(args.wav_out_path, names) if args.wav_out_path else []
    # Outputs are written while generating: a path that cannot be written would lose it.
    for path in paths:
        check_output_file(path, '--wav_out_path')
    clip = None
    if args.wav_seed is not None:
        clip = generation.load_clip(args.wav_seed, description.sample_rate,
                                    description.sample_coding, description.receptive_field)
    net = build_model(description, restoring=True)
    if checkpoints.restore_model(net, prefix, averaged=args.ema):
        print(f'Using the average of the weights in {prefix} (--ema=false for its own)')
    return Plan(net, prefix, description, clip, utterances, rows, names, paths)


def configure_runtime(args):
    """What TensorFlow must be told before it starts: the threads for this batch and the
    compilation cache (a ``ValueError`` when --cache_dir cannot be written)."""
    compilation_cache.threads_for(batch_size(args))
    compilation_cache.enable(args.cache_dir)


def main(argv=None):
    parser = get_arguments()
    args = parser.parse_args(argv)
    try:
        configure_runtime(args)
        # Quiet: TensorFlow's first touch of a device logs, and errors must be one line.
        with native_stderr_silenced():
            load_tensorflow()
            plan = prepare(args)
    except ValueError as e:
        parser.error(str(e))
    print(f'Restored model from {plan.prefix}')
    try:
        previews = generate_audio(args, plan)
    except DiskFull as e:
        fail(parser.prog, e, status=1)
    write_summaries(args, plan, previews)
    print('Finished generating. The result can be viewed in TensorBoard.')


def speakers_of(args, plan):
    return None if args.gc_id is None else [speaker for _, speaker, _ in plan.rows]


def generation_inputs(args, plan):
    """``(codes, lengths)``: the generator of code chunks of every row, and each row's
    length (a vocoder's rows end with their utterance's frames)."""
    import numpy as np

    from . import generation

    net = plan.net
    keys = [generation.stream_key(speaker or 0, stream) for _, speaker, stream in plan.rows]
    seed = random.randrange(2 ** 31) if args.seed is None else args.seed
    streams = generation.UniformStreams(seed, keys)
    start = generation.start_waveform(net, streams(0, 1)[:, 0], plan.clip)
    lengths = [args.samples] * len(plan.rows)
    conditioning = None
    if plan.utterances:
        # Every speaker and stream voices its utterance's frames; shorter utterances are
        # padded with silence and their rows cut to their own length.
        features, utterances = plan.description.features, plan.utterances
        longest = max(len(frames) for _, frames, _ in utterances)
        padded = [np.concatenate([frames, features.silence(longest - len(frames))])
                  for _, frames, _ in utterances]
        lengths = [min(args.samples, len(utterances[u][1]) * features.hop_length)
                   for u, _, _ in plan.rows]
        conditioning = generation.ConditioningRows(
            net, np.stack([padded[u] for u, _, _ in plan.rows]), start.shape[1], features)
    # Chunks that divide --save_every make every save land on a multiple of it.
    chunk = math.gcd(args.save_every, generation.CHUNK) if args.save_every else \
        generation.CHUNK
    codes = generation.generate(net, start, lambda begin, count: streams(begin + 1, count),
                                speakers_of(args, plan), args.temperature,
                                args.fast_generation, chunk, conditioning,
                                samples=args.samples, sharpen=args.sharpen)
    return codes, lengths


def generate_audio(args, plan):
    """Runs the batch of ``plan.rows``, writing each row's wav as its chunks arrive;
    returns what TensorBoard hears of each row (at most ``generation.SUMMARY_SECONDS``),
    as code arrays."""
    import numpy as np

    from . import generation

    codes_chunks, lengths = generation_inputs(args, plan)
    pcm = plan.net.sample_coding.pcm_table()
    heard = int(generation.SUMMARY_SECONDS * plan.description.sample_rate)
    # The wav holds the seed clip (not the artificial silence start) and what follows.
    prefix_codes = np.asarray(plan.clip if plan.clip is not None else [], np.int32)
    previews = [[prefix_codes[:heard]] for _ in plan.rows]
    writers, disk_filled = [], False
    try:
        for path in plan.paths:
            writers.append(generation.WavStream(path, plan.description.sample_rate))
            writers[-1].append(pcm[prefix_codes])
        done, chunk_began = 0, time.perf_counter()
        for codes in codes_chunks:
            codes = codes.numpy()
            for row, length in enumerate(lengths):
                kept = codes[row, :max(0, length - done)]
                if writers:
                    writers[row].append(pcm[kept])
                if len(prefix_codes) + done < heard:
                    previews[row].append(kept[:heard - len(prefix_codes) - done])
            done += codes.shape[1]
            chunk_began = progress(done, args.samples, codes.shape[1], chunk_began,
                                   len(plan.rows))
            if args.save_every and done % args.save_every == 0 and done < args.samples:
                for writer in writers:
                    writer.save()
        print()
        for writer in writers:
            writer.save()
            print(f'The result was saved to {writer.path}')
    except (OSError, RuntimeError) as e:  # libsndfile's errors are RuntimeErrors
        disk_filled = bool(writers) and disk_full(e, writers[0].path)
        if not disk_filled:
            raise
        raise DiskFull(kept_samples(writers, e)) from None
    finally:
        for writer in writers:
            writer.close(keep_samples=disk_filled)
    return [np.concatenate(preview) for preview in previews]


def kept_samples(writers, error):
    """The line of a generation whose wavs' disk filled: what was kept, and where."""
    parts = ', '.join(writer.part for writer in writers)
    samples = min((os.path.getsize(writer.part) // 2 for writer in writers
                   if os.path.exists(writer.part)), default=0)
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
    return (f'no space left on device writing {writers[0].path} ({reason}); the first '
            f'{samples} samples of each row are kept in {parts} (raw 16-bit mono PCM at '
            f'{writers[0].sample_rate} Hz)')


def progress(done, samples, count, chunk_began, rows):
    """Prints the progress line with the rate of the latest chunk (the first one also pays
    for compiling the loop); returns when the next chunk began."""
    now = time.perf_counter()
    rate = count / (now - chunk_began)
    # On stdout, as the original: stderr is for what a user should act on.
    print(f'\rSample {done}/{samples} ({rate:.0f} samples/s{" per row" if rows > 1 else ""})',
          end='', flush=True)
    return now


def write_summaries(args, plan, previews):
    """A TensorBoard audio tag per row (so TensorBoard shows every speaker's clip at once),
    each with its spectrogram picture; a vocoder's references beside them."""
    import numpy as np
    import tensorflow as tf

    from . import generation
    from .summaries import write_audio

    coding, sample_rate = plan.net.sample_coding, plan.description.sample_rate
    levels = coding.decode(np.arange(coding.codes)).numpy()
    heard = int(generation.SUMMARY_SECONDS * sample_rate)
    logdir = os.path.join(args.logdir, 'generate',
                          datetime.datetime.now().strftime('%Y-%m-%dT%H-%M-%S'))
    writer = tf.summary.create_file_writer(logdir)
    with native_stderr_silenced(), writer.as_default():
        for tag, preview in zip(summary_tags(plan.names, speakers_of(args, plan)), previews):
            write_audio(tag, levels[preview], sample_rate, step=0)
        for name, _, reference in plan.utterances:
            if reference is not None:  # copy synthesis: the original beside it
                write_audio('reference' if len(plan.utterances) == 1 else f'reference/{name}',
                            reference[:min(args.samples, heard)], sample_rate, step=0)
    writer.close()  # on disk now: the process ends without a teardown (see main)


def cli():
    """The command: ``main`` with its exit status."""
    # Every file is closed when main returns; TensorFlow's teardown would only add time.
    run(main, skip_teardown=True)


if __name__ == '__main__':
    cli()
