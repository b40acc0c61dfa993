"""Folder evaluation, reports and the `evaluate` CLI subcommand."""

import argparse
import csv
import json
import math
import pathlib

import cv2
import numpy as np
import pytest

from tfi2i.evaluate import (
    EvaluationError,
    MetricAccumulator,
    add_parser,
    evaluate_folders,
    format_table,
    read_image,
    run,
    write_report,
)
from tfi2i.metrics import l1, mse, psnr, ssim

SIZE = (24, 32)  # H, W (>= 11 for SSIM)


def _rgb(seed, size=SIZE):
    rng = np.random.default_rng(seed)
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 255 / (h + w)], -1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def _write(path, rgb):
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))


def _make_pairs(tmp_path, n=3, pred_ext=".png", target_ext=".png"):
    pred, target = tmp_path / "pred", tmp_path / "target"
    pred.mkdir()
    target.mkdir()
    for i in range(n):
        t = _rgb(i)
        p = np.clip(t.astype(int) + (i + 1) * 5 - 7, 0, 255).astype(np.uint8)
        _write(target / f"img{i}{target_ext}", t)
        _write(pred / f"img{i}{pred_ext}", p)
    return pred, target


def _direct(pred_path, target_path):
    """Score one pair straight from the files with the metric functions."""
    p = cv2.imread(str(pred_path))[:, :, ::-1][None].astype(np.float32) / 255.0
    t = cv2.imread(str(target_path))[:, :, ::-1][None].astype(np.float32) / 255.0
    return {
        "l1": float(l1(p, t)[0]),
        "mse": float(mse(p, t)[0]),
        "psnr": float(psnr(p, t)[0]),
        "ssim": float(ssim(p, t)[0]),
    }


def test_folder_values_equal_direct_computation(tmp_path):
    pred, target = _make_pairs(tmp_path)
    res = evaluate_folders(pred, target, progress=False)
    assert res["num_images"] == 3
    assert res["scale"] == "[0,1]"
    assert set(res["per_image"]) == {"img0", "img1", "img2"}
    direct = {s: _direct(pred / f"{s}.png", target / f"{s}.png") for s in res["per_image"]}
    for stem, vals in direct.items():
        for m, v in vals.items():
            assert res["per_image"][stem][m] == pytest.approx(v, rel=1e-6)
    for m in ("l1", "mse", "psnr", "ssim"):
        assert res[m] == pytest.approx(np.mean([d[m] for d in direct.values()]), rel=1e-6)
    assert 0 < res["ssim"] < 1 and res["psnr"] > 10


def test_metric_subset(tmp_path):
    pred, target = _make_pairs(tmp_path, n=2)
    res = evaluate_folders(pred, target, metrics=("psnr",), progress=False)
    assert "psnr" in res and "ssim" not in res and "l1" not in res
    with pytest.raises(EvaluationError, match="unknown metric"):
        evaluate_folders(pred, target, metrics=("bogus",), progress=False)


def test_stem_matching_png_vs_jpg(tmp_path):
    pred, target = _make_pairs(tmp_path, n=2, pred_ext=".jpg", target_ext=".png")
    (pred / "notes.txt").write_text("not an image")  # non-image files are ignored
    res = evaluate_folders(pred, target, progress=False)
    assert res["num_images"] == 2
    d = _direct(pred / "img1.jpg", target / "img1.png")
    assert res["per_image"]["img1"]["psnr"] == pytest.approx(d["psnr"], rel=1e-6)


def test_identical_folders(tmp_path):
    pred, target = _make_pairs(tmp_path, n=1)
    _write(pred / "img0.png", read_image(target / "img0.png"))
    res = evaluate_folders(pred, target, progress=False)
    assert res["l1"] == 0 and res["mse"] == 0 and res["ssim"] == pytest.approx(1.0)
    assert math.isinf(res["psnr"])


def test_missing_prediction_names_file(tmp_path):
    pred, target = _make_pairs(tmp_path)
    (pred / "img1.png").unlink()
    with pytest.raises(EvaluationError, match=r"no prediction.*img1\.png"):
        evaluate_folders(pred, target, progress=False)


def test_missing_target_names_file(tmp_path):
    pred, target = _make_pairs(tmp_path)
    _write(pred / "extra.png", _rgb(9))
    with pytest.raises(EvaluationError, match=r"no target.*extra\.png"):
        evaluate_folders(pred, target, progress=False)


def test_size_mismatch(tmp_path):
    pred, target = _make_pairs(tmp_path)
    _write(pred / "img2.png", _rgb(2, size=(24, 30)))
    with pytest.raises(EvaluationError, match=r"size mismatch.*img2"):
        evaluate_folders(pred, target, progress=False)


