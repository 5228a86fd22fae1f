"""Training script for the WaveNet network on the VCTK corpus: ``python train.py`` in a
checkout, as the original's, or ``wavenet-train`` / ``python -m wavenet.train`` once
installed; the same flags.

This script trains a network with the WaveNet using data from the VCTK corpus,
which can be freely downloaded at the following site (~10 GB):
http://homepages.inf.ed.ac.uk/jyamagis/page3/page58/page58.html
"""
import os
import time


def _process_start():
    """``time.perf_counter``'s reading when this process started, so that the interpreter's
    start-up before this module counts against a time budget too (as the command's
    ``time`` counts it); now where /proc cannot say, or where the process is older than a
    tool's start-up (a notebook importing this module)."""
    try:
        with open('/proc/self/stat') as stat, open('/proc/uptime') as uptime:
            started = float(stat.read().rsplit(')', 1)[1].split()[19])  # its 22nd field
            age = float(uptime.read().split()[0]) - started / os.sysconf('SC_CLK_TCK')
        return time.perf_counter() - (age if 0.0 <= age < 5.0 else 0.0)
    except (OSError, ValueError, IndexError):
        return time.perf_counter()


STARTED = _process_start()  # the wall time a training reports counts from here

# isort: split
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from datetime import datetime  # noqa: E402

from . import load_tensorflow  # noqa: E402

load_tensorflow()  # first, with TensorFlow's start-up logs muted

# isort: split
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from . import compilation_cache, distribution, optimizer_factory  # noqa: E402
from .audio_reader import AudioReader, validation_pieces  # noqa: E402
from .averaging import WeightAverage  # noqa: E402
from .checkpoints import (  # noqa: E402
    check_network_description,
    create_checkpoint,
    keep_original_checkpoints,
    latest_checkpoint,
    restore_training,
)
from .cli import (  # noqa: E402
    ArgumentParser,
    DiskFull,
    check_output_directory,
    fail,
    native_stderr_silenced,
    non_negative_int,
    positive,
    run,
    str_to_bool,
)
from .logdir_lock import LogdirLock  # noqa: E402
from .params import NetworkDescription, build_model, params_file  # noqa: E402
from .summaries import Sampler  # noqa: E402
from .training import (  # noqa: E402
    JIT_CHOICES,
    SCHEDULES,
    Budget,
    Stopwatch,
    TrainingDiverged,
    TrainingPlan,
    WorkerLost,
    compile_step,
    learning_rate_schedule,
    make_train_step,
    make_validation,
    train,
)

BATCH_SIZE = 1
DATA_DIRECTORY = './VCTK-Corpus'
LOGDIR_ROOT = './logdir'
CHECKPOINT_EVERY = 50
NUM_STEPS = int(1e5)
LEARNING_RATE = 1e-3
WAVENET_PARAMS = './wavenet_params.json'
STARTED_AT = f'{datetime.now():%Y-%m-%d %H:%M:%S}'
STARTED_DATESTRING = STARTED_AT.replace(' ', 'T').replace(':', '-')
# Run as the command (``cli``), the process ends without any teardown; what must not be
# torn down before then is kept here.
_ENDS_WITHOUT_TEARDOWN = False
_KEPT_UNTIL_EXIT = []
SAMPLE_SIZE = 100000
L2_REGULARIZATION_STRENGTH = 0
SILENCE_THRESHOLD = 0.3
MOMENTUM = 0.9
MAX_TO_KEEP = 5
METADATA = False


