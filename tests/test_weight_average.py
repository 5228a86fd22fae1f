"""The exponential moving average of the weights (train.py --ema_decay): a NumPy recurrence
over the weights of every step, on one device and on every replica; kept in checkpoints
and resumed; read by generation unless --ema=false."""

import numpy as np
import pytest
import soundfile
import tensorflow as tf
from helpers import build_under, global_batch, mirrored, run_generate

from wavenet.averaging import WeightAverage, averaged_weights
from wavenet.checkpoints import restore_model
from wavenet.params import NetworkDescription, build_model
from wavenet.training import make_train_step

DECAY = 0.6


def numpy_average(weights_after_each_step, decay):
    """The average after each step, from the weights before the first and after each."""
    average = weights_after_each_step[0]
    for n, weights in enumerate(weights_after_each_step[1:]):
        d = min(decay, (1 + n) / (10 + n))
        average = d * average + (1 - d) * weights
    return average


@pytest.mark.parametrize('replicated', [False, True], ids=['one device', 'mirrored'])
def test_the_average_is_a_recurrence_over_the_weights_of_every_step(replicated):
    strategy = mirrored() if replicated else tf.distribute.get_strategy()
    net, optimizer = build_under(strategy)
    with strategy.scope():
        average = WeightAverage(net, DECAY)
    batch = global_batch()
    if replicated:
        batches = iter(strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensors(batch).repeat()))
    step = make_train_step(net, optimizer, strategy=strategy, average=average)
    recorded = [[w.numpy() for w in net.trainable_variables]]
    for _ in range(12):  # past the warm-up, where the decay reaches DECAY
        step(*(next(batches) if replicated else batch))
        recorded.append([w.numpy() for w in net.trainable_variables])
    assert int(average.updates.numpy()) == 12
    lagging = 0
    for i, variable in enumerate(average.averages):
        expected = numpy_average(np.array([weights[i] for weights in recorded]), DECAY)
        lagging += not np.allclose(expected, recorded[-1][i])
        for copy in strategy.experimental_local_results(variable):
            np.testing.assert_allclose(copy.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert lagging > len(average.averages) // 2  # it lags the weights that train


def test_samples_are_drawn_from_the_average_and_the_weights_come_back():
    net, optimizer = build_under(tf.distribute.get_strategy())
    average = WeightAverage(net, DECAY)
    make_train_step(net, optimizer, average=average)(*global_batch())
    own = [w.numpy() for w in net.trainable_variables]
    with averaged_weights(net, average):
        for weight, averaged in zip(net.trainable_variables, average.averages):
            np.testing.assert_array_equal(weight.numpy(), averaged.numpy())
    for weight, value in zip(net.trainable_variables, own):
        np.testing.assert_array_equal(weight.numpy(), value)


def saved(prefix, name):
    return tf.train.load_checkpoint(prefix).get_tensor(name + '/.ATTRIBUTES/VARIABLE_VALUE')


def test_the_average_is_kept_resumed_and_read_by_generation(train_in_process, corpus,  # noqa: F811
                                                           tmp_path):
    logdir = tmp_path / 'logdir'
    flags = [f'--logdir={logdir}', '--checkpoint_every=1000']
    # Without an average first: one starts from the restored weights when it is asked for,
    # then continues from the saved one.
    assert train_in_process(corpus, *flags, '--num_steps=2').returncode == 0
    started = train_in_process(corpus, *flags, '--num_steps=4', f'--ema_decay={DECAY}')
    assert 'The checkpoint holds no weight average' in started.stdout
    resumed = train_in_process(corpus, *flags, '--num_steps=6', f'--ema_decay={DECAY}')
    assert resumed.returncode == 0 and 'holds no weight average' not in resumed.stdout
    prefix = str(logdir / 'model.ckpt-5')
    assert saved(prefix, 'average/updates') == 4

    net = build_model(NetworkDescription.beside(str(logdir)))
    assert restore_model(net, prefix)
    for i, weight in enumerate(net.trainable_variables):
        np.testing.assert_array_equal(weight.numpy(), saved(prefix, f'average/averages/{i}'))
    assert not restore_model(net, prefix, averaged=False)
    assert not np.array_equal(net.trainable_variables[0].numpy(),
                              saved(prefix, 'average/averages/0'))

    wavs = {}
    for ema in ('true', 'false'):
        wavs[ema] = tmp_path / f'ema_{ema}.wav'
        result = run_generate(logdir, '--samples=4000', '--seed=3', f'--ema={ema}',
                              f'--wav_out_path={wavs[ema]}', cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert ('Using the average of the weights' in result.stdout) == (ema == 'true')
    # The same seed through other weights draws other samples. After six steps the two
    # sets of weights are close, and a draw differs only where their distributions split
    # the loop's uniform differently (a few in a hundred), hence thousands of samples.
    assert not np.array_equal(soundfile.read(wavs['true'])[0], soundfile.read(wavs['false'])[0])


@pytest.mark.parametrize('decay', ['1', '-0.1', 'nan'])
def test_a_decay_outside_0_to_1_is_a_one_line_error(train_in_process, corpus,  # noqa: F811
                                                    decay):
    result = train_in_process(corpus, f'--ema_decay={decay}')
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f'train.py: error: argument --ema_decay: must be at least 0 and below 1, got '
        f'{float(decay)}')
