"""Label maps and instance maps: tfi2i.data.labels, exact id decoding, label-aware sources and the label demo set."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfi2i.config import DataConfig
from tfi2i.data import labels, pipeline
from tfi2i.data.demo import make_label_demo
from tfi2i.data.images import DataError, decode_ids_tf, read_ids
from tfi2i.data.sources import TwoFolders, open_source

# a 4x5 instance map and its pix2pixHD edge map, worked out by hand:
# a pixel is an edge when it differs from its left/right or upper/lower neighbour
INST = np.array([[1, 1, 2, 2, 2],
                 [1, 1, 2, 2, 2],
                 [3, 3, 3, 2, 2],
                 [3, 3, 3, 3, 3]])
EDGES = np.array([[0, 1, 1, 0, 0],   # 1|2 between columns 1 and 2
                  [1, 1, 1, 0, 0],   # 1|2, and 1/3, 1/3, 2/3 below
                  [1, 1, 1, 1, 1],   # 1/3, 1/3, 2/3 above, 3|2, 2/3 below columns 3, 4
                  [0, 0, 0, 1, 1]])  # 2/3 above columns 3, 4


@pytest.mark.parametrize("dtype", [tf.int32, tf.int64, tf.uint16, tf.uint8])
def test_instance_edges_by_hand(dtype):
    ids = tf.constant(INST[:, :, None], dtype)
    edges = labels.instance_edges(ids)
    assert edges.dtype == tf.float32 and edges.shape == (4, 5, 1)
    np.testing.assert_array_equal(edges.numpy()[..., 0], EDGES)
    batch = labels.instance_edges(tf.stack([ids, tf.zeros_like(ids)]))  # [B, H, W, 1]
    assert batch.shape == (2, 4, 5, 1)
    np.testing.assert_array_equal(batch.numpy()[0, ..., 0], EDGES)
    np.testing.assert_array_equal(batch.numpy()[1], 0)


def test_one_hot():
    out = labels.one_hot(tf.constant([[[0], [2]], [[1], [2]]], tf.int32), 3)
    assert out.dtype == tf.float32 and out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out.numpy(), [[[1, 0, 0], [0, 0, 1]], [[0, 1, 0], [0, 0, 1]]])


def test_check_ids_names_the_file_and_value():
    ok = tf.constant([[[0], [4]]], tf.int32)
    np.testing.assert_array_equal(labels.check_ids(ok, 5, "a.png").numpy(), ok.numpy())
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)some/file_7\.png.*\b9\b"):
        labels.check_ids(tf.constant([[[0], [9]]], tf.uint8), 5, "some/file_7.png")
    with pytest.raises(tf.errors.InvalidArgumentError, match="-1"):
        labels.check_ids(tf.constant([[[-1]]]), 5, "neg.png")


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


def test_ids_are_read_exactly_8_and_16_bit(tmp_path):
    ids8 = np.array([[0, 1, 18], [255, 7, 3]], np.uint8)
    ids16 = np.array([[0, 26001, 26002], [65535, 7, 300]], np.uint16)
    for arr in (ids8, ids16):
        f = _write(tmp_path / f"ids{arr.dtype.itemsize}.png", arr)
        np.testing.assert_array_equal(read_ids(f)[..., 0], arr.astype(np.int32))
        tf_ids = decode_ids_tf(str(f))
        assert tf_ids.dtype == tf.int32 and tf_ids.shape == (2, 3, 1)
        np.testing.assert_array_equal(tf_ids.numpy()[..., 0], arr.astype(np.int32))


def test_colour_or_lossy_id_maps_are_refused(tmp_path):
    rgb = _write(tmp_path / "rgb.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DataError, match=r"rgb\.png: a label map must be a 1-channel.*3 channel"):
        read_ids(rgb)
    jpg = _write(tmp_path / "ids.jpg", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match=r"ids\.jpg: .*PNG.*JPEG"):
        read_ids(jpg)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"rgb\.png"):
        decode_ids_tf(str(rgb))


@pytest.fixture(scope="module")
def label_set(tmp_path_factory):
    return make_label_demo(tmp_path_factory.mktemp("labels") / "set", num_train=4, num_val=2, size=(16, 32),
                           num_classes=5, instances=True, seed=3)


def test_label_demo_layout_and_determinism(label_set, tmp_path):
    for split, n in (("train", 4), ("val", 2)):
        for sub in ("A", "B", "inst"):
            assert sorted(p.name for p in (label_set / split / sub).iterdir()) == [f"{i:04d}.png" for i in range(n)]
    photo = cv2.imread(str(label_set / "train/A/0000.png"), cv2.IMREAD_UNCHANGED)
    ids = cv2.imread(str(label_set / "train/B/0000.png"), cv2.IMREAD_UNCHANGED)
    inst = cv2.imread(str(label_set / "train/inst/0000.png"), cv2.IMREAD_UNCHANGED)
    assert photo.shape == (16, 32, 3) and ids.shape == (16, 32) and ids.dtype == np.uint8
    assert inst.dtype == np.uint16 and ids.max() < 5
    all_inst = np.concatenate([cv2.imread(str(p), cv2.IMREAD_UNCHANGED).ravel()
                               for p in (label_set / "train/inst").iterdir()])
    assert all_inst.max() > 255  # Cityscapes-style 1000 * class + k needs 16 bits
    again = make_label_demo(tmp_path / "again", num_train=1, num_val=0, size=(16, 32), num_classes=5, seed=3)
    for sub in ("A", "B", "inst"):
        assert (again / "train" / sub / "0000.png").read_bytes() == (label_set / "train" / sub / "0000.png").read_bytes()
    assert not (again / "val").exists()
    with pytest.raises(ValueError):
        make_label_demo(tmp_path / "bad", num_classes=1)


def _cfg(**kw):
    base = dict(direction="BtoA", x_kind="labels", num_classes=5, instances="inst", load_size=(16, 32),
                crop_size=(8, 16), batch_size=2)
    return DataConfig(**{**base, **kw})


def _open(root, cfg, validate=True):
    return open_source(root, direction=cfg.direction, validate=validate, x_kind=cfg.x_kind, y_kind=cfg.y_kind,
                       num_classes=cfg.num_classes, instances=cfg.instances)


def test_label_pipeline_batch_keys_dtypes_and_values(label_set):
    cfg = _cfg()
    src = _open(label_set / "train", cfg)
    assert isinstance(src, TwoFolders) and src.sizes == ((16, 32),) * 4
    rec = src.read_pair(0)
    assert rec["x"].shape == (16, 32, 1) and rec["y"].shape == (16, 32, 3) and rec["instances"].max() > 0
    ds, spe = pipeline.train_dataset(src, cfg, seed=5)
    batches = [{k: v.numpy() for k, v in b.items()} for b in ds.take(3)]
    b = batches[0]
    assert set(b) == {"x", "y", "instances"}
    assert b["x"].dtype == np.int32 and b["x"].shape == (2, 8, 16, 1)
    assert b["y"].dtype == np.float32 and b["y"].shape == (2, 8, 16, 3) and np.abs(b["y"]).max() <= 1
    assert b["instances"].dtype == np.float32 and b["instances"].shape == (2, 8, 16, 1)
    assert set(np.unique(b["instances"])) <= {0.0, 1.0}
    present = set(np.unique(np.concatenate([src.read_pair(i)["x"].ravel() for i in range(4)])))
    assert set(np.unique(np.concatenate([bb["x"].ravel() for bb in batches]))) <= present
    resumed, _ = pipeline.train_dataset(src, cfg, seed=5, start_step=1)
    for a, r in zip(batches[1:], resumed.take(2)):
        for k in a:
            np.testing.assert_array_equal(a[k], r[k].numpy())
    ev = next(iter(pipeline.eval_dataset(src, cfg)))
    assert ev["x"].dtype == tf.int32 and ev["x"].shape == (2, 8, 16, 1) and ev["instances"].shape == (2, 8, 16, 1)


def test_instance_edges_in_the_batch_follow_the_instance_ids(label_set):
    cfg = _cfg(load_size=(16, 32), crop_size=(16, 32), flip=False, batch_size=1)
    src = _open(label_set / "train", cfg)
    ds, _ = pipeline.train_dataset(src, cfg, seed=0)
    b = next(iter(ds))
    # no resize, no crop, no flip: the batch's edge map is get_edges of one of the files' instance maps
    candidates = [labels.instance_edges(src.read_pair(i)["instances"]).numpy() for i in range(4)]
    assert any(np.array_equal(b["instances"].numpy()[0], c) for c in candidates)


def _bad_copy(label_set, tmp_path, value=7):
    import shutil
    root = tmp_path / "bad"
    shutil.copytree(label_set / "train", root)
    ids = cv2.imread(str(root / "B/0002.png"), cv2.IMREAD_UNCHANGED)
    ids[3, 4] = value
    assert cv2.imwrite(str(root / "B/0002.png"), ids)
    return root


def test_out_of_range_id_fails_up_front_naming_file_and_value(label_set, tmp_path):
    root = _bad_copy(label_set, tmp_path)
    with pytest.raises(DataError, match=r"(?s)B/0002\.png: class id 7 is outside \[0, 5\).*num_classes"):
        _open(root, _cfg())


def test_out_of_range_id_stops_training_without_validation(label_set, tmp_path):
    root = _bad_copy(label_set, tmp_path)
    cfg = _cfg(validate=False, batch_size=1)
    src = _open(root, cfg, validate=False)
    assert src.sizes is None
    ds, _ = pipeline.train_dataset(src, cfg, seed=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)B/0002\.png.*\b7\b"):
        for _ in ds.take(4):  # one epoch: every file is read once
            pass


def test_labels_need_two_folders_and_num_classes(tmp_path, label_set):
    _write(tmp_path / "sbs" / "0.png", np.zeros((4, 8, 3), np.uint8))
    with pytest.raises(DataError, match="two-folder layout"):
        open_source(tmp_path / "sbs", x_kind="labels", num_classes=3)
    with pytest.raises(DataError, match="num_classes"):
        open_source(label_set / "train", direction="BtoA", x_kind="labels")
    with pytest.raises(DataError, match=r"nope: instance-map folder not found"):
        open_source(label_set / "train", direction="BtoA", x_kind="labels", num_classes=5, instances="nope")
    # kinds that do not match the files: rgb read where the config says labels is caught before training
    rgb_src = open_source(label_set / "train", direction="BtoA")
    with pytest.raises(DataError, match="x_kind=labels"):
        pipeline.check_source(rgb_src, _cfg(instances=""))


@pytest.mark.parametrize("mode, load, crop, shape", [
    ("scale_width", 64, 64, (32, 64)),  # the crop is not used in this mode (it must still be a valid size)
    ("scale_width_and_crop", 64, (16, 32), (16, 32)),
    ("none", 1, 1, (16, 32)),
])
def test_modes_through_tf_data(label_set, mode, load, crop, shape):
    cfg = _cfg(resize_or_crop=mode, load_size=load, crop_size=crop, pyramid_levels=2)
    src = _open(label_set / "train", cfg)
    b = next(iter(pipeline.train_dataset(src, cfg, seed=1)[0]))
    assert b["x"].shape == (2,) + shape + (1,) and b["y"].shape == (2,) + shape + (3,)
    assert b["instances"].shape == (2,) + shape + (1,)
    assert b["x_levels"][1].dtype == tf.int32 and b["x_levels"][1].shape == (2, shape[0] // 2, shape[1] // 2, 1)
    assert int(tf.reduce_max(b["x"])) < 5
    e = next(iter(pipeline.eval_dataset(src, cfg)))
    assert e["x"].shape == (2,) + shape + (1,) and e["y"].shape == (2,) + shape + (3,)