def get_arguments():
    """The flags, the original's first and in its order: one flat list, long by nature."""
    parser = ArgumentParser(description='WaveNet example network')
    parser.add_argument('--batch_size', type=positive(int), default=BATCH_SIZE,
                        help='How many wav files to process at once. Default: '
                        + str(BATCH_SIZE) + '.')
    parser.add_argument('--data_dir', type=str, default=DATA_DIRECTORY,
                        help='The directory containing the VCTK corpus.')
    parser.add_argument('--store_metadata', type=str_to_bool, default=METADATA,
                        help='Whether to store advanced debugging information (execution '
                        'time, memory consumption) for use with TensorBoard. Default: '
                        + str(METADATA) + '.')
    parser.add_argument('--logdir', type=str, default=None,
                        help='Directory in which to store the logging information for '
                        'TensorBoard. If the model already exists, it will restore the state '
                        'and will continue training. Cannot use with --logdir_root and '
                        '--restore_from.')
    parser.add_argument('--logdir_root', type=str, default=None,
                        help='Root directory to place the logging output and generated model. '
                        'These are stored under the dated subdirectory of --logdir_root. '
                        'Cannot use with --logdir.')
    parser.add_argument('--restore_from', type=str, default=None,
                        help='Directory in which to restore the model from. This creates the '
                        'new model under the dated directory in --logdir_root. '
                        'Cannot use with --logdir.')
    parser.add_argument('--checkpoint_every', type=positive(int), default=CHECKPOINT_EVERY,
                        help='How many steps to save each checkpoint after. Default: '
                        + str(CHECKPOINT_EVERY) + '.')
    parser.add_argument('--num_steps', type=positive(int), default=NUM_STEPS,
                        help='Number of training steps. Default: ' + str(NUM_STEPS) + '.')
    parser.add_argument('--max_minutes', type=positive(float), default=None,
                        help='Stop after the first step that ends this many minutes after the '
                        'start (the time the last checkpoint and samples take kept in '
                        'reserve), or at --num_steps if that comes first; the minutes of '
                        'earlier runs of the same --logdir count. Default: None (no limit).')
    parser.add_argument('--learning_rate', type=positive(float), default=LEARNING_RATE,
                        help='Learning rate for training. Default: ' + str(LEARNING_RATE) + '.')
    parser.add_argument('--learning_rate_schedule', default='constant', choices=SCHEDULES,
                        help='constant: --learning_rate throughout (the original); cosine or '
                             'linear: from --learning_rate down to a thirtieth of it at the '
                             'last step (of --num_steps, or of --max_minutes), along half a '
                             'cosine or a straight line. Default: constant.')
    parser.add_argument('--wavenet_params', type=str, default=WAVENET_PARAMS,
                        help='JSON file with the network parameters. Default: '
                        + WAVENET_PARAMS + '.')
    parser.add_argument('--shuffle_pieces', type=non_negative_int, default=0,
                        help='Draw training pieces at random from a buffer of this many '
                             "(0: each file's pieces in order, as the original).")
    parser.add_argument('--ema_decay', type=float, default=0.0,
                        help='Keep an exponential moving average of the weights with this '
                             'decay (0.999, say) in the checkpoints, which generation and the '
                             'training samples then use; 0 keeps none. Default: 0.')
    parser.add_argument('--sample_size', type=non_negative_int, default=SAMPLE_SIZE,
                        help='Concatenate and cut audio samples to this many samples; 0 trains '
                        'on whole clips. Default: ' + str(SAMPLE_SIZE) + '.')
    parser.add_argument('--l2_regularization_strength', type=float,
                        default=L2_REGULARIZATION_STRENGTH,
                        help='Coefficient in the L2 regularization. Default: 0 (off).')
    parser.add_argument('--silence_threshold', type=float, default=SILENCE_THRESHOLD,
                        help='Volume threshold below which to trim the start and the end from '
                        'the training set samples. Default: ' + str(SILENCE_THRESHOLD) + '.')
    parser.add_argument('--optimizer', type=str, default='adam',
                        choices=optimizer_factory.keys(),
                        help='Select the optimizer specified by this option. Default: adam.')
    parser.add_argument('--momentum', type=float, default=MOMENTUM,
                        help='Specify the momentum to be used by sgd or rmsprop optimizer. '
                        'Ignored by the adam optimizer. Default: ' + str(MOMENTUM) + '.')
    parser.add_argument('--histograms', type=str_to_bool, default=False,
                        help='Whether to store histogram summaries. Default: False.')
    parser.add_argument('--gc_channels', type=positive(int), default=None,
                        help='Number of global condition channels. Default: None. '
                        'Expecting: Int')
    parser.add_argument('--max_checkpoints', type=positive(int), default=MAX_TO_KEEP,
                        help='Maximum amount of checkpoints that will be kept alive. Default: '
                        + str(MAX_TO_KEEP) + '.')
    parser.add_argument('--validation_fraction', type=float, default=0,
                        help='Hold out this fraction of the files (chosen by a hash of their '
                        'path, the same on every run) for a validation loss. Default: 0 (off).')
    parser.add_argument('--validation_dir', type=str, default=None,
                        help='Or hold out the .wav files of this folder instead. '
                        'Default: None.')
    parser.add_argument('--validation_pieces', type=positive(int), default=16,
                        help='Pieces of held-out audio whose mean loss is logged as '
                        'validation_loss every --checkpoint_every steps. Default: 16.')
    parser.add_argument('--sample_every', type=non_negative_int, default=0,
                        help='Every this many steps (and after the last), generate '
                        '--sample_seconds of audio per speaker (at most 4) into TensorBoard; '
                        'a vocoder voices a held-out clip. Default: 0 (off).')
    parser.add_argument('--sample_seconds', type=positive(float), default=1.0,
                        help='Seconds of audio per sample. Default: 1.')
    parser.add_argument('--cache_dir', type=str,
                        default=compilation_cache.default_directory(),
                        help='Where the compiled sampling loop and training step are kept for '
                        'the next run (as generate.py keeps its loop). Default: '
                        '$WAVENET_CACHE_DIR or '
                        '~/.cache/wavenet; an empty string turns the cache off.')
    parser.add_argument('--distribute', type=str, default='auto',
                        choices=distribution.CHOICES,
                        help='How to spread training over devices: auto (several machines '
                        'when TF_CONFIG is set, else every GPU when there are several, else '
                        'one device), none, mirrored (every local GPU, or the --cpu_devices) '
                        'or multi_worker (the machines of TF_CONFIG). Default: auto.')
    parser.add_argument('--cpu_devices', type=positive(int), default=None,
                        help='Split the CPU into this many logical devices, so that '
                        'mirrored training runs without GPUs. Default: not split.')
    parser.add_argument('--mixed_precision', type=str_to_bool, default=False,
                        help='Compute in float16 (GPU, with loss scaling) or bfloat16 (CPU); '
                        'weights, softmax and loss stay float32. Default: False.')
    parser.add_argument('--seed', type=non_negative_int, default=None,
                        help='Seed the initial weights and the order of files and pieces, so '
                        'that a training can be run again alike (on the same machine and '
                        'software). Default: None (a different training each run).')
    parser.add_argument('--jit_compile', default='auto', choices=JIT_CHOICES,
                        help='Compile the training step with XLA: true, false, or auto (on a '
                        'CPU for networks of under a million weights trained on pieces, '
                        'such as the vocoders, where it pays). Default: auto.')
    return parser


