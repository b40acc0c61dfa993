"""Evaluate predicted images against targets and write comparison reports.

Folder mode (``tfi2i evaluate --pred DIR --target DIR``): every image in the
prediction folder is paired with the target image that has the same file
*stem* (``x.png`` matches ``x.jpg``), both are read, converted to RGB float32
on the [0, 1] scale, and scored with the metrics of
:mod:`tfi2i.metrics.image` (L1, MSE, PSNR in dB, SSIM; see that module for the
exact definitions). Pairs are processed one at a time with running sums, so
memory does not grow with the number of images (apart from one small dict of
per-image scores).

Image reading (:func:`read_image`) is the package-wide policy of :func:`tfi2i.data.images.read_image`:

* 8-bit images are used as they are; 16-bit images are scaled to 8 bits by
  dividing by 257 and rounding (65535 -> 255), so both go through the same
  8-bit pipeline; other sample types (float TIFF, ...) are rejected;
* grayscale is replicated to 3 channels; an alpha channel is dropped;
* OpenCV's BGR order is converted to RGB;
* the package's one pixel limit applies (``$TFI2I_MAX_PIXELS``, default
  4096*4096, read from the header before decoding), as do its checks of
  corrupt JPEGs (decoded by TensorFlow's decoder, early end of scan refused).

The per-pair scoring lives in :class:`MetricAccumulator`, which takes float32
[0, 1] tensors, so other front-ends (for example, running a trained generator
over an evaluation split) can feed it batches directly.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from tfi2i.metrics.accumulator import DEFAULT_METRICS, EvaluationError, MetricAccumulator, _check_metric_names, _list_names
from tfi2i.metrics.image import METRICS, Metric

#: Report columns produced by options rather than --metrics: the FCN score
#: (--segmenter; pix2pix protocol, ``tfi2i.metrics.fcn``) of the generated photos
#: and, for reference, of the real photos, and GRIT's per-pixel standard
#: deviation over K samples (--diversity K).
REPORT_COLUMNS: dict[str, Metric] = {
    "fcn_pixel_acc": Metric("fcn_pixel_acc", None, True, "FCN per-pixel acc.", kind="report"),
    "fcn_class_acc": Metric("fcn_class_acc", None, True, "FCN per-class acc.", kind="report"),
    "fcn_class_iou": Metric("fcn_class_iou", None, True, "FCN class IoU", kind="report"),
    "real_fcn_pixel_acc": Metric("real_fcn_pixel_acc", None, True, "real photos: per-pixel acc.", kind="report"),
    "real_fcn_class_acc": Metric("real_fcn_class_acc", None, True, "real photos: per-class acc.", kind="report"),
    "real_fcn_class_iou": Metric("real_fcn_class_iou", None, True, "real photos: class IoU", kind="report"),
    "pixel_std": Metric("pixel_std", None, True, "per-pixel std", kind="report"),
}
_COLUMNS = {**METRICS, **REPORT_COLUMNS}
_FCN_KEYS = {"per_pixel_acc": "pixel_acc", "per_class_acc": "class_acc", "class_iou": "class_iou"}

__all__ = [
    "DEFAULT_METRICS",
    "EvaluationError",
    "read_image",
    "pair_folders",
    "MetricAccumulator",
    "evaluate_folders",
    "format_table",
    "write_report",
    "load_paper_tables",
    "format_paper_tables",
    "add_parser",
    "run",
]



# --------------------------------------------------------------------------- #
# Reading and pairing
# --------------------------------------------------------------------------- #
def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as ``uint8`` RGB ``[H, W, 3]`` with the package's one policy
    (:func:`tfi2i.data.images.read_image`: grey replicated, alpha dropped,
    16-bit divided by 257).

    Raises :class:`EvaluationError` naming the file if it cannot be decoded or
    has an unsupported sample type / channel count.
    """
    from tfi2i.data.images import DataError, read_image as read

    try:
        return read(path)
    except DataError as err:
        raise EvaluationError(str(err)) from None


