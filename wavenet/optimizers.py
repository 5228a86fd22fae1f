"""The optimizers of ``--optimizer``, taking the original TF 1 toolkit's steps.

Keras' SGD (momentum) and Adam are TF 1's ``MomentumOptimizer`` and ``AdamOptimizer`` step
for step. Its RMSprop is not: it starts the mean square of the gradients at 0 where TF 1's
``RMSPropOptimizer`` starts it at 1, so its first steps are up to ``1 / sqrt(1 - rho)``
(about 3) times larger and a network trained the original's way takes another path.
"""
import keras


class TF1RMSprop(keras.optimizers.RMSprop):
    """Keras' RMSprop (whose update already divides by ``sqrt(mean_square + epsilon)`` as
    TF 1's does) with TF 1's start: the mean square at 1. Its variables are those of
    Keras' RMSprop, so checkpoints of either restore into the other."""

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        for mean_square in self._velocities:
            mean_square.assign(keras.ops.ones_like(mean_square))


def _adam(learning_rate, momentum=None):
    del momentum  # Adam keeps its own moment estimates.
    return keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-4)


def _sgd(learning_rate, momentum):
    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)


def _rmsprop(learning_rate, momentum):
    return TF1RMSprop(learning_rate=learning_rate, momentum=momentum, epsilon=1e-5)


# The original's factory: name -> (learning_rate, momentum) -> optimizer.
optimizer_factory = {'adam': _adam, 'sgd': _sgd, 'rmsprop': _rmsprop}
