"""``data.label_colors``: Cityscapes label maps batched as "segmented RGB" (MSG U-Net's input), and
:func:`tfi2i.data.labels.colorize`."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfi2i import config as C
from tfi2i.config import DataConfig
from tfi2i.data import labels, pipeline
from tfi2i.data.augment import downscale, to_signed
from tfi2i.data.open import open_data
from tfi2i.data.tfds_sources import label_colors as numpy_label_colors
from tfi2i.metrics.cityscapes import LABEL_COLORS


NUM_CLASSES = 35
ROAD, SKY, CAR, UNLABELED = (128, 64, 128), (70, 130, 180), (0, 0, 142), (0, 0, 0)


def _cfg(path, **data):
    """A pix2pixhd-layout config: label ids (x) -> photos (y), no instance maps."""
    base = {"path": str(path), "x_kind": "labels", "num_classes": NUM_CLASSES, "batch_size": 2, "validate": False}
    return C.replace(C.Config(), data={**base, **data})


def _palette_pixels(x):
    """The distinct colours (uint8 RGB tuples) of a float [-1, 1] batch, and whether all are palette colours."""
    rgb = np.round((np.asarray(x, np.float64) + 1.0) * 127.5).astype(np.int64).reshape(-1, 3)
    seen = {tuple(c) for c in np.unique(rgb, axis=0)}
    return seen, seen <= {tuple(int(v) for v in c) for c in LABEL_COLORS}


def _colored(ids):
    """What ``x`` must be with ``label_colors=cityscapes``: the ids' colours in [-1, 1]."""
    return to_signed(labels.colorize(ids)).numpy()


# ----------------------------------------------------------------------------- colorize


def test_colorize_hand_checked_colours():
    ids = tf.constant([[7, 23, 26, 0, 34, 255, -1, 26001]], tf.int32)[..., None]  # [1, 8, 1]
    out = labels.colorize(ids)
    assert out.dtype == tf.uint8 and out.shape == (1, 8, 3)
    # road, sky, car, unlabeled; then outside 0..33 (pix2pixHD's 35th class, 255, negative, an instance id): black
    np.testing.assert_array_equal(out.numpy()[0], [ROAD, SKY, CAR, UNLABELED] + [UNLABELED] * 4)


def test_colorize_shapes_dtypes_and_graph():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 34, (2, 5, 6, 1))
    expected = numpy_label_colors(ids.reshape(10, 6, 1).astype(np.uint8)).reshape(2, 5, 6, 3)  # the one palette
    np.testing.assert_array_equal(labels.colorize(ids.astype(np.uint16)).numpy(), expected)  # [B, H, W, 1]
    np.testing.assert_array_equal(labels.colorize(tf.constant(ids[0], tf.int32)).numpy(), expected[0])  # [H, W, 1]
    traced = tf.function(labels.colorize)(tf.constant(ids, tf.int64))
    np.testing.assert_array_equal(traced.numpy(), expected)
    mapped = next(iter(tf.data.Dataset.from_tensor_slices(ids.astype(np.int32)).map(labels.colorize).batch(2)))
    np.testing.assert_array_equal(mapped.numpy(), expected)


def test_colorize_every_label_id_and_unknown_palette():
    every = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    np.testing.assert_array_equal(labels.colorize(every).numpy(), numpy_label_colors(every))
    np.testing.assert_array_equal(labels.colorize(every).numpy().reshape(256, 3)[:34], LABEL_COLORS)
    with pytest.raises(ValueError, match=r"unknown label palette 'voc'; known: cityscapes"):
        labels.colorize(every, "voc")


# ----------------------------------------------------------------------------- config


def test_label_colors_config_field_and_errors():
    assert DataConfig().label_colors == "" and DataConfig().x_batch_kind == "rgb"
    cfg = C.override(C.Config(), ["data.x_kind=labels", "data.num_classes=35", "data.label_colors=cityscapes"]).data
    assert cfg.label_colors == "cityscapes" and cfg.x_kind == "labels" and cfg.x_batch_kind == "rgb"
    assert DataConfig(x_kind="labels", num_classes=35).x_batch_kind == "labels"
    pipeline.check_config(cfg)
    assert C.load(json.loads(C.to_json(C.Config(data=cfg)))).data == cfg  # config.json round trip
    with pytest.raises(C.ConfigError, match=r"data.label_colors must be one of '', 'cityscapes'.* got 'voc'"):
        DataConfig(x_kind="labels", num_classes=35, label_colors="voc")
    with pytest.raises(C.ConfigError, match=r"data.label_colors=cityscapes .* data.x_kind=rgb: set data.x_kind=labels"):
        pipeline.check_config(DataConfig(label_colors="cityscapes"))