def _index_folder(folder: str | os.PathLike, role: str) -> dict[str, Path]:
    """Map file stem -> path for the images directly inside ``folder``."""
    from tfi2i.data.images import DataError
    from tfi2i.data.sources import list_images

    folder = Path(folder)
    try:
        files = list_images(folder)
    except DataError as err:
        raise EvaluationError(f"{role} folder: {err}") from None
    index: dict[str, Path] = {}
    duplicates: dict[str, list[str]] = {}
    for entry in files:
        stem = entry.stem
        if stem in index:
            duplicates.setdefault(stem, [index[stem].name]).append(entry.name)
        else:
            index[stem] = entry
    if duplicates:
        clashes = "; ".join(" / ".join(v) for _, v in sorted(duplicates.items()))
        raise EvaluationError(
            f"{role} folder {folder} has several images with the same stem, "
            f"so pairs are ambiguous: {clashes}"
        )
    if not index:
        raise EvaluationError(
            f"{role} folder {folder} contains no images "
            "(looked for .jpg, .jpeg, .png, .bmp, .webp)"
        )
    return index


def pair_folders(
    pred_dir: str | os.PathLike, target_dir: str | os.PathLike
) -> list[tuple[str, Path, Path]]:
    """Match predictions to targets by file stem; return sorted ``(stem, pred, target)``.

    Raises :class:`EvaluationError` if a folder is missing or has no images, or
    if any target lacks a prediction or any prediction lacks a target (all such
    files are named in the message).
    """
    preds = _index_folder(pred_dir, "prediction")
    targets = _index_folder(target_dir, "target")
    problems = []
    no_pred = [targets[s].name for s in targets.keys() - preds.keys()]
    no_target = [preds[s].name for s in preds.keys() - targets.keys()]
    if no_pred:
        problems.append(
            f"{len(no_pred)} target image(s) in {target_dir} have no prediction "
            f"(same file stem) in {pred_dir}: {_list_names(no_pred)}"
        )
    if no_target:
        problems.append(
            f"{len(no_target)} prediction(s) in {pred_dir} have no target "
            f"(same file stem) in {target_dir}: {_list_names(no_target)}"
        )
    if problems:
        raise EvaluationError("; ".join(problems))
    return [(s, preds[s], targets[s]) for s in sorted(preds)]


# --------------------------------------------------------------------------- #
# Accumulation
# --------------------------------------------------------------------------- #
class _FCN:
    """Confusion matrices of a segmenter on generated and on real photos against the same labels."""

    def __init__(self, segmenter):
        from tfi2i.metrics.fcn import ConfusionMatrix

        self.segmenter = segmenter
        self.fake, self.real = ConfusionMatrix(), ConfusionMatrix()

    def update(self, fake_uint8, real_uint8, labels):
        """uint8 ``[B, H, W, 3]`` photos; labels: colour maps ``[B, H, W, 3]`` or trainIds ``[B, H, W]``."""
        from tfi2i.metrics.cityscapes import colors_to_train_ids

        labels = np.asarray(labels)
        ids = np.stack([colors_to_train_ids(l) for l in labels]) if labels.ndim == 4 else labels
        size = ids.shape[1:3]
        self.fake.update(self.segmenter(np.asarray(fake_uint8), label_size=size), ids)
        self.real.update(self.segmenter(np.asarray(real_uint8), label_size=size), ids)

    def result(self):
        out = {}
        for prefix, matrix in (("fcn_", self.fake), ("real_fcn_", self.real)):
            for key, value in matrix.scores().items():
                out[prefix + _FCN_KEYS[key]] = value
        return out


