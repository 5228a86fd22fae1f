"""An exponential moving average of a network's weights (``train.py --ema_decay``).

Averaged weights sample better than the raw ones of the last step, whose noise they
smooth out; training keeps the average in its checkpoints beside the weights, and
generation uses it when a checkpoint holds one.
"""
import contextlib

import tensorflow as tf


def warmed_decay(decay, updates):
    """The decay of the ``updates``-th update (from 0): ``decay``, but at most
    ``(1 + updates) / (10 + updates)``, TensorFlow's ``ExponentialMovingAverage`` warm-up.
    Without it the average of a short training would hold on to the random start for
    thousands of steps (0.999 still keeps a third of it after 1000)."""
    return tf.minimum(decay, (1.0 + updates) / (10.0 + updates))


class WeightAverage(tf.Module):
    """``average = d * average + (1 - d) * weight`` for every trainable weight of a network,
    after every training step, with ``d = warmed_decay(decay, updates so far)``.

    Saved in a ``tf.train.Checkpoint`` as ``average``: one variable per weight, in the
    order of ``net.trainable_variables`` (which the network description fixes), and the
    count of updates. Created under a ``tf.distribute`` strategy's scope it is mirrored
    like the weights, and every replica updates its copy with the same values."""

    def __init__(self, net, decay=0.0):
        super().__init__(name='weight_average')
        self.decay = float(decay)
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name='updates')
        self.averages = [tf.Variable(weight, trainable=False, name=_name(weight))
                         for weight in net.trainable_variables]

    def update(self, net):
        """One step of the average towards ``net``'s current weights."""
        decay = warmed_decay(self.decay, tf.cast(self.updates, tf.float32))
        for average, weight in zip(self.averages, net.trainable_variables):
            average.assign(decay * average + (1.0 - decay) * weight)
        self.updates.assign_add(1)

    def reset(self, net):
        """Starts the average again from ``net``'s weights (when resuming from a checkpoint
        that holds none)."""
        for average, weight in zip(self.averages, net.trainable_variables):
            average.assign(weight)
        self.updates.assign(0)

    def copy_to(self, net):
        """Puts the averaged weights into ``net``."""
        for average, weight in zip(self.averages, net.trainable_variables):
            weight.assign(average)


@contextlib.contextmanager
def averaged_weights(net, average):
    """Within the block ``net`` holds ``average``'s weights (``None``: its own), and its
    own again afterwards, as a training's samples are drawn between steps."""
    if average is None:
        yield
        return
    trained = [tf.identity(weight) for weight in net.trainable_variables]
    average.copy_to(net)
    try:
        yield
    finally:
        for weight, value in zip(net.trainable_variables, trained):
            weight.assign(value)


def holds_average(variable_names):
    """Whether a checkpoint with these variable names holds a weight average."""
    return any(name.startswith('average/') for name in variable_names)


def _name(weight):
    return 'average_' + weight.name.split(':')[0].replace('/', '_')
