"""Training throughput: this toolkit's step vs. the original's formulation, side by side.

Default ``wavenet_params.json``, batch 1, 16000 predicted samples per step (plus the
receptive field), random audio, Adam. The reference runs the same weights through the
original TF 1 graph's structure: ``time_to_batch`` + ``conv1d`` for every dilated
convolution, separate filter and gate convolutions, and one skip convolution per layer
summed with ``add_n``. Each formulation runs in its own process, so its peak RSS is its own.

    python bench/train_step.py [--steps 10] [--samples 16000]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')


def reference_loss(net, audio):
    """The original's graph, op for op, on ``net``'s weights."""
    import tensorflow as tf

    from wavenet import batch_to_time, mu_law_encode, time_to_batch

    def causal_conv(value, filter_, dilation):
        if dilation > 1:
            restored = batch_to_time(
                tf.nn.conv1d(time_to_batch(value, dilation), filter_, 1, 'VALID'), dilation)
        else:
            restored = tf.nn.conv1d(value, filter_, 1, 'VALID')
        out_width = tf.shape(value)[1] - (filter_.shape[0] - 1) * dilation
        return restored[:, :out_width]

    q = net.quantization_channels
    codes = mu_law_encode(audio[..., 0], q)
    network_input = tf.one_hot(codes, q)[:, :-1]
    output_width = tf.shape(network_input)[1] - net.receptive_field + 1
    current = causal_conv(network_input, net.causal_layer.kernel, 1)
    skips = []
    for block in net.dilated_stack:
        conv_filter = causal_conv(current, block.filter, block.dilation) + block.filter_bias
        conv_gate = causal_conv(current, block.gate, block.dilation) + block.gate_bias
        out = tf.tanh(conv_filter) * tf.sigmoid(conv_gate)
        transformed = tf.nn.conv1d(out, block.dense, 1, 'SAME') + block.dense_bias
        skips.append(tf.nn.conv1d(out[:, -output_width:], block.skip, 1, 'SAME')
                     + block.skip_bias)
        current = current[:, -tf.shape(transformed)[1]:] + transformed
    post = net.postprocessing
    hidden = tf.nn.conv1d(tf.nn.relu(tf.add_n(skips)), post.postprocess1, 1, 'SAME')
    logits = tf.nn.conv1d(tf.nn.relu(hidden + post.postprocess1_bias), post.postprocess2, 1,
                          'SAME') + post.postprocess2_bias
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=codes[:, net.receptive_field:], logits=logits))


def measure(formulation, steps, samples):
    """Runs in a child process: prints one JSON line with the figures."""
    import numpy as np
    import tensorflow as tf

    from wavenet import optimizer_factory
    from wavenet.params import NetworkDescription, build_model
    from wavenet.training import make_train_step

    tf.random.set_seed(0)
    net = build_model(NetworkDescription.load(os.path.join(ROOT, 'wavenet_params.json')))
    optimizer = optimizer_factory['adam'](learning_rate=1e-3, momentum=0.9)
    audio = tf.constant(np.random.RandomState(0).uniform(
        -1, 1, (1, net.receptive_field + samples, 1)).astype(np.float32))
    if formulation == 'toolkit':
        step = make_train_step(net, optimizer)
    else:
        @tf.function
        def step(audio, gc_ids=None):
            with tf.GradientTape() as tape:
                loss = reference_loss(net, audio)
            gradients = tape.gradient(loss, net.trainable_variables)
            optimizer.apply_gradients([(g, v) for g, v in zip(gradients, net.trainable_variables)
                                       if g is not None])
            return {'loss': loss}
    losses_before = float(net.loss(audio)), float(reference_loss(net, audio))
    step(audio)  # trace and warm up
    step(audio)
    start = time.perf_counter()
    for _ in range(steps):
        float(step(audio)['loss'])
    seconds = (time.perf_counter() - start) / steps
    print(json.dumps({'samples_per_s': samples / seconds, 'sec_per_step': seconds,
                      'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      'loss_before': losses_before}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--samples', type=int, default=16000)
    parser.add_argument('--only', choices=['toolkit', 'reference'], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        return measure(args.only, args.steps, args.samples)

    figures = {}
    for formulation in ('toolkit', 'reference'):
        out = subprocess.run([sys.executable, __file__, '--only', formulation,
                              '--steps', str(args.steps), '--samples', str(args.samples)],
                             check=True, capture_output=True, text=True).stdout
        figures[formulation] = json.loads(out.strip().splitlines()[-1])
    toolkit, reference = figures['toolkit'], figures['reference']
    print(f'default network, batch 1, {args.samples} predicted samples/step, '
          f'{args.steps} timed steps, {os.cpu_count()} CPU cores')
    for name, f in figures.items():
        print(f'  {name:9s}  {f["samples_per_s"]:8.0f} samples/s  '
              f'{f["sec_per_step"]:.3f} s/step  peak RSS {f["peak_rss_mb"]:.0f} MB')
    ratio = toolkit['samples_per_s'] / reference['samples_per_s']
    print(f'  speed-up toolkit / reference: {ratio:.2f}x')
    print('  loss on the same weights, toolkit vs reference: {:.6f} vs {:.6f}'.format(
        *toolkit['loss_before']))


if __name__ == '__main__':
    main()
