"""`tfi2i translate`: run dir and export agree, any size, tiling, unreadable files, output safety, CLI."""

import dataclasses
import logging
import os
import pathlib
import shutil
import sys

import numpy as np
import pytest

from tfi2i import config as C
from tfi2i import export, train, translate
from tfi2i.cli import main as cli_main
from tfi2i.data.images import read_image
from tfi2i.visualize import save_png

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "recipes"))
import pix2pix_facades as recipe  # noqa: E402
from tests.helpers import shared_data_dir





@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    fields = {"steps": 2}
    if "export_at_end" in {f.name for f in dataclasses.fields(C.TrainConfig)}:
        fields["export_at_end"] = False
    workdir = tmp_path_factory.mktemp("translate") / "run"
    train.fit(C.replace(recipe.smoke_config(), train=fields), recipe.build, str(workdir))
    return workdir


@pytest.fixture(scope="module")
def export_root(run_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    export.export_run(run_dir, root)
    return root


@pytest.fixture(scope="module")
def run_model(run_dir):
    return translate.load_translator(run_dir)


@pytest.fixture(scope="module")
def set5():
    path = shared_data_dir() / "sr_set5"
    if not path.is_dir():
        pytest.skip(f"real data absent: {path} (set TFI2I_SHARED_DATA)")
    return path


@pytest.fixture
def photos(set5, tmp_path):
    """A fresh copy of the Set5 photos (mixed sizes: 512^2, 288^2, 256^2, 280^2, 344x228)."""
    folder = tmp_path / "photos"
    shutil.copytree(set5, folder)
    return folder


def identity(max_pixels=None):
    """A translator that returns its input: tiling and batching must not change anything."""
    calls = []

    def fn(x):
        calls.append(tuple(x.shape))
        return x

    model = translate.Translator(fn, 1, max_pixels=max_pixels, source="identity")
    model.calls = calls
    return model


def smooth_image(h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([127.5 + 110 * np.sin(xx / 23 + yy / 31 + p) for p in (0, 2, 4)], -1).round().astype(np.uint8)


# --------------------------------------------------------------------------- models


def test_run_dir_and_export_agree_on_real_photos(photos, run_model, export_root, tmp_path):
    exported = translate.load_translator(export_root)  # an export root: its newest version
    assert exported.multiple == run_model.multiple == 64
    a = translate.translate_paths(run_model, photos, tmp_path / "from_run", batch_size=2, progress=False)
    b = translate.translate_paths(exported, photos, tmp_path / "from_export", batch_size=2, progress=False)
    assert a["translated"] == b["translated"] == 5 and not a["skipped"] and a["tiled"] == 0
    for src in sorted(photos.iterdir()):
        out_a, out_b = tmp_path / "from_run" / f"{src.stem}.png", tmp_path / "from_export" / f"{src.stem}.png"
        img_a, img_b = read_image(out_a), read_image(out_b)
        assert img_a.shape == img_b.shape == read_image(src).shape, src.name
        assert np.abs(img_a.astype(int) - img_b).max() <= 1, src.name


def test_a_version_folder_is_a_model_too(export_root, run_model):
    model = translate.load_translator(export_root / "1")
    img = smooth_image(50, 70)
    a, b = translate.translate_array(model, img), translate.translate_array(run_model, img)
    assert a.shape == (50, 70, 3) and np.abs(a.astype(int) - b).max() <= 1


def test_neither_run_nor_export_is_an_error(tmp_path):
    with pytest.raises(translate.TranslateError, match="neither"):
        translate.load_translator(tmp_path)
    with pytest.raises(translate.TranslateError, match="no such"):
        translate.load_translator(tmp_path / "missing")


# --------------------------------------------------------------------------- tiling and batching


def test_feathered_tiles_cover_every_pixel_exactly_once():
    x = np.random.default_rng(0).uniform(-1, 1, (157, 203, 3)).astype(np.float32)
    for tile, overlap in [(64, 16), (50, 0), (100, 49), (300, 32)]:
        y = translate._translate_tiled(identity(), x, tile, overlap, batch_size=3)
        np.testing.assert_allclose(y, x, atol=1e-6, err_msg=f"tile {tile} overlap {overlap}")


def test_tiled_close_to_whole_image(run_model):
    img = smooth_image(300, 260)
    whole = translate.translate_array(run_model, img)
    tiled = translate.translate_array(run_model, img, tile=128, overlap=32, batch_size=4)
    assert tiled.shape == whole.shape == (300, 260, 3)
    diff = np.abs(tiled.astype(int) - whole)
    assert diff.mean() < 0.5, diff.mean()  # grey levels; differences sit near tile borders


def test_large_images_are_tiled_automatically(tmp_path, monkeypatch):
    monkeypatch.setattr(translate, "AUTO_TILE_PIXELS", 100 * 100)
    save_png(tmp_path / "in" / "big.png", smooth_image(150, 120))
    save_png(tmp_path / "in" / "small.png", smooth_image(90, 90))
    model = identity()
    result = translate.translate_paths(model, tmp_path / "in", tmp_path / "out", progress=False)
    assert result["translated"] == 2 and result["tiled"] == 1
    assert read_image(tmp_path / "out" / "big.png").shape == (150, 120, 3)
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "big.png"), smooth_image(150, 120))
    # an export's max_pixels caps the tile size too
    capped = identity(max_pixels=40 * 40)
    translate.translate_paths(capped, tmp_path / "in", tmp_path / "out2", progress=False)
    assert max(h * w for _, h, w, _ in capped.calls) <= 40 * 40
    with pytest.raises(translate.TranslateError, match="max_pixels"):
        translate.translate_paths(capped, tmp_path / "in", tmp_path / "out3", tile=64, progress=False)