def validate_directories(args):
    """The logdir to write and the directory to restore from."""
    if args.logdir and args.logdir_root:
        raise ValueError('--logdir and --logdir_root cannot be specified at the same time.')
    if args.logdir and args.restore_from:
        raise ValueError(
            '--logdir and --restore_from cannot be specified at the same time. This is to keep '
            'your previous model from unexpected overwrites. Use --logdir_root to specify the '
            'root of the directory which will be automatically created with current date and '
            'time, or use only --logdir to just continue the training from the last checkpoint.')
    logdir = args.logdir
    if logdir is None:
        logdir = os.path.join(args.logdir_root or LOGDIR_ROOT, 'train', STARTED_DATESTRING)
        print(f'Using default logdir: {logdir}')
    if args.logdir:
        check_output_directory(args.logdir, '--logdir')
    else:
        check_output_directory(args.logdir_root or LOGDIR_ROOT, '--logdir_root')
    restore_from = args.restore_from
    if restore_from is None:
        restore_from = logdir
    elif latest_checkpoint(restore_from) is None:
        raise ValueError(f'--restore_from {restore_from}: no checkpoint found there')
    return logdir, restore_from


def create_reader(args, description, directory=None):
    """The corpus of --data_dir (or of ``directory``, with no validation split)."""
    if directory is None and not os.path.isdir(args.data_dir):
        raise ValueError(f'--data_dir {args.data_dir}: no such directory')
    # The reader treats a threshold <= MIN_SILENCE_THRESHOLD as "do not trim".
    return AudioReader(
        directory or args.data_dir, sample_rate=description.sample_rate,
        validation_fraction=0 if directory else args.validation_fraction,
        gc_enabled=args.gc_channels is not None, receptive_field=description.receptive_field,
        sample_size=args.sample_size or None, silence_threshold=args.silence_threshold,
        features=description.features)


def held_out_pieces(args, description, reader):
    """The validation pieces: of the corpus's held-out files or of --validation_dir."""
    folder = None
    if args.validation_dir:
        if not os.path.isdir(args.validation_dir):
            raise ValueError(f'--validation_dir {args.validation_dir}: no such directory')
        folder = create_reader(args, description, args.validation_dir)
    return validation_pieces(reader, args.validation_pieces, folder)