def evaluate_folders(
    pred_dir: str | os.PathLike,
    target_dir: str | os.PathLike,
    metrics: Iterable[str] = DEFAULT_METRICS,
    progress: bool = True,
    inception_weights="imagenet",
    segmenter=None,
    labels_dir=None,
) -> dict:
    """Score every prediction in ``pred_dir`` against the same-stem target in ``target_dir``.

    With ``segmenter`` (a :class:`tfi2i.metrics.fcn.Segmenter`) and ``labels_dir``
    (Cityscapes colour label maps or trainId maps, matched by stem) the FCN score
    of the predictions and of the targets is added.

    Returns ``{"num_images": N, "scale": "[0,1]", "metrics": [...], "l1": mean,
    "mse": mean, "psnr": mean (dB), "ssim": mean, "per_image": {stem: {...}},
    "pred_dir": ..., "target_dir": ...}``. All metrics are on the [0, 1] image
    scale. Raises :class:`EvaluationError` (naming the files) for missing or
    empty folders, unpaired files, unreadable files and size mismatches.
    """
    import tensorflow as tf
    from tqdm import tqdm

    acc = MetricAccumulator(metrics, inception_weights=inception_weights)
    pairs = pair_folders(pred_dir, target_dir)
    fcn = _FCN(segmenter) if segmenter is not None else None
    if fcn is not None:
        if labels_dir is None:
            raise EvaluationError("--segmenter needs --labels DIR (label maps matched to the predictions by stem)")
        labels = {stem: path for stem, _, path in pair_folders(pred_dir, labels_dir)}
    for stem, pred_path, target_path in tqdm(
        pairs, desc="evaluate", unit="img", disable=not progress, file=sys.stderr
    ):
        pred = read_image(pred_path)
        target = read_image(target_path)
        if pred.shape != target.shape:
            raise EvaluationError(
                f"size mismatch for {stem!r}: prediction {pred_path} is "
                f"{pred.shape[1]}x{pred.shape[0]} but target {target_path} is "
                f"{target.shape[1]}x{target.shape[0]} (width x height)"
            )
        if fcn is not None:
            fcn.update(pred[None], target[None], read_image(labels[stem])[None])
        p = tf.convert_to_tensor(pred[None], dtype=tf.uint8)
        t = tf.convert_to_tensor(target[None], dtype=tf.uint8)
        try:
            acc.update(tf.cast(p, tf.float32) / 255.0, tf.cast(t, tf.float32) / 255.0, [stem])
        except (ValueError, tf.errors.InvalidArgumentError) as exc:
            raise EvaluationError(f"cannot score {pred_path} against {target_path}: {exc}") from exc
    out = acc.result()
    if fcn is not None:
        out.update(fcn.result())
    out["pred_dir"] = str(pred_dir)
    out["target_dir"] = str(target_dir)
    return out


# --------------------------------------------------------------------------- #
# Reports
# --------------------------------------------------------------------------- #
def _report_metrics(results: Mapping[str, Mapping]) -> list[str]:
    """Metric columns: those present in any run, in registry order."""
    return [m for m in _COLUMNS if any(m in r for r in results.values())]


def _fmt(value) -> str:
    """4 decimal places; values below 0.01 get 4 significant digits instead."""
    if value is None:
        return "—"
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v != 0.0 and abs(v) < 0.01:
        return f"{v:.4g}"
    return f"{v:.4f}"


def _header(m: str) -> str:
    spec = _COLUMNS[m]
    unit = f" ({spec.unit})" if spec.unit else ""
    return f"{spec.label}{unit} {spec.arrow}"


