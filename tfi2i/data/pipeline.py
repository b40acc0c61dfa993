"""tf.data pipelines: source -> decode -> augment -> (degrade) -> (pyramid) -> batch.

The training stream is a pure function of ``(seed, step)``: epoch ``e`` visits
the examples in the order ``stateless_shuffle(range(n), seed=(seed, e))`` and
the example at position ``p`` of the run is jittered with seed ``(seed, p)``.
Starting at step ``k`` therefore reproduces exactly the batches an
uninterrupted run sees from step ``k`` on, without storing iterator state.

Sources are paired (``load`` gives ``{"x", "y", "name"}``, ``data.task =
"paired"``) or single images (``{"image", "name"}``, ``data.task`` in
``superres4x`` / ``inpainting``): a single image gets the same jitter as a
pair (:func:`~tfi2i.data.augment.augment_image`), then
:func:`~tfi2i.data.degrade.make_example` makes ``x`` (and ``mask``) from it.
The degradations are deterministic, so the stream stays a pure function of
``(seed, step)``.

Batch keys of paired data (``B`` the batch size, ``H, W`` the crop or the
mode's size, :class:`~tfi2i.config.DataConfig`):

* ``x``, ``y``: kind ``rgb`` float32 ``[B, H, W, 3]`` in [-1, 1]; kind
  ``labels`` int32 ``[B, H, W, 1]`` class ids in ``[0, num_classes)``
  (checked; the model one-hot encodes them, :func:`tfi2i.data.labels.one_hot`).
  With ``data.label_colors`` (``x_kind=labels``) ``x`` is instead the colour
  rendering of the augmented ids (:func:`tfi2i.data.labels.colorize`),
  float32 ``[B, H, W, 3]`` in [-1, 1], an ``rgb`` side from then on
  (``DataConfig.x_batch_kind``).
* ``instances`` (with ``data.instances``): float32 ``[B, H, W, 1]`` in {0, 1},
  pix2pixHD's instance boundary map (:func:`tfi2i.data.labels.instance_edges`)
  of the augmented instance ids.
* ``instance_ids`` (with ``data.instance_ids``, which needs ``data.instances``):
  int32 ``[B, H, W, 1]``, the raw instance-id map (e.g. Cityscapes ``26001``),
  resized (nearest), cropped and flipped exactly like the label map, for
  pix2pixHD's feature encoder (per-instance average pooling).
* ``x_levels``, ``y_levels`` (``data.pyramid_levels > 0``): per-level
  :func:`~tfi2i.data.augment.downscale` of the batch's ``x`` / ``y`` by its
  kind (block means for rgb, including a colour-rendered label map; nearest
  for ids); ``name`` (evaluation).
"""

import tensorflow as tf

from tfi2i.data import labels
from tfi2i.data.augment import add_pyramid, augment_image, augment_sides, eval_image, eval_sides, to_signed
from tfi2i.data.degrade import check_task, make_example
from tfi2i.data.images import DataError

AUTOTUNE = tf.data.AUTOTUNE


def _plain(fn):
    """`fn` traced as written, without AutoGraph's conversion: the data functions branch on Python values only
    (tensor conditions go through tf.cond / tf.where), and converting every function they call cost seconds per
    pipeline (~12 s for MSG U-Net's training stream)."""
    return tf.autograph.experimental.do_not_convert(fn)


def steps_per_epoch(num_pairs, batch_size):
    """Full batches per epoch (the last partial batch of an epoch is dropped)."""
    steps = num_pairs // batch_size
    if steps == 0:
        raise ValueError(f"the data set has {num_pairs} pairs, fewer than one batch of {batch_size}")
    return steps


def check_config(data_cfg):
    """The cross-field rules of a DataConfig (each field alone is checked by the DataConfig itself).

    Raises:
        ConfigError: a labels side without ``num_classes``; ``load_size=0`` with a mode other than
            ``resize_and_crop``; ``instance_ids`` without ``instances``; ``label_colors`` without
            ``x_kind=labels``.
    """
    from tfi2i.config import ConfigError

    if "labels" in (data_cfg.x_kind, data_cfg.y_kind) and data_cfg.num_classes < 1:
        raise ConfigError("data.x_kind / data.y_kind = labels needs data.num_classes >= 1 "
                          "(class ids must lie in [0, num_classes))")
    if data_cfg.resize_or_crop not in ("resize_and_crop", "crop") and data_cfg.load_size == 0:
        raise ConfigError(f"data.load_size=0 (crop without resizing) only exists with "
                          f"data.resize_or_crop=resize_and_crop (or crop), not {data_cfg.resize_or_crop}")
    if getattr(data_cfg, "instance_ids", False) and not data_cfg.instances:
        raise ConfigError("data.instance_ids=true adds the raw instance-id maps to the batch, but there are no "
                          "instance maps: set data.instances (two_folders: the sub-folder of instance-id PNGs, e.g. "
                          "inst; pix2pixhd / cityscapes: any non-empty value, e.g. inst) or data.instance_ids=false")
    if getattr(data_cfg, "label_colors", "") and data_cfg.x_kind != "labels":
        raise ConfigError(f"data.label_colors={data_cfg.label_colors} renders x's label ids in colour, but "
                          f"data.x_kind={data_cfg.x_kind}: set data.x_kind=labels (and data.num_classes) to read "
                          "label-id maps, or data.label_colors= (empty) for images that are already in colour")