def check_flags(parser, args):
    """The checks on single flags and their pairs that argparse cannot make."""
    if not args.l2_regularization_strength >= 0:  # NaN too
        parser.error('argument --l2_regularization_strength: must be 0 (off) or positive, '
                     f'got {args.l2_regularization_strength}')
    if not 0 <= args.momentum <= 1:  # Keras' SGD refuses anything else
        parser.error(f'argument --momentum: must be between 0 and 1, got {args.momentum}')
    if not 0 <= args.ema_decay < 1:  # NaN too
        parser.error(f'argument --ema_decay: must be at least 0 and below 1, got '
                     f'{args.ema_decay}')
    if not 0 <= args.validation_fraction < 1:
        parser.error('argument --validation_fraction: must be at least 0 and below 1, got '
                     f'{args.validation_fraction}')
    if args.validation_fraction and args.validation_dir:
        parser.error('--validation_fraction and --validation_dir cannot be used together')


@dataclasses.dataclass(frozen=True)
class Setup:
    """What every check before the first model or file has settled."""
    logdir: str
    restore_from: str
    description: NetworkDescription
    reader: AudioReader
    held_out: list
    strategy: tf.distribute.Strategy
    lock: LogdirLock | None


def check_everything(args):
    """The checks on the flags, the params file and the corpus, before a model is built
    or a file written (but the logdir's lock); a ``ValueError`` naming what is at
    fault."""
    logdir, restore_from = validate_directories(args)
    lock = hold(args, logdir)
    try:
        return Setup(logdir, restore_from, *check_inputs(args, restore_from), lock)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def hold(args, logdir):
    """This training's lock on its logdir (``None`` for a worker of a cluster that is not
    its chief: the chief alone writes there)."""
    if not distribution.writes_logdir(args.distribute):
        return None
    return LogdirLock(logdir, STARTED_AT).acquire()


def check_inputs(args, restore_from):
    """``(description, reader, held_out, strategy)`` after the checks of the params file,
    the corpus and the devices."""
    compilation_cache.enable(args.cache_dir)  # read when XLA first compiles
    description = NetworkDescription.load(params_file(args.wavenet_params))
    reader = create_reader(args, description)
    description = description.with_speakers(args.gc_channels, reader.gc_category_cardinality)
    held_out = held_out_pieces(args, description, reader)
    print(reader.summary())
    check_network_description(restore_from, description,
                              f'--wavenet_params {args.wavenet_params}')
    with native_stderr_silenced():  # TensorFlow logs as it first touches a device
        strategy = distribution.choose_strategy(args.distribute, args.cpu_devices)
    distribution.check_global_batch(strategy, args.batch_size)
    workers = distribution.worker_count(strategy)
    if len(reader.files) < workers:
        raise ValueError(f'--data_dir {args.data_dir}: {len(reader.files)} file(s) '
                         f'cannot be shared among {workers} workers')
    return description, reader, held_out, strategy


def restore(checkpoint, setup):
    """The first step to run, after restoring the newest checkpoint of
    ``setup.restore_from`` into ``checkpoint`` (whose ``seconds`` then hold the wall time
    spent on the logdir so far); a ``ValueError`` when it does not fit."""
    saved_step = restore_training(checkpoint, setup.restore_from)
    if distribution.differs_between_workers(setup.strategy,
                                            -1 if saved_step is None else saved_step):
        raise ValueError(f'the workers found different checkpoints in {setup.restore_from}: '
                         'it must be a folder every worker sees (shared storage)')
    # Restoring from another directory starts a new training (step 0) from its weights.
    continuing = os.path.realpath(setup.restore_from) == os.path.realpath(setup.logdir)
    if not (continuing and saved_step is not None):
        checkpoint.seconds.assign(0.0)
        return 0
    return saved_step + 1


def main(argv=None):
    parser = get_arguments()
    args = parser.parse_args(argv)
    check_flags(parser, args)
    try:
        setup = check_everything(args)
    except ValueError as e:
        parser.error(str(e))
    try:
        build_and_train(parser, args, setup)
    finally:
        if setup.lock is not None:
            setup.lock.release()


