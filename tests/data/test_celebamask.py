"""The CelebAMask-HQ layout (``tfi2i.data.celebamask``) and the synthetic face demo (``make_face_demo``).

Hand-made tiny roots check the merge, the photo resize, the split and every error; the demo checks the
whole layout end to end. The real data set (non-commercial) is never used.
"""

from __future__ import annotations

import json
import logging
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfi2i import config as C
from tfi2i.data import celebamask as cm
from tfi2i.data import demo, pipeline
from tfi2i.data.celebamask import CelebAMaskHQ, merge_masks
from tfi2i.data.images import DataError
from tfi2i.data.open import open_data
from tfi2i.data.sources import LAYOUTS, Subset, find_splits, open_source

KW = {"x_kind": "labels", "num_classes": 19}


def _png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), arr), path
    return path


def write_example(root, idx, parts, photo, merged=False):
    """One example: part masks ``{part: bool [H, W]}`` (0/255 PNGs; or one merged map) and an RGB photo (PNG)."""
    if merged:
        labels = merge_masks([(cm.PARTS.index(p) + 1, m) for p, m in sorted(parts.items(),
                                                                             key=lambda t: cm.PARTS.index(t[0]))])
        _png(root / cm.MERGED_DIR / f"{idx}.png", labels)
    else:
        for part, m in parts.items():
            _png(root / cm.PARTS_DIR / str(idx // 2000) / f"{idx:05d}_{part}.png", np.where(m, 255, 0).astype(np.uint8))
    _png(root / cm.PHOTO_DIR / f"{idx}.png", np.ascontiguousarray(photo[:, :, ::-1]))


def write_splits(root, files, partition=None):
    """The mapping file (``{idx: CelebA file number}``) and, unless ``partition`` is False, the partition file
    (``{number: code}``; default: the code of CelebA's range)."""
    lines = ["idx         orig_idx        orig_file"] + [f"{i}  {n - 1}  {n:06d}.jpg" for i, n in files.items()]
    (root / cm.MAPPING_FILE).write_text("\n".join(lines) + "\n")
    if partition is not False:
        codes = partition or {}
        rows = []
        for n in sorted(files.values()):
            default = "0" if n <= 162770 else "1" if n <= 182637 else "2"
            rows.append(f"{n:06d}.jpg {codes.get(n, default)}")
        (root / cm.PARTITION_FILE).write_text("\n".join(rows) + "\n")


H, W = 4, 6


def _hand_parts():
    """The hand-checked example: overlapping parts, most parts missing, background in the middle right."""
    z = lambda: np.zeros((H, W), bool)  # noqa: E731
    skin, nose, hair, eye, neck, cloth = z(), z(), z(), z(), z(), z()
    skin[:, :4] = True
    nose[1:3, 1] = True
    hair[0, :] = True
    eye[1, 2] = True
    neck[3, 1:3] = True
    cloth[3, 2:] = True
    # written in an order unlike the merge order: the merge order is PARTS', not the files'
    return {"cloth": cloth, "hair": hair, "neck": neck, "skin": skin, "l_eye": eye, "nose": nose}


EXPECTED = np.array([[13, 13, 13, 13, 13, 13],
                     [1, 2, 4, 1, 0, 0],
                     [1, 2, 1, 1, 0, 0],
                     [1, 17, 18, 18, 18, 18]], np.int32)


def _photo(seed, h, w):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def hand_root(root, scale=2, merged=False):
    """Ids 0 (train), 1 (test), 2 (train): the hand-checked parts, photos ``scale`` times the masks' size."""
    for i in range(3):
        write_example(root, i, _hand_parts(), _photo(i, H * scale, W * scale), merged=merged)
    write_splits(root, {0: 5, 1: 190000, 2: 7})
    return root


def _load(src, i):
    return {k: v.numpy() for k, v in src.load(tf.constant(i, tf.int64)).items()}


# ----------------------------------------------------------------------------- the merge


def test_merge_order_hand_checked(tmp_path):
    assert cm.PARTS == ('skin', 'nose', 'eye_g', 'l_eye', 'r_eye', 'l_brow', 'r_brow', 'l_ear', 'r_ear', 'mouth',
                        'u_lip', 'l_lip', 'hair', 'hat', 'ear_r', 'neck_l', 'neck', 'cloth')  # g_mask.py's order
    assert cm.NUM_CLASSES == 19 and cm.CLASSES[0] == "background" and cm.CLASSES[13] == "hair"
    root = hand_root(tmp_path / "hq")
    src = open_source(root / "train", **KW)
    assert isinstance(src, CelebAMaskHQ) and src.names == ("0", "2") and src.sizes == ((H, W), (H, W))
    pair = src.read_pair(0)
    np.testing.assert_array_equal(pair["x"][:, :, 0], EXPECTED)
    assert pair["x"].dtype == np.int32 and pair["x"].shape == (H, W, 1)
    graph = _load(src, 0)  # the graph merge gives the same ids
    np.testing.assert_array_equal(graph["x"], pair["x"])
    assert graph["x"].dtype == np.int32 and graph["name"] == b"0"
    # pure function: later over earlier, background 0, the threshold at 127
    a, b = np.zeros((2, 2), bool), np.zeros((2, 2), bool)
    a[0] = True
    b[:, 0] = True
    np.testing.assert_array_equal(merge_masks([(3, a), (5, b)]), [[5, 3], [5, 0]])
    np.testing.assert_array_equal(merge_masks([(5, b), (3, a)]), [[3, 3], [5, 0]])


def test_grey_rgb_masks_and_threshold(tmp_path):
    """A part mask stored as RGB with equal channels reads like a grey one; 255 counts, 0 does not."""
    root = hand_root(tmp_path / "hq")
    skin = root / cm.PARTS_DIR / "0" / "00000_skin.png"
    grey = cv2.imread(str(skin), cv2.IMREAD_UNCHANGED)
    _png(skin, np.repeat(grey[:, :, None], 3, axis=2))
    src = open_source(root / "train", **KW)
    np.testing.assert_array_equal(src.read_pair(0)["x"][:, :, 0], EXPECTED)
    np.testing.assert_array_equal(_load(src, 0)["x"][:, :, 0], EXPECTED)


# ----------------------------------------------------------------------------- the photo


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_photo_resized_to_the_mask_size_before_checks(tmp_path, scale):
    root = hand_root(tmp_path / "hq", scale=scale)
    src = open_source(root / "train", **KW)  # validates: a 2x photo passes the size check
    pair = src.read_pair(1)
    photo = _photo(2, H * scale, W * scale)
    want = photo if scale == 1 else cv2.resize(photo, (W, H), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(pair["y"], want)
    np.testing.assert_array_equal(_load(src, 1)["y"], want)  # the graph resize is bit-exact with INTER_AREA


def test_cv2_area_rounding_matches_the_graph():
    """Wide random photos (every rounding case) through both resizes, factors 2, 3, 4."""
    for f in (2, 3, 4):
        photo = _photo(f, 8 * f, 40 * f)
        want = cv2.resize(photo, (40, 8), interpolation=cv2.INTER_AREA)
        got = cm.resize_photo_tf(tf.constant(photo), tf.constant([8, 40]), tf.constant("p")).numpy()
        np.testing.assert_array_equal(got, want)


def test_wrong_photo_sizes_name_the_file(tmp_path):
    root = hand_root(tmp_path / "hq")
    bad = root / cm.PHOTO_DIR / "2.png"
    for shape in ((2 * H, 2 * H), (2 * H + 1, 2 * W + 2), (H // 2, W // 2), (2 * H, 3 * W)):
        _png(bad, np.zeros(shape + (3,), np.uint8))
        with pytest.raises(DataError, match=rf"2.png: the photo is {shape[0]}x{shape[1]} \(HxW\), but its label map "
                                            rf".*00002_skin.png is {H}x{W} \(HxW\).*integer multiple"):
            open_source(root / "train", **KW)
    src = open_source(root / "train", validate=False, **KW)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)not an integer multiple.*2.png"):
        _load(src, 1)


# ----------------------------------------------------------------------------- splits


def test_split_from_mapping_and_partition(tmp_path, caplog):
    root = tmp_path / "hq"
    for i in range(6):
        write_example(root, i, _hand_parts(), _photo(i, 2 * H, 2 * W))
    # CelebA files: 5, 190000, 7, 170000, 9, 11; the partition file moves file 11 (a train number) to test
    write_splits(root, {0: 5, 1: 190000, 2: 7, 3: 170000, 4: 9, 5: 11}, partition={11: "2"})
    assert find_splits(root) == {"train": root / "train", "val": root / "val", "test": root / "test"}
    names = {s: open_source(root / s, **KW).names for s in ("train", "val", "test")}
    assert names == {"train": ("0", "2", "4"), "val": ("3",), "test": ("1", "5")}
    (root / cm.PARTITION_FILE).unlink()  # without it: CelebA's ranges, said in a log line
    with caplog.at_level(logging.WARNING, logger="tfi2i.data"):
        test = open_source(root / "test", **KW)
    assert test.names == ("1",)
    said = f"{root / cm.PARTITION_FILE} not found: splitting CelebAMask-HQ by CelebA's file-number ranges"
    assert said in caplog.text
    assert open_source(root / "train", **KW).names == ("0", "2", "4", "5")


def test_partition_and_mapping_errors(tmp_path):
    root = hand_root(tmp_path / "hq")
    (root / cm.PARTITION_FILE).write_text("000005.jpg 0\n000007.jpg 0\n")
    with pytest.raises(DataError, match=r"list_eval_partition.txt: 1 CelebA file\(s\) of .* not in it: "
                                        r"1 \(190000.jpg\)"):
        open_source(root / "train", **KW)
    (root / cm.PARTITION_FILE).write_text("000005.jpg 0\n000007.jpg 3\n")
    with pytest.raises(DataError, match=r"list_eval_partition.txt, line 2: expected '<orig_file> <0\|1\|2>'"):
        open_source(root / "train", **KW)
    (root / cm.PARTITION_FILE).unlink()
    (root / cm.MAPPING_FILE).write_text("idx orig_idx orig_file\n0 4 000005.jpg\n2 6\n")
    with pytest.raises(DataError, match=r"CelebA-HQ-to-CelebA-mapping.txt, line 3: expected '<idx> <orig_idx> "
                                        r"<orig_file>'"):
        open_source(root / "train", **KW)
    (root / cm.MAPPING_FILE).write_text("idx orig_idx orig_file\n0 4 000005.jpg\n2 6 000007.jpg\n")
    with pytest.raises(DataError, match=r"1 id\(s\) with a label map or photo are not in this mapping file: 1"):
        open_source(root / "train", **KW)
    (root / cm.MAPPING_FILE).unlink()
    with pytest.raises(DataError, match=r"CelebA-HQ-to-CelebA-mapping.txt: CelebA-HQ -> CelebA mapping file .*not "
                                        r"found"):
        open_source(root / "train", **KW)


# ----------------------------------------------------------------------------- errors name the file


def test_missing_photo_names_it(tmp_path):
    root = hand_root(tmp_path / "hq")
    (root / cm.PHOTO_DIR / "2.png").unlink()
    with pytest.raises(DataError, match=r"1 label map\(s\) of split 'train' have no photo: .*CelebA-HQ-img/2.jpg "
                                        r"not found"):
        open_source(root / "train", **KW)
    # a photo of the split without any mask is refused too (not read as all background)
    root2 = hand_root(tmp_path / "hq2")
    for f in (root2 / cm.PARTS_DIR / "0").glob("00002_*.png"):
        f.unlink()
    with pytest.raises(DataError, match=r"1 photo\(s\) of split 'train' have no label map .*: 2.png"):
        open_source(root2 / "train", **KW)


def test_bad_masks_name_the_file(tmp_path):
    root = hand_root(tmp_path / "hq")
    nose = root / cm.PARTS_DIR / "0" / "00002_nose.png"
    _png(nose, np.zeros((H + 1, W), np.uint8))  # wrong size
    with pytest.raises(DataError, match=r"1 of 2 face label/photo pairs .* failed validation:\n  .*00002_nose.png: "
                                        r"mask of the wrong size: 5x6 \(HxW\), but .*00002_skin.png .* is 4x6"):
        open_source(root / "train", **KW)
    src = open_source(root / "train", validate=False, **KW)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)part mask of the wrong size.*00002_nose.png"):
        _load(src, 1)
    values = np.zeros((H, W), np.uint8)
    values[0, 0], values[1, 1] = 128, 255
    _png(nose, values)  # not binary
    with pytest.raises(DataError, match=r"00002_nose.png: not a binary mask: it holds values other than 0 and 255 "
                                        r"\(128\)"):
        open_source(root / "train", **KW)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)not a binary part mask.*00002_nose.png"):
        _load(src, 1)
    colour = np.zeros((H, W, 3), np.uint8)
    colour[0, 0] = (255, 0, 0)
    _png(nose, colour)
    with pytest.raises(DataError, match=r"00002_nose.png: a part mask must be grey.* colour channels differ"):
        open_source(root / "train", **KW)
    _png(nose, np.zeros((H, W), np.uint16))
    with pytest.raises(DataError, match=r"00002_nose.png: a part mask must be an 8-bit PNG"):
        open_source(root / "train", **KW)
    nose.unlink()
    _png(root / cm.PARTS_DIR / "0" / "00002_beard.png", np.zeros((H, W), np.uint8))
    with pytest.raises(DataError, match=r"1 mask\(s\) of an unknown part name: 0/00002_beard.png; the parts of "
                                        r"CelebAMask-HQ are skin, nose"):
        open_source(root / "train", **KW)
    (root / cm.PARTS_DIR / "0" / "00002_beard.png").rename(root / cm.PARTS_DIR / "0" / "skin.png")
    with pytest.raises(DataError, match=r"1 file\(s\) not named <id:05d>_<part>.png: 0/skin.png"):
        open_source(root / "train", **KW)


def test_empty_split_and_bad_arguments(tmp_path):
    root = hand_root(tmp_path / "hq")
    assert find_splits(root) == {"train": root / "train", "test": root / "test"}  # no val images
    with pytest.raises(DataError, match=r"hq: split 'val' is empty: none of the 3 image\(s\) with label maps in "
                                        r".*CelebAMask-HQ-mask-anno is in it by .*CelebA-HQ-to-CelebA-mapping.txt"):
        open_source(root / "val", **KW)
    with pytest.raises(DataError, match=r"hq: is the root of a CelebAMask-HQ data set; open one split"):
        open_source(root, **KW)
    with pytest.raises(DataError, match=r"layout 'celebamask' maps face label maps \(x\) to photos \(y\)"):
        open_source(root / "train", direction="BtoA", **KW)
    with pytest.raises(DataError, match=r"maps face label maps"):
        open_source(root / "train", x_kind="rgb")
    with pytest.raises(DataError, match=r"has 19 classes .*: set data.num_classes=19, got 18"):
        open_source(root / "train", x_kind="labels", num_classes=18)
    with pytest.raises(DataError, match=r"CelebAMask-HQ has no instance maps"):
        open_source(root / "train", instances="inst", **KW)
    with pytest.raises(DataError, match=r"layout 'celebamask' needs ROOT/train, ROOT/val or ROOT/test"):
        open_source(tmp_path, layout="celebamask", **KW)
    with pytest.raises(DataError, match=r"split 'dev' is not valid for layout 'celebamask'"):
        CelebAMaskHQ(root, "dev")
    with pytest.raises(DataError, match=r"masks='both' is not valid"):
        CelebAMaskHQ(root, masks="both")


# ----------------------------------------------------------------------------- detection, open_data, the pipeline


def _cfg(path, **data):
    base = {"path": str(path), **KW, "load_size": 72, "crop_size": 64, "batch_size": 2}
    return C.replace(C.Config(), data={**base, **data})


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """The face demo at 64x64 masks (photos 128x128): 6 train, 2 val, 3 test."""
    return demo.make_face_demo(tmp_path_factory.mktemp("faces") / "hq", num_train=6, num_val=2, num_test=3,
                               size=(64, 64))


def test_auto_detection_and_open_data(faces, tmp_path):
    assert "celebamask" in LAYOUTS
    assert find_splits(faces) == {"train": faces / "train", "val": faces / "val", "test": faces / "test"}
    for layout in ("auto", "celebamask"):
        src = open_source(faces / "test", layout=layout, **KW)
        assert isinstance(src, CelebAMaskHQ) and src.split == "test" and len(src) == 3
    train, evaluation, _ = open_data(_cfg(faces, eval_split="test"))  # the paper's protocol: train / test
    assert (train.split, evaluation.split, len(train), len(evaluation)) == ("train", "test", 6, 3)
    _, evaluation, _ = open_data(_cfg(faces))  # auto: val first, like the other layouts
    assert evaluation.split == "val"
    _, evaluation, _ = open_data(_cfg(faces, eval_path=str(faces / "test")))
    assert evaluation.split == "test"
    train, _, _ = open_data(_cfg(faces, num_train=4, layout="celebamask"))
    assert isinstance(train, Subset) and len(train) == 4 and isinstance(train.source, CelebAMaskHQ)
    assert "CelebAMaskHQ(" in train.describe() and "19 classes" in train.describe()


def test_train_batch_through_the_pipeline(faces):
    cfg = _cfg(faces).data
    src = open_source(faces / "train", **KW)
    ds, _ = pipeline.train_dataset(src, cfg, seed=1)
    for b in ds.take(2):
        assert set(b) == {"x", "y"}
        x, y = b["x"].numpy(), b["y"].numpy()
        assert x.dtype == np.int32 and x.shape == (2, 64, 64, 1) and x.min() >= 0 and x.max() < 19
        assert y.dtype == np.float32 and y.shape == (2, 64, 64, 3) and -1 <= y.min() and y.max() <= 1
        assert len(np.unique(x)) > 8  # a face, not a blank map
    ev = next(iter(pipeline.eval_dataset(src, _cfg(faces, crop_size=64).data)))
    assert ev["x"].shape == (2, 64, 64, 1) and ev["name"].numpy().tolist() == [b"0", b"3"]


# ----------------------------------------------------------------------------- merged label maps


def test_merged_folder_variant(tmp_path):
    root = hand_root(tmp_path / "merged", merged=True)
    assert not (root / cm.PARTS_DIR).exists() and cm.is_root(root)
    src = open_source(root / "train", **KW)
    assert src.masks == "merged" and src.folder_a == root / cm.MERGED_DIR
    np.testing.assert_array_equal(src.read_pair(0)["x"][:, :, 0], EXPECTED)
    np.testing.assert_array_equal(_load(src, 0)["x"][:, :, 0], EXPECTED)
    _png(root / cm.MERGED_DIR / "2.png", np.full((H, W), 19, np.uint8))
    with pytest.raises(DataError, match=r"2.png: class id 19 is outside \[0, 19\)"):
        open_source(root / "train", **KW)


def test_merged_demo_equals_the_parts_demo(faces, tmp_path):
    merged = demo.make_face_demo(tmp_path / "m", num_train=6, num_val=2, num_test=3, size=(64, 64),
                                 layout="celebamask-merged")
    assert (merged / cm.MERGED_DIR).is_dir() and not (merged / cm.PARTS_DIR).exists()
    a, b = open_source(faces / "train", **KW), open_source(merged / "train", **KW)
    assert (a.masks, b.masks) == ("parts", "merged") and a.names == b.names
    for i in range(len(a)):
        np.testing.assert_array_equal(a.read_pair(i)["x"], b.read_pair(i)["x"])
    # both folders: the part masks (the original annotation) unless asked for the merged ones
    os.symlink(merged / cm.MERGED_DIR, faces / cm.MERGED_DIR)
    try:
        assert CelebAMaskHQ(faces, "train").masks == "parts"
        assert CelebAMaskHQ(faces, "train", masks="merged").masks == "merged"
    finally:
        (faces / cm.MERGED_DIR).unlink()


# ----------------------------------------------------------------------------- the demo maker


def test_face_demo_layout(faces):
    root = faces
    assert sorted(p.name for p in root.iterdir()) == sorted([cm.PHOTO_DIR, cm.PARTS_DIR, cm.MAPPING_FILE,
                                                             cm.PARTITION_FILE, "face_demo.json"])
    assert sorted(p.name for p in (root / cm.PARTS_DIR).iterdir()) == ["0"]
    assert len(list((root / cm.PHOTO_DIR).glob("*.jpg"))) == 11
    assert (root / cm.PARTS_DIR / "0" / "00000_skin.png").is_file()
    assert cv2.imread(str(root / cm.PHOTO_DIR / "0.jpg")).shape == (128, 128, 3)
    mask = cv2.imread(str(root / cm.PARTS_DIR / "0" / "00000_skin.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (64, 64) and set(np.unique(mask)) == {0, 255}
    lines = (root / cm.MAPPING_FILE).read_text().splitlines()
    assert lines[0].split() == ["idx", "orig_idx", "orig_file"] and lines[1].split() == ["0", "0", "000001.jpg"]
    assert lines[2].split() == ["1", "162770", "162771.jpg"]  # ids interleave the splits
    assert json.loads((root / "face_demo.json").read_text()) == {
        "version": demo.FACE_DEMO_VERSION, "num_train": 6, "num_val": 2, "num_test": 3, "size": [64, 64],
        "seed": 0, "layout": "celebamask"}
    counts, present = {}, set()
    for split in ("train", "val", "test"):
        src = open_source(root / split, **KW)
        counts[split] = len(src)
        assert set(src.sizes) == {(64, 64)}
        for i in range(len(src)):
            pair = src.read_pair(i)
            present |= set(np.unique(pair["x"]).tolist())
            assert pair["y"].shape == (64, 64, 3)
            graph = _load(src, i)
            np.testing.assert_array_equal(graph["x"], pair["x"])
            np.testing.assert_array_equal(graph["y"], pair["y"])  # JPEG decode + area resize agree exactly
    assert counts == {"train": 6, "val": 2, "test": 3}
    assert present == set(range(19))  # every class somewhere
    train = open_source(root / "train", **KW)
    assert set(np.unique(np.concatenate([train.read_pair(i)["x"].ravel() for i in range(5)]))) == set(range(19))


def test_face_demo_deterministic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("TFI2I_CACHE", str(tmp_path / "cache"))  # its own cache: it regenerates a set on purpose
    a = demo.make_face_demo(tmp_path / "a", num_train=2, num_val=1, size=(32, 48))
    b = demo.make_face_demo(tmp_path / "b", num_train=2, num_val=1, size=(32, 48))
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    c = demo.make_face_demo(tmp_path / "c", num_train=2, num_val=1, size=(32, 48), seed=1)
    assert (c / cm.PHOTO_DIR / "0.jpg").read_bytes() != (a / cm.PHOTO_DIR / "0.jpg").read_bytes()
    assert open_source(a / "train", **KW).sizes == ((32, 48), (32, 48))
    with pytest.raises(ValueError, match=r"layout 'pix2pixhd' is not one of celebamask, celebamask-merged"):
        demo.make_face_demo(tmp_path / "d", layout="pix2pixhd")
    with pytest.raises(ValueError, match=r"at least 32x32"):
        demo.make_face_demo(tmp_path / "d", size=(16, 64))
    first = demo.ensure_face_demo((32, 32), num_train=2, num_val=1)
    assert first.name == f"face_demo_v{demo.FACE_DEMO_VERSION}_32x32"
    stamp = (first / "face_demo.json").stat().st_mtime_ns
    assert demo.ensure_face_demo((32, 32), num_train=2, num_val=1) == first
    assert (first / "face_demo.json").stat().st_mtime_ns == stamp  # cached: not generated again
    again = demo.ensure_face_demo((32, 32), num_train=3, num_val=1)
    assert again == first and len(open_source(again / "train", **KW)) == 3
    with pytest.raises(TypeError, match=r"unexpected arguments: \['photos_only'\]"):
        demo.ensure_face_demo((32, 32), photos_only=True)
