"""Would bfloat16 weights make generation faster on this CPU? The products of one sample.

At batch 1 a generated sample reads every weight of the network once, so weights stored in
bfloat16 (half the bytes) could only help if the matrix-vector products ran on them as
bfloat16. This times a loop with the products of one sample of the default network
(``wavenet_params.json``: the causal layer, per dilated layer filter and gate over two taps
and the 1x1 residual, every layer's skip output as one product, the two output layers),
its weights stored in float32 and in
bfloat16 (activations cast to bfloat16 for each product, results taken back to float32),
compiled by XLA as ``generate.py`` compiles its loop and run by TensorFlow's own kernels
without XLA. Only the products, not the network: no gates, no conditioning, no drawing,
and each product's input is made from the last one's output so that they run in turn.
It then counts the weight shapes that XLA's optimized HLO converts to float32 arrays
before the loop's products (weights that are then read as float32, not bfloat16).

    python bench/bfloat16.py [--samples 4000] [--repeats 3]
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from wavenet.cli import positive  # noqa: E402
from wavenet.params import NetworkDescription  # noqa: E402


def product_shapes(description):
    """``[(inputs, outputs)]`` of every weight matrix a sample multiplies, in the order
    the network multiplies them: the causal layer over its taps of one-hot codes, each
    dilated layer's filter and gate over two taps and its 1x1 residual, the skip outputs
    of every layer as one product (as the network computes them), the two output layers."""
    d = description
    residual, dilation = d.residual_channels, d.dilation_channels
    skip, width = d.skip_channels, d.quantization_channels
    layers, taps = len(d.dilations), d.filter_width
    return ([(taps * width, residual)]
            + [(taps * residual, 2 * dilation), (dilation, residual)] * layers
            + [(layers * dilation, skip), (skip, skip), (skip, width)])


def _resized(vector, width):
    """``vector`` [1, n] repeated or cut to [1, width]."""
    return tf.tile(vector, [1, -(-width // vector.shape[1])])[:, :width]


def sample_loop(shapes, dtype, samples, jit):
    """A compiled loop of ``samples`` steps, each every product of ``shapes`` in turn,
    each product's input made from the one before's output, so they run one after
    another as the network's do."""
    rng = np.random.default_rng(0)
    weights = [tf.constant(rng.standard_normal(shape).astype(np.float32) / np.sqrt(shape[0]),
                           dtype) for shape in shapes]

    @tf.function(jit_compile=jit)
    def run(x):
        def step(i, x):
            vector = x
            for weight in weights:
                product = tf.matmul(tf.cast(_resized(vector, weight.shape[0]), dtype), weight)
                vector = tf.tanh(tf.cast(product, tf.float32))
            return i + 1, _resized(vector, x.shape[1])
        return tf.while_loop(lambda i, _: i < samples, step, (0, x))[1]
    return run


def first_input(shapes):
    return tf.fill([1, shapes[0][0]], 0.01)


def time_loop(run, shapes, samples, repeats):
    run(first_input(shapes)).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(first_input(shapes)).numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times) / samples * 1e6


def weights_made_float32(run, shapes):
    """How many of the weight shapes XLA's optimized HLO of ``run`` materializes as float32
    arrays outside any fused computation: bfloat16 weights converted before the products,
    which then read float32 bytes."""
    hlo = run.experimental_get_compiler_ir(first_input(shapes))(stage='optimized_hlo')
    unfused, inside_fusion = [], False
    for line in hlo.splitlines():
        if line.endswith('{') and not line.startswith(' '):
            # XLA names the computations it fuses into one kernel fused_* or wrapped_*.
            inside_fusion = line.startswith(('%fused', '%wrapped'))
        elif not inside_fusion:
            unfused.append(line)
    converted = {(rows, columns) for rows, columns in set(shapes)
                 if any(f'= f32[{rows},{columns}]' in line for line in unfused)}
    return len(converted), len(set(shapes))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--samples', type=positive(int), default=4000)
    parser.add_argument('--repeats', type=positive(int), default=3)
    args = parser.parse_args()
    shapes = product_shapes(NetworkDescription.load(os.path.join(ROOT, 'wavenet_params.json')))
    weights = sum(rows * columns for rows, columns in shapes)
    print(f'TensorFlow {tf.__version__}; one sample of wavenet_params.json: {len(shapes)} '
          f'products, {weights / 1e6:.2f} M weights; medians of {args.repeats} runs of '
          f'{args.samples} samples, microseconds per sample')
    print(f'{"":22s}{"float32":>10s}{"bfloat16":>10s}{"float32 / bfloat16":>20s}')
    loops = {}
    for name, jit in (('XLA (as generate.py)', True), ('TensorFlow kernels', False)):
        loops[jit] = [sample_loop(shapes, dtype, args.samples, jit)
                      for dtype in (tf.float32, tf.bfloat16)]
        figures = [time_loop(run, shapes, args.samples, args.repeats) for run in loops[jit]]
        print(f'{name:22s}{figures[0]:10.1f}{figures[1]:10.1f}{figures[0] / figures[1]:19.2f}×')
    converted, distinct = weights_made_float32(loops[True][1], shapes)
    print(f"XLA's optimized HLO of the bfloat16 loop makes float32 arrays of {converted} of the "
          f'{distinct} weight shapes outside its fused computations (converted before the '
          'products, which then read float32)')


if __name__ == '__main__':
    sys.exit(main())
