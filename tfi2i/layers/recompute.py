"""Recomputation (gradient checkpointing) of conv blocks: activation memory for compute, results unchanged.

`recompute_block` builds a ``Conv -> norm -> activation`` block as a small
functional Keras model whose training call keeps only its *input* for the
backward pass: the intermediate tensors (the conv output batch norm needs,
the normalised tensor the activation needs) are recomputed from the input
when the gradient is taken. With every block of a network wrapped, one
tensor per block stays alive instead of three, at the price of a second
forward pass of each block during the backward pass.

Batch norm in training mode updates its moving statistics as a side effect;
the recomputation must not update them a second time. `frozen_statistics`
(checked by `tfi2i.layers.normalization.TorchBatchNormalization` while the
graph is built) makes the recomputed pass normalise with the same batch
statistics and skip the update, so a recomputed step gives the same weights,
moving statistics and outputs as a plain one, to float rounding (tested).
Layers with randomness (dropout) must not be inside a recomputed block: the
second pass would draw other masks.

Being a functional model, a recomputed block is walked into by
`tfi2i.flops.count_flops` and keeps its sublayers' names.
"""

from __future__ import annotations

import contextlib
import threading

import keras
import tensorflow as tf

_STATE = threading.local()


@contextlib.contextmanager
def frozen_statistics():
    """Inside: batch-norm layers in training mode normalise with batch statistics but do not update moving ones."""
    previous = getattr(_STATE, "frozen", False)
    _STATE.frozen = True
    try:
        yield
    finally:
        _STATE.frozen = previous


def statistics_frozen() -> bool:
    """True inside `frozen_statistics` (read while a graph is traced, not per step)."""
    return getattr(_STATE, "frozen", False)


def recompute(fn, x, variables):
    """``fn(x)`` whose backward pass recomputes ``fn`` from ``x`` instead of keeping its intermediates.

    ``variables``: every variable ``fn`` reads that should get a gradient.
    The recomputation runs under `frozen_statistics`.
    """
    variables = list(variables)

    @tf.custom_gradient
    def inner(x):
        y = fn(x)

        def grad(dy, variables=None):
            # In a graph the recomputation would otherwise depend on x alone, and the executor would run it
            # as soon as x exists, during the forward pass: every block's intermediates would be alive at once
            # again. The control dependency on dy holds it back until this block's backward pass.
            with tf.control_dependencies([dy]):
                x_again = tf.identity(x)
            with frozen_statistics(), tf.GradientTape() as tape:
                tape.watch(x_again)
                again = fn(x_again)
            wanted = list(variables or [])
            grads = tape.gradient(again, [x_again] + wanted, output_gradients=dy)
            return grads[0], grads[1:]

        return y, grad

    return inner(x)


@keras.saving.register_keras_serializable(package="tfi2i")
class RecomputedBlock(keras.Model):
    """A functional block ``inputs -> outputs`` whose training call recomputes its intermediates in the backward pass."""

    def call(self, inputs, training=None, mask=None):
        if not training:
            return super().call(inputs, training=training, mask=mask)
        return recompute(lambda x: super(RecomputedBlock, self).call(x, training=True), inputs,
                         self.trainable_variables)


def recompute_block(layers, channels, name):
    """``layers`` (applied in order) as one `RecomputedBlock` on an input of ``channels`` channels."""
    inp = keras.Input((None, None, channels), name=f"{name}_in")
    h = inp
    for layer in layers:
        h = layer(h)
    return RecomputedBlock(inp, h, name=name)


__all__ = ["RecomputedBlock", "frozen_statistics", "recompute", "recompute_block", "statistics_frozen"]
