"""The picture of a vocoder's quality against training minutes, from the ``quality/*`` and
``griffin_lim/*`` scalars that ``train.py --sample_every`` logs for held-out clips.

    python bench/quality_curves.py logdir/vocoder [logdir/vocoder_long ...] --picture out.png
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from wavenet import quality  # noqa: E402

TITLES = {'stoi': 'STOI (higher is better)', 'pesq': 'wide-band PESQ (higher is better)',
          'mcd': 'mel-cepstral distortion, dB', 'f0_rmse': 'F0 RMSE, cents',
          'voicing_error': 'voicing error (fraction of frames)'}


def scalars(logdir):
    """``{tag: [(wall_time, step, value)]}`` of the scalars in ``logdir``'s own event
    files, as TensorBoard reads them (every one kept)."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.plugin_event_accumulator import (
        EventAccumulator,
    )
    accumulator = EventAccumulator(logdir, size_guidance={'tensors': 0})
    accumulator.Reload()
    return {tag: [(e.wall_time, e.step, float(tf.make_ndarray(e.tensor_proto)))
                  for e in accumulator.Tensors(tag)]
            for tag in accumulator.PluginTagToContent('scalars')}


def curves(logdir):
    """``({measure: (minutes since the training began, values)}, {measure: Griffin-Lim})``;
    a sample whose measure was undefined (no voiced frame in common, say) has no point."""
    found = scalars(logdir)
    if not any(tag.startswith('quality/') for tag in found):
        sys.exit(f'{logdir}: no quality/* scalars (train a vocoder with --sample_every and a '
                 'validation set)')
    began = min(wall for series in found.values() for wall, _, _ in series)
    series = {m: (np.array([wall - began for wall, _, _ in found[f'quality/{m}']]) / 60,
                  np.array([v for _, _, v in found[f'quality/{m}']]))
              for m in quality.MEASURES if f'quality/{m}' in found}
    baseline = {m: found[f'griffin_lim/{m}'][0][2] for m in series
                if f'griffin_lim/{m}' in found}
    return series, baseline


def draw(logdirs, picture):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(12, 6.5), dpi=80)
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 3).ravel()
    for index, logdir in enumerate(logdirs):
        series, baseline = curves(logdir)
        colour = f'C{index}'
        for axis, measure in zip(axes, quality.MEASURES):
            if measure not in series:
                continue
            axis.plot(*series[measure], 'o-', color=colour, label=logdir)
            if measure in baseline:
                axis.axhline(baseline[measure], color=colour, linestyle='--',
                             label=f'Griffin-Lim ({os.path.basename(logdir)} clips)')
    for axis, measure in zip(axes, quality.MEASURES):
        axis.set_title(TITLES[measure], fontsize=10)
        axis.set_xlabel('training minutes')
        axis.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[-1].axis('off')
    axes[-1].legend(handles, labels, loc='center', fontsize=9)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(picture)), exist_ok=True)
    figure.savefig(picture)
    print(f'Drew {picture}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('logdirs', nargs='+', help="vocoder trainings' logdirs")
    parser.add_argument('--picture', default=os.path.join(ROOT, 'docs', 'vocoder_quality.png'))
    args = parser.parse_args()
    draw(args.logdirs, args.picture)


if __name__ == '__main__':
    main()