def _load_spec(source):
    """The element spec of ``source.load`` (traced once, nothing read), kept on the source: tracing the
    decoders takes about a second, and a source is checked again by every pipeline built from it."""
    spec = getattr(source, "_tfi2i_load_spec", None)
    if spec is None:
        spec = tf.data.Dataset.range(1).map(_plain(source.load)).element_spec
        try:
            source._tfi2i_load_spec = spec
        except AttributeError:  # a source with __slots__: traced each time
            pass
    return spec


def check_source(source, data_cfg):
    """Check that the source's kind suits ``data_cfg.task``; returns whether it gives single images.

    Traces ``source.load`` once (nothing is read) to see its keys: ``{"image", ...}``
    is a single-image source, ``{"x", "y", ...}`` a paired one.

    Raises:
        DataError: single images with ``task="paired"``, or pairs with a derived task.
    """
    check_config(data_cfg)
    keys = _load_spec(source)
    single = "image" in keys
    if not single:
        for side in ("x", "y"):
            kind = getattr(data_cfg, f"{side}_kind")
            spec = keys[side]
            is_ids = spec.dtype.is_integer and spec.dtype != tf.uint8
            if (kind == "labels") != is_ids:
                got = "class ids" if is_ids else "rgb images"
                raise DataError(f"data.{side}_kind={kind}, but the source {_describe(source)} gives {got} for {side}; "
                                f"label maps are read from 1-channel id PNGs in the two_folders, pix2pixhd and "
                                f"cityscapes layouts: set data.{side}_kind to match the data")
        if data_cfg.instances and "instances" not in keys:
            raise DataError(f"data.instances={data_cfg.instances!r}, but the source {_describe(source)} has no instance "
                            "maps (they come from that sub-folder of the two-folder layout, or from <split>_inst/ / "
                            "*_gtFine_instanceIds.png of the pix2pixhd / cityscapes layouts)")
    if single and data_cfg.task == "paired":
        raise DataError("the source holds single images, not (x, y) pairs: set data.task=superres4x or "
                        "data.task=inpainting, or point data.path to paired data")
    if not single and data_cfg.task != "paired":
        raise DataError(f"data.task={data_cfg.task} makes its pairs from single images, but the source holds "
                        "(x, y) pairs: point data.path to a folder of single images (or a tfds: image data set)")
    if data_cfg.load_size == 0:
        if not single:
            raise DataError("data.load_size=0 (crop without resizing) is for single-image tasks; paired data "
                            "uses pix2pix's resize-and-crop: set data.load_size >= data.crop_size")
        ch, cw = data_cfg.crop_hw
        small = [(f, hw) for f, hw in zip(getattr(source, "files", ()), getattr(source, "sizes", None) or ())
                 if hw[0] < ch or hw[1] < cw]
        if small:
            f, hw = small[0]
            raise DataError(f"{f}: {hw[1]}x{hw[0]} is smaller than data.crop_size={data_cfg.crop_size} "
                            f"({len(small)} such image(s)); data.load_size=0 crops at the image's own size: "
                            "remove them, lower data.crop_size or set data.load_size")
    return single


def _describe(source):
    try:
        return source.describe()
    except Exception:  # noqa: BLE001 - only for a message
        return type(source).__name__


def _finish(example, data_cfg):
    if not data_cfg.pyramid_levels:
        return example
    return add_pyramid(example, data_cfg.pyramid_levels, (_x_batch_kind(data_cfg), data_cfg.y_kind))


def _x_batch_kind(data_cfg):
    """The kind of the batch's x (`DataConfig.x_batch_kind`): rgb once `label_colors` has coloured the ids."""
    return getattr(data_cfg, "x_batch_kind", data_cfg.x_kind)  # duck-typed configs without the field: x_kind


def _x(ids_or_image, data_cfg):
    """The batch's x from the augmented x side: as it is, or (``data.label_colors``) the ids' colours in [-1, 1].

    Colouring after the augmentation keeps the ids exact through the nearest
    resize, crop and flip, so every pixel is a palette colour.
    """
    palette = getattr(data_cfg, "label_colors", "")
    if not palette:
        return ids_or_image
    return to_signed(labels.colorize(ids_or_image, palette))


