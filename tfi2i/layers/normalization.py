"""Normalization layers matching the PyTorch reference implementations.

* ``batch``: ``nn.BatchNorm2d`` (momentum 0.1, eps 1e-5, affine) == Keras
  ``BatchNormalization(momentum=0.9, epsilon=1e-5)``. ``synchronized=True``
  makes the statistics global under ``tf.distribute`` (a no-op on one device),
  so a multi-replica run sees the same batch statistics as one device.
* ``instance``: ``nn.InstanceNorm2d`` (eps 1e-5, affine=False, no running
  stats) == ``GroupNormalization(groups=-1, epsilon=1e-5, center=False,
  scale=False)``; this replaces ``tfa.layers.InstanceNormalization``.
* ``none``: identity.
"""

import keras

from tfi2i.layers.init import gamma_init

NORMS = ("batch", "instance", "none")


def use_bias_for(norm: str) -> bool:
    """Reference rule: convs followed by batch norm carry no bias (BN's offset replaces it)."""
    _check(norm)
    return norm != "batch"


def make_norm(norm: str, name: str, synchronized: bool = True):
    """Returns a fresh normalization layer of kind `norm` (see module docstring)."""
    _check(norm)
    if norm == "batch":
        return keras.layers.BatchNormalization(
            momentum=0.9, epsilon=1e-5, gamma_initializer=gamma_init(), synchronized=synchronized, name=name
        )
    if norm == "instance":
        return keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, center=False, scale=False, name=name)
    return keras.layers.Identity(name=name)


def _check(norm):
    if norm not in NORMS:
        raise ValueError(f"unknown norm '{norm}'; valid: {NORMS}")
