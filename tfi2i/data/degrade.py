"""Pairs made from single images: the degradations of the derived tasks.

Two of PAN's tasks (Li et al., super-resolution and inpainting) train on
pairs made from single images: ``y`` is the image, ``x`` a degraded copy.
The degradations are small pure TensorFlow functions of ``y`` in [-1, 1],
for one image ``[H, W, C]`` or a batch ``[B, H, W, C]``, so the same code
makes the training pairs (in tf.data, after the usual augmentation of the
single image) and the evaluation inputs on full-size images (e.g. Set5 at its
original size, after :func:`modcrop`).

=============  ===============================================================
task           x
=============  ===============================================================
``paired``     read from the data (no degradation; the pix2pix setting)
``superres4x`` :func:`superres_input`: bicubic down by ``sr_factor``
               (antialiased, as MATLAB ``imresize`` / the usual SR benchmark
               protocol), bicubic up back to full size, clipped to [-1, 1]
``inpainting`` :func:`inpainting_input`: a centred ``hole_size`` square set to
               0 (mid-grey in [-1, 1]); the example also carries ``mask``
=============  ===============================================================

Choices: the low-resolution image is kept in float (not rounded to 8 bits as
a saved MATLAB LR PNG would be); the hole's top-left corner is
``((H - hole) // 2, (W - hole) // 2)`` (floor when the margin is odd).
"""

from __future__ import annotations

import tensorflow as tf

from tfi2i.config import ConfigError

__all__ = [
    "TASKS", "DERIVED_TASKS", "superres_input", "inpainting_input", "modcrop", "hole_size", "check_task",
    "make_example",
]

#: Valid ``DataConfig.task`` values.
TASKS = ("paired", "superres4x", "inpainting")
#: The tasks whose pairs are made from single images.
DERIVED_TASKS = ("superres4x", "inpainting")


def _hw(image):
    """(H, W) of ``[..., H, W, C]``: static ints where known, else scalar tensors."""
    static = image.shape[-3:-1]
    dynamic = tf.shape(image)[-3:-1]
    return tuple(static[i] if static[i] is not None else dynamic[i] for i in range(2))


