"""The compiled generation loop alone, by batch size: where a batch's samples cost.

    python bench/generation_batch.py [--chunk 1000] [--repeats 3]

The default network with a 32-channel speaker embedding (random weights: speed does not
depend on them), in one process, warm: the time of one step of the loop for 1, 2, 4, 8 and
16 rows on one thread, then 8 rows and 1 row on each of two threads at once (how
generate.py splits a batch over two cores). Also what one row's step multiplies, so a
step's time reads as arithmetic and weight bandwidth (each thread reads every weight once
per step).
"""
import argparse
import concurrent.futures
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ['CUDA_VISIBLE_DEVICES'] = ''  # the CPU, whatever the user's setting

from wavenet import load_tensorflow  # noqa: E402

tf = load_tensorflow()

# isort: split
from wavenet import generation  # noqa: E402
from wavenet.params import NetworkDescription, build_model  # noqa: E402


def step_seconds(net, groups, chunk, repeats):
    """Seconds per step of the loop with ``groups`` (row counts), each on its own thread."""
    loop = generation._fast_loop(net)
    temperature = tf.constant(1.0, tf.float64)
    states = [generation._RowGroup(net, slice(0, rows), rows,
                                   net.embed_global_condition(list(range(rows))), None)
              for rows in groups]
    inputs = [(tf.fill([rows, chunk], -1),
               tf.random.stateless_uniform([rows, chunk], [1, rows], dtype=tf.float64))
              for rows in groups]

    def run(index):
        forced, noise = inputs[index]
        states[index].run(loop, forced, noise, temperature, None, None)

    with concurrent.futures.ThreadPoolExecutor(len(groups)) as pool:
        list(pool.map(run, range(len(groups))))  # compiles
        began = time.perf_counter()
        for _ in range(repeats):
            list(pool.map(run, range(len(groups))))
    return (time.perf_counter() - began) / repeats / chunk


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--chunk', type=int, default=1000, help='steps per compiled call')
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    description = NetworkDescription.load(os.path.join(ROOT, 'wavenet_params.json'))
    net = build_model(description.with_speakers(32, 16))
    weights = sum(int(tf.size(w)) for w in net.weights if 'embedding' not in w.path)
    print(f'default network + speakers: {weights / 1e6:.2f} M weights, about '
          f'{weights / 1e6:.2f} M multiply-adds per row and step '
          f'({4 * weights / 1e6:.1f} MB of float32 weights read per step)')
    print(f'{"rows per thread":>22} {"µs/step":>9} {"samples/s":>10} '
          f'{"GFLOP/s":>8} {"weights GB/s":>13}')
    for groups in ([1], [2], [4], [8], [16], [1, 1], [8, 8]):
        seconds = step_seconds(net, groups, args.chunk, args.repeats)
        rows = sum(groups)
        print(f'{" + ".join(map(str, groups)):>22} {seconds * 1e6:9.0f} {rows / seconds:10.0f} '
              f'{2 * weights * rows / seconds / 1e9:8.1f} '
              f'{4 * weights * len(groups) / seconds / 1e9:13.1f}')


if __name__ == '__main__':
    main()