def test_same_size_images_are_batched_in_order(tmp_path):
    sizes = [(20, 30), (20, 30), (40, 40), (20, 30), (40, 40), (20, 30)]
    for i, (h, w) in enumerate(sizes):
        save_png(tmp_path / "in" / f"{i}.png", smooth_image(h, w))
    model = identity()
    result = translate.translate_paths(model, tmp_path / "in", tmp_path / "out", batch_size=3, progress=False)
    assert model.calls == [(3, 20, 30, 3), (2, 40, 40, 3), (1, 20, 30, 3)]
    assert result["outputs"] == [str(tmp_path / "out" / f"{i}.png") for i in (0, 1, 3, 2, 4, 5)]
    for i, (h, w) in enumerate(sizes):
        np.testing.assert_array_equal(read_image(tmp_path / "out" / f"{i}.png"), smooth_image(h, w))


# --------------------------------------------------------------------------- files and safety


def test_unreadable_files_are_skipped_and_counted(photos, run_model, tmp_path, caplog):
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (photos / "notes.txt").write_text("not an image")
    with caplog.at_level(logging.WARNING, logger="tfi2i.translate"):
        result = translate.translate_paths(run_model, photos, tmp_path / "out", progress=False)
    assert result["translated"] == 5
    assert [pathlib.Path(s["path"]).name for s in result["skipped"]] == ["broken.png", "notes.txt"]
    warned = [r.getMessage() for r in caplog.records if r.name == "tfi2i.translate"]
    assert len(warned) == 2 and "broken.png" in warned[0] and "notes.txt" in warned[1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{p.stem}.png" for p in photos.iterdir() if p.name not in ("broken.png", "notes.txt"))
    assert "skipped 2 unreadable: broken.png, notes.txt" in translate.summary(result)


def test_never_writes_into_an_input_folder(photos, run_model, tmp_path):
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    with pytest.raises(translate.TranslateError, match="input folder"):
        translate.translate_paths(run_model, photos, photos, progress=False)
    with pytest.raises(translate.TranslateError, match="input folder"):  # a single file, output = its folder
        translate.translate_paths(run_model, photos / "bird.png", photos, progress=False)
    link = tmp_path / "link"
    link.symlink_to(photos)
    with pytest.raises(translate.TranslateError, match="input folder"):
        translate.translate_paths(run_model, photos, link, progress=False)
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before
    (tmp_path / "other").mkdir()
    shutil.copy(photos / "bird.png", tmp_path / "other" / "bird.jpg")
    with pytest.raises(translate.TranslateError, match="both be written"):
        translate.translate_paths(run_model, [photos, tmp_path / "other"], tmp_path / "out", progress=False)


def test_overwrite_semantics(tmp_path, capsys):
    save_png(tmp_path / "in" / "a.png", smooth_image(20, 20))
    save_png(tmp_path / "in" / "b.png", smooth_image(30, 20))
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.png").write_bytes(b"old")
    with pytest.raises(translate.TranslateError, match=r"b\.png already exists.*overwrite"):
        translate.translate_paths(identity(), tmp_path / "in", out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["b.png"]  # refused up front: nothing was written
    assert (out / "b.png").read_bytes() == b"old"
    result = translate.translate_paths(identity(), tmp_path / "in", out, overwrite=True, progress=False)
    assert result["translated"] == 2
    np.testing.assert_array_equal(read_image(out / "b.png"), smooth_image(30, 20))


# --------------------------------------------------------------------------- CLI


def test_cli(photos, run_dir, export_root, tmp_path, capsys):
    out = tmp_path / "out"
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    args = ["translate", "--model", str(export_root), "--input", str(photos), "--output", str(out), "--no-progress"]
    assert cli_main(args) == 0
    printed = capsys.readouterr().out
    assert "translated 5 images" in printed and "skipped 1 unreadable: broken.jpg" in printed
    assert len(list(out.glob("*.png"))) == 5

    assert cli_main(args) == 1  # outputs exist
    assert "error:" in capsys.readouterr().err
    assert cli_main(args + ["--overwrite", "--tile", "128", "--overlap", "16", "--batch-size", "8"]) == 0
    assert "(5 in tiles)" in capsys.readouterr().out

    assert cli_main(["translate", "--model", str(run_dir), "--input", str(photos), "--output", str(photos)]) == 1
    assert "input folder" in capsys.readouterr().err
    assert cli_main(["translate", "--model", str(tmp_path), "--input", str(photos), "--output", str(out)]) == 1
    assert "neither" in capsys.readouterr().err

    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.png").write_bytes(b"nope")
    assert cli_main(["translate", "--model", str(run_dir), "--input", str(only_bad), "--output",
                     str(tmp_path / "out_bad"), "--no-progress"]) == 1  # nothing could be translated
    assert "no image could be translated" in capsys.readouterr().err
