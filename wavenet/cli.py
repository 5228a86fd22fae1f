"""Helpers shared by the command-line tools: flag types, one-line errors, quiet start-up.

Imports no TensorFlow, so that ``wavenet/__init__`` can use it around TensorFlow's import.
"""
import argparse
import contextlib
import os
import sys


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
        if number is None or not number > 0:
            raise argparse.ArgumentTypeError(f"must be a positive {kind.__name__}, got '{value}'")
        return number
    parse.__name__ = f'positive {kind.__name__}'
    return parse


def fail(prog, message, status=2):
    """Prints ``<prog>: error: <message>`` as one line on stderr and exits."""
    print(f'{prog}: error: {message}', file=sys.stderr, flush=True)
    sys.exit(status)


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` whose errors are one line, without the usage text."""

    def error(self, message):
        fail(self.prog, message)


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
