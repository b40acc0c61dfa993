"""Normalization layers matching the PyTorch reference implementations.

* ``batch``: ``nn.BatchNorm2d`` (momentum 0.1, eps 1e-5, affine) ==
  `TorchBatchNormalization` ``(momentum=0.9, epsilon=1e-5)``: Keras'
  ``BatchNormalization`` except that the moving variance is updated with the
  *unbiased* batch variance (``n / (n - 1)`` times the biased one that
  normalises the batch), as PyTorch's ``running_var`` is. Same variables and
  names as Keras' layer, so older checkpoints load. ``synchronized=True``
  makes the statistics global under ``tf.distribute`` (a no-op on one device),
  so a multi-replica run sees the same batch statistics as one device (``n``
  is then the global count). Inside `tfi2i.layers.recompute.frozen_statistics`
  (a recomputed forward pass) it normalises the same way but leaves the moving
  statistics alone.
* ``instance``: ``nn.InstanceNorm2d`` (eps 1e-5, affine=False, no running
  stats) == ``GroupNormalization(groups=-1, epsilon=1e-5, center=False,
  scale=False)``; this replaces ``tfa.layers.InstanceNormalization``.
* ``none``: identity.
"""

import keras
import tensorflow as tf
from keras import ops

from tfi2i.layers.init import gamma_init
from tfi2i.layers.recompute import statistics_frozen

NORMS = ("batch", "instance", "none")


def use_bias_for(norm: str) -> bool:
    """Reference rule: convs followed by batch norm carry no bias (BN's offset replaces it)."""
    _check(norm)
    return norm != "batch"


def make_norm(norm: str, name: str, synchronized: bool = True):
    """Returns a fresh normalization layer of kind `norm` (see module docstring)."""
    _check(norm)
    if norm == "batch":
        return TorchBatchNormalization(
            momentum=0.9, epsilon=1e-5, gamma_initializer=gamma_init(), synchronized=synchronized, name=name
        )
    if norm == "instance":
        return keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, center=False, scale=False, name=name)
    return keras.layers.Identity(name=name)


@keras.saving.register_keras_serializable(package="tfi2i")
class TorchBatchNormalization(keras.layers.BatchNormalization):
    """``BatchNormalization`` whose moving variance follows PyTorch's ``running_var`` (unbiased batch variance).

    In training the batch is normalised with the biased variance (as both
    frameworks do) and ``moving_variance = momentum * moving_variance + (1 -
    momentum) * var * n / (n - 1)``, ``n`` the number of values per channel
    (over replicas when ``synchronized``). Renorm and masks fall back to
    Keras' behaviour. Reference: ``torch.nn.BatchNorm2d`` (torch/nn/modules/batchnorm.py).
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or self.renorm or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        inputs = ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        mean, variance = self._moments(inputs, None)
        count = ops.cast(ops.size(inputs), inputs.dtype) / ops.cast(ops.size(mean), inputs.dtype)
        if self.synchronized:
            ctx = tf.distribute.get_replica_context()
            if ctx is not None and ctx.num_replicas_in_sync > 1:
                count = ctx.all_reduce(tf.distribute.ReduceOp.SUM, count)
        unbiased = variance * (count / ops.maximum(count - 1.0, 1.0))
        if not statistics_frozen():  # a recomputed pass (tfi2i.layers.recompute) leaves them to the first one
            moving_mean = ops.cast(self.moving_mean, inputs.dtype)
            moving_variance = ops.cast(self.moving_variance, inputs.dtype)
            self.moving_mean.assign(moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(moving_variance * self.momentum + unbiased * (1.0 - self.momentum))
        outputs = ops.batch_normalization(
            x=inputs,
            mean=mean,
            variance=variance,
            axis=self.axis,
            offset=ops.cast(self.beta, inputs.dtype) if self.center else None,
            scale=ops.cast(self.gamma, inputs.dtype) if self.scale else None,
            epsilon=self.epsilon,
        )
        return ops.cast(outputs, self.compute_dtype)


def _check(norm):
    if norm not in NORMS:
        raise ValueError(f"unknown norm '{norm}'; valid: {NORMS}")
