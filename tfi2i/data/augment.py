"""Joint augmentation of a pair and pyramid levels, as tf.data maps.

pix2pix "resize_and_crop" (junyanz `get_transform`): both images are resized
to ``load_size x load_size`` with bicubic interpolation (PIL ``BICUBIC``:
antialiased when shrinking, rounded back to uint8), then ONE random crop of
``crop_size`` and ONE random horizontal flip are applied to both, and values
are scaled to [-1, 1]. Randomness is stateless: the seed of an example is
``(run seed, position in the run)``, so a data stream is a pure function of
the seed and the step, which is what makes resume bit-exact.
"""

import tensorflow as tf


def to_signed(image):
    """uint8 (or float 0..255) -> float32 in [-1, 1]."""
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def to_uint8(image):
    """float in [-1, 1] -> uint8 (rounded, clipped)."""
    return tf.cast(tf.clip_by_value(tf.round((tf.cast(image, tf.float32) + 1.0) * 127.5), 0, 255), tf.uint8)


def resize_bicubic(image, size):
    """Bicubic resize of ``[H, W, C]`` (uint8 or float 0..255) to ``size`` (h, w), rounded like PIL's uint8 output."""
    image = tf.cast(image, tf.float32)
    if image.shape[0] == size[0] and image.shape[1] == size[1]:
        return image
    out = tf.image.resize(image, size, method="bicubic", antialias=True)
    return tf.clip_by_value(tf.round(out), 0.0, 255.0)


def joint_augment(x, y, seed, load_size, crop_size, flip=True):
    """pix2pix training jitter of one pair.

    Args:
      x, y: uint8 ``[H, W, Cx]`` / ``[H, W, Cy]`` of the same H, W.
      seed: int ``[2]`` stateless seed.
      load_size, crop_size: resize to ``load_size``^2, crop ``crop_size``^2.
      flip: random horizontal flip with probability 0.5.

    Returns:
      (x, y) float32 ``[crop_size, crop_size, C]`` in [-1, 1].
    """
    cx = tf.shape(x)[-1]
    pair = tf.concat([tf.cast(x, tf.float32), tf.cast(y, tf.float32)], axis=-1)
    pair = resize_bicubic(pair, (load_size, load_size))
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    limit = load_size - crop_size + 1
    top = tf.random.stateless_uniform([], seeds[0], 0, limit, dtype=tf.int32)
    left = tf.random.stateless_uniform([], seeds[1], 0, limit, dtype=tf.int32)
    pair = pair[top : top + crop_size, left : left + crop_size, :]
    if flip:
        do_flip = tf.random.stateless_uniform([], seeds[2]) < 0.5
        pair = tf.cond(do_flip, lambda: tf.reverse(pair, axis=[1]), lambda: pair)
    pair = to_signed(pair)
    return pair[..., :cx], pair[..., cx:]


def eval_transform(x, y, crop_size):
    """Evaluation: resize straight to ``crop_size``^2 (no jitter), scale to [-1, 1]."""
    return (
        to_signed(resize_bicubic(x, (crop_size, crop_size))),
        to_signed(resize_bicubic(y, (crop_size, crop_size))),
    )


def pyramid_levels(image, levels):
    """Per-level resized versions of ``image`` ``[H, W, C]``: level k has size ``H / 2^k``.

    Level 0 is the image itself; each coarser level is an area (box-filter)
    downsampling of the full image, as MSG U-Net / PAN feed to their
    multi-scale inputs and discriminators.
    """
    out = [image]
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    for k in range(1, levels):
        out.append(tf.image.resize(image, (h // 2**k, w // 2**k), method="area"))
    return tuple(out)


def add_pyramid(example, levels):
    """tf.data map: adds ``x_levels`` and ``y_levels`` (tuples of ``levels`` tensors) to an example dict."""
    example = dict(example)
    example["x_levels"] = pyramid_levels(example["x"], levels)
    example["y_levels"] = pyramid_levels(example["y"], levels)
    return example
