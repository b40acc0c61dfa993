"""TensorFlow Datasets sources, offline: `tfds.testing.mock_data` and a real array_record preparation from fake zips."""

import zipfile

import cv2
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tfi2i.config import Config, DataConfig, replace
from tfi2i.data import pipeline, tfds_sources
from tfi2i.data.images import DataError
from tfi2i.data.tfds_sources import TfdsCityscapes, TfdsImages, TfdsPath, label_colors, parse_tfds_path
from tfi2i.metrics.cityscapes import LABEL_COLORS
from tfi2i.data.open import open_data


def take(ds, k):
    return [{key: v.numpy() for key, v in b.items()} for b in ds.take(k)]


def test_parse_tfds_path():
    assert parse_tfds_path("tfds:celeb_a") == TfdsPath("celeb_a", None)
    assert parse_tfds_path("tfds:celeb_a_hq/128:train") == TfdsPath("celeb_a_hq/128", "train")
    assert parse_tfds_path("tfds:celeb_a:2.1.0") == TfdsPath("celeb_a:2.1.0", None)
    assert parse_tfds_path("tfds:celeb_a:2.1.0:train[:10%]") == TfdsPath("celeb_a:2.1.0", "train[:10%]")
    assert parse_tfds_path("tfds:celeb_a:train[:1000]") == TfdsPath("celeb_a", "train[:1000]")
    assert str(parse_tfds_path("tfds:cityscapes/semantic_segmentation:validation")) == \
        "tfds:cityscapes/semantic_segmentation:validation"
    assert parse_tfds_path("tfds:celeb_a_hq/128").builder_name == "celeb_a_hq"
    with pytest.raises(DataError, match="expected tfds:NAME"):
        parse_tfds_path("tfds:")
    assert tfds_sources.is_tfds_path("tfds:x") and not tfds_sources.is_tfds_path("datasets/facades")


def test_label_colors_official_palette():
    ids = np.array([[0, 7, 26], [33, 200, 23]], np.uint8)
    np.testing.assert_array_equal(label_colors(ids[..., None]), [
        [(0, 0, 0), (128, 64, 128), (0, 0, 142)],
        [(119, 11, 32), (0, 0, 0), (70, 130, 180)],  # 200 is no labelId: black, like unlabeled
    ])


# ----------------------------------------------------------------------------- mocked builders


def test_celeb_a_single_images_mocked():
    with tfds.testing.mock_data(num_examples=5):
        raw = tfds.data_source("celeb_a", split="train")
        src = TfdsImages("tfds:celeb_a")
        assert len(src) == 5 and src.image_key == "image" and src.spec.split == "train"
        assert "TfdsImages(tfds:celeb_a:train: 5 images" in src.describe()
        for i in (0, 3):
            rec = src.load(tf.constant(i, tf.int64))
            np.testing.assert_array_equal(rec["image"].numpy(), raw[i]["image"])
            assert rec["image"].shape == (218, 178, 3)
            assert rec["name"].numpy().decode() == src.names[i] == f"{i:06d}"
        cfg = DataConfig(task="superres4x", load_size=36, crop_size=32, batch_size=2)
        full = take(pipeline.train_dataset(src, cfg, seed=1)[0], 3)
        resumed = take(pipeline.train_dataset(src, cfg, seed=1, start_step=2)[0], 1)
        np.testing.assert_array_equal(full[2]["x"], resumed[0]["x"])
        np.testing.assert_array_equal(full[2]["y"], resumed[0]["y"])


