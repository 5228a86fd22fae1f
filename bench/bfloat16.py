"""Would bfloat16 weights make generation faster on this CPU? The products of one sample.

At batch 1 a generated sample reads every weight of the network once, so weights stored in
bfloat16 (half the bytes) could only help if the matrix-vector products ran on them as
bfloat16. This times a loop with the products of one sample of the default network
(``wavenet_params.json``: per dilated layer filter and gate over two taps, the 1x1 residual
and the skip projection; then the two output layers), its weights stored in float32 and in
bfloat16 (activations cast to bfloat16 for each product, results taken back to float32),
compiled by XLA as ``generate.py`` compiles its loop and run by TensorFlow's own kernels
without XLA. It then says whether XLA's optimized HLO keeps the products in bfloat16 or
converts the weights to float32 first (in which case they cannot read fewer bytes).

    python bench/bfloat16.py [--samples 4000] [--repeats 3]
"""
import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def product_shapes(params):
    """``[(inputs, outputs)]`` of every weight matrix a sample multiplies, in order."""
    residual, dilation = params['residual_channels'], params['dilation_channels']
    skip, width = params['skip_channels'], params['quantization_channels']
    per_layer = [(params['filter_width'] * residual, 2 * dilation), (dilation, residual),
                 (dilation, skip)]
    return per_layer * len(params['dilations']) + [(skip, skip), (skip, width)]


def sample_loop(shapes, dtype, samples, jit):
    """A compiled loop of ``samples`` steps, each every product of ``shapes`` in turn."""
    rng = np.random.default_rng(0)
    weights = [tf.constant(rng.standard_normal(shape).astype(np.float32) / np.sqrt(shape[0]),
                           dtype) for shape in shapes]

    @tf.function(jit_compile=jit)
    def run(x):
        def step(i, x):
            total = tf.zeros([1], tf.float32)
            for weight in weights:
                width = weight.shape[0]
                vector = tf.tile(x, [1, -(-width // x.shape[1])])[:, :width]
                product = tf.cast(tf.matmul(tf.cast(vector, dtype), weight), tf.float32)
                total += tf.reduce_mean(tf.tanh(product), axis=1)
            return i + 1, x + 1e-3 * total[:, tf.newaxis]
        return tf.while_loop(lambda i, _: i < samples, step, (0, x))[1]
    return run


def time_loop(run, samples, repeats):
    x = tf.ones([1, 64], tf.float32)
    run(x).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(x).numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times) / samples * 1e6


def converts_weights(run, shapes):
    """Whether XLA's optimized HLO converts a bfloat16 weight parameter to float32."""
    hlo = run.experimental_get_compiler_ir(tf.ones([1, 64], tf.float32))(stage='optimized_hlo')
    rows, columns = shapes[-2]
    return any(f'f32[{rows},{columns}]' in line and 'convert' in line
               for line in hlo.splitlines())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--samples', type=int, default=4000)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    with open(os.path.join(ROOT, 'wavenet_params.json')) as f:
        shapes = product_shapes(json.load(f))
    weights = sum(rows * columns for rows, columns in shapes)
    print(f'TensorFlow {tf.__version__}; one sample of wavenet_params.json: {len(shapes)} '
          f'products, {weights / 1e6:.2f} M weights; medians of {args.repeats} runs of '
          f'{args.samples} samples, microseconds per sample')
    print(f'{"":22s}{"float32":>10s}{"bfloat16":>10s}{"float32 / bfloat16":>20s}')
    for name, jit in (('XLA (as generate.py)', True), ('TensorFlow kernels', False)):
        figures = [time_loop(sample_loop(shapes, dtype, args.samples, jit), args.samples,
                             args.repeats) for dtype in (tf.float32, tf.bfloat16)]
        print(f'{name:22s}{figures[0]:10.1f}{figures[1]:10.1f}{figures[0] / figures[1]:19.2f}×')
    run = sample_loop(shapes, tf.bfloat16, 1, True)
    if converts_weights(run, shapes):
        print("XLA's optimized HLO converts the bfloat16 weights to float32 before its dot "
              'products: they are read as float32.')
    else:
        print("XLA's optimized HLO keeps the bfloat16 weights in its dot products.")


if __name__ == '__main__':
    sys.exit(main())