# ----------------------------------------------------------------------------- synthetic pix2pixhd layout

H, W = 16, 32


def _write(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), arr), path


def _make_pix2pixhd(root, n=4):
    """``train_label/`` (road, sky, a car, pix2pixHD's id 34) + ``train_img/`` (noise) of ``n`` frames."""
    rng = np.random.default_rng(1)
    for i in range(n):
        lab = np.full((H, W), 7, np.uint8)
        lab[: H // 2] = 23
        lab[9:13, 3 + i:13 + i] = 26
        lab[-1, -3:] = 34  # outside the palette: black
        key = f"city_{i:06d}_000019"
        _write(root / "train_label" / f"{key}_gtFine_labelIds.png", lab)
        _write(root / "train_img" / f"{key}_leftImg8bit.png", rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    return root


def _batches(path, seed=5, **data):
    """(first train batch, first eval batch) of a pix2pixhd root, opened like a run."""
    train, evaluation, data_cfg = open_data(_cfg(path, **data))
    ds, _ = pipeline.train_dataset(train, data_cfg, seed=seed)
    return next(iter(ds)), next(iter(pipeline.eval_dataset(evaluation, data_cfg, limit=2)))


def _check_colored(colored, ids, shape):
    """``colored`` (a batch with label_colors) is the colour rendering of ``ids`` (the same batch without)."""
    x = colored["x"]
    assert x.dtype == tf.float32 and x.shape == shape
    assert float(tf.reduce_min(x)) >= -1 and float(tf.reduce_max(x)) <= 1
    seen, palette_only = _palette_pixels(x)
    assert palette_only and {ROAD, SKY} <= seen, seen
    np.testing.assert_array_equal(x.numpy(), _colored(ids["x"]))
    np.testing.assert_array_equal(colored["y"].numpy(), ids["y"].numpy())  # the same crops and flips


def test_synthetic_train_and_eval_batches(tmp_path):
    root = _make_pix2pixhd(tmp_path / "hd")
    sizes = {"load_size": (H + 4, W + 8), "crop_size": (H, W)}  # resize_and_crop: a random crop, flips
    ids_train, ids_eval = _batches(root, **sizes)
    assert ids_train["x"].dtype == tf.int32 and ids_train["x"].shape == (2, H, W, 1)
    col_train, col_eval = _batches(root, label_colors="cityscapes", pyramid_levels=3, **sizes)
    _check_colored(col_train, ids_train, (2, H, W, 3))
    _check_colored(col_eval, ids_eval, (2, H, W, 3))
    assert UNLABELED in _palette_pixels(col_eval["x"])[0]  # id 34 (kept by the eval resize): black
    for batch in (col_train, col_eval):  # the x pyramid is an rgb one: block means of the colours
        assert len(batch["x_levels"]) == 3
        np.testing.assert_array_equal(batch["x_levels"][0].numpy(), batch["x"].numpy())
        for k in (1, 2):
            np.testing.assert_allclose(batch["x_levels"][k].numpy(), downscale(batch["x"], 2**k).numpy(), atol=1e-6)
            assert batch["x_levels"][k].shape == (2, H // 2**k, W // 2**k, 3)


# ----------------------------------------------------------------------------- the real data


def test_real_cityscapes_fullres_label_colors(cityscapes_fullres):
    sizes = {"resize_or_crop": "scale_width", "load_size": (128, 256), "crop_size": (128, 256)}
    ids_train, ids_eval = _batches(cityscapes_fullres, **sizes)
    assert ids_train["x"].shape == (2, 128, 256, 1) and len(np.unique(ids_train["x"].numpy())) > 5
    col_train, col_eval = _batches(cityscapes_fullres, label_colors="cityscapes", pyramid_levels=3, **sizes)
    for colored, ids in ((col_train, ids_train), (col_eval, ids_eval)):
        _check_colored(colored, ids, (2, 128, 256, 3))
        assert len(_palette_pixels(colored["x"])[0]) > 5 and CAR in _palette_pixels(colored["x"])[0]
        np.testing.assert_allclose(colored["x_levels"][1].numpy(), downscale(colored["x"], 2).numpy(), atol=1e-6)
        assert colored["x_levels"][2].shape == (2, 32, 64, 3)
        assert colored["y_levels"][1].shape == (2, 64, 128, 3)
