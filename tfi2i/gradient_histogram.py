"""MSG U-Net's Fig. 2: the distribution of G's gradients at its intermediate layers, with and without the
intermediate outputs judged.

"The gradient distribution after 20 epochs of training when (left) the output
at intermediate layers is not used, and (right) the output at intermediate
layers is used." For each run (typically a ``--variant top_only`` run,
``msg.judged=top``, and a ``full`` one): its latest checkpoint, ``N``
training batches (`tfi2i.data.pipeline.train_dataset` with the run's seed)
and G's total objective computed as a training step does
(`tfi2i.gan.OneForwardGAN.train_step`: ``with_inputs(training=True)``, G in
training mode, `objective`, `weighted_sum`), differentiated with respect to
the kernels of the *intermediate* generator layers: every conv and
transposed-conv kernel of levels ``1 .. bottleneck`` (``enc{l}_*``,
``dec{l}_*``, ``l >= 1``; not level 0, not the ``out*`` heads). No update is
applied, and every variable the forward pass touches (batch-norm moving
statistics, RNG states) is put back, so the run's weights are unchanged.

``tfi2i gradient-histogram --workdir A --workdir B`` writes one PNG (default
``A/gradient_histogram.png``: one panel per run, a histogram of the gradient
values over a symmetric range shared by all panels, log-scaled counts) and
``gradient_histogram.json`` beside it (per run and per level: count, mean
``|g|``, std, max ``|g|``, the fraction with ``|g| < 1e-8``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

__all__ = ["GradientError", "intermediate_kernels", "run_gradients", "gradient_statistics", "plot_histograms",
           "gradient_histogram", "add_parser"]

#: ``|g|`` below this counts as vanished (the JSON's ``fraction_below``).
TINY = 1e-8
#: At most this many values per run go into the histogram (a uniform, seeded subsample; the statistics use all).
MAX_HISTOGRAM_VALUES = 5_000_000
_LAYER = re.compile(r"^(enc|dec)(\d+)_")


class GradientError(ValueError):
    """A run that cannot be measured (not a run directory, not an MSG U-Net generator)."""


def intermediate_kernels(generator) -> list:
    """``[(level, layer name, kernel variable)]`` of every conv / transposed conv of levels >= 1 (``enc{l}_*``,
    ``dec{l}_*``), in layer order; level 0 and the ``out*`` heads are left out. Recomputed blocks
    (``msg.recompute``: a `keras.Model` per block) are searched inside."""
    import keras

    found = []
    for layer in generator._flatten_layers(include_self=False):
        match = _LAYER.match(layer.name)
        if match and int(match.group(2)) >= 1 and isinstance(layer, (keras.layers.Conv2D,
                                                                     keras.layers.Conv2DTranspose)):
            found.append((int(match.group(2)), layer.name, layer.kernel))
    return found


def _state_variables(model):
    """Every variable a training-mode forward pass may change (G, the Ds, VGG: moving statistics, RNG states)."""
    nets = [model.generator, *model.discriminators] + ([model.vgg] if getattr(model, "vgg", None) is not None else [])
    seen, out = set(), []
    for net in nets:
        for v in net.variables:
            if id(v) not in seen:
                seen.add(id(v))
                out.append(v)
    return out


def run_gradients(model, cfg, batches=4) -> dict:
    """Gradients of G's total objective w.r.t. the intermediate kernels over `batches` training batches.

    Returns ``{"levels": {level: float32 array of every gradient value}, "layers": {name: level},
    "g_total": [per batch]}``; the model's variables are restored afterwards (no update, no statistics drift).
    """
    from tfi2i.data.open import open_data
    from tfi2i.data.pipeline import train_dataset

    kernels = intermediate_kernels(model.generator)
    if not kernels:
        raise GradientError(f"model '{model.name}' has no intermediate enc{{l}}_* / dec{{l}}_* conv layers "
                            "(an MSG U-Net generator)")
    if model.active("g_vgg") and getattr(model, "vgg", None) is None and getattr(model, "vgg_factory", None):
        model.vgg = model.vgg_factory()
    train_source, _, data_cfg = open_data(cfg)
    saved = [(v, tf.identity(v)) for v in _state_variables(model)]
    values = {level: [] for level, _, _ in kernels}
    totals = []
    variables = [k for _, _, k in kernels]
    stream, _ = train_dataset(train_source, data_cfg, seed=cfg.train.seed)  # (batches, steps per epoch)
    try:
        for batch in stream.take(int(batches)):
            seeds = model.training_seeds(tf.shape(batch["y"])[0]) if model.contract.stochastic else None
            with tf.GradientTape() as tape:
                batch = model.with_inputs(batch, seeds, training=True)
                fake = model.generator(batch["inputs"], training=True)
                g_terms, _ = model.objective(batch, fake, training=True)
                g_total, _ = model.weighted_sum(g_terms)
            grads = tape.gradient(g_total, variables)
            totals.append(float(g_total))
            for (level, name, _), g in zip(kernels, grads):
                values[level].append(np.zeros(0, np.float32) if g is None else
                                     np.asarray(tf.reshape(g, [-1]), np.float32))
    finally:
        for v, value in saved:
            v.assign(value)
    if not totals:
        raise GradientError("the run's training split gave no batches")
    return {"levels": {level: np.concatenate(parts) for level, parts in values.items()},
            "layers": {name: level for level, name, _ in kernels}, "g_total": totals}


def _stats(values):
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return {"count": 0, "mean_abs": 0.0, "std": 0.0, "max_abs": 0.0, "fraction_below_1e-8": 1.0}
    a = np.abs(values)
    return {"count": int(values.size), "mean_abs": float(a.mean()), "std": float(values.std()),
            "max_abs": float(a.max()), "fraction_below_1e-8": float(np.mean(a < TINY))}


def gradient_statistics(levels: dict) -> dict:
    """``{"all": stats, "levels": {level: stats}}`` (count, mean ``|g|``, std, max ``|g|``, fraction below 1e-8)."""
    every = np.concatenate([levels[k] for k in sorted(levels)]) if levels else np.zeros(0, np.float32)
    return {"all": _stats(every), "levels": {str(k): _stats(levels[k]) for k in sorted(levels)}}


def _label(run):
    return (f"{run['name']}: intermediate outputs judged" if run["judged"] == "all"
            else f"{run['name']}: top output only (intermediate outputs not judged)")


def plot_histograms(runs: list, out_png, bins=101, max_values=MAX_HISTOGRAM_VALUES) -> float:
    """One panel per run (``{"name", "judged", "values"}``): histogram over one symmetric range, log counts.

    Returns the half-width of the range (the largest ``|g|`` over all runs).
    """
    from tfi2i.visualize import atomic_write_bytes, new_figure

    rng = np.random.default_rng(0)
    samples = []
    for run in runs:
        v = np.asarray(run["values"], np.float32)
        if v.size > max_values:
            v = v[rng.choice(v.size, max_values, replace=False)]
        samples.append(v)
    extent = max([float(np.max(np.abs(v))) for v in samples if v.size] + [0.0]) or 1e-12
    edges = np.linspace(-extent, extent, int(bins) + 1)
    fig = new_figure((4.5 * len(runs), 3.4))
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    for ax, run, v in zip(axes, runs, samples):
        ax.hist(v, bins=edges, color="tab:blue" if run["judged"] == "all" else "tab:orange")
        ax.set_yscale("log")
        ax.set_xlim(-extent, extent)
        ax.set_title(_label(run), fontsize=8)
        ax.set_xlabel("gradient value (intermediate layers, levels >= 1)")
        ax.set_ylabel("count (log)")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    os.makedirs(os.path.dirname(os.fspath(out_png)) or ".", exist_ok=True)
    atomic_write_bytes(out_png, buf.getvalue())
    return extent


def gradient_histogram(workdirs, batches=4, output=None, log=None) -> dict:
    """Measures every run of `workdirs`, writes the PNG (default ``workdirs[0]/gradient_histogram.png``) and
    ``gradient_histogram.json`` beside it; returns the JSON's content (plus ``png``, ``json``)."""
    from tfi2i.runs import RunError, load_model
    from tfi2i.visualize import atomic_write_bytes

    if not workdirs:
        raise GradientError("give one or more --workdir W")
    runs, report = [], {"batches": int(batches), "layers": "enc{l}_* / dec{l}_* conv kernels, levels >= 1",
                        "runs": []}
    for workdir in workdirs:
        try:
            cfg, model, checkpoint = load_model(workdir)
        except RunError as exc:
            raise GradientError(str(exc)) from None
        measured = run_gradients(model, cfg, batches)
        judged = getattr(model, "judged", "all")
        name = Path(os.path.abspath(workdir)).name
        stats = gradient_statistics(measured["levels"])
        runs.append({"name": name, "judged": judged,
                     "values": np.concatenate([measured["levels"][k] for k in sorted(measured["levels"])])})
        report["runs"].append({"name": name, "workdir": str(workdir), "config_name": cfg.name, "judged": judged,
                               "intermediate_outputs_judged": judged == "all",
                               "checkpoint": os.path.basename(checkpoint), "g_total": measured["g_total"],
                               "num_kernels": len(measured["layers"]), **stats})
        if log:
            log(f"{name}: {len(measured['layers'])} kernels, {stats['all']['count']} gradient values")
    png = Path(output) if output else Path(workdirs[0]) / "gradient_histogram.png"
    report["range"] = plot_histograms(runs, png)
    json_path = png.with_name("gradient_histogram.json")
    atomic_write_bytes(json_path, (json.dumps(report, indent=2) + "\n").encode())
    return {**report, "png": str(png), "json": str(json_path)}