def test_empty_and_missing_folder(tmp_path):
    pred, target = _make_pairs(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EvaluationError, match="no images"):
        evaluate_folders(empty, target, progress=False)
    with pytest.raises(EvaluationError, match="not found"):
        evaluate_folders(pred, tmp_path / "nope", progress=False)


def test_corrupt_file(tmp_path):
    pred, target = _make_pairs(tmp_path)
    (pred / "img1.png").write_bytes(b"this is not a png")
    with pytest.raises(EvaluationError, match=r"img1\.png"):
        evaluate_folders(pred, target, progress=False)


def test_duplicate_stems_are_ambiguous(tmp_path):
    pred, target = _make_pairs(tmp_path)
    _write(pred / "img0.jpg", _rgb(0))
    with pytest.raises(EvaluationError, match=r"img0\.jpg.*img0\.png|img0\.png.*img0\.jpg"):
        evaluate_folders(pred, target, progress=False)


def test_read_image_conversions(tmp_path):
    gray = np.arange(12 * 12, dtype=np.uint8).reshape(12, 12)
    assert cv2.imwrite(str(tmp_path / "g.png"), gray)
    g = read_image(tmp_path / "g.png")
    assert g.shape == (12, 12, 3) and g.dtype == np.uint8
    assert np.array_equal(g[:, :, 0], gray) and np.array_equal(g[:, :, 2], gray)

    rgb = _rgb(3, size=(12, 12))
    bgra = np.dstack([rgb[:, :, ::-1], np.full((12, 12), 7, np.uint8)])
    assert cv2.imwrite(str(tmp_path / "a.png"), bgra)
    assert np.array_equal(read_image(tmp_path / "a.png"), rgb)  # alpha dropped, RGB order

    rgb16 = rgb.astype(np.uint16) * 257
    assert cv2.imwrite(str(tmp_path / "w.png"), np.ascontiguousarray(rgb16[:, :, ::-1]))
    assert np.array_equal(read_image(tmp_path / "w.png"), rgb)  # /257 -> 8-bit


def test_accumulator_batches():
    rng = np.random.default_rng(0)
    p = rng.random((4, 16, 16, 3), dtype=np.float32)
    t = rng.random((4, 16, 16, 3), dtype=np.float32)
    acc = MetricAccumulator()
    acc.update(p[:3], t[:3], ["a", "b", "c"])
    acc.update(p[3:], t[3:], ["d"])
    res = acc.result()
    assert res["num_images"] == 4
    assert res["ssim"] == pytest.approx(float(np.mean(ssim(p, t))), rel=1e-6)
    assert res["per_image"]["d"]["l1"] == pytest.approx(float(l1(p[3:], t[3:])[0]))
    with pytest.raises(ValueError, match="already scored"):
        acc.update(p[:1], t[:1], ["a"])
    with pytest.raises(EvaluationError):
        MetricAccumulator().result()