def test_open_data_tfds_single_images_mocked():
    cfg = replace(Config(), data={"path": "tfds:celeb_a", "task": "inpainting", "crop_size": 32, "load_size": 36})
    with tfds.testing.mock_data(num_examples=3):
        train, evaluation, data_cfg = open_data(cfg)
        assert isinstance(train, TfdsImages) and str(train.spec) == "tfds:celeb_a:train"
        assert str(evaluation.spec) == "tfds:celeb_a:validation" and data_cfg.path == "tfds:celeb_a"
        batch = next(iter(pipeline.eval_dataset(evaluation, data_cfg, batch_size=3)))
        assert sorted(batch) == ["mask", "name", "x", "y"] and batch["x"].shape == (3, 32, 32, 3)
        explicit = replace(cfg, data={"path": "tfds:celeb_a:test", "eval_path": "tfds:celeb_a:train[:2]"})
        train, evaluation, _ = open_data(explicit)
        assert str(train.spec) == "tfds:celeb_a:test" and str(evaluation.spec) == "tfds:celeb_a:train[:2]"
        with pytest.raises(DataError, match=r"tfds:celeb_a: gives single images.*data.task=superres4x"):
            open_data(replace(cfg, data={"task": "paired"}))


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_cityscapes_pairs_mocked(direction):
    lut = np.zeros((256, 3), np.uint8)
    lut[:34] = LABEL_COLORS  # the mock draws values 0..254: those that are no labelId are black
    with tfds.testing.mock_data(num_examples=2):
        raw = tfds.data_source("cityscapes", split="validation")[1]
        src = TfdsCityscapes("tfds:cityscapes:validation", direction=direction)
        assert len(src) == 2
        rec = src.load(tf.constant(1, tf.int64))
        photo, labels = (rec["x"], rec["y"]) if direction == "AtoB" else (rec["y"], rec["x"])
        np.testing.assert_array_equal(photo.numpy(), raw["image_left"])
        np.testing.assert_array_equal(labels.numpy(), lut[raw["segmentation_label"][..., 0]])
        assert (raw["segmentation_label"] < 34).any()
        assert rec["name"].numpy().decode() == raw["image_id"]
        pair = src.read_pair(1)
        np.testing.assert_array_equal(pair["x"], rec["x"].numpy())
        cfg = DataConfig(direction=direction, load_size=32, crop_size=32, batch_size=2, flip=False)
        batch = next(iter(pipeline.train_dataset(src, cfg, seed=0)[0]))
        assert batch["x"].shape == batch["y"].shape == (2, 32, 32, 3)


def test_cityscapes_as_single_images_and_wrong_config_mocked():
    with tfds.testing.mock_data(num_examples=1):
        cfg = replace(Config(), data={"path": "tfds:cityscapes", "task": "superres4x"})
        train, _, _ = open_data(cfg)
        assert isinstance(train, TfdsImages) and train.image_key == "image_left"
        with pytest.raises(DataError, match="no \\['segmentation_label'\\]"):
            TfdsCityscapes("tfds:cityscapes/stereo_disparity")


# ----------------------------------------------------------------------------- not prepared


def test_unknown_builder_and_not_prepared_errors(tmp_path):
    with pytest.raises(DataError, match="tfds:no_such_set_xyz.*no TensorFlow Datasets builder"):
        TfdsImages("tfds:no_such_set_xyz", data_dir=str(tmp_path))
    with pytest.raises(DataError) as e:
        TfdsImages("tfds:celeb_a", data_dir=str(tmp_path))
    msg = str(e.value)
    assert "tfds:celeb_a:train: not prepared" in msg and "array_record" in msg
    assert f"python -m tfi2i.data.tfds_sources celeb_a --data-dir {tmp_path}" in msg
    with pytest.raises(DataError) as e:
        TfdsCityscapes("tfds:cityscapes", data_dir=str(tmp_path))
    msg = str(e.value)
    assert "data.tfds_manual_dir" in msg and "leftImg8bit_trainvaltest.zip" in msg and "--manual-dir DIR" in msg


def test_prepare_without_the_zips_says_what_is_missing(tmp_path, capsys):
    (tmp_path / "manual").mkdir()
    rc = tfds_sources.main(["cityscapes", "--data-dir", str(tmp_path / "data"), "--manual-dir", str(tmp_path / "manual")])
    err = capsys.readouterr().err
    assert rc == 1 and "tfds:cityscapes: preparing it failed" in err and "Manual directory" in err
    assert "leftImg8bit_trainvaltest.zip" in err and "data.tfds_manual_dir" in err


