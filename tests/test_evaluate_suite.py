"""`tfi2i evaluate` with the whole metric suite: VIF, L1 on 0-255, FID/KID, FCN score, diversity, spectra."""

import json
import pathlib
import sys

import cv2
import keras
import numpy as np
import pytest

from tfi2i import cli, train
from tfi2i.config import replace
from tfi2i.metrics.cityscapes import TRAIN_COLORS
from tfi2i.metrics.vif import vifp

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "recipes"))
import pix2pix_facades as recipe  # noqa: E402


def write(path, rgb):
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))


@pytest.fixture
def folders(tmp_path):
    rng = np.random.default_rng(0)
    pred, target = tmp_path / "pred", tmp_path / "target"
    pred.mkdir(), target.mkdir()
    for i in range(4):
        t = cv2.GaussianBlur(rng.integers(0, 256, (64, 64, 3)).astype(np.uint8), (0, 0), 2)
        p = np.clip(t.astype(int) + rng.integers(-20, 21, t.shape), 0, 255).astype(np.uint8)
        write(target / f"{i}.png", t)
        write(pred / f"{i}.png", p)
    return pred, target


def test_vif_l1_255_fid_kid_from_folders(folders, tmp_path, capsys):
    pred, target = folders
    out = tmp_path / "report"
    code = cli.main(["evaluate", "--pred", str(pred), "--target", str(target), "--metrics", "l1,l1_255,vif,fid,kid",
                     "--inception-weights", "none", "--out", str(out), "--no-progress", "--spectrum"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())["pred"]
    assert report["l1_255"] == pytest.approx(255 * report["l1"], rel=1e-5)
    direct = [float(vifp(cv2.imread(str(target / f"{i}.png"))[None, ..., ::-1] / 255.0,
                          cv2.imread(str(pred / f"{i}.png"))[None, ..., ::-1] / 255.0)[0]) for i in range(4)]
    assert report["vif"] == pytest.approx(np.mean(direct), abs=1e-5)  # the target is VIF's reference
    assert report["fid"] > 0 and np.isfinite(report["kid"])
    table = (out / "report.md").read_text()
    assert "VIF ↑" in table and "FID ↓" in table and "L1 (0-255) ↓" in table
    assert (out / "spectrum.png").stat().st_size > 1000
    header = (out / "spectrum.csv").read_text().splitlines()[0]
    assert header == "frequency,pred,target"


def palette_segmenter(path):
    """A 1x1-conv 'segmenter' that is perfect on Cityscapes palette colours: logit_c = -|rgb - colour_c|^2 + |rgb|^2."""
    colours = np.asarray(TRAIN_COLORS, np.float32)[:19]  # trainIds 0..18
    inp = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(len(colours), 1)
    model = keras.Model(inp, conv(inp))
    conv.set_weights([2 * colours.T[None, None], -np.sum(colours**2, axis=1)])
    model.save(path)
    return path


def test_fcn_score_of_a_perfect_segmenter_is_one(tmp_path, capsys):
    rng = np.random.default_rng(1)
    colours = np.asarray(TRAIN_COLORS, np.uint8)[:19]
    pred, target, labels = (tmp_path / n for n in ("pred", "target", "labels"))
    for d in (pred, target, labels):
        d.mkdir()
    for i in range(3):
        ids = np.repeat(np.repeat(rng.integers(0, 19, (8, 8)), 8, 0), 8, 1)
        img = colours[ids]
        write(labels / f"{i}.png", img)
        write(pred / f"{i}.png", img)  # "generated photos" the segmenter reads perfectly
        write(target / f"{i}.png", colours[(ids + 1) % 19])  # real photos it always gets wrong
    model = palette_segmenter(tmp_path / "seg.keras")
    out = tmp_path / "report"
    code = cli.main(["evaluate", "--pred", str(pred), "--target", str(target), "--segmenter", str(model),
                     "--labels", str(labels), "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())["pred"]
    assert report["fcn_pixel_acc"] == 1.0 and report["fcn_class_iou"] == 1.0
    assert report["real_fcn_pixel_acc"] == 0.0
    assert "FCN class IoU ↑" in (out / "report.md").read_text()


def test_workdir_diversity_and_spectrum(tmp_path, capsys):
    w = tmp_path / "run"
    cfg = replace(recipe.smoke_config(), train={"steps": 2, "export_at_end": False})
    train.fit(cfg, recipe.build, str(w))
    out = tmp_path / "report"
    code = cli.main(["evaluate", "--workdir", str(w), "--diversity", "4", "--spectrum", "--out", str(out),
                     "--no-progress"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())["run"]
    assert report["pixel_std"] > 0  # the smoke U-Net has a dropout block: samples differ
    assert (out / "diversity_run.png").stat().st_size > 1000 and (out / "spectrum.png").exists()
    assert len(list((w / "eval_target").glob("*.png"))) == report["num_images"]


def test_clear_errors_for_unavailable_extras(folders, capsys):
    pred, target = folders
    code = cli.main(["evaluate", "--pred", str(pred), "--target", str(target), "--metrics", "lpips", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "lpips" in err and "Traceback" not in err
    code = cli.main(["evaluate", "--pred", str(pred), "--target", str(target), "--diversity", "3", "--out", "x"])
    assert code == 1 and "--workdir" in capsys.readouterr().err
