"""Input checks shared by the metric modules (a leaf module: it imports no other metric).

:func:`check_image_batch` (NumPy) and :func:`prepare_pair` (TensorFlow) turn
integer images, wrong ranks and mismatched shapes into clear errors; see the
conventions in :mod:`tfi2i.metrics.image`.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["FLOAT_HINT", "check_image_batch", "prepare_pair"]

FLOAT_HINT = (
    "expected floating-point images on the [0, 1] scale (convert with tfi2i.metrics.from_uint8 or from_minus1_1)"
)


def check_image_batch(x, name: str, rank: int | None = 4):
    """NumPy counterpart of :func:`prepare_pair`: float ``[B, H, W, C]`` (any rank with ``rank=None``)
    or a clear error; returns the array."""
    import numpy as np

    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{name}: got dtype {arr.dtype}; {FLOAT_HINT}")
    if rank is not None and arr.ndim != rank:
        raise ValueError(f"{name}: images must have shape [B, H, W, C], got {arr.shape}")
    return arr


def prepare_pair(a, b, name: str, dtype=tf.float32) -> tuple[tf.Tensor, tf.Tensor]:
    """Both images as ``dtype`` ``[B, H, W, C]`` tensors of one shape, or a clear error."""
    a = tf.convert_to_tensor(a)
    b = tf.convert_to_tensor(b)
    for t, which in ((a, "a"), (b, "b")):
        if not t.dtype.is_floating:
            raise TypeError(f"{name}: {which} has dtype {t.dtype.name}; {FLOAT_HINT}")
        if t.shape.rank is not None and t.shape.rank != 4:
            raise ValueError(
                f"{name}: {which} must have shape [B, H, W, C], got {t.shape}"
            )
    a = tf.cast(a, dtype)
    b = tf.cast(b, dtype)
    if a.shape.is_fully_defined() and b.shape.is_fully_defined() and a.shape != b.shape:
        raise ValueError(f"{name}: shapes differ: {a.shape} vs {b.shape}")
    return a, b
