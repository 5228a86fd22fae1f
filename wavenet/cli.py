"""Helpers shared by the command-line tools: flag types and one-line errors."""
import argparse
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
