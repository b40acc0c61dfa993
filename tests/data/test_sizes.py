"""(height, width) sizes, pix2pixHD preprocessing modes, and one crop/flip for every side of an example."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfi2i import config as C
from tfi2i.config import ConfigError, DataConfig
from tfi2i.data import augment


def coords(h, w):
    """A coordinate-coded example: rgb (R = row, G = column, B = 0), ids = row * w + col, instances = the same."""
    r, c = np.mgrid[0:h, 0:w]
    rgb = np.stack([r, c, np.zeros_like(r)], -1).astype(np.uint8)
    ids = (r * w + c)[:, :, None].astype(np.int32)
    return tf.constant(rgb), tf.constant(ids), tf.constant(ids.astype(np.uint16))


def test_crop_and_flip_identical_across_sides():
    h, w = 12, 20
    rgb, ids, inst = coords(h, w)
    flips = set()
    for s in range(12):
        # load = image size: rgb is not resampled, so its coordinates decode exactly
        x, y, i = augment.augment_sides([ids, rgb, inst], ["labels", "rgb", "instances"], tf.constant([1, s], tf.int64),
                                        load_size=(h, w), crop_size=(6, 8))
        assert x.shape == (6, 8, 1) and y.shape == (6, 8, 3) and i.shape == (6, 8, 1)
        assert x.dtype == tf.int32 and i.dtype == tf.int32 and y.dtype == tf.float32
        yy = np.rint((y.numpy() + 1) * 127.5).astype(np.int32)
        np.testing.assert_array_equal(yy[..., 0] * w + yy[..., 1], x.numpy()[..., 0])
        np.testing.assert_array_equal(x.numpy(), i.numpy())
        flips.add(bool(yy[0, 0, 1] > yy[0, -1, 1]))
    assert flips == {True, False}


def test_label_ids_survive_resize_crop_flip_as_a_set():
    rng = np.random.default_rng(0)
    ids = tf.constant(rng.choice([0, 3, 18], size=(10, 14, 1)).astype(np.int32))
    inst = tf.constant(rng.choice([0, 26001, 26002, 24000], size=(10, 14, 1)).astype(np.int32))
    photo = tf.constant(rng.integers(0, 256, (10, 14, 3)), tf.uint8)
    seen_ids, seen_inst = set(), set()
    for mode, load, crop in (("resize_and_crop", (23, 31), (16, 20)), ("scale_width", 37, 8),
                             ("scale_width_and_crop", 40, (20, 24)), ("none", 0 + 1, 1)):
        for s in range(3):
            x, _, i = augment.augment_sides([ids, photo, inst], ["labels", "rgb", "instances"],
                                            tf.constant([0, s], tf.int64), load, crop, mode=mode, size_multiple=4)
            seen_ids |= set(np.unique(x.numpy()).tolist())
            seen_inst |= set(np.unique(i.numpy()).tolist())
        ev = augment.eval_sides([ids, photo, inst], ["labels", "rgb", "instances"], crop, load, mode, 4)
        seen_ids |= set(np.unique(ev[0].numpy()).tolist())
    assert seen_ids <= {0, 3, 18} and seen_inst <= {0, 26001, 26002, 24000}


@pytest.mark.parametrize("mode, load, crop, train_shape, eval_shape", [
    ("resize_and_crop", (36, 72), (32, 64), (32, 64), (32, 64)),
    ("resize_and_crop", 40, 32, (32, 32), (32, 32)),
    ("scale_width", 64, 0, (25, 64), (25, 64)),  # 50x128 -> width 64, height 64 * 50 // 128 = 25
    ("scale_width", (10, 64), 0, (25, 64), (25, 64)),  # a pair: only its width counts
    ("scale_width_and_crop", 64, (16, 32), (16, 32), (16, 32)),
    ("none", 0 + 1, 1, (48, 128), (48, 128)),  # multiple 16: round(50 / 16) = 3 -> 48, 128 stays
    ("crop", 0, (32, 64), (32, 64), (32, 64)),  # pix2pixHD crop: no resize, a random (eval: centre) crop
])
def test_mode_output_shapes(mode, load, crop, train_shape, eval_shape):
    img = tf.constant(np.random.default_rng(1).integers(0, 256, (50, 128, 3)), tf.uint8)
    ids = tf.zeros([50, 128, 1], tf.int32)
    y, x = augment.augment_sides([img, ids], ["rgb", "labels"], tf.constant([2, 3], tf.int64), load, crop,
                                 mode=mode, size_multiple=16)
    assert tuple(y.shape) == train_shape + (3,) and tuple(x.shape) == train_shape + (1,)
    ey, ex = augment.eval_sides([img, ids], ["rgb", "labels"], crop, load, mode, 16)
    assert tuple(ey.shape) == eval_shape + (3,) and tuple(ex.shape) == eval_shape + (1,)


def test_none_mode_rounds_like_pix2pixhd_and_dynamic_shapes_agree():
    # pix2pixHD __make_power_2: round(size / base) * base, Python's round (half to even)
    for (h, w), want in (((24, 40), (32, 32)), ((40, 56), (32, 64)), ((16, 16), (16, 16)), ((5, 70), (16, 64))):
        assert augment.target_size((h, w), "none", 0, 16) == want
        got = augment.target_size((tf.constant(h), tf.constant(w)), "none", 0, 16)
        assert (int(got[0]), int(got[1])) == want
    assert augment.target_size((1024, 2048), "scale_width", 1024, 16) == (512, 1024)
    img = tf.constant(np.random.default_rng(2).integers(0, 256, (16, 16, 3)), tf.uint8)
    # already a multiple: unchanged (no resampling), also when the shape is only known at run time
    fn = tf.function(lambda t: augment.eval_sides([t], ["rgb"], 1, 1, "none", 16)[0],
                     input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
    np.testing.assert_array_equal(augment.to_uint8(fn(img)).numpy(), img.numpy())


def test_scale_width_and_crop_too_small_is_a_clear_error():
    img = tf.zeros([10, 40, 3], tf.uint8)  # width 40 -> height 10: shorter than the crop
    with pytest.raises(tf.errors.InvalidArgumentError, match="smaller than data.crop_size=16x16"):
        augment.augment_sides([img], ["rgb"], tf.constant([0, 0], tf.int64), 40, 16, mode="scale_width_and_crop")


def test_crop_mode_takes_pixels_at_their_own_resolution():
    img = tf.constant(np.random.default_rng(3).integers(0, 256, (50, 128, 3)), tf.uint8)
    y, = augment.augment_sides([img], ["rgb"], tf.constant([5, 7], tf.int64), 0, (32, 64), flip=False, mode="crop")
    found = [(t, l) for t in range(50 - 32 + 1) for l in range(128 - 64 + 1)
             if np.array_equal(augment.to_uint8(y).numpy(), img.numpy()[t:t + 32, l:l + 64])]
    assert len(found) == 1  # an exact window of the original pixels
    ey, = augment.eval_sides([img], ["rgb"], (32, 64), 0, "crop")
    np.testing.assert_array_equal(augment.to_uint8(ey).numpy(), img.numpy()[9:41, 32:96])  # the centre crop
    with pytest.raises(tf.errors.InvalidArgumentError, match="data.resize_or_crop=crop crops without resizing"):
        augment.augment_sides([img], ["rgb"], tf.constant([0, 0], tf.int64), 0, (64, 64), mode="crop")


def test_pyramid_of_rectangular_labels_uses_nearest():
    ids = tf.constant(np.random.default_rng(3).choice([1, 4, 9], (16, 32, 1)).astype(np.int32))
    levels = augment.pyramid_levels(ids, 3, kind="labels")
    assert [tuple(t.shape) for t in levels] == [(16, 32, 1), (8, 16, 1), (4, 8, 1)]
    assert all(t.dtype == tf.int32 and set(np.unique(t.numpy())) <= {1, 4, 9} for t in levels)
    ex = augment.add_pyramid({"x": ids, "y": tf.zeros([16, 32, 3])}, 2, ("labels", "rgb"))
    assert ex["x_levels"][1].dtype == tf.int32 and ex["y_levels"][1].shape == (8, 16, 3)


def test_set_sizes_from_the_command_line():
    cfg = C.override(C.Config(), ["data.crop_size=32,64", "data.load_size=72"])
    assert cfg.data.crop_size == (32, 64) and cfg.data.crop_hw == (32, 64)
    assert cfg.data.load_size == 72 and cfg.data.load_hw == (72, 72)  # an int stays an int (square)
    assert C.override(C.Config(), ["data.crop_size=(16, 48)"]).data.crop_size == (16, 48)
    cfg = C.override(cfg, ["data.resize_or_crop=scale_width_and_crop", "data.x_kind=labels", "data.num_classes=35",
                           "data.instances=inst"])
    assert (cfg.data.resize_or_crop, cfg.data.x_kind, cfg.data.num_classes, cfg.data.instances) == (
        "scale_width_and_crop", "labels", 35, "inst")
    for bad in ("data.crop_size=32,64,3", "data.crop_size=big"):
        with pytest.raises(ConfigError, match="HEIGHT,WIDTH"):
            C.override(C.Config(), [bad])
    # JSON round trip (config.json holds a list)
    assert C.from_dict(DataConfig, {"crop_size": [32, 64]}).crop_size == (32, 64)


def test_data_config_checks():
    assert DataConfig(load_size=286).load_hw == (286, 286)
    with pytest.raises(ConfigError, match="resize_or_crop"):
        DataConfig(resize_or_crop="crop_and_resize")
    from tfi2i.data.pipeline import check_config

    with pytest.raises(ConfigError, match="num_classes"):
        check_config(DataConfig(x_kind="labels"))  # cross-field: checked when the data is opened
    with pytest.raises(ConfigError, match="y_kind"):
        DataConfig(y_kind="segmentation")
    with pytest.raises(ConfigError, match="crop_size"):
        DataConfig(crop_size=(0, 64))
    with pytest.raises(ConfigError, match="load_size=0"):
        check_config(DataConfig(load_size=0, resize_or_crop="scale_width"))
    # --set order does not matter
    C.override(C.Config(), ["data.x_kind=labels", "data.num_classes=3"])
