"""Joint augmentation, pyramid levels and the resumable training stream."""

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfi2i.config import DataConfig
from tfi2i.data import augment, pipeline


class ArraySource:
    """A minimal in-memory PairedSource: pair i is (x_i, y_i) uint8."""

    def __init__(self, n=5, size=16, seed=0):
        rng = np.random.default_rng(seed)
        self.x = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        self.y = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        self.names = tuple(f"p{i}" for i in range(n))

    def __len__(self):
        return len(self.names)

    def load(self, index):
        return {"x": tf.gather(self.x, index), "y": tf.gather(self.y, index), "name": tf.gather(self.names, index)}


def test_joint_augment_same_crop_and_flip_for_both():
    img = tf.constant(np.random.default_rng(1).integers(0, 256, (32, 32, 3)), tf.uint8)
    for s in range(8):
        x, y = augment.joint_augment(img, img, tf.constant([3, s], tf.int64), load_size=36, crop_size=32)
        np.testing.assert_array_equal(x.numpy(), y.numpy())
        assert x.shape == (32, 32, 3) and float(tf.reduce_min(x)) >= -1 and float(tf.reduce_max(x)) <= 1


def test_joint_augment_deterministic_under_seed_and_varies_between_seeds():
    x0 = tf.constant(np.random.default_rng(2).integers(0, 256, (32, 32, 3)), tf.uint8)
    outs = [augment.joint_augment(x0, x0, tf.constant([7, s], tf.int64), 40, 32)[0].numpy() for s in range(6)]
    again = augment.joint_augment(x0, x0, tf.constant([7, 0], tf.int64), 40, 32)[0].numpy()
    np.testing.assert_array_equal(outs[0], again)
    assert any(not np.array_equal(outs[0], o) for o in outs[1:])


def test_flip_and_crop_are_applied():
    # a horizontal ramp: flipped crops run right-to-left
    ramp = tf.constant(np.tile(np.arange(32, dtype=np.uint8)[None, :, None] * 8, (32, 1, 3)))
    directions = set()
    for s in range(16):
        x, _ = augment.joint_augment(ramp, ramp, tf.constant([0, s], tf.int64), 32, 32, flip=True)
        directions.add(bool(x[0, 0, 0] > x[0, -1, 0]))
    assert directions == {True, False}


def test_bicubic_resize_matches_pil_like_the_reference():
    # PIL resamples in 8-bit fixed point; on a photo-like (smooth) image the two agree to 1-2 grey levels
    rng = np.random.default_rng(3)
    img = cv2.GaussianBlur((rng.random((64, 64, 3)) * 255).astype(np.float32), (0, 0), 2)
    img = np.clip(img * 3 - 200, 0, 255).astype(np.uint8)
    ours = augment.resize_bicubic(tf.constant(img), (72, 72)).numpy()
    pil = np.asarray(Image.fromarray(img).resize((72, 72), Image.BICUBIC)).astype(np.float32)
    assert np.abs(ours - pil).mean() < 0.5 and np.abs(ours - pil).max() <= 2


def test_scale_to_signed_range():
    np.testing.assert_allclose(augment.to_signed(tf.constant([0, 255], tf.uint8)), [-1.0, 1.0])
    np.testing.assert_array_equal(augment.to_uint8(tf.constant([-1.0, 1.0, 0.0])), [0, 255, 128])


def test_eval_transform_has_no_jitter():
    x = tf.constant(np.random.default_rng(4).integers(0, 256, (16, 16, 3)), tf.uint8)
    a, b = augment.eval_transform(x, x, 16)
    np.testing.assert_allclose(a.numpy(), augment.to_signed(x).numpy())


def test_pyramid_levels_shapes_and_content():
    img = tf.ones([16, 8, 3]) * 0.5
    levels = augment.pyramid_levels(img, 3)
    assert [tuple(level.shape) for level in levels] == [(16, 8, 3), (8, 4, 3), (4, 2, 3)]
    np.testing.assert_allclose(levels[2].numpy(), 0.5)
    ex = augment.add_pyramid({"x": img, "y": img}, 2)
    assert len(ex["x_levels"]) == 2 and len(ex["y_levels"]) == 2


def _take(ds, k):
    return [{key: v.numpy() for key, v in b.items()} for b in ds.take(k)]


def test_train_stream_is_resumable_exactly():
    src = ArraySource(n=5, size=16)
    cfg = DataConfig(load_size=18, crop_size=16, batch_size=2)
    full, spe = pipeline.train_dataset(src, cfg, seed=11)
    assert spe == 2  # 5 pairs, batch 2: the partial batch is dropped
    ref = _take(full, 7)
    for start in (1, 2, 3, 5):
        resumed, _ = pipeline.train_dataset(src, cfg, seed=11, start_step=start)
        for a, b in zip(ref[start:], _take(resumed, 7 - start)):
            np.testing.assert_array_equal(a["x"], b["x"])
            np.testing.assert_array_equal(a["y"], b["y"])


def test_train_stream_reshuffles_each_epoch_and_depends_on_seed():
    src = ArraySource(n=6, size=8)
    cfg = DataConfig(load_size=8, crop_size=8, batch_size=6, flip=False)
    batches = _take(pipeline.train_dataset(src, cfg, seed=1)[0], 3)
    # without jitter an epoch is a permutation of the pairs
    orders = [[int(np.argmax([np.array_equal(b["x"][i], augment.to_signed(src.x[j]).numpy()) for j in range(6)]))
               for i in range(6)] for b in batches]
    assert all(sorted(o) == list(range(6)) for o in orders)
    assert len({tuple(o) for o in orders}) > 1
    other = _take(pipeline.train_dataset(src, cfg, seed=2)[0], 1)
    assert not np.array_equal(other[0]["x"], batches[0]["x"])


def test_train_stream_with_pyramid():
    src = ArraySource(n=2, size=16)
    cfg = DataConfig(load_size=16, crop_size=16, batch_size=2, pyramid_levels=3)
    batch = next(iter(pipeline.train_dataset(src, cfg, seed=0)[0]))
    assert [tuple(t.shape) for t in batch["y_levels"]] == [(2, 16, 16, 3), (2, 8, 8, 3), (2, 4, 4, 3)]


def test_too_few_pairs_for_a_batch():
    with pytest.raises(ValueError, match="fewer than one batch"):
        pipeline.steps_per_epoch(1, 4)


def test_eval_dataset_keeps_order_and_names():
    src = ArraySource(n=3, size=8)
    batches = list(pipeline.eval_dataset(src, DataConfig(crop_size=8, batch_size=2)))
    names = [n.decode() for b in batches for n in b["name"].numpy()]
    assert names == ["p0", "p1", "p2"]
