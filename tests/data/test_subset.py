"""`tfi2i.data.sources.Subset` for every source kind, and `data.num_train` / `data.eval_split` in `open_data`."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tensorflow as tf

from tfi2i import config as C
from tfi2i.data import pipeline
from tfi2i.data.images import DataError
from tfi2i.data.sources import SideBySide, SingleImages, Subset, TwoFolders
from tfi2i.data.open import open_data

from tests.data.test_sources import make_side_by_side, rgb, write


def expected_indices(n, k, seed=0):
    return sorted(np.random.default_rng(seed).choice(n, size=k, replace=False).tolist())


def loaded(src):
    return [{k: v.numpy() for k, v in e.items()} for e in tf.data.Dataset.range(len(src)).map(src.load)]


def dataset(root, splits=("train", "val", "test"), counts=None):
    """A pix2pix-style root with side-by-side pairs in each split (names 1..n, natural order)."""
    counts = counts or {"train": 10, "val": 2, "test": 3}
    for s in splits:
        make_side_by_side(root / s, [str(i + 1) for i in range(counts[s])], h=8, w=8)
    return root


def data_cfg(path, **data):
    return C.replace(C.Config(), data={"path": str(path), "load_size": 8, "crop_size": 8, **data})


# ----------------------------------------------------------------------------- the wrapper


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_subset_of_side_by_side(tmp_path, direction):
    names = [str(i) for i in range(1, 11)]
    pairs = make_side_by_side(tmp_path, names)
    src = SideBySide(tmp_path, direction=direction)
    sub = Subset(src, 4)
    idx = expected_indices(10, 4)
    assert sub.indices == tuple(idx) and len(sub) == 4 and sub.seed == 0
    assert sub.names == tuple(src.names[i] for i in idx)
    assert sub.files == tuple(src.files[i] for i in idx) and sub.sizes == ((6, 5),) * 4
    assert sub.direction == direction and sub.folder == tmp_path  # the source's own attributes
    assert sub.describe() == f"4 of {src.describe()} (seed 0)" and repr(sub) == f"<{sub.describe()}>"
    for i, e in enumerate(loaded(sub)):
        a, b = pairs[sub.names[i]]
        x, y = (a, b) if direction == "AtoB" else (b, a)
        assert e["name"].decode() == sub.names[i]
        np.testing.assert_array_equal(e["x"], x)
        np.testing.assert_array_equal(e["y"], y)
        rp = sub.read_pair(i)
        assert rp["name"] == sub.names[i]
        np.testing.assert_array_equal(rp["x"], x)
    assert not hasattr(sub, "read")  # a paired source has no read()
    assert Subset(src, 4).indices == sub.indices  # deterministic
    assert Subset(src, 4, seed=1).indices != sub.indices
    assert Subset(src, 10).indices == tuple(range(10))  # all of them, in order


def test_subset_in_tf_function_and_nested(tmp_path):
    make_side_by_side(tmp_path, [str(i) for i in range(8)])
    src = SideBySide(tmp_path)
    sub = Subset(Subset(src, 6), 3)
    assert sub.names == tuple(Subset(src, 6).names[i] for i in expected_indices(6, 3))

    @tf.function
    def name_of(i):
        return sub.load(i)["name"]

    assert [name_of(tf.constant(i)).numpy().decode() for i in range(3)] == list(sub.names)


def test_subset_of_two_folders(tmp_path):
    for i in range(6):
        write(tmp_path / "A" / f"{i}.png", rgb(4, 4, 2 * i))
        write(tmp_path / "B" / f"{i}.jpg", rgb(4, 4, 2 * i + 1))
    src = TwoFolders(tmp_path / "A", tmp_path / "B")
    sub = Subset(src, 3)
    idx = expected_indices(6, 3)
    assert sub.files_a == tuple(src.files_a[i] for i in idx) and sub.files_b == tuple(src.files_b[i] for i in idx)
    assert not hasattr(sub, "files")  # the source has none
    assert [e["name"].decode() for e in loaded(sub)] == [src.names[i] for i in idx]


def test_subset_of_single_images_and_the_pipeline(tmp_path):
    for i in range(7):
        write(tmp_path / f"{i}.png", rgb(12 if i != 5 else 6, 12, i))
    src = SingleImages(tmp_path)
    sub = Subset(src, 3)
    idx = expected_indices(7, 3)
    assert sub.files == tuple(src.files[i] for i in idx) and sub.sizes == tuple(src.sizes[i] for i in idx)
    r = sub.read(1)
    assert r["name"] == src.names[idx[1]]
    np.testing.assert_array_equal(r["image"], src.read(idx[1])["image"])
    assert not hasattr(sub, "read_pair")
    cfg = C.DataConfig(task="superres4x", load_size=0, crop_size=8, batch_size=3, sr_factor=4)
    assert pipeline.check_source(sub, cfg)  # single images; files and sizes are the subset's
    batch = next(iter(pipeline.train_dataset(sub, cfg, seed=0)[0]))
    assert batch["x"].shape == (3, 8, 8, 3)
    small = C.DataConfig(task="superres4x", load_size=0, crop_size=10)
    with pytest.raises(DataError, match="smaller than data.crop_size"):  # 6x12 image 5 only matters if kept
        pipeline.check_source(Subset(src, 7), small)


def test_subset_of_tfds_images_mocked():
    tfds = pytest.importorskip("tensorflow_datasets")
    from tfi2i.data.tfds_sources import TfdsImages

    with tfds.testing.mock_data(num_examples=6):
        src = TfdsImages("tfds:celeb_a")
        sub = Subset(src, 2)
        idx = expected_indices(6, 2)
        assert list(sub.names) == [src.names[i] for i in idx] and sub.names[-1] == src.names[idx[-1]]
        assert sub.sizes is None and sub.spec == src.spec
        e = sub.load(tf.constant(1, tf.int64))
        np.testing.assert_array_equal(e["image"].numpy(), src.read(idx[1])["image"])
        assert "2 of TfdsImages(tfds:celeb_a:train: 6 images" in sub.describe()


def test_subset_count_errors(tmp_path):
    make_side_by_side(tmp_path, ["a", "b", "c"])
    src = SideBySide(tmp_path)
    for bad in (0, -1, 4, 2.5, True):
        with pytest.raises(DataError, match="holds 3; choose a count from 1 to 3"):
            Subset(src, bad)


# ----------------------------------------------------------------------------- open_data


def test_open_data_num_train(tmp_path, caplog):
    root = dataset(tmp_path / "set")
    train, _, _ = open_data(data_cfg(root, num_train=4))
    assert isinstance(train, Subset) and len(train) == 4
    assert train.names == tuple(str(i + 1) for i in expected_indices(10, 4))  # the folder's natural order
    assert open_data(data_cfg(root, num_train=4))[0].names == train.names  # drawn the same way every time
    assert len(next(iter(pipeline.train_dataset(train, data_cfg(root).data, seed=0)[0]))["x"]) == 1
    all_pairs, _, _ = open_data(data_cfg(root))
    assert isinstance(all_pairs, SideBySide) and len(all_pairs) == 10
    for n in (10, 11):
        with caplog.at_level(logging.INFO, logger="tfi2i"):
            caplog.clear()
            train, _, _ = open_data(data_cfg(root, num_train=n))
        assert isinstance(train, SideBySide) and len(train) == 10
        assert f"data.num_train={n}: the training split holds 10 examples, training on all of them" in caplog.text
    flat = dataset(tmp_path / "flat", splits=("train",))
    train, evaluation, _ = open_data(data_cfg(flat / "train", num_train=3))  # no splits: evaluates what it trains on
    assert evaluation is train and len(train) == 3


def test_open_data_eval_split(tmp_path, caplog):
    root = dataset(tmp_path / "set")
    for split, folder in (("auto", "val"), ("test", "test"), ("val", "val")):
        _, evaluation, _ = open_data(data_cfg(root, eval_split=split))
        assert evaluation.folder == root / folder and len(evaluation) == len(list((root / folder).iterdir()))
    _, evaluation, _ = open_data(data_cfg(root, eval_split="test", eval_path=str(root / "val")))
    assert evaluation.folder == root / "val"  # data.eval_path wins
    no_test = dataset(tmp_path / "no_test", splits=("train", "val"))
    with caplog.at_level(logging.INFO, logger="tfi2i"):
        _, evaluation, _ = open_data(data_cfg(no_test, eval_split="test"))
    assert evaluation.folder == no_test / "val" and "has no test/ split: evaluating on" in caplog.text
    no_val = dataset(tmp_path / "no_val", splits=("train", "test"))
    assert open_data(data_cfg(no_val))[1].folder == no_val / "test"  # auto: val/, else test/
    with pytest.raises(DataError, match=r"data.eval_split=val: .* has no val/ split"):
        open_data(data_cfg(no_val, eval_split="val"))
    assert open_data(data_cfg(no_val, eval_split="val", eval_path=str(no_val / "test")))[1].folder == no_val / "test"


def test_open_data_tfds_eval_split_and_num_train_mocked():
    tfds = pytest.importorskip("tensorflow_datasets")
    cfg = C.replace(C.Config(), data={"path": "tfds:celeb_a", "task": "inpainting", "crop_size": 32, "load_size": 36})
    with tfds.testing.mock_data(num_examples=5):
        train, evaluation, _ = open_data(C.replace(cfg, data={"eval_split": "test", "num_train": 2}))
        assert str(evaluation.spec) == "tfds:celeb_a:test"
        assert isinstance(train, Subset) and len(train) == 2 and str(train.spec) == "tfds:celeb_a:train"
        assert str(open_data(C.replace(cfg, data={"eval_split": "val"}))[1].spec) == "tfds:celeb_a:validation"


def test_config_checks_the_new_fields():
    cfg = C.Config()
    assert (cfg.data.num_train, cfg.data.eval_split) == (0, "auto")
    assert C.override(cfg, ["data.num_train=600", "data.eval_split=test"]).data.num_train == 600
    with pytest.raises(C.ConfigError, match=r"data.eval_split must be one of auto, test, val, got 'tset'"):
        C.override(cfg, ["data.eval_split=tset"])
    with pytest.raises(C.ConfigError, match=r"data.num_train must be an integer >= 0"):
        C.override(cfg, ["data.num_train=-1"])
    with pytest.raises(C.ConfigError, match="expected a value of type int"):
        C.override(cfg, ["data.num_train=all"])
    with pytest.raises(C.ConfigError):
        C.from_dict(C.Config, {"data": {"num_train": 1.5}})
    assert C.from_dict(C.Config, C.to_dict(C.override(cfg, ["data.num_train=7"]))).data.num_train == 7


# ----------------------------------------------------------------------------- validation: once, and only what is read


def _count_decodes(monkeypatch):
    from tfi2i.data import sources

    calls = []
    real = sources.read_image
    monkeypatch.setattr(sources, "read_image", lambda f, *a, **k: (calls.append(str(f)), real(f, *a, **k))[1])
    return calls


def test_open_data_validates_an_unchanged_folder_once(tmp_path, monkeypatch):
    import os

    root = dataset(tmp_path / "set", splits=("train", "val"), counts={"train": 5, "val": 2})
    calls = _count_decodes(monkeypatch)
    open_data(data_cfg(root))
    assert len(calls) == 7  # every training and evaluation file, once
    calls.clear()
    train, _, _ = open_data(data_cfg(root))  # a second open_data of the same folders: nothing decoded again
    assert calls == [] and train.sizes == ((8, 8),) * 5
    changed = root / "train" / "3.png"
    write(changed, rgb(8, 9, 7))  # odd width now: no longer a side-by-side pair
    os.utime(changed, ns=(1, 1))  # a different mtime even on a coarse clock
    with pytest.raises(DataError, match="3.png: width 9 is odd"):
        open_data(data_cfg(root))
    assert str(changed) in calls  # the changed split is decoded again
    write(changed, rgb(8, 8, 7))
    calls.clear()
    open_data(data_cfg(root))
    assert sorted(calls) == sorted(str(f) for f in SideBySide(root / "train", validate=False).files)  # val/ cached
    calls.clear()
    open_data(data_cfg(root, direction="BtoA"))  # the same checks, whichever side is x
    assert calls == []


def test_num_train_validates_only_the_kept_pairs(tmp_path, monkeypatch):
    root = dataset(tmp_path / "set", splits=("train", "val"), counts={"train": 10, "val": 2})
    write(root / "train" / "bad.png", rgb(8, 9, 0))  # odd width: fails validation if decoded (natural order: last)
    calls = _count_decodes(monkeypatch)
    train, _, _ = open_data(data_cfg(root, num_train=3))
    assert train.indices == tuple(expected_indices(11, 3)) and 10 not in train.indices  # bad.png is pair 10
    assert sorted(calls) == sorted([str(f) for f in train.files] + [str(f) for f in sorted((root / "val").iterdir())])
    assert train.sizes is not None and len(train.sizes) == 3
    with pytest.raises(DataError, match="bad.png: width 9 is odd"):
        open_data(data_cfg(root))  # all pairs: the bad one is decoded and named