def superres_input(y, factor):
    """The super-resolution input: ``y`` downsampled by ``factor`` and upsampled back.

    Down: ``tf.image.resize(..., "bicubic", antialias=True)`` (a bicubic
    kernel widened by ``factor``, like MATLAB ``imresize``); up:
    ``tf.image.resize(..., "bicubic")`` (Keys a = -0.5, no antialiasing, as
    ``imresize`` when enlarging); then clipped to [-1, 1]. Not XLA-compilable
    (``antialias=True``): run it in tf.data or eagerly.

    Args:
        y: float ``[H, W, C]`` or ``[B, H, W, C]`` in [-1, 1]; H and W
            divisible by ``factor`` (see :func:`modcrop`).
        factor: int >= 1, the scale (4 for ``superres4x``).

    Returns:
        float32, the shape of ``y``, in [-1, 1].

    Raises:
        ValueError: a static H or W not divisible by ``factor``, or ``factor < 1``.
        tf.errors.InvalidArgumentError: the same for dynamic sizes, at run time.
    """
    factor = int(factor)
    if factor < 1:
        raise ValueError(f"superres_input: factor must be >= 1, got {factor}")
    y = tf.convert_to_tensor(y, tf.float32)
    h, w = _hw(y)
    checks = []
    if isinstance(h, int) and isinstance(w, int):
        if h % factor or w % factor:
            raise ValueError(
                f"superres_input: image size {h}x{w} (HxW) is not divisible by the scale {factor}; "
                f"crop it first (modcrop(y, {factor}) gives {h - h % factor}x{w - w % factor})"
            )
    else:
        checks.append(tf.debugging.assert_equal(
            (tf.cast(h, tf.int32) % factor) + (tf.cast(w, tf.int32) % factor), 0,
            message=f"superres_input: image size not divisible by the scale {factor}; use modcrop"))
    with tf.control_dependencies(checks):
        small = tf.image.resize(y, (h // factor, w // factor), method="bicubic", antialias=True)
    up = tf.image.resize(small, (h, w), method="bicubic")
    return tf.clip_by_value(up, -1.0, 1.0)


def inpainting_input(y, hole_size):
    """The inpainting input and hole mask: a centred ``hole_size`` square set to 0.

    Args:
        y: float ``[H, W, C]`` or ``[B, H, W, C]`` in [-1, 1].
        hole_size: int, ``1 <= hole_size <= min(H, W)``: the side of the square.

    Returns:
        ``(x, mask)``: ``x`` float32 like ``y`` with exactly 0 (mid-grey) in the
        hole and ``y`` elsewhere; ``mask`` float32 ``[H, W, 1]`` (``[B, H, W,
        1]`` for a batch), 1 inside the hole, 0 outside. The hole's top-left
        corner is ``((H - hole_size) // 2, (W - hole_size) // 2)``.

    Raises:
        ValueError: ``hole_size < 1`` or larger than a static H or W.
    """
    hole = int(hole_size)
    y = tf.convert_to_tensor(y, tf.float32)
    h, w = _hw(y)
    if hole < 1:
        raise ValueError(f"inpainting_input: hole_size must be >= 1, got {hole}")
    if isinstance(h, int) and isinstance(w, int) and hole > min(h, w):
        raise ValueError(f"inpainting_input: hole_size {hole} is larger than the image ({h}x{w}, HxW)")

    def inside(n):
        start = (n - hole) // 2
        r = tf.range(n)
        return tf.cast((r >= start) & (r < start + hole), tf.float32)

    mask = inside(h)[:, None, None] * inside(w)[None, :, None]  # [H, W, 1]
    if y.shape.rank == 4:
        mask = tf.broadcast_to(mask, tf.concat([tf.shape(y)[:1], tf.shape(mask)], 0))
    x = tf.where(mask > 0.5, tf.zeros_like(y), y)
    return x, mask


def modcrop(y, factor):
    """Crop ``[..., H, W, C]`` to the largest multiple of ``factor`` (top-left kept, as MATLAB ``modcrop``).

    The SR benchmark protocol (e.g. Set5 at its original size) crops the
    high-resolution image this way before :func:`superres_input`.
    """
    h, w = _hw(y)
    return y[..., : h - h % factor, : w - w % factor, :]


def hole_size(data_cfg):
    """``data_cfg.hole_size``, or ``crop_size // 2`` when it is 0 (the shorter side for a (height, width) crop)."""
    return int(data_cfg.hole_size) or min(data_cfg.crop_hw) // 2


def check_task(data_cfg):
    """Check ``task``, ``sr_factor`` and ``hole_size`` of a DataConfig against its crop size.

    Raises:
        ConfigError: an unknown task, ``sr_factor < 1``, a crop size not
            divisible by ``sr_factor`` (superres4x), a hole larger than the crop
            or negative (inpainting); the message says which setting to change.
    """
    task, (crop_h, crop_w) = data_cfg.task, data_cfg.crop_hw
    crop = min(crop_h, crop_w)
    if task not in TASKS:
        raise ConfigError(f"data.task must be one of {', '.join(TASKS)}, got '{task}'")
    if task == "superres4x":
        factor = int(data_cfg.sr_factor)
        if factor < 1:
            raise ConfigError(f"data.sr_factor must be >= 1, got {factor}")
        bad = next((c for c in (crop_h, crop_w) if c % factor), None)
        if bad is not None:
            raise ConfigError(
                f"data.crop_size {data_cfg.crop_size} is not divisible by data.sr_factor {factor}: the "
                f"super-resolution input is the crop downsampled by {factor}; use e.g. "
                f"data.crop_size={bad - bad % factor}"
            )
    if task == "inpainting":
        if int(data_cfg.hole_size) < 0:
            raise ConfigError(f"data.hole_size must be >= 0 (0: crop_size // 2), got {data_cfg.hole_size}")
        if not 1 <= hole_size(data_cfg) <= crop:
            raise ConfigError(f"data.hole_size {hole_size(data_cfg)} must be in 1..data.crop_size ({crop})")


def make_example(y, data_cfg):
    """``{"x", "y"[, "mask"]}`` of a derived task from one augmented image ``y`` in [-1, 1].

    Args:
        y: float32 ``[H, W, C]`` (or ``[B, H, W, C]``) in [-1, 1].
        data_cfg: a :class:`tfi2i.config.DataConfig` with ``task`` in
            :data:`DERIVED_TASKS`.
    """
    if data_cfg.task == "superres4x":
        return {"x": superres_input(y, data_cfg.sr_factor), "y": y}
    if data_cfg.task == "inpainting":
        x, mask = inpainting_input(y, hole_size(data_cfg))
        return {"x": x, "y": y, "mask": mask}
    raise ConfigError(f"make_example: task '{data_cfg.task}' is not one of {', '.join(DERIVED_TASKS)}")
