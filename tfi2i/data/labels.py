"""Label maps and instance maps: the TF functions the pipeline, the models and the exports share.

Labels are not images (design notes): class ids are read exactly (8- or
16-bit, one channel), resized only with nearest neighbour, never normalised,
and one-hot encoded inside the model (:func:`one_hot`), so that exports take
compact id maps, as pix2pixHD's ``encode_input``. Instance ids (Cityscapes
``*_instanceIds.png``, 16-bit, e.g. ``26001`` = car 1) become pix2pixHD's
boundary map (:func:`instance_edges`, ``models/pix2pixHD_model.py``
``get_edges``). :func:`colorize` renders ids in a data set's official
colours (``data.label_colors``: MSG U-Net's "segmented RGB" Cityscapes input).

All functions are plain TensorFlow ops: usable in ``tf.data`` maps, in a
``tf.function`` and (except the assertion's string formatting, which XLA
keeps on the host) in the training step.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

__all__ = ["one_hot", "instance_edges", "check_ids", "colorize", "PALETTES"]

#: Palettes :func:`colorize` knows (``data.label_colors``).
PALETTES = ("cityscapes",)


def one_hot(ids, num_classes):
    """Class ids ``[..., 1]`` (any int dtype) -> float32 one-hot ``[..., num_classes]``.

    An id outside ``[0, num_classes)`` gives an all-zero vector (``tf.one_hot``);
    use :func:`check_ids` where ids come from users.

    Args:
        ids: int ``[..., 1]``, e.g. ``[B, H, W, 1]`` int32 from the pipeline.
        num_classes: Python int >= 1.

    Returns:
        float32 ``[..., num_classes]`` in {0, 1}.
    """
    ids = tf.convert_to_tensor(ids)
    return tf.one_hot(tf.cast(tf.squeeze(ids, axis=-1), tf.int32), int(num_classes), dtype=tf.float32)


def instance_edges(ids):
    """pix2pixHD's instance boundary map (``get_edges``) of an instance-id map.

    A pixel is an edge (1) when its id differs from its left or right
    neighbour, or from its upper or lower neighbour; otherwise 0. Pixels on
    the image border only compare with the neighbours they have.

    Args:
        ids: any int (or float) dtype, ``[H, W, 1]`` or ``[B, H, W, 1]``
            (more leading dimensions work too: the last three are H, W, C).

    Returns:
        float32 of the same shape, in {0, 1}.
    """
    t = tf.convert_to_tensor(ids)
    dx = tf.not_equal(t[..., :, 1:, :], t[..., :, :-1, :])  # [.., H, W-1, C]: pixel w+1 vs w
    dy = tf.not_equal(t[..., 1:, :, :], t[..., :-1, :, :])  # [.., H-1, W, C]: row h+1 vs h
    rank = t.shape.rank

    def pad(x, axis, before):
        paddings = [[0, 0]] * rank
        paddings[axis] = [1, 0] if before else [0, 1]
        return tf.pad(x, paddings, constant_values=False)

    # dx marks both pixels of each differing horizontal pair; dy both of each vertical pair
    edge = pad(dx, rank - 2, True) | pad(dx, rank - 2, False) | pad(dy, rank - 3, True) | pad(dy, rank - 3, False)
    return tf.cast(edge, tf.float32)


def check_ids(ids, num_classes, name):
    """``ids``, after asserting that every id is in ``[0, num_classes)``.

    Runs as a ``tf.debugging.Assert`` (in eager mode at once, in a graph when
    the returned tensor is computed), so bad ids stop ``tf.data`` with an
    ``InvalidArgumentError`` whose message names ``name`` (a file, a request)
    and the smallest and largest offending values.

    Args:
        ids: int ``[..., 1]`` (any int dtype).
        num_classes: Python int >= 1.
        name: Python ``str`` or ``tf.string`` scalar, named in the message.

    Returns:
        ``ids``, unchanged (the same dtype and shape), computed after the check.
    """
    ids = tf.convert_to_tensor(ids)
    wide = tf.cast(ids, tf.int64)
    bad = tf.logical_or(wide < 0, wide >= int(num_classes))
    big = tf.constant(2**62, tf.int64)
    first_bad = tf.reduce_min(tf.where(bad, wide, big))
    last_bad = tf.reduce_max(tf.where(bad, wide, -big))
    check = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(bad)),
        [f"tfi2i: class id outside [0, data.num_classes={int(num_classes)}) in", name,
         "offending values (min, max):", first_bad, last_bad,
         "- set data.num_classes above the largest id, or remap the ids"],
        summarize=8,
    )
    with tf.control_dependencies([check]):
        return tf.identity(ids)


@functools.lru_cache(maxsize=None)
def palette_lut(palette="cityscapes"):
    """uint8 ``[256, 3]`` numpy table ``id -> RGB`` of a palette (ids without a colour are black).

    ``cityscapes``: :data:`tfi2i.metrics.cityscapes.LABEL_COLORS` for labelIds
    0..33 (the one Cityscapes palette of the package; also what
    :func:`tfi2i.data.tfds_sources.label_colors` uses), black like
    ``unlabeled`` elsewhere. Read-only.
    """
    if palette not in PALETTES:
        raise ValueError(f"unknown label palette {palette!r}; known: {', '.join(PALETTES)}")
    from tfi2i.metrics.cityscapes import LABEL_COLORS  # on use: tfi2i.metrics imports more than this table

    lut = np.zeros((256, 3), np.uint8)
    lut[: len(LABEL_COLORS)] = LABEL_COLORS
    lut.flags.writeable = False
    return lut


def colorize(ids, palette="cityscapes"):
    """Class ids ``[..., 1]`` -> their palette colours, uint8 ``[..., 3]`` (RGB).

    A ``tf.gather`` on a constant table, so it runs in ``tf.data`` maps and in
    a ``tf.function``. Ids outside the palette (for ``cityscapes``: outside
    0..33, e.g. pix2pixHD's 35th class or a negative id) are black, the colour
    of ``unlabeled``. uint8 rather than [-1, 1] so that the result can be
    written as a PNG or compared with ``gtFine_color.png`` as is; the pipeline
    scales it with :func:`tfi2i.data.augment.to_signed`.

    Args:
        ids: any int dtype, ``[H, W, 1]`` or ``[B, H, W, 1]`` (any leading
            dimensions; the last must be 1).
        palette: one of :data:`PALETTES`.

    Returns:
        uint8 ``[..., 3]``: the shape of ``ids`` with 3 channels.
    """
    lut = tf.constant(palette_lut(palette))
    ids = tf.cast(tf.squeeze(tf.convert_to_tensor(ids), axis=-1), tf.int64)
    inside = tf.logical_and(ids >= 0, ids < lut.shape[0])
    return tf.gather(lut, tf.where(inside, ids, tf.zeros_like(ids)))
