"""The training step: loss, gradients and one optimizer update, compiled once."""
import tensorflow as tf


def make_train_step(net, optimizer, l2_regularization_strength=None):
    """A ``tf.function`` ``(audio [B, T, 1], gc_ids [B] or None) -> losses`` that updates
    ``net`` in place. ``losses`` has ``loss`` and, with L2, ``l2_loss`` and ``total_loss``;
    ``total_loss`` (or ``loss``) is what was minimized."""

    @tf.function(reduce_retracing=True)
    def train_step(audio, gc_ids=None):
        with tf.GradientTape() as tape:
            loss = net.loss(audio, gc_ids)
            losses = {'loss': loss}
            if l2_regularization_strength:
                losses['l2_loss'] = net.l2_loss()
                losses['total_loss'] = loss + l2_regularization_strength * losses['l2_loss']
            objective = losses.get('total_loss', loss)
        variables = net.trainable_variables
        gradients = tape.gradient(objective, variables)
        # The last layer's residual output feeds nothing (as in the original), so its
        # 'dense' weights have no gradient unless L2 reaches them.
        optimizer.apply_gradients([(g, v) for g, v in zip(gradients, variables)
                                   if g is not None])
        return losses

    return train_step
