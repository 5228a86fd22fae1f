"""Converts a checkpoint of the original TF 1 toolkit into one of this toolkit.

    python -m wavenet.convert_tf1 logdir/train/2017-01-01T00-00-00/model.ckpt-80000 \\
        --wavenet_params wavenet_params.json [--gc_channels 32 --gc_cardinality 377] \\
        --logdir converted

writes ``converted/model.ckpt-80000`` (weights and step; the original saved no optimizer
state) and its network description, after which ``generate.py converted`` needs no flags
and ``train.py --logdir converted`` continues at step 80001.
"""
import os
import shutil
import sys
from datetime import datetime

from . import load_tensorflow

load_tensorflow()  # first, with TensorFlow's start-up logs muted

# isort: split
from . import checkpoints  # noqa: E402
from .cli import (  # noqa: E402
    ArgumentParser,
    DiskFull,
    check_output_directory,
    disk_full,
    fail,
    native_stderr_silenced,
    positive,
)
from .logdir_lock import LogdirLock  # noqa: E402
from .params import NetworkDescription, build_model, params_file  # noqa: E402


def get_arguments():
    parser = ArgumentParser(prog='python -m wavenet.convert_tf1',
                            description='Convert a checkpoint of the original TF 1 WaveNet '
                            'toolkit into a checkpoint of this one.')
    parser.add_argument('checkpoint', help='The original checkpoint prefix '
                        '(model.ckpt-N), or its folder (the newest checkpoint in it).')
    parser.add_argument('--wavenet_params', required=True,
                        help='The network description the original was trained with.')
    parser.add_argument('--gc_channels', type=positive(int), default=None,
                        help='Its --gc_channels, if it was trained with speakers.')
    parser.add_argument('--gc_cardinality', type=positive(int), default=None,
                        help='The number of speaker ids it embedded (with --gc_channels).')
    parser.add_argument('--logdir', required=True,
                        help='Folder for the converted checkpoint and its description.')
    return parser


def convert(prefix, description, logdir):
    """Writes the original checkpoint ``prefix`` as ``logdir/model.ckpt-N`` (N from its
    name) with its description; returns the new prefix. ``ValueError`` when the checkpoint
    does not fit ``description``."""
    import tensorflow as tf

    with native_stderr_silenced():
        net = build_model(description, restoring=True)
    checkpoints.load_tf1_weights(net, prefix)
    step = checkpoints.step_in_name(prefix)
    os.makedirs(logdir, exist_ok=True)
    before = set(os.listdir(logdir))
    saved = tf.train.Checkpoint(step=tf.Variable(step, dtype=tf.int64), model=net)
    manager = tf.train.CheckpointManager(saved, logdir, max_to_keep=None,
                                         checkpoint_name='model.ckpt')
    try:
        path = manager.save(checkpoint_number=step)
        description.save(logdir)
    except (tf.errors.OpError, OSError) as e:
        if not disk_full(e, logdir):
            raise
        # Nothing of a conversion that did not finish is kept, nothing else is touched.
        for name in set(os.listdir(logdir)) - before:
            target = os.path.join(logdir, name)
            if os.path.isdir(target):
                shutil.rmtree(target, ignore_errors=True)
            else:
                os.remove(target)
        raise DiskFull(f'no space left on device writing --logdir {logdir}; nothing was '
                       'written') from None
    return path


def checked_conversion(args):
    """``(the checkpoint written, the original's)`` once the flags, the original
    checkpoint and the network describing it are found to fit."""
    if checkpoints.latest_checkpoint(args.logdir):
        raise ValueError(f'--logdir {args.logdir}: already holds checkpoints; choose an '
                         'empty folder')
    description = NetworkDescription.load(params_file(args.wavenet_params)).with_speakers(
        args.gc_channels, args.gc_cardinality)
    prefix = checkpoints.find_checkpoint(args.checkpoint)
    if not checkpoints.is_tf1_checkpoint(prefix):
        raise ValueError(f'{prefix} is not a checkpoint of the original toolkit (no '
                         'variable under wavenet/)')
    checkpoints.check_checkpoint(prefix, description, args.wavenet_params)
    return convert(prefix, description, args.logdir), prefix


def main(argv=None):
    parser = get_arguments()
    args = parser.parse_args(argv)
    if (args.gc_channels is None) != (args.gc_cardinality is None):
        parser.error('--gc_channels and --gc_cardinality go together (the original needed '
                     'both for a speaker-conditioned network)')
    lock = None
    try:
        check_output_directory(args.logdir, '--logdir')
        # A training there would save beside (or over) what is written here.
        lock = LogdirLock(args.logdir, f'{datetime.now():%Y-%m-%d %H:%M:%S}').acquire()
        path, prefix = checked_conversion(args)
    except ValueError as e:
        parser.error(str(e))
    except DiskFull as e:
        fail(parser.prog, e, status=1)
    finally:
        if lock is not None:
            lock.release()
    print(f'Converted {prefix} into {path}')
    print(f'Generate with: python generate.py {args.logdir}')


def cli():
    """The command (``wavenet-convert-tf1``): ``main`` with its exit status."""
    sys.exit(main())


if __name__ == '__main__':
    cli()