def build_and_train(parser, args, setup):
    """Builds the network, restores it, and trains it as ``args`` say."""
    strategy, chief = setup.strategy, distribution.is_chief(setup.strategy)
    if distribution.describe(strategy):
        print(distribution.describe(strategy))
    if args.mixed_precision:
        distribution.set_precision(distribution.mixed_precision_policy())
    if args.seed is not None:  # Python's, NumPy's and TensorFlow's draws
        keras.utils.set_random_seed(args.seed)

    with native_stderr_silenced(), strategy.scope():
        net = build_model(setup.description, args.histograms)
        optimizer = distribution.wrap_optimizer(
            optimizer_factory[args.optimizer](args.learning_rate, args.momentum))
        average = WeightAverage(net, args.ema_decay) if args.ema_decay else None
        checkpoint = create_checkpoint(net, optimizer, average)
    try:
        first_step = restore(checkpoint, setup)
        spent_before = float(checkpoint.seconds.numpy())
    except ValueError as e:
        # Otherwise TensorFlow lists every value it did not restore as the process exits.
        tf.get_logger().setLevel('ERROR')
        parser.error(str(e))
    # Keras keeps the learning rate in the optimizer's saved state; the flag given now wins,
    # as in the original, whose rate was part of the graph and never saved.
    optimizer.learning_rate = args.learning_rate

    # Only the chief writes the logdir; the other workers save (as saving needs every
    # worker) into a scratch folder of their own, removed at the end.
    if chief:
        os.makedirs(setup.logdir, exist_ok=True)
        setup.description.save(setup.logdir)
        writer = tf.summary.create_file_writer(setup.logdir)
        checkpoint_dir = setup.logdir
    else:
        writer = tf.summary.create_noop_writer()
        checkpoint_dir = tempfile.mkdtemp(prefix='wavenet-worker-')
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir,
                                         max_to_keep=args.max_checkpoints,
                                         checkpoint_name='model.ckpt')
    keep_original_checkpoints(manager)
    compiled, note = compile_step(args.jit_compile, net, strategy, args.sample_size)
    if note:
        print(note, file=sys.stderr)
    print(f'Training step: {"compiled with XLA" if compiled else "not compiled"} '
          f'(--jit_compile={args.jit_compile})')
    stream = batches(args, setup, compiled)
    if _ENDS_WITHOUT_TEARDOWN:
        # Destroying the input pipeline waits for the files its threads are reading,
        # which on a busy core can take a minute after the last step; the process's
        # end stops them instead.
        _KEPT_UNTIL_EXIT.append(stream)
    try:
        train(make_train_step(net, optimizer, args.l2_regularization_strength or None,
                              strategy, setup.description.input_noise, average, compiled),
              stream, manager, writer,
              plan(args, setup, first_step, spent_before, net, average, chief), strategy, chief,
              Stopwatch(STARTED))
    except (TrainingDiverged, WorkerLost, DiskFull) as e:
        fail(parser.prog, e, status=1)
    except ValueError as e:  # a corpus in which no file was usable
        parser.error(str(e) + setup.reader.silence_hint())
    finally:
        with contextlib.suppress(tf.errors.OpError):  # a full disk: its error was said
            writer.close()
        if not chief:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)


def batches(args, setup, compiled=False):
    """The global batches of the corpus, each worker reading its own share; for a
    ``compiled`` step, pieces all of one length (XLA compiles each shape anew)."""
    return distribution.distribute_batches(
        setup.strategy, lambda batch_size, shards, shard: setup.reader.dataset(
            batch_size, seed=args.seed, shards=shards, shard=shard,
            shuffle_pieces=args.shuffle_pieces, equal_pieces=compiled), args.batch_size)


def plan(args, setup, first_step, spent_before, net, average, chief):
    """The ``TrainingPlan`` the flags ask for, ``spent_before`` seconds having been spent
    on the logdir; validation and samples on the chief only."""
    validation = make_validation(net, setup.held_out) if chief and setup.held_out else None
    sampler = None
    if chief and args.sample_every:
        sampler = Sampler.for_corpus(net, setup.description, setup.reader, args.sample_seconds,
                                     args.silence_threshold, average)
    seconds = None if args.max_minutes is None else 60 * args.max_minutes
    return TrainingPlan(
        first_step=first_step, budget=Budget(args.num_steps, seconds, spent_before),
        checkpoint_every=args.checkpoint_every, gc_enabled=args.gc_channels is not None,
        histograms=args.histograms, store_metadata=args.store_metadata,
        validation=validation, sampler=sampler, sample_every=args.sample_every,
        learning_rate=learning_rate_schedule(args.learning_rate_schedule, args.learning_rate))


def cli():
    """The command: ``main`` with its exit status."""
    # Every file is closed by then, so the interpreter's and TensorFlow's slow teardown
    # would only add to the minutes a user waits (and a --max_minutes budget).
    global _ENDS_WITHOUT_TEARDOWN
    _ENDS_WITHOUT_TEARDOWN = True
    run(main, skip_teardown=True)


if __name__ == '__main__':
    cli()
