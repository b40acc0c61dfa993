"""Tests for tfi2i.data.sources: listing, validation, layouts and graph-mode loading."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfi2i.data.images import DataError, read_image
from tfi2i.data.sources import (
    PairedSource,
    SideBySide,
    TwoFolders,
    find_splits,
    is_image_file,
    list_images,
    open_source,
)


def shared_data() -> Path:
    """Real test data: $TFI2I_SHARED_DATA, else ../shared/data next to the repository."""
    env = os.environ.get("TFI2I_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


def rgb(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write(path: Path, rgb_img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb_img[:, :, ::-1])
    return path


def make_side_by_side(folder: Path, names, h=6, w=5, ext=".png"):
    """Write side-by-side pair files; returns {name: (A, B)} as RGB arrays."""
    pairs = {}
    for i, n in enumerate(names):
        a, b = rgb(h, w, 2 * i), rgb(h, w, 2 * i + 1)
        write(folder / f"{n}{ext}", np.concatenate([a, b], axis=1))
        pairs[n] = (a, b)
    return pairs


def run_pipeline(src: PairedSource):
    ds = tf.data.Dataset.range(len(src)).map(src.load)
    assert ds.element_spec["x"].shape.as_list() == [None, None, 3]
    assert ds.element_spec["x"].dtype == tf.uint8
    return [{k: v.numpy() for k, v in e.items()} for e in ds]


def msg_of(excinfo) -> str:
    return str(excinfo.value)


# ----------------------------------------------------------------------------- side by side


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_side_by_side_pipeline(tmp_path, direction):
    pairs = make_side_by_side(tmp_path, ["10", "2", "1", "b", "a"])
    src = SideBySide(tmp_path, direction=direction)
    assert src.names == ("1", "2", "10", "a", "b")  # natural, deterministic order
    assert len(src) == 5 and src.sizes == ((6, 5),) * 5
    out = run_pipeline(src)
    for name, e in zip(src.names, out):
        a, b = pairs[name]
        x, y = (a, b) if direction == "AtoB" else (b, a)
        assert e["name"].decode() == name
        np.testing.assert_array_equal(e["x"], x)
        np.testing.assert_array_equal(e["y"], y)
        rp = src.read_pair(src.names.index(name))
        np.testing.assert_array_equal(rp["x"], x)
        np.testing.assert_array_equal(rp["y"], y)
    assert direction in src.describe() and "5 pairs" in src.describe()


def test_side_by_side_load_in_tf_function(tmp_path):
    make_side_by_side(tmp_path, ["p", "q"])
    src = SideBySide(tmp_path)
    fn = tf.function(lambda i: src.load(i)["x"])
    np.testing.assert_array_equal(fn(tf.constant(1)).numpy(), src.read_pair(1)["x"])


def test_pairs_may_differ_in_size(tmp_path):
    write(tmp_path / "small.png", rgb(4, 6, 0))
    write(tmp_path / "big.png", rgb(8, 10, 1))
    src = SideBySide(tmp_path)
    assert src.sizes == ((8, 5), (4, 3))
    assert [e["x"].shape for e in run_pipeline(src)] == [(8, 5, 3), (4, 3, 3)]


def test_listing_skips_hidden_and_non_images(tmp_path):
    make_side_by_side(tmp_path, ["1"])
    (tmp_path / "._1.png").write_bytes(b"\x00\x05")  # macOS resource fork: would be corrupt
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["1.png"]
    assert len(SideBySide(tmp_path)) == 1


def test_is_image_file(tmp_path):
    for name in ("a.JPG", "b.jpeg", "c.png", "d.bmp", "e.webp", "f.txt", ".g.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "dir.png").mkdir()
    got = {p.name for p in tmp_path.iterdir() if is_image_file(p)}
    assert got == {"a.JPG", "b.jpeg", "c.png", "d.bmp", "e.webp"}
    assert not is_image_file(tmp_path / "missing.png")


def test_validation_logs_one_info_line(tmp_path, caplog):
    make_side_by_side(tmp_path, ["1", "2", "3"])
    with caplog.at_level(logging.INFO, logger="tfi2i.data"):
        SideBySide(tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.name == "tfi2i.data"]
    assert len(lines) == 1 and "validated 3" in lines[0] and " s" in lines[0]


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="nothere"):
        SideBySide(tmp_path / "nothere")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as ei:
        SideBySide(tmp_path / "empty")
    assert "empty" in msg_of(ei) and "no image files" in msg_of(ei)


def test_corrupt_file_named(tmp_path):
    make_side_by_side(tmp_path, ["1", "2"])
    (tmp_path / "3.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    with pytest.raises(DataError) as ei:
        SideBySide(tmp_path)
    assert "3.jpg" in msg_of(ei) and "1 of 3" in msg_of(ei)
    assert len(SideBySide(tmp_path, validate=False)) == 3  # listing only


def test_odd_width_named(tmp_path):
    write(tmp_path / "odd.png", rgb(4, 7, 0))
    with pytest.raises(DataError) as ei:
        SideBySide(tmp_path)
    assert "odd.png" in msg_of(ei) and "width 7 is odd" in msg_of(ei)


def test_unsupported_format_named(tmp_path):
    ok, buf = cv2.imencode(".tiff", rgb(4, 8, 0))
    (tmp_path / "tiff_inside.png").write_bytes(buf.tobytes())
    with pytest.raises(DataError) as ei:
        SideBySide(tmp_path)
    assert "tiff_inside.png" in msg_of(ei) and "TIFF" in msg_of(ei)


def test_many_bad_files_listed_up_to_five(tmp_path):
    for i in range(7):
        (tmp_path / f"bad{i}.png").write_bytes(b"nope")
    with pytest.raises(DataError) as ei:
        SideBySide(tmp_path)
    m = msg_of(ei)
    assert "7 of 7" in m and "and 2 more" in m and len(re.findall(r"bad\d\.png", m)) == 5


def test_duplicate_stems(tmp_path):
    write(tmp_path / "x.png", rgb(4, 8, 0))
    write(tmp_path / "x.jpg", rgb(4, 8, 1))
    with pytest.raises(DataError) as ei:
        SideBySide(tmp_path, validate=False)
    assert "x.jpg" in msg_of(ei) and "x.png" in msg_of(ei)


def test_bad_direction_lists_valid_values(tmp_path):
    make_side_by_side(tmp_path, ["1"])
    for call in (lambda: SideBySide(tmp_path, direction="A2B"),
                 lambda: open_source(tmp_path, direction="ab")):
        with pytest.raises(DataError) as ei:
            call()
        assert "AtoB" in msg_of(ei) and "BtoA" in msg_of(ei)
    with pytest.raises(DataError, match="side_by_side"):
        open_source(tmp_path, layout="zip")


# ----------------------------------------------------------------------------- two folders


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_two_folders_stem_matching_across_extensions(tmp_path, direction):
    a_imgs = {n: rgb(5, 7, i) for i, n in enumerate(["k2", "k10", "k1"])}
    b_imgs = {n: rgb(5, 7, 10 + i) for i, n in enumerate(["k2", "k10", "k1"])}
    for n in a_imgs:
        write(tmp_path / "A" / f"{n}.png", a_imgs[n])
    write(tmp_path / "B" / "k1.jpg", b_imgs["k1"])  # lossy: compare with read_image
    write(tmp_path / "B" / "k2.bmp", b_imgs["k2"])
    write(tmp_path / "B" / "k10.png", b_imgs["k10"])
    src = TwoFolders(tmp_path / "A", tmp_path / "B", direction=direction)
    assert src.names == ("k1", "k2", "k10")
    assert [f.name for f in src.files_b] == ["k1.jpg", "k2.bmp", "k10.png"]
    for i, e in enumerate(run_pipeline(src)):
        a, b = read_image(src.files_a[i]), read_image(src.files_b[i])
        x, y = (a, b) if direction == "AtoB" else (b, a)
        tol = 3 if src.files_b[i].suffix == ".jpg" else 0  # JPEG decoders may differ slightly
        assert np.abs(e["x"].astype(int) - x).max() <= tol
        assert np.abs(e["y"].astype(int) - y).max() <= tol
        assert e["name"].decode() == src.names[i]
    np.testing.assert_array_equal(src.read_pair(1)["x" if direction == "AtoB" else "y"], a_imgs["k2"])


def test_two_folders_unmatched_stems(tmp_path):
    for n in ["c", "d"]:
        write(tmp_path / "A" / f"{n}.png", rgb(4, 4, 0))
        write(tmp_path / "B" / f"{n}.png", rgb(4, 4, 0))
    for i in range(7):
        write(tmp_path / "A" / f"onlyA{i}.png", rgb(4, 4, 0))
    write(tmp_path / "B" / "onlyB.jpg", rgb(4, 4, 0))
    with pytest.raises(DataError) as ei:
        TwoFolders(tmp_path / "A", tmp_path / "B", validate=False)
    m = msg_of(ei)
    assert "7 file(s)" in m and len(re.findall(r"onlyA\d\.png", m)) == 5 and "1 file(s)" in m and "onlyB.jpg" in m


def test_two_folders_size_mismatch(tmp_path):
    write(tmp_path / "A" / "p.png", rgb(8, 8, 0))
    write(tmp_path / "B" / "p.jpg", rgb(8, 10, 0))
    with pytest.raises(DataError) as ei:
        TwoFolders(tmp_path / "A", tmp_path / "B")
    m = msg_of(ei)
    assert "p.png" in m and "p.jpg" in m and "8x8" in m and "8x10" in m


def test_two_folders_missing_or_empty(tmp_path):
    write(tmp_path / "A" / "p.png", rgb(4, 4, 0))
    with pytest.raises(DataError, match="B"):
        TwoFolders(tmp_path / "A", tmp_path / "B")
    (tmp_path / "B").mkdir()
    with pytest.raises(DataError, match="no image files"):
        TwoFolders(tmp_path / "A", tmp_path / "B")


def test_two_folders_corrupt_file_named(tmp_path):
    write(tmp_path / "A" / "p.png", rgb(4, 4, 0))
    (tmp_path / "B").mkdir()
    (tmp_path / "B" / "p.png").write_bytes(b"")
    with pytest.raises(DataError, match="p.png"):
        TwoFolders(tmp_path / "A", tmp_path / "B")


# ----------------------------------------------------------------------------- open / splits


def test_open_source_auto(tmp_path):
    make_side_by_side(tmp_path / "sbs", ["1", "2"])
    for sub in ("A", "B"):
        write(tmp_path / "two" / sub / "1.png", rgb(4, 4, 0))
    for sub in ("a", "b"):
        write(tmp_path / "lower" / sub / "1.png", rgb(4, 4, 0))
    assert isinstance(open_source(tmp_path / "sbs"), SideBySide)
    src = open_source(tmp_path / "two", direction="BtoA")
    assert isinstance(src, TwoFolders) and src.direction == "BtoA"
    assert isinstance(open_source(tmp_path / "lower"), TwoFolders)
    assert isinstance(open_source(tmp_path / "sbs", layout="side_by_side"), SideBySide)
    assert isinstance(open_source(tmp_path / "two", layout="two_folders"), TwoFolders)
    with pytest.raises(DataError, match="A/ and B/"):
        open_source(tmp_path / "sbs", layout="two_folders")


def test_open_source_errors(tmp_path):
    with pytest.raises(DataError, match="missing"):
        open_source(tmp_path / "missing")
    make_side_by_side(tmp_path / "root" / "train", ["1"])
    with pytest.raises(DataError) as ei:
        open_source(tmp_path / "root")
    assert "train" in msg_of(ei) and "find_splits" in msg_of(ei)


def test_find_splits(tmp_path):
    make_side_by_side(tmp_path / "ds" / "train", ["1"])
    make_side_by_side(tmp_path / "ds" / "test", ["1"])
    assert find_splits(tmp_path / "ds") == {"train": tmp_path / "ds" / "train",
                                           "test": tmp_path / "ds" / "test"}
    make_side_by_side(tmp_path / "flat", ["1"])
    assert find_splits(tmp_path / "flat") == {"train": tmp_path / "flat"}
    write(tmp_path / "ab" / "A" / "1.png", rgb(4, 4, 0))
    write(tmp_path / "ab" / "B" / "1.png", rgb(4, 4, 0))
    assert find_splits(tmp_path / "ab") == {"train": tmp_path / "ab"}
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError, match="nothing"):
        find_splits(tmp_path / "nothing")
    with pytest.raises(DataError, match="gone"):
        find_splits(tmp_path / "gone")


# ----------------------------------------------------------------------------- real data


def test_real_facades():
    folder = shared_data() / "facades_train"
    if not folder.is_dir():
        pytest.skip(f"real data absent: {folder} (set TFI2I_SHARED_DATA to the shared data folder)")
    src = open_source(folder, direction="BtoA")
    assert isinstance(src, SideBySide) and len(src) == 400
    assert src.names[0] == "1" and set(src.sizes) == {(256, 256)}
    full = cv2.imread(str(folder / "1.jpg"), cv2.IMREAD_UNCHANGED)[:, :, ::-1]
    first = next(iter(tf.data.Dataset.range(1).map(src.load)))
    assert first["name"].numpy() == b"1"
    np.testing.assert_array_equal(src.read_pair(0)["x"], full[:, 256:])  # label map (B)
    np.testing.assert_array_equal(src.read_pair(0)["y"], full[:, :256])  # photo (A)
    assert np.abs(first["x"].numpy().astype(int) - full[:, 256:]).max() <= 3
    assert np.abs(first["y"].numpy().astype(int) - full[:, :256]).max() <= 3


def test_real_cityscapes_count():
    folder = shared_data() / "cityscapes_train300"
    if not folder.is_dir():
        pytest.skip(f"real data absent: {folder} (set TFI2I_SHARED_DATA to the shared data folder)")
    src = open_source(folder, direction="BtoA", validate=False)
    assert len(src) == 300 and src.sizes is None


def test_graph_checks_without_validation(tmp_path):
    write(tmp_path / "sbs" / "odd.png", rgb(4, 7, 0))
    src = SideBySide(tmp_path / "sbs", validate=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match="odd.png"):
        run_pipeline(src)
    write(tmp_path / "A" / "p.png", rgb(4, 4, 0))
    write(tmp_path / "B" / "p.png", rgb(4, 6, 0))
    src = TwoFolders(tmp_path / "A", tmp_path / "B", validate=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match="size mismatch"):
        run_pipeline(src)
