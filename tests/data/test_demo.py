"""Tests for tfi2i.data.demo: the generated labels -> photo demo data set."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from tfi2i.data import demo
from tfi2i.data.demo import DEMO_VERSION, PALETTE, default_demo_root, ensure_demo, make_demo
from tfi2i.data.images import read_image
from tfi2i.data.sources import SideBySide, find_splits, open_source


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def default_set(tmp_path_factory):
    """The default demo set (56 pairs at 256), generated once (its speed: benchmarks/bench_demo.py)."""
    root = tmp_path_factory.mktemp("demo") / "set"
    make_demo(root)
    return root


def test_default_set_well_formed(default_set):
    root = default_set
    assert [p.name for p in sorted(root.iterdir())] == ["demo.json", "train", "val"]
    splits = find_splits(root)
    assert list(splits) == ["train", "val"]
    train = open_source(splits["train"], direction="AtoB")
    val = open_source(splits["val"], direction="AtoB")
    assert isinstance(train, SideBySide) and len(train) == 48 and len(val) == 8
    assert set(train.sizes) == {(256, 256)} and train.names[:2] == ("0000", "0001")
    assert json.loads((root / "demo.json").read_text()) == {
        "version": DEMO_VERSION, "num_train": 48, "num_val": 8, "size": 256, "seed": 0}


def test_byte_identical_for_same_seed(default_set, tmp_path):
    root = default_set
    again = make_demo(tmp_path / "again")
    assert again == tmp_path / "again"
    assert digest(again) == digest(root)
    other = make_demo(tmp_path / "other", num_train=2, num_val=1, seed=1)
    assert digest(other)["train/0000.png"] != digest(root)["train/0000.png"]


def test_image_does_not_depend_on_count(default_set, tmp_path):
    root = default_set
    small = make_demo(tmp_path / "small", num_train=3, num_val=0)
    assert not (small / "val").exists()
    d_small, d_full = digest(small), digest(root)
    for i in range(3):
        assert d_small[f"train/{i:04d}.png"] == d_full[f"train/{i:04d}.png"]


def test_labels_use_palette_and_photos_follow_classes(default_set):
    root = default_set
    src = open_source(root / "train")
    seen = set()
    class_means = {c: [] for c in range(len(PALETTE))}
    for i in range(12):
        pair = src.read_pair(i)
        lab, photo = pair["x"], pair["y"]
        ids = (lab[:, :, None, :] == PALETTE[None, None]).all(-1)  # [H, W, classes]
        assert ids.any(-1).all(), "label map holds a colour outside the palette"
        cls = ids.argmax(-1)
        present = np.unique(cls)
        assert len(present) >= 3
        seen.update(present.tolist())
        for c in present:
            class_means[c].append(photo[cls == c].mean(0))
    assert seen == set(range(len(PALETTE)))
    means = np.array([np.mean(v, 0) for v in class_means.values()])
    # learnable mapping: the sky, ground, road and foliage look different on average
    for a, b in [(demo.SKY, demo.GROUND), (demo.GROUND, demo.ROAD), (demo.SKY, demo.ROAD),
                 (demo.ROAD, demo.TREE), (demo.SKY, demo.TREE)]:
        assert np.abs(means[a] - means[b]).max() > 25, (demo.CLASSES[a], demo.CLASSES[b])


def test_png_layout(default_set):
    root = default_set
    img = read_image(root / "val" / "0000.png")
    assert img.shape == (256, 512, 3) and img.dtype == np.uint8


def test_replaces_atomically(tmp_path):
    root = tmp_path / "d"
    make_demo(root, num_train=2, num_val=1, size=32)
    (root / "stale.txt").write_text("old")
    make_demo(root, num_train=1, num_val=1, size=32)
    assert not (root / "stale.txt").exists()
    assert sorted(p.name for p in (root / "train").iterdir()) == ["0000.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no temporary siblings left


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        make_demo(tmp_path / "x", num_train=0)
    with pytest.raises(ValueError):
        make_demo(tmp_path / "x", size=8)
    with pytest.raises(TypeError):
        ensure_demo(tmp_path / "x", num_trian=3)


def test_default_root_and_ensure(tmp_path, monkeypatch):
    monkeypatch.setenv("TFI2I_CACHE", str(tmp_path / "cache"))
    assert default_demo_root(64) == tmp_path / "cache" / f"demo_v{DEMO_VERSION}_64"
    root = ensure_demo(size=64, num_train=2, num_val=1)
    assert root == default_demo_root(64)
    stamp = (root / "train" / "0000.png").stat().st_mtime_ns
    marker = (root / "demo.json").stat().st_ino
    assert ensure_demo(size=64, num_train=2, num_val=1) == root  # cached: nothing rewritten
    assert (root / "train" / "0000.png").stat().st_mtime_ns == stamp
    assert (root / "demo.json").stat().st_ino == marker
    ensure_demo(size=64, num_train=3, num_val=1)  # parameters differ: regenerated
    assert len(list((root / "train").iterdir())) == 3
    (root / "demo.json").write_text("{broken")
    ensure_demo(size=64, num_train=3, num_val=1)
    assert json.loads((root / "demo.json").read_text())["num_train"] == 3
