"""Training script for the WaveNet network on the VCTK corpus, run as the original's:
``python train.py [flags]`` (``wavenet-train`` once the package is installed). The tool
is ``wavenet/train.py``."""
from wavenet.train import cli, main  # noqa: F401 -- main: what importers of train.py call

if __name__ == '__main__':
    cli()
