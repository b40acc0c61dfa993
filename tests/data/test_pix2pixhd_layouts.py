"""The pix2pixhd (``<split>_label/``, ``<split>_img/``, ``<split>_inst/``) and cityscapes (``leftImg8bit/``,
``gtFine/``) layouts, and the raw instance ids in the batch (``data.instance_ids``)."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfi2i import config as C
from tfi2i.config import DataConfig
from tfi2i.data import labels, pipeline
from tfi2i.data.images import DataError
from tfi2i.data.open import open_data
from tfi2i.data.sources import (
    CityscapesFolders, Pix2PixHDFolders, Subset, cityscapes_key, find_splits, missing_photos, open_source,
)


NUM_CLASSES = 35
H, W = 16, 32


def _write(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), arr), path
    return path


def _maps(seed):
    """(label ids uint8, instance ids uint16, photo uint8 RGB) of one synthetic Cityscapes-like frame.

    Stuff pixels carry their class id in the instance map, objects ``class * 1000 + k`` (as Cityscapes).
    """
    rng = np.random.default_rng(seed)
    lab = np.full((H, W), 7, np.uint8)  # road
    lab[: H // 2] = 23  # sky
    inst = lab.astype(np.uint16)
    for k in range(2):  # two cars side by side, touching
        top, left = int(rng.integers(2, H // 2)), 4 + 10 * k
        lab[top:top + 5, left:left + 10] = 26
        inst[top:top + 5, left:left + 10] = 26000 + k
    photo = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    return lab, inst, photo


def make_pix2pixhd(root, counts=None, photos=("train", "val"), instances=True, suffixes=True):
    """A pix2pixHD-layout root: ``<split>_label`` (+ ``_inst``) for every split in ``counts``, ``<split>_img``
    only for ``photos``; Cityscapes file names (``suffixes``) or plain ones."""
    counts = counts or {"train": 3, "val": 2, "test": 2}
    for split, n in counts.items():
        for i in range(n):
            key = f"city_{i:06d}_000019"
            lab, inst, photo = _maps(i)
            sfx = (lambda s: s) if suffixes else (lambda s: "")
            _write(root / f"{split}_label" / f"{key}{sfx('_gtFine_labelIds')}.png", lab)
            if instances:
                _write(root / f"{split}_inst" / f"{key}{sfx('_gtFine_instanceIds')}.png", inst)
            if split in photos:
                _write(root / f"{split}_img" / f"{key}{sfx('_leftImg8bit')}.png", photo)
    return root


def make_cityscapes(root, cities=None, extras=True):
    """An official-layout root: ``leftImg8bit/<split>/<city>/`` and ``gtFine/<split>/<city>/`` (with the colour
    maps and polygon files of the release, which must be ignored)."""
    cities = cities or {"train": {"aachen": 2, "bremen": 1}, "val": {"frankfurt": 2}}
    for split, by_city in cities.items():
        for city, n in by_city.items():
            for i in range(n):
                key = f"{city}_{i:06d}_000019"
                lab, inst, photo = _maps(i)
                gt = root / "gtFine" / split / city
                _write(gt / f"{key}_gtFine_labelIds.png", lab)
                _write(gt / f"{key}_gtFine_instanceIds.png", inst)
                if extras:
                    _write(gt / f"{key}_gtFine_color.png", photo)
                    (gt / f"{key}_gtFine_polygons.json").write_text("{}")
                _write(root / "leftImg8bit" / split / city / f"{key}_leftImg8bit.png", photo)
    return root


def _kw(**kw):
    return {"x_kind": "labels", "num_classes": NUM_CLASSES, "instances": "inst", **kw}


def _cfg(path, **data):
    base = {"path": str(path), "x_kind": "labels", "num_classes": NUM_CLASSES, "instances": "inst",
            "load_size": (H, W), "crop_size": (8, 16), "batch_size": 1}
    return C.replace(C.Config(), data={**base, **data})


# ----------------------------------------------------------------------------- keys


def test_cityscapes_key():
    assert cityscapes_key("a/aachen_000000_000019_leftImg8bit.png") == ("aachen_000000_000019", "img")
    assert cityscapes_key("aachen_000000_000019_gtFine_labelIds.png") == ("aachen_000000_000019", "label")
    assert cityscapes_key("aachen_000000_000019_gtFine_instanceIds.png") == ("aachen_000000_000019", "inst")
    assert cityscapes_key("aachen_000000_000019_gtFine_color.png") == ("aachen_000000_000019", "color")
    assert cityscapes_key("0001.png") == ("0001", None)
    assert cityscapes_key("_leftImg8bit.png") == ("_leftImg8bit", None)  # nothing left: the plain stem


# ----------------------------------------------------------------------------- pix2pixhd layout


def test_pix2pixhd_splits_open_and_match(tmp_path):
    root = make_pix2pixhd(tmp_path / "hd")
    splits = find_splits(root)
    assert splits == {s: root / f"{s}_label" for s in ("train", "val", "test")}
    assert missing_photos(splits["train"]) is None and missing_photos(splits["val"]) is None
    assert "test_img" in missing_photos(splits["test"]) and missing_photos(tmp_path) is None
    for path, layout in ((splits["train"], "auto"), (root / "train_img", "auto"), (splits["train"], "pix2pixhd")):
        src = open_source(path, layout=layout, **_kw())
        assert isinstance(src, Pix2PixHDFolders) and (src.root, src.split) == (root, "train")
        assert src.names == tuple(f"city_{i:06d}_000019" for i in range(3)) and src.sizes == ((H, W),) * 3
    rec = src.read_pair(1)
    lab, inst, photo = _maps(1)
    np.testing.assert_array_equal(rec["x"][..., 0], lab)
    np.testing.assert_array_equal(rec["instances"][..., 0], inst)
    np.testing.assert_array_equal(rec["y"], photo[..., ::-1])  # written BGR by OpenCV, read RGB
    graph = src.load(tf.constant(1, tf.int64))
    assert graph["x"].dtype == tf.int32 and graph["instances"].dtype == tf.int32 and graph["y"].dtype == tf.uint8
    np.testing.assert_array_equal(graph["instances"].numpy(), rec["instances"])
    assert "Pix2PixHDFolders" in src.describe() and "train_inst" in src.describe()
    assert open_source(splits["val"], **_kw(instances="")).files_inst is None  # data.instances empty: no instance maps
    # plain stems (no Cityscapes suffixes) match too
    plain = open_source(make_pix2pixhd(tmp_path / "plain", suffixes=False) / "train_label", **_kw())
    assert plain.names == src.names


def test_pix2pixhd_unmatched_files_are_listed(tmp_path):
    root = make_pix2pixhd(tmp_path / "hd", counts={"train": 2}, photos=("train",))
    for i in range(7):  # 7 photos without label maps: 5 listed, and the count
        _write(root / "train_img" / f"extra_{i}_leftImg8bit.png", np.zeros((H, W, 3), np.uint8))
    (root / "train_inst" / "city_000001_000019_gtFine_instanceIds.png").unlink()
    with pytest.raises(DataError) as e:
        open_source(root / "train_label", **_kw())
    msg = str(e.value)
    assert "7 photo(s) in" in msg and "train_img have no label map (same key)" in msg
    assert "extra_0_leftImg8bit.png" in msg and "extra_4_leftImg8bit.png" in msg and "extra_5" not in msg
    assert "(7 in all)" in msg
    assert "1 label map(s) in" in msg and "have no instance map (same key)" in msg
    assert "train_label have no instance map (same key) in" in msg and "city_000001_000019_gtFine_labelIds.png" in msg


def test_pix2pixhd_missing_folders(tmp_path):
    root = make_pix2pixhd(tmp_path / "hd", counts={"train": 1, "test": 1}, photos=("train",))
    with pytest.raises(DataError, match=r"test_img: photo folder not found: test_label/ has label maps .*"
                                        r"cannot be trained on or evaluated against photos"):
        open_source(root / "test_label", **_kw())
    no_inst = make_pix2pixhd(tmp_path / "no_inst", counts={"train": 1}, photos=("train",), instances=False)
    with pytest.raises(DataError, match=r"train_inst: instance-map folder not found .*data.instances=''"):
        open_source(no_inst / "train_label", **_kw())
    with pytest.raises(DataError, match=r"is the root of a data set in the pix2pixHD layout .* splits train, test; "
                                        r"open one split \(e.g. .*train_label\)"):
        open_source(root, **_kw())
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataError, match=r"flat: layout 'pix2pixhd' needs a <split>_label folder"):
        open_source(tmp_path / "flat", layout="pix2pixhd", **_kw())
    empty = tmp_path / "empty"
    (empty / "train_label").mkdir(parents=True)
    (empty / "train_img").mkdir()
    with pytest.raises(DataError, match=r"train_label: no image files"):
        open_source(empty / "train_label", **_kw(instances=""))


def test_pix2pixhd_wrong_suffixes_and_duplicates(tmp_path):
    root = make_pix2pixhd(tmp_path / "hd", counts={"train": 2}, photos=("train",))
    colour = _write(root / "train_label" / "city_000000_000019_gtFine_color.png", np.zeros((H, W, 3), np.uint8))
    with pytest.raises(DataError, match=r"train_label: 1 file\(s\) are a colour-coded label map .* not class ids: "
                                        r"use the \*_gtFine_labelIds.png files, not label maps: "
                                        r"city_000000_000019_gtFine_color.png; remove them"):
        open_source(root / "train_label", **_kw())
    colour.unlink()
    wrong = _write(root / "train_label" / "city_000009_000019_gtFine_instanceIds.png", np.zeros((H, W), np.uint16))
    with pytest.raises(DataError, match=r"train_label: 1 file\(s\) in this label map folder have the suffix of "
                                        r"another kind of file: .*city_000009_000019_gtFine_instanceIds.png "
                                        r"\(suffix of a instance map\)"):
        open_source(root / "train_label", **_kw())
    wrong.unlink()
    _write(root / "train_img" / "city_000000_000019.png", np.zeros((H, W, 3), np.uint8))
    with pytest.raises(DataError, match=r"train_img: 1 key\(s\) used twice .*: city_000000_000019.png and "
                                        r"city_000000_000019_leftImg8bit.png; remove or rename"):
        open_source(root / "train_label", **_kw())


def test_pix2pixhd_kinds_and_direction(tmp_path):
    root = make_pix2pixhd(tmp_path / "hd", counts={"train": 1}, photos=("train",))
    for kw in ({"direction": "BtoA"}, {"x_kind": "rgb"}, {"y_kind": "labels"}):
        with pytest.raises(DataError, match=r"layout 'pix2pixhd' maps label maps \(A, x\) to photos \(B, y\): "
                                            r"set data.direction=AtoB, data.x_kind=labels"):
            open_source(root / "train_label", **_kw(**kw))
    with pytest.raises(DataError, match="num_classes"):
        open_source(root / "train_label", **_kw(num_classes=0))
    _write(root / "train_label" / "city_000000_000019_gtFine_labelIds.png", np.full((H, W), 40, np.uint8))
    with pytest.raises(DataError, match=r"city_000000_000019_gtFine_labelIds.png: class id 40 is outside \[0, 35\)"):
        open_source(root / "train_label", **_kw())


def test_open_data_pix2pixhd_eval_split(tmp_path, caplog):
    full = make_pix2pixhd(tmp_path / "full")  # val has photos, test has none
    for eval_split in ("auto", "val"):
        with caplog.at_level(logging.INFO, logger="tfi2i"):
            caplog.clear()
            train, evaluation, _ = open_data(_cfg(full, eval_split=eval_split))
        assert isinstance(train, Pix2PixHDFolders) and (train.split, evaluation.split) == ("train", "val")
        assert "not evaluating" not in caplog.text  # val comes first: test is not even looked at
    # test named first, and it has no photos: asked for, so an error (not a silent fallback to val)
    with pytest.raises(DataError, match=r"data.eval_split=test: .*test_label holds label maps but .*test_img "
                                        r"\(their photos\) does not exist.*set data.eval_split=auto"):
        open_data(_cfg(full, eval_split="test"))
    _, evaluation, _ = open_data(_cfg(full, eval_split="test", eval_path=str(full / "val_label")))
    assert evaluation.split == "val"  # data.eval_path wins
    with pytest.raises(DataError, match=r"test_img: photo folder not found"):
        open_data(_cfg(full, eval_path=str(full / "test_label")))


def test_open_data_label_only_test_split(tmp_path, caplog):
    root = make_pix2pixhd(tmp_path / "hd", counts={"train": 2, "test": 2}, photos=("train",))
    with caplog.at_level(logging.INFO, logger="tfi2i"):
        train, evaluation, _ = open_data(_cfg(root))
    assert evaluation is train
    assert "not evaluating on split 'test'" in caplog.text and "test_img (their photos) does not exist" in caplog.text
    assert "no val/ or test/ split with photos (test: label maps only)" in caplog.text
    with pytest.raises(DataError, match=r"data.eval_split=test: .*test_label holds label maps"):
        open_data(_cfg(root, eval_split="test"))
    with pytest.raises(DataError, match=r"data.eval_split=val: .* has no val/ split"):
        open_data(_cfg(root, eval_split="val"))
    with_val = make_pix2pixhd(tmp_path / "val", counts={"train": 2, "val": 1, "test": 2}, photos=("train", "test"))
    with caplog.at_level(logging.INFO, logger="tfi2i"):  # auto: val has no photos, test has: skip val, log it
        caplog.clear()
        _, evaluation, _ = open_data(_cfg(with_val))
    assert evaluation.split == "test" and "not evaluating on split 'val'" in caplog.text
    assert "split val has no photos: evaluating on" in caplog.text


def test_open_data_num_train_and_missing_train(tmp_path):
    root = make_pix2pixhd(tmp_path / "hd")
    train, _, _ = open_data(_cfg(root, num_train=2))
    assert isinstance(train, Subset) and len(train) == 2 and isinstance(train.source, Pix2PixHDFolders)
    only_test = make_pix2pixhd(tmp_path / "only_test", counts={"test": 1}, photos=())
    with pytest.raises(DataError, match=r"only_test: no training split among its split folders \(test\)"):
        open_data(_cfg(only_test))


# ----------------------------------------------------------------------------- cityscapes layout


def test_cityscapes_layout_opens_and_ignores_the_other_files(tmp_path):
    root = make_cityscapes(tmp_path / "cs")
    splits = find_splits(root)
    assert splits == {"train": root / "gtFine" / "train", "val": root / "gtFine" / "val"}
    src = open_source(splits["train"], **_kw())
    assert isinstance(src, CityscapesFolders) and src.split == "train" and len(src) == 3
    assert src.names == ("aachen_000000_000019", "aachen_000001_000019", "bremen_000000_000019")
    assert all(f.name.endswith("_gtFine_labelIds.png") for f in src.files_a)
    assert all(f.name.endswith("_gtFine_instanceIds.png") for f in src.files_inst)
    assert src.files_b[2] == root / "leftImg8bit/train/bremen/bremen_000000_000019_leftImg8bit.png"
    assert open_source(root / "leftImg8bit" / "val", layout="cityscapes", **_kw()).split == "val"
    train, evaluation, _ = open_data(_cfg(root))
    assert (train.split, evaluation.split) == ("train", "val") and isinstance(evaluation, CityscapesFolders)
    with pytest.raises(DataError, match=r"is the root of a data set in the official Cityscapes layout"):
        open_source(root, **_kw())
    with pytest.raises(DataError, match=r"layout 'pix2pixhd' needs"):
        open_source(splits["train"], layout="pix2pixhd", **_kw())


def test_cityscapes_errors(tmp_path):
    root = make_cityscapes(tmp_path / "cs", cities={"train": {"aachen": 2}})
    (root / "leftImg8bit/train/aachen/aachen_000001_000019_leftImg8bit.png").unlink()
    _write(root / "leftImg8bit/train/aachen/aachen_000005_000019_leftImg8bit.png", np.zeros((H, W, 3), np.uint8))
    with pytest.raises(DataError, match=r"(?s)unmatched files: 1 label map\(s\) in .*gtFine/train have no photo "
                                        r"\(same key\) in .*leftImg8bit/train: "
                                        r"aachen/aachen_000001_000019_gtFine_labelIds.png; 1 photo\(s\) .*"
                                        r"aachen/aachen_000005_000019_leftImg8bit.png"):
        open_source(root / "gtFine" / "train", **_kw())
    colour_only = make_cityscapes(tmp_path / "colour", cities={"train": {"aachen": 1}})
    (colour_only / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png").unlink()
    with pytest.raises(DataError, match=r"gtFine/train: no \*_gtFine_labelIds.png files .*holds 1 "
                                        r"\*_gtFine_color.png file\(s\), a colour-coded label map"):
        open_source(colour_only / "gtFine" / "train", **_kw())
    no_photos = make_cityscapes(tmp_path / "no_photos", cities={"train": {"aachen": 1}, "test": {"berlin": 1}})
    import shutil
    shutil.rmtree(no_photos / "leftImg8bit" / "test")
    assert "leftImg8bit/test (their photos) does not exist" in missing_photos(no_photos / "gtFine" / "test")
    with pytest.raises(DataError, match=r"leftImg8bit/test: photo folder of split 'test' not found"):
        open_source(no_photos / "gtFine" / "test", **_kw())
    with pytest.raises(DataError, match=r"data.eval_split=test: .*leftImg8bit/test"):
        open_data(_cfg(no_photos, eval_split="test"))


# ----------------------------------------------------------------------------- raw instance ids in the batch


def _ids_consistent(inst, lab):
    """Cityscapes: an instance id is the class id (stuff) or class * 1000 + k (objects)."""
    inst, lab = np.asarray(inst), np.asarray(lab)
    return np.array_equal(np.where(inst < 1000, inst, inst // 1000), lab)


def test_instance_ids_in_train_and_eval_batches(tmp_path):
    root = make_pix2pixhd(tmp_path / "hd")
    cfg = _cfg(root, instance_ids=True, batch_size=2).data
    src = open_source(root / "train_label", **_kw())
    ds, _ = pipeline.train_dataset(src, cfg, seed=3)
    for b in ds.take(2):  # random crops and flips
        assert set(b) == {"x", "y", "instances", "instance_ids"}
        ids = b["instance_ids"]
        assert ids.dtype == tf.int32 and ids.shape == (2, 8, 16, 1)
        np.testing.assert_array_equal(labels.instance_edges(ids).numpy(), b["instances"].numpy())
        assert _ids_consistent(ids, b["x"])  # the same crop, flip and nearest resize as the label map
    ev = pipeline.eval_example(src.load(tf.constant(1, tf.int64)), cfg)  # eager: no second tf.data graph
    assert ev["instance_ids"].shape == (8, 16, 1) and _ids_consistent(ev["instance_ids"], ev["x"])
    # the instance ids are not in the batch unless asked for
    plain = pipeline.train_example(src.load(tf.constant(0, tf.int64)), tf.constant([3, 0], tf.int64), _cfg(root).data)
    assert "instance_ids" not in plain and "instances" in plain


def test_instance_ids_need_instances():
    with pytest.raises(C.ConfigError, match=r"data.instance_ids=true .* no instance maps: set data.instances"):
        pipeline.check_config(DataConfig(instance_ids=True))
    with pytest.raises(C.ConfigError, match=r"data.instance_ids must be true or false"):
        DataConfig(instance_ids="yes")
    assert C.override(C.Config(), ["data.instance_ids=true", "data.instances=inst"]).data.instance_ids is True


# ----------------------------------------------------------------------------- the real data


def test_real_cityscapes_fullres(cityscapes_fullres, caplog):
    cfg = _cfg(cityscapes_fullres, resize_or_crop="scale_width", load_size=256, crop_size=256, instance_ids=True,
               validate=False)
    with caplog.at_level(logging.INFO, logger="tfi2i"):
        train, evaluation, data_cfg = open_data(cfg)  # the resolved DataConfig
    assert isinstance(train, Pix2PixHDFolders) and len(train) == 8 and evaluation is train
    assert "not evaluating on split 'test'" in caplog.text  # test_label/ has no photos
    assert train.names[0] == "aachen_000000_000019"
    pipeline.check_source(train, data_cfg)
    for i in (0, 5):  # decode only two examples, one with the training jitter
        ex = pipeline.train_example(train.load(tf.constant(i, tf.int64)), tf.constant([0, i], tf.int64), data_cfg)
        assert ex["x"].shape == (128, 256, 1) and ex["x"].dtype == tf.int32
        assert ex["y"].shape == (128, 256, 3) and ex["y"].dtype == tf.float32
        assert float(tf.reduce_min(ex["y"])) >= -1 and float(tf.reduce_max(ex["y"])) <= 1
        x = ex["x"].numpy()
        assert x.min() >= 0 and x.max() < NUM_CLASSES and len(np.unique(x)) > 5
        edges = ex["instances"].numpy()
        assert ex["instances"].dtype == tf.float32 and set(np.unique(edges)) == {0.0, 1.0}
        assert 0.005 < edges.mean() < 0.5  # boundaries, not all or nothing
        ids = ex["instance_ids"].numpy()
        assert ex["instance_ids"].dtype == tf.int32 and ids.shape == (128, 256, 1) and ids.max() >= 1000
        np.testing.assert_array_equal(labels.instance_edges(ids).numpy(), edges)
        assert _ids_consistent(ids, x)
