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
"""

import tensorflow as tf

from tfi2i.data.augment import add_pyramid, augment_image, eval_image, joint_augment
from tfi2i.data.degrade import check_task, make_example
from tfi2i.data.images import DataError

AUTOTUNE = tf.data.AUTOTUNE


def steps_per_epoch(num_pairs, batch_size):
    """Full batches per epoch (the last partial batch of an epoch is dropped)."""
    steps = num_pairs // batch_size
    if steps == 0:
        raise ValueError(f"the data set has {num_pairs} pairs, fewer than one batch of {batch_size}")
    return steps


def check_source(source, data_cfg):
    """Check that the source's kind suits ``data_cfg.task``; returns whether it gives single images.

    Traces ``source.load`` once (nothing is read) to see its keys: ``{"image", ...}``
    is a single-image source, ``{"x", "y", ...}`` a paired one.

    Raises:
        DataError: single images with ``task="paired"``, or pairs with a derived task.
    """
    keys = tf.data.Dataset.range(1).map(source.load).element_spec
    single = "image" in keys
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
        small = [(f, hw) for f, hw in zip(getattr(source, "files", ()), getattr(source, "sizes", None) or ())
                 if min(hw) < data_cfg.crop_size]
        if small:
            f, hw = small[0]
            raise DataError(f"{f}: {hw[1]}x{hw[0]} is smaller than data.crop_size={data_cfg.crop_size} "
                            f"({len(small)} such image(s)); data.load_size=0 crops at the image's own size: "
                            "remove them, lower data.crop_size or set data.load_size")
    return single


def _finish(example, data_cfg):
    return add_pyramid(example, data_cfg.pyramid_levels) if data_cfg.pyramid_levels else example


def train_example(record, seed, data_cfg):
    """One training example from a source record: jitter, then (derived tasks) degradation.

    Args:
      record: a source's ``load`` output: ``{"x", "y", ...}`` or ``{"image", ...}``, uint8.
      seed: int ``[2]`` stateless seed of this example.
      data_cfg: `tfi2i.config.DataConfig`.

    Returns:
      ``{"x", "y"[, "mask"][, "x_levels", "y_levels"]}``, float32 in [-1, 1].
    """
    if "image" in record:
        y = augment_image(record["image"], seed, data_cfg.load_size, data_cfg.crop_size, data_cfg.flip)
        out = make_example(y, data_cfg)
    else:
        x, y = joint_augment(record["x"], record["y"], seed, data_cfg.load_size, data_cfg.crop_size, data_cfg.flip)
        out = {"x": x, "y": y}
    return _finish(out, data_cfg)


def eval_example(record, data_cfg):
    """One evaluation example: resize to ``crop_size`` (no jitter), then (derived tasks) degradation; keeps ``name``."""
    if "image" in record:
        out = make_example(eval_image(record["image"], data_cfg.crop_size, data_cfg.load_size), data_cfg)
    else:
        out = {"x": eval_image(record["x"], data_cfg.crop_size), "y": eval_image(record["y"], data_cfg.crop_size)}
    return _finish({**out, "name": record["name"]}, data_cfg)


def train_dataset(source, data_cfg, seed, start_step=0):
    """Infinite training stream of batches ``{"x", "y"[, "mask"][, "x_levels", "y_levels"]}``.

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
        return ds.map(example, num_parallel_calls=AUTOTUNE).batch(batch, drop_remainder=True)

    ds = tf.data.Dataset.range(start_epoch, 2**62).flat_map(epoch_dataset)
    return ds.prefetch(AUTOTUNE), spe


def eval_dataset(source, data_cfg, batch_size=None, limit=None):
    """Finite evaluation batches ``{"x", "y"[, "mask"], "name"}``: no jitter, original order."""
    check_task(data_cfg)
    check_source(source, data_cfg)
    n = len(source) if limit is None else min(limit, len(source))
    ds = tf.data.Dataset.range(n).map(lambda index: eval_example(source.load(index), data_cfg),
                                      num_parallel_calls=AUTOTUNE)
    return ds.batch(batch_size or data_cfg.batch_size).prefetch(AUTOTUNE)
