"""tf.data pipelines: source -> decode -> augment -> (pyramid) -> batch.

The training stream is a pure function of ``(seed, step)``: epoch ``e`` visits
the pairs in the order ``stateless_shuffle(range(n), seed=(seed, e))`` and the
pair at position ``p`` of the run is jittered with seed ``(seed, p)``. Starting
at step ``k`` therefore reproduces exactly the batches an uninterrupted run
sees from step ``k`` on, without storing iterator state.
"""

import tensorflow as tf

from tfi2i.data.augment import add_pyramid, eval_transform, joint_augment

AUTOTUNE = tf.data.AUTOTUNE


def steps_per_epoch(num_pairs, batch_size):
    """Full batches per epoch (the last partial batch of an epoch is dropped)."""
    steps = num_pairs // batch_size
    if steps == 0:
        raise ValueError(f"the data set has {num_pairs} pairs, fewer than one batch of {batch_size}")
    return steps


def train_dataset(source, data_cfg, seed, start_step=0):
    """Infinite training stream of batches ``{"x", "y"[, "x_levels", "y_levels"]}``.

    Args:
      source: a `tfi2i.data.sources.PairedSource`.
      data_cfg: `tfi2i.config.DataConfig` (load/crop size, flip, batch, pyramid).
      seed: run seed.
      start_step: first step to produce (resume).
    """
    n = len(source)
    batch = data_cfg.batch_size
    spe = steps_per_epoch(n, batch)
    start_epoch, offset = divmod(int(start_step), spe)

    def example(position, index):
        pair = source.load(index)
        x, y = joint_augment(
            pair["x"], pair["y"], tf.stack([tf.cast(seed, tf.int64), position]),
            data_cfg.load_size, data_cfg.crop_size, data_cfg.flip,
        )
        out = {"x": x, "y": y}
        return add_pyramid(out, data_cfg.pyramid_levels) if data_cfg.pyramid_levels else out

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
    """Finite evaluation batches ``{"x", "y", "name"}``: no jitter, original order."""
    n = len(source) if limit is None else min(limit, len(source))

    def example(index):
        pair = source.load(index)
        x, y = eval_transform(pair["x"], pair["y"], data_cfg.crop_size)
        out = {"x": x, "y": y, "name": pair["name"]}
        return add_pyramid(out, data_cfg.pyramid_levels) if data_cfg.pyramid_levels else out

    ds = tf.data.Dataset.range(n).map(example, num_parallel_calls=AUTOTUNE)
    return ds.batch(batch_size or data_cfg.batch_size).prefetch(AUTOTUNE)
