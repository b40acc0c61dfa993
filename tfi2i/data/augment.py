"""Augmentation of a pair (or of one image, or of photo + label map + instance map) and pyramid levels.

pix2pix "resize_and_crop" (junyanz `get_transform`): both images are resized
to ``load_size x load_size`` with bicubic interpolation (PIL ``BICUBIC``:
antialiased when shrinking, rounded back to uint8), then ONE random crop of
``crop_size`` and ONE random horizontal flip are applied to both, and values
are scaled to [-1, 1]. A single image (the derived tasks of
:mod:`tfi2i.data.degrade`) gets the same jitter (:func:`augment_image`).
Randomness is stateless: the seed of an example is
``(run seed, position in the run)``, so a data stream is a pure function of
the seed and the step, which is what makes resume bit-exact.

Sizes are ``(height, width)`` (an int means a square) and the preprocessing
modes follow pix2pixHD's ``--resize_or_crop`` (:func:`augment_sides`,
:func:`eval_sides`). Label and instance maps (:mod:`tfi2i.data.labels`) get
the same crop and flip as the photo but are resized with nearest neighbour
only, never blended or scaled.
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


#: Valid ``data.resize_or_crop`` values (pix2pixHD ``--resize_or_crop``).
MODES = ("resize_and_crop", "scale_width", "scale_width_and_crop", "none", "crop")
#: Kinds of the tensors :func:`augment_sides` transforms.
SIDE_KINDS = ("rgb", "labels", "instances")


def hw(size):
    """An int (square) or a (height, width) pair -> ``(height, width)`` Python ints."""
    if isinstance(size, (tuple, list)):
        return int(size[0]), int(size[1])
    return int(size), int(size)


def _shape_hw(image):
    """(H, W) of ``[H, W, C]``: static ints where known, else int32 scalar tensors."""
    static, dynamic = image.shape[:2], tf.shape(image)[:2]
    return tuple(static[i] if static[i] is not None else dynamic[i] for i in range(2))


def resize_nearest(ids, size):
    """Nearest-neighbour resize of ``[H, W, C]`` ids to ``size`` (h, w); dtype kept, values never blended.

    ``tf.image.resize(method="nearest")`` (half-pixel centres, as PIL
    ``NEAREST`` which pix2pixHD uses for label and instance maps).
    """
    if ids.shape[0] == size[0] and ids.shape[1] == size[1]:
        return ids
    return tf.image.resize(ids, size, method="nearest")


def _resize(image, kind, size):
    """Resize one side to ``size`` (ints or tensors): rgb bicubic (float 0..255), ids nearest; identity when equal."""
    fn = resize_bicubic if kind == "rgb" else resize_nearest
    if all(isinstance(v, int) for v in size):
        return fn(image, size)
    h, w = _shape_hw(image)
    same = tf.logical_and(tf.equal(h, size[0]), tf.equal(w, size[1]))
    kept = tf.cast(image, tf.float32) if kind == "rgb" else image
    return tf.cond(same, lambda: kept, lambda: fn(image, tf.stack(size)))


def target_size(image_hw, mode, load_size, size_multiple=16):
    """The (h, w) an image of size ``image_hw`` is resized to before cropping; None: not resized.

    ``resize_and_crop``: ``load_size`` (h, w) (None for ``load_size=0``).
    ``scale_width`` / ``scale_width_and_crop`` (pix2pixHD ``__scale_width``):
    width = the width of ``load_size``, height = ``width * H // W`` (floor,
    as ``int(width * H / W)``). ``none`` (pix2pixHD ``__make_power_2``):
    ``round(H / m) * m`` by ``round(W / m) * m`` with ``m = size_multiple``
    and round half to even like Python's ``round``; we also keep at least
    ``m`` (pix2pixHD would produce an empty image). ``crop``: None (cropped
    at the image's own resolution).
    """
    oh, ow = image_hw
    if mode == "resize_and_crop":
        return hw(load_size) if load_size else None
    if mode == "crop":
        return None
    if mode in ("scale_width", "scale_width_and_crop"):
        width = hw(load_size)[1]
        if isinstance(oh, int) and isinstance(ow, int):
            return (width * oh) // ow, width
        return (width * tf.cast(oh, tf.int32)) // tf.cast(ow, tf.int32), tf.constant(width, tf.int32)
    if mode == "none":
        m = int(size_multiple)
        if isinstance(oh, int) and isinstance(ow, int):
            return max(m, round(oh / m) * m), max(m, round(ow / m) * m)

        def rounded(v):
            return tf.maximum(m, tf.cast(tf.round(tf.cast(v, tf.float64) / m), tf.int32) * m)
        return rounded(oh), rounded(ow)
    raise ValueError(f"data.resize_or_crop must be one of {', '.join(MODES)}, got {mode!r}")


def _group(images, kinds):
    """rgb sides stacked into one float tensor (one resize, as pix2pix), id sides kept apart."""
    kinds = tuple(kinds)
    if len(kinds) != len(images) or any(k not in SIDE_KINDS for k in kinds):
        raise ValueError(f"kinds {kinds} must name one of {SIDE_KINDS} per image ({len(images)} images)")
    rgb = [i for i, k in enumerate(kinds) if k == "rgb"]
    groups = []
    if rgb:
        stack = images[rgb[0]] if len(rgb) == 1 else tf.concat([tf.cast(images[i], tf.float32) for i in rgb], -1)
        groups.append(("rgb", stack, [(i, images[i].shape[-1]) for i in rgb]))
    groups += [(k, images[i], [i]) for i, k in enumerate(kinds) if k != "rgb"]
    return groups


def _ungroup(groups, n):
    """Inverse of :func:`_group` after the transform: rgb to [-1, 1], ids int32."""
    out = [None] * n
    for kind, t, idx in groups:
        if kind == "rgb":
            t = to_signed(t)
            if len(idx) == 1:
                out[idx[0][0]] = t
                continue
            start = 0
            for i, channels in idx:  # a stack of several rgb sides: static channel counts
                out[i] = t[..., start:start + channels]
                start += channels
        else:
            out[idx[0]] = tf.cast(t, tf.int32)
    return out


def augment_sides(images, kinds, seed, load_size, crop_size, flip=True, mode="resize_and_crop", size_multiple=16):
    """Training jitter shared by every side of an example: one resize rule, ONE crop, ONE flip.

    pix2pixHD ``--resize_or_crop`` modes (``data/base_dataset.py``
    ``get_transform``), with sizes as (height, width):

    ======================  ==============================================  =========
    mode                    resize                                          crop
    ======================  ==============================================  =========
    resize_and_crop         to ``load_size`` (pix2pix; ``0``: not resized)  random
    scale_width             width to load width, aspect kept                none
    scale_width_and_crop    width to load width, aspect kept                random
    none                    to the nearest multiple of ``size_multiple``    none
    crop                    none (``--resize_or_crop crop``, fineSize)      random
    ======================  ==============================================  =========

    then a random horizontal flip (``flip``). rgb sides are resized bicubic
    (antialiased, as PIL, :func:`resize_bicubic`), ``labels`` and
    ``instances`` sides with nearest neighbour only. The crop offset and the
    flip come from ``stateless_split(seed, 3)`` (top, left, flip), so they are
    identical for every side and a pure function of ``seed``.

    Args:
      images: list of ``[H, W, C]`` tensors of one size: rgb uint8 (or float
        0..255), ids any int dtype ``[H, W, 1]``.
      kinds: one of ``"rgb" | "labels" | "instances"`` per image.
      seed: int ``[2]`` stateless seed.
      load_size, crop_size: int (square) or (height, width).
      flip: random horizontal flip with probability 0.5.
      mode: one of :data:`MODES`.
      size_multiple: the multiple of mode ``none``.

    Returns:
      list like ``images``: rgb float32 in [-1, 1], ids int32 (values unchanged,
      only ones present in the input).
    """
    if mode not in MODES:
        raise ValueError(f"data.resize_or_crop must be one of {', '.join(MODES)}, got {mode!r}")
    groups = _group(list(images), kinds)
    first = groups[0][1]
    ch, cw = hw(crop_size)
    size = target_size(_shape_hw(first), mode, load_size, size_multiple)
    if size is not None:
        groups = [(k, _resize(t, k, size), idx) for k, t, idx in groups]
    else:  # load_size=0: crop at the image's own resolution
        groups = [(k, tf.cast(t, tf.float32) if k == "rgb" else t, idx) for k, t, idx in groups]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    if mode in ("resize_and_crop", "scale_width_and_crop", "crop"):
        if mode == "resize_and_crop" and size is not None:
            limit_h, limit_w = size[0] - ch + 1, size[1] - cw + 1
        else:
            shape = tf.shape(groups[0][1])
            what = {"resize_and_crop": "data.load_size=0 crops without resizing",
                    "crop": "data.resize_or_crop=crop crops without resizing",
                    "scale_width_and_crop": "data.resize_or_crop=scale_width_and_crop: after scaling the width to "
                                            "data.load_size"}[mode]
            check = tf.debugging.Assert(
                tf.logical_and(shape[0] >= ch, shape[1] >= cw),
                [f"tfi2i: an image is smaller than data.crop_size={ch}x{cw} (HxW) ({what}); its size:", shape])
            with tf.control_dependencies([check]):
                limit_h, limit_w = shape[0] - ch + 1, shape[1] - cw + 1
        top = tf.random.stateless_uniform([], seeds[0], 0, limit_h, dtype=tf.int32)
        left = tf.random.stateless_uniform([], seeds[1], 0, limit_w, dtype=tf.int32)
        cropped = []
        for k, t, idx in groups:
            t = t[top : top + ch, left : left + cw, :]
            t.set_shape([ch, cw, t.shape[-1]])
            cropped.append((k, t, idx))
        groups = cropped
    if flip:
        do_flip = tf.random.stateless_uniform([], seeds[2]) < 0.5
        groups = [(k, tf.cond(do_flip, lambda t=t: tf.reverse(t, axis=[1]), lambda t=t: t), idx)
                  for k, t, idx in groups]
    return _ungroup(groups, len(images))


def augment_image(image, seed, load_size, crop_size, flip=True, mode="resize_and_crop", size_multiple=16):
    """pix2pix training jitter of one image, or of a channel stack of images that share it.

    Args:
      image: uint8 (or float 0..255) ``[H, W, C]``.
      seed: int ``[2]`` stateless seed.
      load_size, crop_size: int (square) or (height, width); resize to
        ``load_size`` (bicubic), crop ``crop_size``; ``load_size=0``: no
        resizing, the crop is taken from the image at its own resolution
        (super-resolution, where resizing would change what "high
        resolution" means; every image must be at least ``crop_size``).
      flip: random horizontal flip with probability 0.5.
      mode, size_multiple: see :func:`augment_sides`.

    Returns:
      float32 ``[crop_h, crop_w, C]`` (other modes: see :func:`augment_sides`) in [-1, 1].
    """
    return augment_sides([image], ["rgb"], seed, load_size, crop_size, flip, mode, size_multiple)[0]


def joint_augment(x, y, seed, load_size, crop_size, flip=True):
    """pix2pix training jitter of one rgb pair: :func:`augment_image` of the stacked pair.

    Args:
      x, y: uint8 ``[H, W, Cx]`` / ``[H, W, Cy]`` of the same H, W.
      seed: int ``[2]`` stateless seed.
      load_size, crop_size: resize to ``load_size``, crop ``crop_size`` (int or (h, w)).
      flip: random horizontal flip with probability 0.5.

    Returns:
      (x, y) float32 ``[crop_h, crop_w, C]`` in [-1, 1]; the same crop
      and flip for both (and the same as :func:`augment_image` of ``x`` alone
      under the same seed). Other kinds and modes: :func:`augment_sides`.
    """
    cx = tf.shape(x)[-1]
    pair = tf.concat([tf.cast(x, tf.float32), tf.cast(y, tf.float32)], axis=-1)
    pair = augment_image(pair, seed, load_size, crop_size, flip)
    return pair[..., :cx], pair[..., cx:]


def eval_sides(images, kinds, crop_size, load_size=None, mode="resize_and_crop", size_multiple=16):
    """Evaluation transform of every side of an example: the mode's resize, no random jitter, no flip.

    ``resize_and_crop``: resized straight to ``crop_size`` (pix2pix tests at
    ``load_size = crop_size``); with ``load_size=0`` the centre ``crop_size``
    crop instead. ``scale_width``: the width scaled to the load width, as in
    training. ``scale_width_and_crop``: the same, then the centre
    ``crop_size`` crop (the scale the model was trained at). ``none``: sizes
    rounded to multiples of ``size_multiple``. ``crop``: the centre
    ``crop_size`` crop at the image's own resolution (pix2pixHD's test script
    would crop at random). rgb bicubic, ids nearest.

    Returns:
      list like ``images``: rgb float32 in [-1, 1], ids int32.
    """
    if mode not in MODES:
        raise ValueError(f"data.resize_or_crop must be one of {', '.join(MODES)}, got {mode!r}")
    groups = _group(list(images), kinds)
    ch, cw = hw(crop_size)
    centre = (mode == "resize_and_crop" and load_size == 0) or mode in ("scale_width_and_crop", "crop")
    if mode == "resize_and_crop":
        size = None if load_size == 0 else (ch, cw)
    else:
        size = target_size(_shape_hw(groups[0][1]), mode, load_size, size_multiple)
    if size is not None:
        groups = [(k, _resize(t, k, size), idx) for k, t, idx in groups]
    else:
        groups = [(k, tf.cast(t, tf.float32) if k == "rgb" else t, idx) for k, t, idx in groups]
    if centre:
        out = []
        for k, t, idx in groups:
            shape = tf.shape(t)
            top, left = (shape[0] - ch) // 2, (shape[1] - cw) // 2
            t = t[top : top + ch, left : left + cw, :]
            t.set_shape([ch, cw, t.shape[-1]])
            out.append((k, t, idx))
        groups = out
    return _ungroup(groups, len(images))


def eval_image(image, crop_size, load_size=None, mode="resize_and_crop", size_multiple=16):
    """Evaluation of one image: resize straight to ``crop_size`` (no jitter), scale to [-1, 1].

    ``load_size=0`` (no resizing in training): the centre ``crop_size`` crop
    instead. Other modes: :func:`eval_sides`.
    """
    return eval_sides([image], ["rgb"], crop_size, load_size, mode, size_multiple)[0]


def eval_transform(x, y, crop_size):
    """Evaluation of a pair: :func:`eval_image` of each."""
    return eval_image(x, crop_size), eval_image(y, crop_size)


def downscale(image, factor, kind="rgb"):
    """``image`` ``[H, W, C]`` or ``[B, H, W, C]`` at ``1 / factor`` of its size, ``(H // factor, W // factor)``.

    ``rgb``: the mean of each ``factor x factor`` block (average pooling,
    VALID: a remainder row or column is dropped), which is what an area
    resize by an integer factor computes, as a graph op that also runs under
    XLA; ``labels``: every ``factor``-th pixel (nearest neighbour, ids stay
    ids). The one downscaling of MSG U-Net's input and target pyramids, in
    tf.data (`pyramid_levels`) and in the model (`tfi2i.contract`'s resized
    inputs). ``factor`` 1 returns the image (as a tensor).
    """
    factor = int(factor)
    image = tf.convert_to_tensor(image)
    if factor == 1:
        return image
    single = image.shape.rank == 3
    batch = image[tf.newaxis] if single else image
    if kind == "labels":
        out = batch[:, ::factor, ::factor, :]
        shape = tf.shape(batch)
        out = out[:, : shape[1] // factor, : shape[2] // factor, :]
    else:
        out = tf.nn.avg_pool2d(tf.cast(batch, tf.float32), factor, factor, "VALID")
    return out[0] if single else out


def pyramid_levels(image, levels, kind="rgb"):
    """Per-level downscaled versions of ``image`` ``[H, W, C]``: level k has size ``(H // 2^k, W // 2^k)``.

    Level 0 is the image itself; each coarser level is `downscale` of the
    full image by ``2^k``, as MSG U-Net / PAN feed to their multi-scale inputs
    and discriminators: block means for rgb, nearest neighbour for
    ``labels`` (ids stay ids). Rectangular images keep their aspect ratio.
    """
    return tuple([image] + [downscale(image, 2**k, kind) for k in range(1, levels)])


def add_pyramid(example, levels, kinds=("rgb", "rgb")):
    """tf.data map: adds ``x_levels`` and ``y_levels`` (tuples of ``levels`` tensors) to an example dict.

    ``kinds``: the kinds of x and y (a ``labels`` side is downsampled with nearest neighbour).
    """
    example = dict(example)
    example["x_levels"] = pyramid_levels(example["x"], levels, kinds[0])
    example["y_levels"] = pyramid_levels(example["y"], levels, kinds[1])
    return example