def _sides(record, data_cfg):
    """(tensors, kinds) of a paired record: x, y and (when present) the instance ids.

    A labels side is checked against ``num_classes`` here too (naming the
    example), so that sources without a check of their own cannot feed bad ids.
    """
    kinds = [data_cfg.x_kind, data_cfg.y_kind]
    images = [record["x"], record["y"]]
    for i, kind in enumerate(kinds):
        if kind == "labels":
            images[i] = labels.check_ids(images[i], data_cfg.num_classes,
                                         tf.strings.join(["example ", record.get("name", "?")]))
    if "instances" in record and data_cfg.instances:
        images.append(record["instances"])
        kinds.append("instances")
    return images, kinds


def _paired(out, kinds, data_cfg):
    """The example dict of augmented sides: x (coloured with ``data.label_colors``), y and (with instances) the
    boundary map [and the raw ids]."""
    example = {"x": _x(out[0], data_cfg), "y": out[1]}
    if len(kinds) > 2:
        example["instances"] = labels.instance_edges(out[2])
        if getattr(data_cfg, "instance_ids", False):
            example["instance_ids"] = tf.cast(out[2], tf.int32)
    return example


def train_example(record, seed, data_cfg):
    """One training example from a source record: jitter, then (derived tasks) degradation.

    Args:
      record: a source's ``load`` output: ``{"x", "y", ...}`` or ``{"image", ...}``, uint8.
      seed: int ``[2]`` stateless seed of this example.
      data_cfg: `tfi2i.config.DataConfig`.

    Returns:
      ``{"x", "y"[, "mask"][, "instances"[, "instance_ids"]][, "x_levels", "y_levels"]}``: rgb
      float32 in [-1, 1] (also x with ``data.label_colors``), labels int32 ids, instances float32 edges,
      instance_ids int32 (module docstring).
    """
    mode, multiple = data_cfg.resize_or_crop, data_cfg.size_multiple
    if "image" in record:
        y = augment_image(record["image"], seed, data_cfg.load_size, data_cfg.crop_size, data_cfg.flip,
                          mode, multiple)
        out = make_example(y, data_cfg)
    else:
        images, kinds = _sides(record, data_cfg)
        out = _paired(augment_sides(images, kinds, seed, data_cfg.load_size, data_cfg.crop_size, data_cfg.flip,
                                    mode, multiple), kinds, data_cfg)
    return _finish(out, data_cfg)


def eval_example(record, data_cfg):
    """One evaluation example: the mode's resize without jitter (`augment.eval_sides`), then (derived tasks)
    degradation; keeps ``name``."""
    mode, multiple = data_cfg.resize_or_crop, data_cfg.size_multiple
    if "image" in record:
        out = make_example(eval_image(record["image"], data_cfg.crop_size, data_cfg.load_size, mode, multiple),
                           data_cfg)
    else:
        images, kinds = _sides(record, data_cfg)
        out = _paired(eval_sides(images, kinds, data_cfg.crop_size, data_cfg.load_size, mode, multiple), kinds,
                      data_cfg)
    return _finish({**out, "name": record["name"]}, data_cfg)


def train_dataset(source, data_cfg, seed, start_step=0):
    """Infinite training stream of batches ``{"x", "y"[, "mask"][, "instances"[, "instance_ids"]][, "x_levels",
    "y_levels"]}``.

    Args:
      source: a `tfi2i.data.sources.PairedSource` (``data_cfg.task="paired"``)
        or `SingleSource` (derived tasks).
      data_cfg: `tfi2i.config.DataConfig` (task, load/crop size, flip, batch, pyramid).
      seed: run seed.
      start_step: first step to produce (resume).
    """
    check_task(data_cfg)
    check_source(source, data_cfg)
    n = len(source)
    batch = data_cfg.batch_size
    spe = steps_per_epoch(n, batch)
    start_epoch, offset = divmod(int(start_step), spe)

    def example(position, index):
        return train_example(source.load(index), tf.stack([tf.cast(seed, tf.int64), position]), data_cfg)

    def epoch_dataset(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.cast(seed, tf.int64), epoch])
        )[: spe * batch]
        first = tf.where(epoch == start_epoch, offset * batch, 0)
        positions = epoch * n + tf.range(first, spe * batch, dtype=tf.int64)
        ds = tf.data.Dataset.from_tensor_slices((positions, order[first:]))
        return ds.map(_plain(example), num_parallel_calls=AUTOTUNE).batch(batch, drop_remainder=True)

    ds = tf.data.Dataset.range(start_epoch, 2**62).flat_map(epoch_dataset)
    return ds.prefetch(AUTOTUNE), spe


def eval_dataset(source, data_cfg, batch_size=None, limit=None):
    """Finite evaluation batches ``{"x", "y"[, "mask"][, "instances"[, "instance_ids"]], "name"}``: no jitter,
    original order."""
    check_task(data_cfg)
    check_source(source, data_cfg)
    n = len(source) if limit is None else min(limit, len(source))
    ds = tf.data.Dataset.range(n).map(_plain(lambda index: eval_example(source.load(index), data_cfg)),
                                      num_parallel_calls=AUTOTUNE)
    return ds.batch(batch_size or data_cfg.batch_size).prefetch(AUTOTUNE)
