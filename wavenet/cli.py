"""Helpers shared by the command-line tools: flag types, one-line errors, quiet start-up.

Imports no TensorFlow, so that ``wavenet/__init__`` can use it around TensorFlow's import.
"""
import argparse
import atexit
import contextlib
import errno
import gc
import math
import os
import re
import shutil
import sys
import threading
import traceback


def str_to_bool(value):
    """'true'/'false' (any case) as a bool, as the original's ``_str_to_bool``."""
    if isinstance(value, bool):
        return value
    lowered = value.lower()
    if lowered in ('true', 'false'):
        return lowered == 'true'
    raise argparse.ArgumentTypeError(f"expected true or false, got '{value}'")


def positive(kind):
    """An argparse type: ``kind`` (int or float) that must be greater than zero."""
    def parse(value):
        try:
            number = kind(value)
        except ValueError:
            number = None
        if number is None or not (number > 0 and math.isfinite(number)):
            raise argparse.ArgumentTypeError(f"must be a positive {kind.__name__}, got '{value}'")
        return number
    parse.__name__ = f'positive {kind.__name__}'
    return parse


def non_negative_int(value):
    """An argparse type: an int >= 0."""
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got '{value}'")
    return number


def add_checkpoint_flags(parser):
    """The flags of a tool that reads a trained checkpoint: which of its weights, and the
    network description when none was saved beside it (an original toolkit's checkpoint)."""
    parser.add_argument('--ema', type=str_to_bool, default=True,
                        help="Use the checkpoint's average of the weights when it holds one "
                             "(train.py --ema_decay); false: the last step's own weights")
    parser.add_argument('--wavenet_params', type=str, default=None,
                        help='JSON file with the network parameters (default '
                             './wavenet_params.json); only needed when no '
                             'description was saved beside the checkpoint')
    parser.add_argument('--gc_channels', type=positive(int), default=None,
                        help='Number of global condition embedding channels')
    parser.add_argument('--gc_cardinality', type=positive(int), default=None,
                        help='Number of categories upon which we globally condition')


def check_output_file(path, flag):
    """Refuses (``ValueError``) an output file that could not be written, before any work."""
    if os.path.isdir(path):
        raise ValueError(f'{flag} {path}: is a directory, expected a file name')
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ValueError(f'{flag} {path}: no such directory {parent}')
    if not os.access(parent, os.W_OK):
        raise ValueError(f'{flag} {path}: directory {parent} is not writable')


def check_output_directory(path, flag, writable=True):
    """Refuses (``ValueError``) a directory that could not be created, because a file
    stands where it or one of its parents should be, or (``writable``) not written."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f'{flag} {path}: {existing} is a file, not a directory')
    if writable and not os.access(existing, os.W_OK):
        raise ValueError(f'{flag} {path}: {existing} is not writable')


class DiskFull(Exception):
    """A write found its disk full; the message names the path and what was kept."""


def disk_full(error, path):
    """Whether ``error``, raised writing ``path``, says that its disk is full (an
    ``OSError``'s ``ENOSPC``, TensorFlow's or libsndfile's message, or no byte left)."""
    if getattr(error, 'errno', None) == errno.ENOSPC or 'No space left' in str(error):
        return True
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    try:
        return shutil.disk_usage(folder).free < 2 ** 16
    except OSError:
        return False


def warn(message):
    """One line on stderr: ``Warning: <message>``."""
    print(f'Warning: {message}', file=sys.stderr, flush=True)


def run(main, skip_teardown=False):
    """Runs a tool's ``main`` and exits with its status, an uncaught exception printed
    and then let go before the interpreter shuts down.

    Left to Python, an uncaught exception's traceback stays referenced until the
    shutdown, and with it every frame it passed through: the training's input pipeline
    outlives the interpreter. The shutdown ends any thread that asks for the interpreter
    lock, so a pipeline worker inside a Python function (decoding a file) never returns,
    and destroying the pipeline then waits for that worker for ever. Let go here, the
    pipeline is destroyed while the interpreter still runs its workers to the end.

    With ``skip_teardown`` the process ends at once, its output flushed, without the
    interpreter's and TensorFlow's teardown, which is slow once TensorFlow has run: for a tool
    that closes every file it writes before it returns (a summary writer that is only
    flushed by its destructor would lose its events)."""
    try:
        status = main()
    except SystemExit as e:
        status = e.code
    except KeyboardInterrupt:
        status = 128 + 2  # as a shell reports a process ended by SIGINT
    except BaseException:  # noqa: B036 -- printed as Python would, then let go
        traceback.print_exc()
        status = 1
    if skip_teardown:
        if status is not None and not isinstance(status, int):
            print(status, file=sys.stderr)  # as sys.exit prints a message
            status = 1
        # The exit functions still run: AutoGraph's removes the files it wrote in the
        # temporary folder.
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status or 0)
    gc.collect()
    sys.exit(status)


def fail(prog, message, status=2):
    """Prints ``<prog>: error: <message>`` as one line on stderr and exits."""
    print(f'{prog}: error: {message}', file=sys.stderr, flush=True)
    sys.exit(status)


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` whose errors are one line, without the usage text."""

    def error(self, message):
        fail(self.prog, message)


# Lines TensorFlow's C++ logging prints that report no fault: XLA reading a compiled
# executable from the persistent cache tries it as a text proto before the binary one it
# is, and logs the failed text parse as an error; and on CPUs for which LLVM sets the
# tuning preferences prefer-no-gather / prefer-no-scatter (recent Intel Xeons), XLA's
# loader compares them with the host's instruction-set features, which never list them,
# and calls every entry, even one this machine compiled, a mismatch (openxla/xla#44565).
HARMLESS_NATIVE_LINES = re.compile(
    rb'text_format\.cc:\d+\] Error parsing text-format tensorflow\.XlaSerializedCacheEntry'
    rb'|cpu_aot_loader\.cc:\d+\] Loading XLA:CPU AOT result\. Target machine feature '
    rb'\+prefer-no-(gather|scatter) is not +supported on the host machine')


@contextlib.contextmanager
def native_stderr_filtered(harmless=HARMLESS_NATIVE_LINES):
    """Drops the lines matching ``harmless`` (bytes pattern) from the process's stderr
    (file descriptor 2, where C++ logs) while inside, forwarding every other line as it
    comes: unlike ``native_stderr_silenced``, a warning another thread prints meanwhile
    (a corpus file skipped, say) still reaches the user."""
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward():
        with os.fdopen(read_end, 'rb') as pipe:
            for line in pipe:
                if not harmless.search(line):
                    os.write(saved, line)

    forwarding = threading.Thread(target=forward, name='stderr-filter', daemon=True)
    forwarding.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer closed: the forwarding ends
        forwarding.join(timeout=5)  # unless a child process still holds the pipe
        os.close(saved)


@contextlib.contextmanager
def native_stderr_silenced():
    """Mutes the process's stderr (file descriptor 2) while TensorFlow's C++ libraries load
    or first touch a device: they log before ``TF_CPP_MIN_LOG_LEVEL`` is read, and a tool's
    error must stay one line. Only when that level asks for quiet (2 or 3, as the tools
    set it); Python exceptions still print, after the block."""
    if os.environ.get('TF_CPP_MIN_LOG_LEVEL', '0') in ('0', '1'):
        yield
        return
    saved = os.dup(2)
    with open(os.devnull, 'w') as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
