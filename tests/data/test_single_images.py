"""Single-image sources and the derived-task streams (super-resolution, inpainting)."""

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import shared_data_dir
from tfi2i.config import Config, ConfigError, DataConfig, replace
from tfi2i.data import augment, degrade, images, pipeline
from tfi2i.data.images import DataError
from tfi2i.data.sources import SideBySide, SingleImages
from tfi2i.data.open import open_data


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    """Each conversion warning is logged once per process: start each test afresh."""
    monkeypatch.setattr(images, "_WARNED_KINDS", set())


def write(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = rgb[:, :, ::-1] if rgb.ndim == 3 and rgb.shape[2] == 3 else rgb
    assert cv2.imwrite(str(path), arr)
    return path


def photo_folder(folder: Path, n=5, sizes=((20, 24), (16, 16), (24, 18))) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        h, w = sizes[i % len(sizes)]
        write(folder / f"{i:02d}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return folder


def take(ds, k):
    return [{key: v.numpy() for key, v in b.items()} for b in ds.take(k)]


# ----------------------------------------------------------------------------- the source


def test_single_images_load_read_and_describe(tmp_path):
    folder = photo_folder(tmp_path / "imgs")
    src = SingleImages(folder)
    assert len(src) == 5 and src.names == ("00", "01", "02", "03", "04")
    assert src.sizes == ((20, 24), (16, 16), (24, 18), (20, 24), (16, 16))
    assert "5 images" in src.describe() and "3 sizes" in src.describe()
    for i in range(5):
        rec = src.load(tf.constant(i, tf.int64))
        np.testing.assert_array_equal(rec["image"].numpy(), src.read(i)["image"])
        assert rec["name"].numpy().decode() == src.names[i] == src.read(i)["name"]


def test_single_images_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no image files"):
        SingleImages(tmp_path / "empty")
    (tmp_path / "root" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match=r"split folders \['train'\]"):
        SingleImages(tmp_path / "root")


def test_single_images_corrupt_file_named(tmp_path):
    folder = photo_folder(tmp_path / "imgs", n=3)
    good = (folder / "01.png").read_bytes()
    (folder / "02.png").write_bytes(good[: len(good) // 3])
    (folder / "03.jpg").write_bytes(b"")
    with pytest.raises(DataError) as e:
        SingleImages(folder)
    msg = str(e.value)
    assert "2 of 4 images" in msg and "02.png: corrupt or truncated PNG" in msg and "03.jpg: empty file" in msg
    assert len(SingleImages(folder, validate=False)) == 4  # listing only


def test_single_images_conversions_logged_once(tmp_path, caplog):
    folder = tmp_path / "imgs"
    write(folder / "g1.png", np.full((8, 8), 7, np.uint8))
    write(folder / "g2.png", np.full((8, 8), 9, np.uint8))
    write(folder / "rgba.png", np.full((8, 8, 4), 200, np.uint8))
    write(folder / "deep.png", np.full((8, 8, 3), 257 * 100, np.uint16))
    with caplog.at_level(logging.WARNING, logger="tfi2i.data"):
        src = SingleImages(folder)
    msgs = [r.getMessage() for r in caplog.records if r.name == "tfi2i.data"]
    assert sum("grayscale" in m for m in msgs) == 1
    assert sum("alpha channel dropped" in m for m in msgs) == 1
    assert sum("16-bit" in m for m in msgs) == 1
    deep = src.names.index("deep")
    np.testing.assert_array_equal(src.load(tf.constant(deep))["image"].numpy(), np.full((8, 8, 3), 100, np.uint8))
    gray = src.read(src.names.index("g1"))["image"]
    assert gray.shape == (8, 8, 3) and (gray == 7).all()


# ----------------------------------------------------------------------------- augmentation and streams


def test_single_image_jitter_equals_the_pair_jitter():
    img = tf.constant(np.random.default_rng(1).integers(0, 256, (20, 24, 3)), tf.uint8)
    for s in range(4):
        seed = tf.constant([5, s], tf.int64)
        single = augment.augment_image(img, seed, 20, 16)
        x, y = augment.joint_augment(img, img, seed, 20, 16)
        np.testing.assert_array_equal(single.numpy(), x.numpy())
        np.testing.assert_array_equal(single.numpy(), y.numpy())
    np.testing.assert_array_equal(augment.eval_image(img, 8).numpy(), augment.eval_transform(img, img, 8)[0].numpy())


TASK_CFGS = {
    "paired": DataConfig(load_size=18, crop_size=16, batch_size=2),
    "superres4x": DataConfig(task="superres4x", load_size=18, crop_size=16, batch_size=2),
    "inpainting": DataConfig(task="inpainting", load_size=18, crop_size=16, batch_size=2, hole_size=6),
}


def task_source(task, tmp_path):
    if task == "paired":
        rng = np.random.default_rng(2)
        for i in range(5):
            write(tmp_path / "pairs" / f"{i}.png", rng.integers(0, 256, (20, 40, 3), dtype=np.uint8))
        return SideBySide(tmp_path / "pairs")
    return SingleImages(photo_folder(tmp_path / "imgs"))


@pytest.mark.parametrize("task", sorted(TASK_CFGS))
def test_training_stream_deterministic_and_resumable(task, tmp_path):
    src, cfg = task_source(task, tmp_path), TASK_CFGS[task]
    full, spe = pipeline.train_dataset(src, cfg, seed=7)
    assert spe == 2
    ref = take(full, 5)
    again = take(pipeline.train_dataset(src, cfg, seed=7)[0], 5)
    keys = ["mask", "x", "y"] if task == "inpainting" else ["x", "y"]
    assert sorted(ref[0]) == keys
    for k in (1, 2, 3):
        resumed = take(pipeline.train_dataset(src, cfg, seed=7, start_step=k)[0], 5 - k)
        for a, b in zip(ref[k:], resumed):
            for key in keys:
                np.testing.assert_array_equal(a[key], b[key])
    for a, b in zip(ref, again):
        np.testing.assert_array_equal(a["x"], b["x"])
    other = take(pipeline.train_dataset(src, cfg, seed=8)[0], 1)
    assert not np.array_equal(other[0]["y"], ref[0]["y"])


def test_derived_examples_are_degraded_after_augmentation(tmp_path):
    src = SingleImages(photo_folder(tmp_path / "imgs"))
    b = take(pipeline.train_dataset(src, TASK_CFGS["superres4x"], seed=0)[0], 1)[0]
    assert b["x"].shape == b["y"].shape == (2, 16, 16, 3)
    np.testing.assert_allclose(b["x"], degrade.superres_input(b["y"], 4).numpy(), atol=1e-6)

    b = take(pipeline.train_dataset(src, TASK_CFGS["inpainting"], seed=0)[0], 1)[0]
    hole = np.zeros((16, 16, 1), np.float32)
    hole[5:11, 5:11] = 1
    np.testing.assert_array_equal(b["mask"], np.broadcast_to(hole, (2, 16, 16, 1)))
    assert (b["x"][:, 5:11, 5:11] == 0).all()
    outside = np.broadcast_to(hole == 0, b["y"].shape)
    np.testing.assert_array_equal(b["x"][outside], b["y"][outside])


def test_eval_batches_of_derived_tasks_keep_names_and_order(tmp_path):
    src = SingleImages(photo_folder(tmp_path / "imgs"))
    batches = list(pipeline.eval_dataset(src, TASK_CFGS["inpainting"], batch_size=2))
    assert [n.decode() for b in batches for n in b["name"].numpy()] == list(src.names)
    first = batches[0]
    assert sorted(first) == ["mask", "name", "x", "y"]
    np.testing.assert_allclose(first["y"][0].numpy(), augment.eval_image(src.read(0)["image"], 16).numpy())


def test_task_and_source_must_match(tmp_path):
    single = SingleImages(photo_folder(tmp_path / "imgs"))
    with pytest.raises(DataError, match="single images, not .* pairs: set data.task=superres4x"):
        pipeline.train_dataset(single, DataConfig(load_size=18, crop_size=16), seed=0)
    paired = task_source("paired", tmp_path)
    with pytest.raises(DataError, match="data.task=inpainting makes its pairs from single images"):
        pipeline.eval_dataset(paired, TASK_CFGS["inpainting"])
    with pytest.raises(ConfigError, match="not divisible by data.sr_factor"):
        pipeline.train_dataset(single, DataConfig(task="superres4x", load_size=18, crop_size=14), seed=0)


# ----------------------------------------------------------------------------- open_data


@pytest.mark.parametrize("task", ["superres4x", "inpainting"])
def test_open_data_demo_photos_for_derived_tasks(task):
    cfg = replace(Config(), data={"task": task, "load_size": 72, "crop_size": 64, "batch_size": 2})
    train, evaluation, data_cfg = open_data(cfg)
    assert isinstance(train, SingleImages) and len(train) == 48 and len(evaluation) == 8
    assert "demo_photos" in data_cfg.path and set(train.sizes) == {(64, 64)}
    again, _, _ = open_data(replace(cfg, data={"path": data_cfg.path}))  # a resumed run reopens the same folder
    assert again.files == train.files
    paired, _, _ = open_data(replace(Config(), data={"load_size": 72, "crop_size": 64}))
    np.testing.assert_array_equal(train.read(3)["image"], paired.read_pair(3)["y"])  # the demo pairs' photos
    batch = next(iter(pipeline.train_dataset(train, data_cfg, seed=0)[0]))
    assert batch["x"].shape == (2, 64, 64, 3)


def test_open_data_single_folder_with_splits(tmp_path, caplog):
    photo_folder(tmp_path / "set" / "train", n=4)
    photo_folder(tmp_path / "set" / "test", n=2)
    cfg = replace(Config(), data={"path": str(tmp_path / "set"), "task": "inpainting", "crop_size": 16})
    train, evaluation, _ = open_data(cfg)
    assert (len(train), len(evaluation)) == (4, 2) and evaluation.folder.name == "test"
    flat = replace(cfg, data={"path": str(tmp_path / "set" / "train")})
    with caplog.at_level(logging.WARNING, logger="tfi2i"):
        train, evaluation, _ = open_data(flat)
    assert evaluation is train and "evaluating on the training data" in caplog.text


# ----------------------------------------------------------------------------- real photos


SET5 = ("baby", "bird", "butterfly", "head", "woman")
#: Bicubic x4 PSNR (dB, Y channel, 4-pixel border shaved) on Set5 as published (SRCNN, Dong et al. 2014).
SET5_BICUBIC_X4 = {"baby": 31.78, "bird": 30.18, "butterfly": 22.10, "head": 31.59, "woman": 26.46}


@pytest.fixture
def set5():
    folder = shared_data_dir() / "sr_set5"
    if not folder.is_dir():
        pytest.skip(f"real-photo check needs the Set5 PNGs in {folder} (set TFI2I_SHARED_DATA)")
    return SingleImages(folder)


def test_set5_full_size_superres_matches_the_benchmark_protocol(set5):
    assert set5.names == SET5 and set5.sizes[-1] == (344, 228)
    for i, name in enumerate(set5.names):
        y = degrade.modcrop(augment.to_signed(set5.read(i)["image"]), 4)
        x = degrade.superres_input(y, 4).numpy()
        assert x.shape == y.shape

        def luma(t):  # MATLAB rgb2ycbcr Y on [0, 255]
            t = (np.asarray(t, np.float64) + 1) / 2
            return 16 + 65.481 * t[..., 0] + 128.553 * t[..., 1] + 24.966 * t[..., 2]

        err = (luma(x) - luma(y))[4:-4, 4:-4]
        psnr = 10 * np.log10(255**2 / np.mean(err**2))
        assert abs(psnr - SET5_BICUBIC_X4[name]) < 0.1, (name, psnr)


def test_set5_inpainting_at_full_size_and_training_stream(set5):
    woman = augment.to_signed(set5.read(4)["image"])
    x, mask = degrade.inpainting_input(woman, 64)
    assert mask.shape == (344, 228, 1) and float(tf.reduce_sum(mask)) == 64 * 64
    assert float(tf.reduce_max(tf.abs(x[140:204, 82:146]))) == 0.0  # top-left ((344-64)//2, (228-64)//2)
    cfg = DataConfig(task="superres4x", load_size=72, crop_size=64, batch_size=5)
    batch = next(iter(pipeline.train_dataset(set5, cfg, seed=0)[0]))
    assert batch["x"].shape == (5, 64, 64, 3)