# ----------------------------------------------------------------------------- real array_record, offline


def fake_cityscapes_zips(folder):
    """Two zips in the layout of the real ones; 1024x2048 images of a few flat regions (compress to KBs)."""
    folder.mkdir(parents=True)

    def png(arr):
        return cv2.imencode(".png", arr)[1].tobytes()

    with zipfile.ZipFile(folder / "leftImg8bit_trainvaltest.zip", "w") as zl, \
            zipfile.ZipFile(folder / "gtFine_trainvaltest.zip", "w") as zg:
        for split, n in (("train", 3), ("val", 2), ("test", 1)):
            for i in range(n):
                iid = f"bonn_{i:06d}_{'019' if split == 'train' else '020'}"
                photo = np.zeros((1024, 2048, 3), np.uint8)
                photo[:, : 1024] = (200, 50, 10 * i)  # BGR on disk
                labels = np.full((1024, 2048), 7, np.uint8)  # road
                labels[:512] = 23  # sky
                labels[:, 1536:] = 26  # car
                zl.writestr(f"leftImg8bit/{split}/bonn/{iid}_leftImg8bit.png", png(photo))
                zg.writestr(f"gtFine/{split}/bonn/{iid}_gtFine_labelIds.png", png(labels))
    return folder


@pytest.fixture(scope="module")
def prepared_cityscapes(tmp_path_factory):
    """A real cityscapes array_record data set, prepared by open_data itself from fake zips (tfds_manual_dir)."""
    root = tmp_path_factory.mktemp("tfds")
    manual = fake_cityscapes_zips(root / "manual")
    cfg = replace(Config(), data={"path": "tfds:cityscapes", "direction": "BtoA", "tfds_data_dir": str(root / "data"),
                                  "tfds_manual_dir": str(manual), "load_size": 64, "crop_size": 64})
    return cfg, open_data(cfg)


def test_cityscapes_prepared_from_manual_zips(prepared_cityscapes):
    cfg, (train, evaluation, data_cfg) = prepared_cityscapes
    assert (len(train), len(evaluation)) == (3, 2) and str(evaluation.spec) == "tfds:cityscapes:validation"
    assert sorted(train.names) == ["bonn_000000_019", "bonn_000001_019", "bonn_000002_019"]
    i = list(train.names).index("bonn_000002_019")
    rec = train.load(tf.constant(i, tf.int64))
    x, y = rec["x"].numpy(), rec["y"].numpy()  # BtoA: x = colour labels, y = photo
    assert x.shape == y.shape == (1024, 2048, 3) and rec["name"].numpy() == b"bonn_000002_019"
    np.testing.assert_array_equal(x[0, 0], (70, 130, 180))  # sky
    np.testing.assert_array_equal(x[-1, 0], (128, 64, 128))  # road
    np.testing.assert_array_equal(x[-1, -1], (0, 0, 142))  # car
    np.testing.assert_array_equal(y[0, 0], (20, 50, 200))  # RGB of the BGR written
    np.testing.assert_array_equal(y[0, -1], (0, 0, 0))
    batch = next(iter(pipeline.train_dataset(train, data_cfg, seed=0)[0]))
    assert batch["x"].shape == (1, 64, 64, 3)
    names = [n.decode() for b in pipeline.eval_dataset(evaluation, data_cfg, batch_size=2) for n in b["name"].numpy()]
    assert sorted(names) == ["bonn_000000_020", "bonn_000001_020"]
    # prepared: opens without the manual folder, and as single images for a derived task
    reopened, _, _ = open_data(replace(cfg, data={"tfds_manual_dir": "", "task": "inpainting"}))
    assert isinstance(reopened, TfdsImages) and len(reopened) == 3
    with pytest.raises(DataError, match="no split 'val'; the data set has test, train, validation"):
        TfdsCityscapes("tfds:cityscapes:val", data_dir=cfg.data.tfds_data_dir)