def format_summary(report: dict) -> str:
    """A few lines per run: judged or not, and mean / max |g| and the vanished fraction overall and per level."""
    lines = []
    for run in report["runs"]:
        a = run["all"]
        lines.append(f"{run['name']} ({'intermediate outputs judged' if run['judged'] == 'all' else 'top only'}): "
                     f"{a['count']} values, mean|g| {a['mean_abs']:.3g}, std {a['std']:.3g}, max|g| "
                     f"{a['max_abs']:.3g}, |g|<1e-8 {a['fraction_below_1e-8']:.1%}")
        for level, s in run["levels"].items():
            lines.append(f"  level {level}: mean|g| {s['mean_abs']:.3g}, max|g| {s['max_abs']:.3g}, "
                         f"|g|<1e-8 {s['fraction_below_1e-8']:.1%}")
    return "\n".join(lines) + "\n"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``tfi2i gradient-histogram``."""
    p = subparsers.add_parser(
        "gradient-histogram",
        help="MSG U-Net Fig. 2: histogram of G's gradients at its intermediate layers, one panel per run",
        description="For each run (e.g. a top_only and a full MSG U-Net run), compute G's training objective on N "
        "training batches and its gradients w.r.t. the conv kernels of levels >= 1 (no update is applied); plot "
        "one histogram panel per run and write per-level statistics to gradient_histogram.json beside the PNG.",
    )
    p.add_argument("--workdir", action="append", default=[], required=True, metavar="W",
                   help="a training run directory; repeat for one panel per run")
    p.add_argument("--batches", type=int, default=4, metavar="N", help="training batches per run (default 4)")
    p.add_argument("--output", default=None, metavar="FILE.png",
                   help="the PNG (default: the first run's gradient_histogram.png)")
    p.set_defaults(func=_run_cli)
    return p


def _run_cli(args) -> int:
    try:
        report = gradient_histogram(args.workdir, batches=args.batches, output=args.output,
                                    log=lambda m: print(m, file=sys.stderr))
    except (GradientError, ValueError, OSError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(format_summary(report), end="")
    print(f"written to {report['png']} and {report['json']}", file=sys.stderr)
    return 0