def test_write_report(tmp_path):
    pred, target = _make_pairs(tmp_path)
    r1 = evaluate_folders(pred, target, progress=False)
    _write(pred / "img0.png", read_image(target / "img0.png"))  # -> PSNR inf
    r2 = evaluate_folders(pred, target, progress=False)
    out = tmp_path / "report"
    write_report({"pix2pix": r1, "grit": r2}, out)
    for name in ("report.json", "report.csv", "report.md"):
        assert (out / name).is_file()

    md = (out / "report.md").read_text(encoding="utf-8")
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 2  # header, separator, one row per run
    assert "PSNR (dB) ↑" in table[0] and "SSIM ↑" in table[0] and "L1 ↓" in table[0]
    assert table[2].startswith("| pix2pix |") and table[3].startswith("| grit |")
    assert f"{r1['ssim']:.4f}" in table[2] and "inf" in table[3]

    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert set(data) == {"pix2pix", "grit"}
    assert data["pix2pix"]["psnr"] == pytest.approx(r1["psnr"])
    assert data["grit"]["psnr"] == "inf"
    assert data["grit"]["per_image"]["img0"]["psnr"] == "inf"

    with open(out / "report.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["run"] for r in rows] == ["pix2pix", "grit"]
    assert float(rows[0]["mse"]) == pytest.approx(r1["mse"])
    assert rows[1]["psnr"] == "inf"


def _parser():
    parser = argparse.ArgumentParser(prog="tfi2i")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    return parser


def test_cli_success(tmp_path, capsys):
    pred, target = _make_pairs(tmp_path)
    out = tmp_path / "out"
    args = _parser().parse_args(
        ["evaluate", "--pred", str(pred), "--target", str(target),
         "--metrics", "psnr,ssim", "--out", str(out), "--no-progress"]
    )
    assert args.func is run and args.metrics == ("psnr", "ssim")
    assert args.func(args) == 0
    stdout = capsys.readouterr().out
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    assert len(lines) == 3 and "| pred |" in lines[2]
    assert "L1" not in lines[0] and "PSNR (dB) ↑" in lines[0]
    assert (out / "report.md").is_file()


def test_cli_error(tmp_path, capsys):
    pred, target = _make_pairs(tmp_path)
    (target / "img0.png").unlink()
    args = _parser().parse_args(
        ["evaluate", "--pred", str(pred), "--target", str(target), "--no-progress"]
    )
    assert run(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "img0.png" in err


def test_cli_rejects_unknown_metric(tmp_path):
    with pytest.raises(SystemExit):
        _parser().parse_args(
            ["evaluate", "--pred", "a", "--target", "b", "--metrics", "psnr,bogus"]
        )


def test_format_table_missing_metric():
    md = format_table({"a": {"num_images": 1, "psnr": 20.0}, "b": {"num_images": 1, "ssim": 0.5}})
    rows = md.strip().splitlines()
    assert len(rows) == 4
    assert "20.0000" in rows[2] and "—" in rows[2] and "0.5000" in rows[3]


# --------------------------------------------------------------------------- the paper's tables beside ours

TABLES = {
    "Table 9: rows per model": {
        "corner": "Loss",
        "columns": {"fcn_pixel_acc": "Per-pixel acc.", "fcn_class_iou": "Class IOU"},
        "rows": {"toy_no_x": ("without x", (0.42, 0.07)), "toy": ("completed model", (0.74, 0.19))},
        "decimals": 2,
    },
    "Table 8: one column per model": {
        "corner": "Models → Metrics ↓",
        "columns": {"mse": "Per-Pixel Accuracy", "psnr": "PSNR"},
        "rows": {"toy": ("Ours|paper", (0.002144413411081063, 26.766485))},
        "transpose": True,
        "note": "values as printed",
    },
}


def test_paper_tables_in_the_papers_layout_with_our_matching_runs():
    from tfi2i.evaluate import format_paper_tables

    results = {
        "W1": {"num_images": 2, "config_name": "toy_demo", "fcn_pixel_acc": 0.5, "mse": 0.003, "psnr": 25.0},
        "other": {"num_images": 2, "fcn_pixel_acc": 0.9},  # no config name, no such row: not in the paper's tables
    }
    md = format_paper_tables(TABLES, results)
    lines = md.splitlines()
    t9 = lines[lines.index("### Table 9: rows per model") + 2:]  # a blank line after the title
    assert t9[0] == "| Loss |  | Per-pixel acc. | Class IOU |"
    assert t9[2] == "| without x | paper | 0.42 | 0.07 |"  # no run of ours: the paper's row alone
    assert t9[3] == "| completed model | paper | 0.74 | 0.19 |"
    assert t9[4] == "|  | ours: W1 | 0.5000 | — |"  # beside its paper row; class IoU not measured
    t8 = lines[lines.index("### Table 8: one column per model") + 2:]
    assert t8[0] == "| Models → Metrics ↓ | Ours\\|paper: paper | Ours\\|paper: ours: W1 |"
    assert t8[2] == "| Per-Pixel Accuracy | 0.002144413411081063 | 0.003 |"  # the paper's values as printed
    assert t8[3] == "| PSNR | 26.766485 | 25.0000 |" and "values as printed" in md
    assert "other" not in md


def test_cli_paper_option_appends_the_recipes_tables_to_report_md(tmp_path, capsys):
    pred, target = _make_pairs(tmp_path)
    out = tmp_path / "out"
    args = _parser().parse_args(
        ["evaluate", "--pred", str(pred), "--target", str(target), "--metrics", "mse,psnr,ssim", "--no-progress",
         "--name", "modified_pix2pix_day2night", "--paper", "modified_pix2pix_day2night", "--out", str(out)])
    assert run(args) == 0
    printed = capsys.readouterr().out
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## The paper's tables" in report and "modified_pix2pix_day2night.py" in report
    for text in (printed, report):
        assert "### Table 1: day -> night" in text
        assert "| Per-Pixel Accuracy | 0.002144413411081063 | 0.0026935997096859295 |" in text
        assert "Modified Pix2Pix cGAN: ours: modified_pix2pix_day2night |" in text
    by_path = _parser().parse_args(
        ["evaluate", "--pred", str(pred), "--target", str(target), "--no-progress",
         "--paper", str(pathlib.Path(__file__).parents[1] / "recipes" / "pan_cityscapes.py")])
    assert run(by_path) == 0 and "| completed model | paper | 0.74 | 0.26 | 0.19 |" in capsys.readouterr().out
    for bad in ("no_such_recipe", str(tmp_path / "missing.py")):
        assert run(_parser().parse_args(["evaluate", "--pred", str(pred), "--target", str(target), "--paper", bad,
                                         "--no-progress"])) == 1
        assert "--paper" in capsys.readouterr().err
