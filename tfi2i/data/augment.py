"""Augmentation of a pair (or of one image) and pyramid levels, as tf.data maps.

pix2pix "resize_and_crop" (junyanz `get_transform`): both images are resized
to ``load_size x load_size`` with bicubic interpolation (PIL ``BICUBIC``:
antialiased when shrinking, rounded back to uint8), then ONE random crop of
``crop_size`` and ONE random horizontal flip are applied to both, and values
are scaled to [-1, 1]. A single image (the derived tasks of
:mod:`tfi2i.data.degrade`) gets the same jitter (:func:`augment_image`).
Randomness is stateless: the seed of an example is
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


def augment_image(image, seed, load_size, crop_size, flip=True):
    """pix2pix training jitter of one image, or of a channel stack of images that share it.

    Args:
      image: uint8 (or float 0..255) ``[H, W, C]``.
      seed: int ``[2]`` stateless seed.
      load_size, crop_size: resize to ``load_size``^2 (bicubic), crop ``crop_size``^2;
        ``load_size=0``: no resizing, the crop is taken from the image at its
        own resolution (super-resolution, where resizing would change what
        "high resolution" means; every image must be at least ``crop_size``).
      flip: random horizontal flip with probability 0.5.

    Returns:
      float32 ``[crop_size, crop_size, C]`` in [-1, 1].
    """
    if load_size:
        image = resize_bicubic(image, (load_size, load_size))
        limit_h = limit_w = load_size - crop_size + 1
    else:
        image = tf.cast(image, tf.float32)
        shape = tf.shape(image)
        check = tf.debugging.assert_greater_equal(
            tf.minimum(shape[0], shape[1]), crop_size,
            message=f"an image is smaller than data.crop_size={crop_size} (data.load_size=0 crops without resizing)")
        with tf.control_dependencies([check]):
            limit_h, limit_w = shape[0] - crop_size + 1, shape[1] - crop_size + 1
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    top = tf.random.stateless_uniform([], seeds[0], 0, limit_h, dtype=tf.int32)
    left = tf.random.stateless_uniform([], seeds[1], 0, limit_w, dtype=tf.int32)
    image = image[top : top + crop_size, left : left + crop_size, :]
    if flip:
        do_flip = tf.random.stateless_uniform([], seeds[2]) < 0.5
        image = tf.cond(do_flip, lambda: tf.reverse(image, axis=[1]), lambda: image)
    return to_signed(image)


def joint_augment(x, y, seed, load_size, crop_size, flip=True):
    """pix2pix training jitter of one pair: :func:`augment_image` of the stacked pair.

    Args:
      x, y: uint8 ``[H, W, Cx]`` / ``[H, W, Cy]`` of the same H, W.
      seed: int ``[2]`` stateless seed.
      load_size, crop_size: resize to ``load_size``^2, crop ``crop_size``^2.
      flip: random horizontal flip with probability 0.5.

    Returns:
      (x, y) float32 ``[crop_size, crop_size, C]`` in [-1, 1]; the same crop
      and flip for both (and the same as :func:`augment_image` of ``x`` alone
      under the same seed).
    """
    cx = tf.shape(x)[-1]
    pair = tf.concat([tf.cast(x, tf.float32), tf.cast(y, tf.float32)], axis=-1)
    pair = augment_image(pair, seed, load_size, crop_size, flip)
    return pair[..., :cx], pair[..., cx:]


def eval_image(image, crop_size, load_size=None):
    """Evaluation of one image: resize straight to ``crop_size``^2 (no jitter), scale to [-1, 1].

    ``load_size=0`` (no resizing in training): the centre ``crop_size``^2 crop instead.
    """
    if load_size == 0:
        shape = tf.shape(image)
        top, left = (shape[0] - crop_size) // 2, (shape[1] - crop_size) // 2
        image = tf.cast(image, tf.float32)[top : top + crop_size, left : left + crop_size, :]
        image.set_shape([crop_size, crop_size, None])
        return to_signed(image)
    return to_signed(resize_bicubic(image, (crop_size, crop_size)))


def eval_transform(x, y, crop_size):
    """Evaluation of a pair: :func:`eval_image` of each."""
    return eval_image(x, crop_size), eval_image(y, crop_size)


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
