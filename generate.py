"""Generates audio from a trained WaveNet checkpoint, run as the original's:
``python generate.py CHECKPOINT [flags]`` (``wavenet-generate`` once the package is
installed). The tool is ``wavenet/generate.py``."""
from wavenet.generate import cli, main  # noqa: F401 -- main: what importers call

if __name__ == '__main__':
    cli()