def format_table(results: Mapping[str, Mapping]) -> str:
    """Markdown table: one row per run, one column per metric (↑/↓ = higher/lower is better)."""
    metrics = _report_metrics(results)
    header = ["run", "images"] + [_header(m) for m in metrics]
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |",
    ]
    for name, res in results.items():
        cells = [str(name).replace("|", "\\|"), str(res.get("num_images", "—"))]
        cells += [_fmt(res.get(m)) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _json_safe(obj):
    """Replace non-finite floats by the strings "inf", "-inf", "nan" (strict JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    return obj


def load_recipe(spec: str):
    """A recipe module: ``(recipe file, module)``, or ``(None, None)`` when there is no such recipe.

    ``spec``: a recipe file (``recipes/pan_cityscapes.py``) or a recipe name
    (``pan_cityscapes``, looked up in ``./recipes/`` and in the ``recipes/``
    folder next to the installed package).
    """
    import importlib.util

    path = Path(spec)
    if path.suffix != ".py":
        here = Path(__file__).resolve().parents[1] / "recipes"
        found = [d / f"{spec}.py" for d in (Path("recipes"), here) if (d / f"{spec}.py").is_file()]
        if not found:
            return None, None
        path = found[0]
    if not path.is_file():
        return str(path), None
    module_spec = importlib.util.spec_from_file_location(f"_tfi2i_recipe_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return str(path), module


def load_paper_tables(spec: str) -> tuple[str, dict]:
    """A recipe's ``PAPER_TABLES``: ``(recipe file, tables)`` (`load_recipe`).

    Raises :class:`EvaluationError` when there is no such recipe or it has no ``PAPER_TABLES``.
    """
    path, module = load_recipe(spec)
    if path is None:
        raise EvaluationError(f"--paper {spec}: no recipe recipes/{spec}.py (give a recipe name or file)")
    if module is None:
        raise EvaluationError(f"--paper {spec}: file not found")
    tables = getattr(module, "PAPER_TABLES", None)
    if not tables:
        raise EvaluationError(f"--paper {spec}: {path} has no PAPER_TABLES")
    return path, tables


def _paper_value(value, decimals) -> str:
    return str(value) if decimals is None else f"{float(value):.{decimals}f}"


def _run_key(name: str, res: Mapping) -> str:
    """The name a run is matched to a paper row by: its config name (else the row name), without ``_demo``."""
    key = str(res.get("config_name") or name)
    return key[: -len("_demo")] if key.endswith("_demo") else key


def format_paper_tables(tables: Mapping[str, Mapping], results: Mapping[str, Mapping]) -> str:
    """The paper's tables in its layout with our matching runs beside its rows (Markdown).

    ``tables``: a recipe's ``PAPER_TABLES``, ``{title: {"columns": {metric key:
    paper header}, "rows": {our config name: (paper row name, values)},
    "corner": str, "decimals": int | per column (default: as stored),
    "transpose": bool (one column per model), "note": str}}``. A run matches a
    row when its config name (``config_name``, recorded by ``--workdir``; else
    the row name of ``results``), without a ``_demo`` suffix, is the row's key;
    it is printed as "ours: RUN" next to the paper's values ("—": metric not
    measured). Rows without a matching run show the paper's values alone.
    """
    esc = lambda t: str(t).replace("|", "\\|")  # noqa: E731  (Markdown cell text)
    by_key: dict[str, list[str]] = {}
    for name, res in results.items():
        by_key.setdefault(_run_key(name, res), []).append(name)
    out = []
    for title, table in tables.items():
        metrics = list(table["columns"])
        headers = [table["columns"][m] for m in metrics]
        decimals = table.get("decimals")
        if not isinstance(decimals, (list, tuple)):
            decimals = [decimals] * len(metrics)
        lines = []  # (row label, source, cells)
        for key, (label, values) in table["rows"].items():
            lines.append((label, "paper", [_paper_value(v, d) for v, d in zip(values, decimals)]))
            for run in by_key.get(key, []):
                lines.append((label, f"ours: {esc(run)}", [_fmt(results[run].get(m)) for m in metrics]))
        out.append(f"### {title}\n")
        if table.get("transpose"):
            head = [table.get("corner", "")] + [f"{esc(label)}: {src}" for label, src, _ in lines]
            rows = [[h] + [cells[i] for _, _, cells in lines] for i, h in enumerate(headers)]
        else:
            head = [table.get("corner", ""), ""] + headers
            rows, previous = [], None
            for label, src, cells in lines:
                rows.append([esc(label) if label != previous else "", src] + cells)
                previous = label
        out.append("| " + " | ".join(head) + " |")
        labels = 1 if table.get("transpose") else 2  # left-aligned label columns, right-aligned numbers
        out.append("| " + " | ".join(["---"] * labels + ["---:"] * (len(head) - labels)) + " |")
        out += ["| " + " | ".join(r) + " |" for r in rows]
        if table.get("note"):
            out.append(f"\n{table['note']}")
        out.append("")
    return "\n".join(out)


def write_report(results: Mapping[str, Mapping], out_dir: str | os.PathLike, paper=None) -> None:
    """Write ``report.json`` (everything, incl. per-image values; non-finite
    numbers as "inf"/"nan" strings), ``report.csv`` (one row per run, full
    precision) and ``report.md`` (:func:`format_table`) into ``out_dir``.

    ``results`` is keyed by run/model name; values are dicts as returned by
    :func:`evaluate_folders`. ``paper``: ``(recipe file, PAPER_TABLES)`` from
    :func:`load_paper_tables`; its tables follow in ``report.md``
    (:func:`format_paper_tables`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = _report_metrics(results)

    with open(out / "report.json", "w", encoding="utf-8") as f:
        json.dump(_json_safe(dict(results)), f, indent=2, allow_nan=False)
        f.write("\n")

    with open(out / "report.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "num_images"] + metrics)
        for name, res in results.items():
            row = [name, res.get("num_images", "")]
            row += ["" if res.get(m) is None else repr(float(res[m])) for m in metrics]
            writer.writerow(row)

    notes = [
        "",
        "Images on the [0, 1] scale; ↑ higher is better, ↓ lower is better. "
        "PSNR in dB (max_val 1); SSIM: Wang et al. 2004, 11x11 Gaussian window, sigma 1.5.",
    ]
    with open(out / "report.md", "w", encoding="utf-8") as f:
        f.write(format_table(results))
        f.write("\n".join(notes) + "\n")
        if paper:
            f.write(f"\n## The paper's tables ({paper[0]}) beside ours\n\n" + format_paper_tables(paper[1], results))


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #
def _parse_metrics(text: str) -> tuple[str, ...]:
    names = tuple(s.strip().lower() for s in text.split(",") if s.strip())
    try:
        return _check_metric_names(names)
    except EvaluationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def evaluate_workdir(workdir, metrics=DEFAULT_METRICS, progress=True, inception_weights="imagenet",
                     segmenter=None, diversity=0, out_dir=None, outputs=("y",), seed=0, mode=None) -> dict:
    """Scores a training run: its model (latest checkpoint, `tfi2i.runs.load_model`) over its evaluation split.

    The predictions are written to ``W/eval_pred/<name>.png`` and the targets
    (as the model saw them) to ``W/eval_target/`` (re-score with ``--pred
    W/eval_pred --target W/eval_target``); the data, model and evaluation
    split come from ``W/config.json``. ``outputs``: the named outputs to
    score (``"all"``: every one the model declares). With ``segmenter`` the
    FCN score is computed with the run's inputs as labels (labels -> photo
    runs, e.g. Cityscapes BtoA). With ``diversity=K`` the per-pixel standard
    deviation over K samples (`PairedGAN.sample`, seeds ``seed .. seed+K-1``)
    of the first evaluation input is measured and, with ``out_dir``, saved as
    a heat-map PNG. A stochastic model's evaluation noise comes from ``seed``.
    ``mode``: the test-time mode (default: the run's ``eval.mode``;
    `tfi2i.config.EvalConfig`), recorded in the result.
    """
    from tfi2i.data.open import open_data
    from tfi2i.model_eval import evaluate_model
    from tfi2i.runs import RunError, load_model

    workdir = Path(workdir)
    try:
        cfg, model, latest = load_model(workdir)
    except RunError as err:
        raise EvaluationError(str(err)) from None
    if outputs == "all" or tuple(outputs) == ("all",):
        outputs = model.contract.output_names
    unknown = [o for o in outputs if o not in model.contract.output_names]
    if unknown:
        raise EvaluationError(f"{workdir}: the model has no output(s) {', '.join(unknown)}; its outputs: "
                              f"{', '.join(model.contract.output_names)}")
    outputs = ("y", *[o for o in outputs if o != "y"])
    mode = mode or cfg.eval.mode
    _, eval_source, data_cfg = open_data(cfg)
    fcn = _FCN(segmenter) if segmenter is not None else None

    def on_batch(batch, y_fake):
        if fcn is not None:
            from tfi2i.data.augment import to_uint8

            fcn.update(to_uint8(y_fake).numpy(), to_uint8(batch["y"]).numpy(), to_uint8(batch["x"]).numpy())

    result = evaluate_model(model, eval_source, data_cfg, out_dir=str(workdir / "eval_pred"),
                            target_dir=str(workdir / "eval_target"), metrics=metrics, progress=progress,
                            inception_weights=inception_weights, on_batch=on_batch, outputs=outputs, seed=seed,
                            mode=mode)
    result["mode"] = mode
    if fcn is not None:
        result.update(fcn.result())
    if diversity:
        result.update(_diversity(model, eval_source, data_cfg, diversity, out_dir, workdir.name, seed))
    result["checkpoint"] = os.path.basename(latest)
    result["config_name"] = cfg.name  # matches the run to a paper table's row (--paper)
    return result


def _diversity(model, source, data_cfg, k, out_dir, run_name, seed=0):
    """GRIT Fig. 7: per-pixel std over ``k`` samples of the model (`PairedGAN.sample`, seeds seed .. seed+k-1)."""
    from tfi2i.data import pipeline
    from tfi2i.metrics.diversity import per_pixel_std, save_std_heatmap

    batch = next(iter(pipeline.eval_dataset(source, data_cfg, batch_size=1, limit=1)))
    samples = np.stack([np.asarray(model.sample(batch, seed + i)["y"])[0] for i in range(k)])  # [K, H, W, C]
    std = per_pixel_std((samples + 1.0) / 2.0)
    if out_dir:
        save_std_heatmap(std, Path(out_dir) / f"diversity_{run_name}.png",
                         title=f"{run_name}: per-pixel std over {k} samples")
    return {"pixel_std": float(np.mean(std)), "pixel_std_samples": k}


def _load_segmenter(path):
    if not path:
        return None
    from tfi2i.metrics.fcn import SegmenterError, load_segmenter

    try:
        return load_segmenter(path)
    except SegmenterError as err:
        raise EvaluationError(str(err)) from None


def _folder_batches(folder):
    """Images of a folder as float [1, H, W, 3] batches on [0, 1], in file order."""
    from tfi2i.data.sources import list_images

    for path in list_images(folder):
        yield read_image(path)[None].astype(np.float32) / 255.0


def write_spectra(folders: Mapping[str, Path], out_dir) -> dict:
    """GRIT Fig. 9: azimuthally averaged power spectra of image sets -> ``spectrum.png`` + ``spectrum.csv``.

    All images of a set must have the same size (spectra are averaged per frequency).
    """
    from tfi2i.metrics.spectrum import save_spectrum_numbers, save_spectrum_plot, spectrum_of_sets

    try:
        profiles = spectrum_of_sets({name: _folder_batches(folder) for name, folder in folders.items()})
    except ValueError as err:
        raise EvaluationError(f"power spectrum: {err}") from None
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    save_spectrum_plot(profiles, Path(out_dir) / "spectrum.png")
    save_spectrum_numbers(profiles, Path(out_dir) / "spectrum.csv")
    return profiles


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``evaluate`` subcommand on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "evaluate",
        help="score predicted images against targets (L1, MSE, PSNR, SSIM, VIF, LPIPS, FID, KID, FCN score, ...)",
        description=(
            "Pair images in --pred and --target by file stem (x.png matches x.jpg) and "
            "report mean L1, MSE, PSNR (dB) and SSIM on the [0, 1] image scale."
        ),
    )
    p.add_argument("--pred", metavar="DIR", help="folder of predicted images")
    p.add_argument("--target", metavar="DIR", help="folder of ground-truth images")
    p.add_argument(
        "--workdir",
        action="append",
        default=[],
        metavar="W",
        help="a training run directory: run its generator (latest checkpoint) over the evaluation "
        "split and score it; repeat for one table row per run (e.g. ablation variants)",
    )
    p.add_argument(
        "--metrics",
        type=_parse_metrics,
        default=DEFAULT_METRICS,
        metavar="LIST",
        help=f"comma-separated metrics (default: {','.join(DEFAULT_METRICS)})",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="write report.json/.csv/.md here (default: only print the table)",
    )
    p.add_argument(
        "--name",
        default=None,
        help="run name used as the table row (default: the --pred folder's name)",
    )
    p.add_argument("--inception-weights", default="imagenet", metavar="imagenet|none|PATH",
                   help="InceptionV3 weights for fid/kid (offline: a local .h5 path; see tfi2i.metrics.fid)")
    p.add_argument("--segmenter", metavar="MODEL", default=None,
                   help="FCN score: a segmentation model (.keras or SavedModel; e.g. from `tfi2i segmenter train`) "
                   "run on the predictions and on the targets")
    p.add_argument("--labels", metavar="DIR", default=None,
                   help="with --pred/--segmenter: Cityscapes colour (or trainId) label maps matched by stem "
                   "(with --workdir the run's inputs are the labels)")
    p.add_argument("--diversity", type=int, default=0, metavar="K",
                   help="with --workdir: per-pixel std over K samples (the model's noise, or dropout for pix2pix; "
                   "GRIT Fig. 7 uses 20); heat-map in --out")
    p.add_argument("--outputs", default="y", metavar="LIST",
                   help="with --workdir: the model's named outputs to score, comma-separated, or 'all' (default y); "
                   "each extra output is a table row RUN:NAME")
    p.add_argument("--mode", choices=("deterministic", "reference"), default=None,
                   help="with --workdir: test-time mode (default: the run's eval.mode): deterministic = dropout off, "
                   "moving batch-norm statistics; reference = the pix2pix test script's dropout on, statistics of "
                   "each test image, dropout seeded by --seed")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="with --workdir: noise seed of a stochastic model and first seed of --diversity (default 0)")
    p.add_argument("--paper", metavar="RECIPE", default=None,
                   help="a recipe name or file (e.g. pan_cityscapes): print its PAPER_TABLES in the paper's layout "
                   "with our matching runs (by config name) beside the paper's rows, also in --out/report.md")
    p.add_argument("--spectrum", action="store_true",
                   help="azimuthally averaged power spectra of predictions and targets -> --out/spectrum.png/.csv")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``tfi2i evaluate``: print the Markdown table, optionally write the report.

    Returns 0 on success, 1 (after printing ``error: ...`` to stderr) on an
    :class:`EvaluationError`.
    """
    try:
        if bool(args.workdir) == bool(args.pred or args.target):
            raise EvaluationError("give either --pred DIR --target DIR, or one or more --workdir W")
        metrics = getattr(args, "metrics", DEFAULT_METRICS)
        progress = not getattr(args, "no_progress", False)
        out = getattr(args, "out", None)
        weights = getattr(args, "inception_weights", "imagenet")
        weights = None if str(weights).lower() == "none" else weights
        segmenter = _load_segmenter(getattr(args, "segmenter", None))
        paper = load_paper_tables(args.paper) if getattr(args, "paper", None) else None
        if (getattr(args, "spectrum", False) or getattr(args, "diversity", 0)) and not out:
            raise EvaluationError("--spectrum and --diversity write PNGs: give --out DIR")
        if args.workdir:
            outputs = [o.strip() for o in str(getattr(args, "outputs", "y")).split(",") if o.strip()] or ["y"]
            results, folders = {}, {}
            for w in args.workdir:
                name = Path(os.path.abspath(w)).name
                res = evaluate_workdir(w, metrics, progress, inception_weights=weights, segmenter=segmenter,
                                       diversity=getattr(args, "diversity", 0), out_dir=out,
                                       outputs="all" if outputs == ["all"] else outputs, seed=getattr(args, "seed", 0),
                                       mode=getattr(args, "mode", None))
                extra = res.pop("outputs", {})
                results[name] = res
                folders[name] = Path(w) / "eval_pred"
                for output, scores in extra.items():
                    results[f"{name}:{output}"] = scores
                    folders[f"{name}:{output}"] = Path(w) / "eval_pred" / output  # GRIT Fig. 9: y_rec, y_res
            folders["target"] = Path(args.workdir[0]) / "eval_target"
        else:
            if not (args.pred and args.target):
                raise EvaluationError("--pred and --target go together")
            if getattr(args, "diversity", 0):
                raise EvaluationError("--diversity samples a generator: use it with --workdir")
            result = evaluate_folders(args.pred, args.target, metrics=metrics, progress=progress,
                                      inception_weights=weights, segmenter=segmenter,
                                      labels_dir=getattr(args, "labels", None))
            name = getattr(args, "name", None) or Path(os.path.abspath(args.pred)).name or "pred"
            results = {name: result}
            folders = {name: Path(args.pred), "target": Path(args.target)}
        print(format_table(results), end="")
        if paper:
            print("\n" + format_paper_tables(paper[1], results), end="")
        if out:
            write_report(results, out, paper=paper)
            if getattr(args, "spectrum", False):
                write_spectra(folders, out)
            print(f"report written to {out}", file=sys.stderr)
    except (EvaluationError, OSError, ImportError) as exc:  # incl. missing Inception weights, LPIPS extra
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
