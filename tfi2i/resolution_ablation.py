"""MSG U-Net's resolution ablation (Sec. 3.2, Tables 2 and 3): SSIM per input and output resolution.

"We take the down-sampled input image such as 128x64 and again sample it to
all input scales and feed it to generator." For every input resolution
``r`` (level ``r`` = ``scales - 1 .. 0``, coarsest first, the paper's rows)
the source is ``x_r = downscale(x, 2**r)`` (`tfi2i.data.augment.downscale`,
the block means the model's own pyramid uses) and the generator's input at
level ``l`` is

* ``downscale(x, 2**l)`` for ``l >= r`` (the same as downscaling ``x_r``;
  level 0 takes ``x`` itself when ``r = 0``),
* ``x_r`` resized up to level ``l``'s size with bicubic interpolation
  (``tf.image.resize(method="bicubic")``, clipped to [-1, 1]) for ``l < r``:
  the paper does not say how it "again samples" the input up.

Every output ``y_{2^l}`` is scored with SSIM (`tfi2i.metrics.image.ssim`, on
the [0, 1] scale) against ``downscale(y, 2**l)`` and the scores are averaged
over the evaluation images: a matrix, rows = input resolution, columns =
output resolution, both coarsest first. A level smaller than SSIM's 11x11
window (the tiny test sizes only) is scored with the window shrunk to its
shorter side (sigma scaled with it); the JSON records the window of every
column (``ssim_window``).

``tfi2i resolution-ablation --workdir W`` writes ``W/resolution_ablation.json``
and ``W/resolution_ablation.md`` (our matrix, then the paper's Table 2 or 3
from ``recipes/msg_unet_cityscapes.py``'s ``PAPER_ABLATIONS`` when the run's
scale count is the paper's).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

__all__ = ["AblationError", "ablation_inputs", "resolution_ablation", "ablation_workdir", "paper_ablation",
           "format_markdown", "add_parser"]

#: Config-name prefixes of the MSG U-Net runs -> ``PAPER_ABLATIONS`` keys (all in recipes/msg_unet_cityscapes.py).
PAPER_KEYS = (("msg_unet_cityscapes", "cityscapes"), ("msg_unet_maps512", "maps512"), ("msg_unet_nyu512", "nyu512"))
PAPER_RECIPE = "msg_unet_cityscapes"


class AblationError(ValueError):
    """The run cannot be ablated (not a run directory, not multi-scale, no evaluation images)."""


# ----------------------------------------------------------------- the inputs
def multiscale_levels(model) -> int:
    """The number of input / output scales of a multi-scale model (``x``, ``x_2``, ... -> ``y``, ``y_2``, ...).

    Raises `AblationError` for a model without resized inputs and outputs at
    every scale (a single-scale generator has nothing to ablate).
    """
    from tfi2i.networks.msg_unet import input_name, output_name

    inputs, outputs = set(model.contract.input_names), set(model.contract.output_names)
    scales = 0
    while input_name(scales) in inputs and output_name(scales) in outputs:
        scales += 1
    if scales < 2:
        raise AblationError(f"model '{model.name}' has no multi-scale inputs and outputs (it takes "
                            f"{', '.join(sorted(inputs))} and gives {', '.join(sorted(outputs))}; the resolution "
                            f"ablation needs x, x_2, ... -> y, y_2, ...: an MSG U-Net run)")
    return scales


def ablation_inputs(x, scales: int, r: int) -> dict:
    """The generator's inputs ``{x, x_2, ...}`` when only ``x_r = downscale(x, 2**r)`` is known (module docstring).

    ``x``: float32 ``[B, H, W, C]`` in [-1, 1]; ``r`` in ``0 .. scales - 1``.
    """
    from tfi2i.data.augment import downscale
    from tfi2i.networks.msg_unet import input_name

    if not 0 <= int(r) < int(scales):
        raise ValueError(f"input resolution level r={r} outside 0 .. {scales - 1}")
    x = tf.cast(x, tf.float32)
    low = downscale(x, 2 ** r)
    out = {}
    for level in range(scales):
        if level >= r:
            out[input_name(level)] = downscale(x, 2 ** level)
        else:
            size = tf.shape(downscale(x, 2 ** level))[1:3]
            out[input_name(level)] = tf.clip_by_value(tf.image.resize(low, size, method="bicubic"), -1.0, 1.0)
    return out


def _ssim(a01, b01):
    """`tfi2i.metrics.image.ssim` per image; a side under 11 pixels shrinks the window.

    Returns ``(scores [B], window size)``.
    """
    from tfi2i.metrics import image as metrics

    side = min(int(a01.shape[1]), int(a01.shape[2]))
    if side >= metrics.SSIM_FILTER_SIZE:
        return metrics.ssim(a01, b01, max_val=1.0), metrics.SSIM_FILTER_SIZE
    window = max(side, 1)
    scores = tf.image.ssim(a01, b01, max_val=1.0, filter_size=window,
                           filter_sigma=metrics.SSIM_FILTER_SIGMA * window / metrics.SSIM_FILTER_SIZE,
                           k1=metrics.SSIM_K1, k2=metrics.SSIM_K2)
    return scores, window


# ----------------------------------------------------------------- the matrix
def resolution_ablation(model, source, data_cfg, limit=None, progress=True) -> dict:
    """SSIM matrix of `model` over the evaluation images of `source` (`tfi2i.data.pipeline.eval_dataset`).

    Returns ``{"scales", "sizes" (``"WxH"``, coarsest first), "ssim" (rows:
    input resolution, columns: output resolution, coarsest first), "ssim_window",
    "num_images", "names"}``.
    """
    from tqdm.auto import tqdm

    from tfi2i.data.augment import downscale
    from tfi2i.data.pipeline import eval_dataset
    from tfi2i.metrics.image import from_minus1_1
    from tfi2i.networks.msg_unet import output_name

    scales = multiscale_levels(model)
    total = len(source) if limit is None else min(int(limit), len(source))
    if total < 1:
        raise AblationError("no evaluation images (the run's evaluation split is empty or --limit is 0)")
    sums = np.zeros((scales, scales), np.float64)  # [r][l], r and l finest first
    windows = [None] * scales
    names, sizes, count = [], None, 0
    bar = tqdm(total=total, desc="resolution ablation", unit="img", disable=not progress, file=sys.stderr)
    for batch in eval_dataset(source, data_cfg, batch_size=1, limit=total):
        x, y = tf.cast(batch["x"], tf.float32), tf.cast(batch["y"], tf.float32)
        if sizes is None:
            h, w = int(x.shape[1]), int(x.shape[2])
            sizes = [f"{w // 2 ** level}x{h // 2 ** level}" for level in range(scales)]
        targets = [from_minus1_1(downscale(y, 2 ** level)) for level in range(scales)]
        for r in range(scales):
            fake = model.generate(ablation_inputs(x, scales, r), training=False)
            for level in range(scales):
                scores, windows[level] = _ssim(from_minus1_1(fake[output_name(level)]), targets[level])
                sums[r, level] += float(tf.reduce_sum(scores))
        n = int(x.shape[0])
        count += n
        names += [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(batch["name"]).ravel()]
        bar.update(n)
    bar.close()
    matrix = (sums / max(count, 1))[::-1, ::-1]  # coarsest first, as the paper's tables
    return {"scales": scales, "sizes": sizes[::-1], "ssim": [[float(v) for v in row] for row in matrix],
            "ssim_window": windows[::-1], "num_images": count, "names": names,
            "rows": "input resolution (coarsest first)", "columns": "output resolution (coarsest first)"}


# ----------------------------------------------------------------- the paper's tables
def paper_ablation(config_name: str):
    """The paper's Table 2 / 3 for a run's config name (``msg_unet_cityscapes*`` -> Table 2, ...), or None."""
    key = next((k for prefix, k in PAPER_KEYS if str(config_name).startswith(prefix)), None)
    if key is None:
        return None
    from tfi2i.evaluate import load_recipe

    _, module = load_recipe(PAPER_RECIPE)
    tables = getattr(module, "PAPER_ABLATIONS", None) if module is not None else None
    if not tables or key not in tables:
        return None
    return {"key": key, **tables[key]}


def _table(corner, sizes, matrix, fmt):
    lines = ["| " + " | ".join([corner, *sizes]) + " |", "|" + "---|" * (len(sizes) + 1)]
    for size, row in zip(sizes, matrix):
        lines.append("| " + " | ".join([size, *[fmt(v) for v in row]]) + " |")
    return lines


def format_markdown(result: dict, config_name: str = "", paper="auto") -> str:
    """Our matrix in the paper's layout, then the paper's table when its scale count is the run's.

    ``paper``: ``"auto"`` (look it up from `config_name`), None, or a
    `paper_ablation` dict.
    """
    if paper == "auto":
        paper = paper_ablation(config_name)
    scales = int(result["scales"])
    lines = [f"## Resolution ablation (MSG U-Net Sec. 3.2): SSIM, {config_name or 'this run'}", "",
             f"Rows: input resolution; columns: output resolution (coarsest first); mean over "
             f"{result['num_images']} evaluation image(s).", ""]
    lines += _table("Input \\ Output", result["sizes"], result["ssim"], lambda v: f"{v:.3f}")
    small = [s for s, w in zip(result["sizes"], result.get("ssim_window", [])) if w and w < 11]
    if small:
        lines += ["", f"SSIM window shrunk below 11x11 at {', '.join(small)} (images smaller than the window)."]
    if paper is not None and len(paper["sizes"]) == scales:
        lines += ["", f"### The paper's {paper['title']}", ""]
        lines += _table("Input \\ Output", list(paper["sizes"]), paper["ssim"], lambda v: f"{v:.2f}")
        if list(paper["sizes"]) != [s.replace("x", "×") for s in result["sizes"]]:
            lines += ["", f"Note: the paper's sizes ({paper['sizes'][-1]} at the top) differ from this run's "
                          f"({result['sizes'][-1]}); the rows and columns correspond scale for scale."]
    elif paper is not None:
        lines += ["", f"Note: the paper's table for this task has {len(paper['sizes'])} scales, this run has "
                      f"{scales}: ours alone."]
    else:
        lines += ["", "Note: no paper table for this run's config name (ours alone)."]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------- a run directory
def ablation_workdir(workdir, limit=None, output=None, progress=True) -> dict:
    """Loads run `workdir`, computes the matrix, writes ``resolution_ablation.json`` / ``.md`` to `output` (default W).

    Returns the result dict (with ``markdown``, ``json_path``, ``markdown_path``).
    """
    from tfi2i.data.open import open_data
    from tfi2i.runs import RunError, load_model
    from tfi2i.visualize import atomic_write_bytes

    try:
        cfg, model, checkpoint = load_model(workdir)
    except RunError as exc:
        raise AblationError(str(exc)) from None
    multiscale_levels(model)  # fail before opening the data
    _, eval_source, data_cfg = open_data(cfg)
    result = resolution_ablation(model, eval_source, data_cfg, limit=limit, progress=progress)
    paper = paper_ablation(cfg.name)
    result.update({"config_name": cfg.name, "checkpoint": os.path.basename(checkpoint),
                   "paper": paper if paper is not None and len(paper["sizes"]) == result["scales"] else None})
    markdown = format_markdown(result, cfg.name, paper=paper)
    out = Path(output or workdir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "resolution_ablation.json", out / "resolution_ablation.md"
    atomic_write_bytes(json_path, (json.dumps(result, indent=2, ensure_ascii=False) + "\n").encode())
    atomic_write_bytes(md_path, markdown.encode())
    return {**result, "markdown": markdown, "json_path": str(json_path), "markdown_path": str(md_path)}


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``tfi2i resolution-ablation``."""
    p = subparsers.add_parser(
        "resolution-ablation",
        help="MSG U-Net Tables 2/3: SSIM of every output scale when the input comes at a lower resolution",
        description="Feed an MSG U-Net run the input downscaled to each input resolution and resampled (bicubic) to "
        "all input scales (Sec. 3.2); report the SSIM of every output scale against the target at that scale, "
        "averaged over the evaluation split: W/resolution_ablation.json and .md, printed beside the paper's "
        "Table 2 or 3.",
    )
    p.add_argument("--workdir", required=True, metavar="W", help="an MSG U-Net training run directory")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="first N evaluation images (default all)")
    p.add_argument("--output", default=None, metavar="DIR", help="where the JSON and Markdown go (default W)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run_cli)
    return p


def _run_cli(args) -> int:
    try:
        result = ablation_workdir(args.workdir, limit=args.limit, output=args.output,
                                  progress=not getattr(args, "no_progress", False))
    except (AblationError, ValueError, OSError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(result["markdown"], end="")
    print(f"written to {result['json_path']} and {result['markdown_path']}", file=sys.stderr)
    return 0
