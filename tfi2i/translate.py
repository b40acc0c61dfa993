"""`tfi2i translate`: run a trained generator over image files of any size.

The model is a training run directory (its latest checkpoint, through
:func:`tfi2i.runs.load_generator`) or a SavedModel written by ``tfi2i export``
(a version folder, or an export root: its highest version), called through its
``serving_default`` signature. Both paths compute the same thing: pad the image
at the bottom / right to a multiple of ``2**depth`` (REFLECT), run G in
inference mode, crop back (:func:`tfi2i.export.pad_run_crop`).

* Images are read with :func:`tfi2i.data.images.read_image` (the training
  policy: grey replicated, alpha dropped, 16-bit to 8-bit) and written as
  ``OUTPUT/<stem>.png`` with the input's size.
* Images of the same size are batched together (up to ``batch_size``), in
  input order; a bounded number of images wait for a batch.
* Tiling: with ``tile=N`` - or automatically for images above
  :data:`AUTO_TILE_PIXELS` pixels (2048*2048; above the export's ``max_pixels``
  for an export) - an image is processed in N x N tiles that overlap by
  ``overlap`` pixels and are blended with linear (feathered) weight ramps
  across each overlap, so there are no seams. Results then differ slightly
  from a whole-image pass, mostly near tile borders: with batch norm in
  inference mode the generator acts on each pixel's receptive field only, but
  that field (and, in a deep U-Net, the innermost bottleneck) reaches further
  than a tile and the tile's padding replaces the real context.
* Unreadable files are skipped with one warning each and reported at the end;
  inputs are never overwritten and existing outputs only with ``overwrite``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path

import numpy as np

logger = logging.getLogger("tfi2i.translate")

#: Above this many pixels (H*W) an image is tiled even without ``tile``.
AUTO_TILE_PIXELS = 2048 * 2048
#: Tile side used when tiling is automatic.
DEFAULT_TILE = 1024
#: At most this many batches' worth of images wait for a same-size partner.
_PENDING_BATCHES = 4

__all__ = ["TranslateError", "Translator", "load_translator", "translate_array", "translate_paths",
           "AUTO_TILE_PIXELS", "DEFAULT_TILE", "add_parser", "run"]


class TranslateError(ValueError):
    """A translation cannot be done as asked (bad model path, unsafe output folder, ...)."""


class Translator:
    """A generator as a callable: float32 ``[B, H, W, C]`` in [-1, 1] (any H, W) -> float32 ``[B, H, W, C_out]``.

    Attributes:
      multiple: H and W are padded internally to a multiple of this.
      max_pixels: largest H*W one call accepts (an export's limit), or None.
      input_channels: C.
      source: what was loaded (for messages).
    """

    def __init__(self, fn, multiple, *, max_pixels=None, input_channels=3, source=""):
        self._fn = fn
        self.multiple = int(multiple)
        self.max_pixels = None if max_pixels is None else int(max_pixels)
        self.input_channels = int(input_channels)
        self.source = source

    def __call__(self, x):
        import tensorflow as tf

        return np.asarray(self._fn(tf.convert_to_tensor(np.asarray(x, np.float32))))

    def __repr__(self):
        return f"Translator({self.source!r}, multiple={self.multiple}, max_pixels={self.max_pixels})"


def load_translator(path) -> Translator:
    """A :class:`Translator` from a run directory (has ``config.json``) or a SavedModel export.

    Raises:
      TranslateError: the path does not exist or is neither.
      tfi2i.runs.RunError: a run directory without a checkpoint.
    """
    import tensorflow as tf

    from tfi2i import export

    p = Path(path)
    if not p.exists():
        raise TranslateError(f"{path}: no such file or folder")
    if (p / "config.json").is_file():
        from tfi2i.networks.unet import unet_depth
        from tfi2i.runs import load_generator

        cfg, generator, ckpt = load_generator(p)
        multiple = 2 ** unet_depth(cfg.generator.name)
        channels = int(generator.input_shape[-1])

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, channels], tf.float32)])
        def fn(x):
            return export.pad_run_crop(generator, x, multiple)

        return Translator(fn, multiple, input_channels=channels, source=f"run {p} ({os.path.basename(ckpt)})")
    try:
        version_dir = export.resolve_version_dir(p)
    except export.ExportError:
        raise TranslateError(f"{path} is neither a training run directory (no config.json) nor a SavedModel "
                             "export (a folder with saved_model.pb, or an export root with numeric versions)")
    meta = export.read_metadata(version_dir)
    loaded = tf.saved_model.load(str(version_dir))
    if export.FLOAT_SIGNATURE not in loaded.signatures:
        raise TranslateError(f"{version_dir}: the SavedModel has no '{export.FLOAT_SIGNATURE}' signature")
    signature = loaded.signatures[export.FLOAT_SIGNATURE]
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    if len(inputs) != 1 or len(outputs) != 1:
        raise TranslateError(f"{version_dir}: '{export.FLOAT_SIGNATURE}' must have one input and one output, "
                             f"has {sorted(inputs)} -> {sorted(outputs)}")
    (in_name,), (out_name,) = list(inputs), list(outputs)

    def fn(x):
        return signature(**{in_name: x})[out_name]

    fn.loaded = loaded  # keeps the variables alive as long as the translator
    return Translator(fn, meta.get("multiple", 1), max_pixels=meta.get("max_pixels"),
                      input_channels=meta.get("input_channels", 3), source=f"export {version_dir}")


# --------------------------------------------------------------------------- tiling


def _starts(length, tile, overlap):
    """Tile start positions along an axis: step ``tile - overlap``, the last one flush with the end."""
    if length <= tile:
        return [0]
    return list(range(0, length - tile, tile - overlap)) + [length - tile]


def _ramp(start, size, length, overlap):
    """Blend weights of one tile along an axis: linear ramps over ``overlap`` px on sides that touch a neighbour."""
    w = np.ones(size, np.float32)
    n = min(overlap, size)
    if n:
        up = (np.arange(n, dtype=np.float32) + 1) / (n + 1)
        if start > 0:
            w[:n] = np.minimum(w[:n], up)
        if start + size < length:
            w[size - n:] = np.minimum(w[size - n:], up[::-1])
    return w


def _translate_tiled(model, x, tile, overlap, batch_size):
    """float ``[H, W, C]`` -> float ``[H, W, C_out]`` through overlapping ``tile`` x ``tile`` tiles, feathered."""
    h, w = x.shape[:2]
    th, tw = min(tile, h), min(tile, w)
    boxes = [(top, left) for top in _starts(h, tile, overlap) for left in _starts(w, tile, overlap)]
    acc = weight = None
    for i in range(0, len(boxes), batch_size):
        chunk = boxes[i: i + batch_size]
        out = model(np.stack([x[t: t + th, l: l + tw] for t, l in chunk]))
        if acc is None:
            acc = np.zeros((h, w, out.shape[-1]), np.float64)
            weight = np.zeros((h, w, 1), np.float64)
        for (t, l), y in zip(chunk, out):
            wt = np.outer(_ramp(t, th, h, overlap), _ramp(l, tw, w, overlap))[:, :, None]
            acc[t: t + th, l: l + tw] += y * wt
            weight[t: t + th, l: l + tw] += wt
    return (acc / weight).astype(np.float32)


def _tile_for(model, h, w, tile):
    """The tile side to use for an ``h`` x ``w`` image (None: whole image)."""
    limit = AUTO_TILE_PIXELS if model.max_pixels is None else min(AUTO_TILE_PIXELS, model.max_pixels)
    if tile is not None:
        return tile if (h > tile or w > tile) else None
    if h * w <= limit:
        return None
    return min(DEFAULT_TILE, math.isqrt(limit))


def translate_array(model, rgb, tile=None, overlap=32, batch_size=4):
    """One uint8 RGB ``[H, W, 3]`` image -> uint8 RGB ``[H, W, 3]`` (tiled as :func:`translate_paths` does)."""
    from tfi2i.visualize import to_uint8_image

    x = np.asarray(rgb, np.float32) / 127.5 - 1.0
    side = _tile_for(model, x.shape[0], x.shape[1], tile)
    y = model(x[None])[0] if side is None else _translate_tiled(model, x, side, overlap, batch_size)
    return to_uint8_image(y)


# --------------------------------------------------------------------------- files


def _list_inputs(inputs):
    """(files in order, input folders): a folder contributes its non-hidden files, sorted by name."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    files, folders = [], []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            folders.append(p)
            files += sorted(c for c in p.iterdir() if c.is_file() and not c.name.startswith("."))
        elif p.is_file():
            folders.append(p.parent)
            files.append(p)
        else:
            raise TranslateError(f"{item}: no such file or folder")
    return files, folders


def _plan_outputs(files, folders, output_dir, overwrite):
    """Output path per input; refuses anything that could overwrite an input or an unasked-for file."""
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise TranslateError(f"--output {output_dir} exists and is not a folder")
    out_real = os.path.realpath(out)
    for folder in folders:
        if os.path.realpath(folder) == out_real:
            raise TranslateError(f"--output {output_dir} is the input folder {folder}; write the translations "
                                 "into another folder (inputs are never overwritten)")
    inputs_real = {os.path.realpath(f): f for f in files}
    plan, by_name = [], {}
    for f in files:
        target = out / f"{f.stem}.png"
        if target.name in by_name:
            raise TranslateError(f"{by_name[target.name]} and {f} would both be written to {target}; rename one")
        by_name[target.name] = f
        if os.path.realpath(target) in inputs_real:
            raise TranslateError(f"output {target} would overwrite the input {inputs_real[os.path.realpath(target)]}")
        plan.append((f, target))
    if not overwrite:
        for _, target in plan:
            if os.path.lexists(target):
                raise TranslateError(f"{target} already exists; pass --overwrite (overwrite=True) to replace "
                                     "existing outputs, or choose another --output folder")
    return plan


def translate_paths(model, inputs, output_dir, batch_size=4, tile=None, overlap=32, overwrite=False,
                    progress=True) -> dict:
    """Translates image files into ``output_dir/<stem>.png``.

    Args:
      model: a :class:`Translator` (:func:`load_translator`), or a path for it.
      inputs: an image file, a folder (its non-hidden files, sorted), or a list of those.
      output_dir: created if needed; must not be an input folder.
      batch_size: images of one size (or tiles of one image) per generator call.
      tile: tile side in pixels (None: whole images, tiling only above :data:`AUTO_TILE_PIXELS`).
      overlap: overlap of neighbouring tiles in pixels (feathered), ``0 <= overlap < tile``.
      overwrite: replace existing ``output_dir/<stem>.png`` files (else :class:`TranslateError` up front).
      progress: show a tqdm bar over the images.

    Returns:
      ``{"translated": int, "tiled": int, "skipped": [{"path", "reason"}], "outputs": [str], "output_dir": str}``.
    """
    from tqdm import tqdm

    from tfi2i.data.images import DataError, read_image
    from tfi2i.visualize import save_png, to_uint8_image

    if not isinstance(model, Translator):
        model = load_translator(model)
    if model.input_channels != 3:
        raise TranslateError(f"{model.source}: the generator takes {model.input_channels} channels; "
                             "translate reads RGB images (3 channels)")
    batch_size, overlap = int(batch_size), int(overlap)
    if batch_size < 1:
        raise TranslateError(f"batch size must be >= 1, got {batch_size}")
    if tile is not None:
        tile = int(tile)
        if tile < 1:
            raise TranslateError(f"tile must be >= 1, got {tile}")
        if model.max_pixels is not None and tile * tile > model.max_pixels:
            raise TranslateError(f"tile {tile}x{tile} exceeds the export's max_pixels={model.max_pixels}; "
                                 f"use --tile {math.isqrt(model.max_pixels)} or less")
    if overlap < 0 or (tile is not None and overlap >= tile):
        raise TranslateError(f"overlap must be >= 0 and smaller than the tile ({tile}), got {overlap}")
    auto_tile = min(DEFAULT_TILE, math.isqrt(min(AUTO_TILE_PIXELS, model.max_pixels or AUTO_TILE_PIXELS)))
    if tile is None and overlap >= auto_tile:
        raise TranslateError(f"overlap {overlap} must be smaller than the automatic tile size {auto_tile}")

    files, folders = _list_inputs(inputs)
    if not files:
        raise TranslateError(f"no input files in {', '.join(str(f) for f in folders) or inputs}")
    plan = _plan_outputs(files, folders, output_dir, overwrite)
    os.makedirs(output_dir, exist_ok=True)

    result = {"translated": 0, "tiled": 0, "skipped": [], "outputs": [], "output_dir": str(output_dir)}
    bar = tqdm(total=len(plan), desc="translate", unit="img", disable=not progress, dynamic_ncols=True)
    pending = {}  # (h, w) -> [(target, x)], insertion order = order of first appearance

    def write(target, y):
        save_png(target, to_uint8_image(y))
        result["translated"] += 1
        result["outputs"].append(str(target))
        bar.update(1)

    def flush(size):
        group = pending.pop(size)
        out = model(np.stack([x for _, x in group]))
        for (target, _), y in zip(group, out):
            write(target, y)

    try:
        for src, target in plan:
            try:
                rgb = read_image(src)
            except DataError as exc:
                logger.warning("skipped unreadable %s: %s", src, exc)
                result["skipped"].append({"path": str(src), "reason": str(exc)})
                bar.update(1)
                continue
            x = rgb.astype(np.float32) / 127.5 - 1.0
            h, w = x.shape[:2]
            side = _tile_for(model, h, w, tile)
            if side is not None:
                write(target, _translate_tiled(model, x, side, overlap, batch_size))
                result["tiled"] += 1
                continue
            pending.setdefault((h, w), []).append((target, x))
            if len(pending[(h, w)]) >= batch_size:
                flush((h, w))
            elif sum(len(g) for g in pending.values()) > _PENDING_BATCHES * batch_size:
                flush(next(iter(pending)))  # the oldest group, as a partial batch
        while pending:
            flush(next(iter(pending)))
    finally:
        bar.close()
    return result


def summary(result) -> str:
    """One line: ``translated 5 images into DIR, skipped 1 unreadable: a.png, ...``."""
    n = result["translated"]
    line = f"translated {n} image{'s' if n != 1 else ''} into {result['output_dir']}"
    if result["tiled"]:
        line += f" ({result['tiled']} in tiles)"
    if result["skipped"]:
        names = ", ".join(Path(s["path"]).name for s in result["skipped"])
        line += f", skipped {len(result['skipped'])} unreadable: {names}"
    return line


# --------------------------------------------------------------------------- CLI


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``translate`` subcommand."""
    p = subparsers.add_parser(
        "translate",
        help="run a trained generator (run directory or export) over image files",
        description="Translate image files of any size with a run's generator (latest checkpoint) or a "
        "SavedModel export; writes OUTPUT/<stem>.png with each input's size. See docs/serving.md.",
    )
    p.add_argument("--model", required=True, metavar="PATH",
                   help="a training run directory, a SavedModel version folder or an export root (newest version)")
    p.add_argument("--input", required=True, action="append", metavar="FILE_OR_DIR",
                   help="an image file or a folder of images (repeatable)")
    p.add_argument("--output", required=True, metavar="DIR", help="output folder (not an input folder)")
    p.add_argument("--batch-size", type=int, default=4, metavar="N", help="images (or tiles) per batch (default 4)")
    p.add_argument("--tile", type=int, default=None, metavar="N",
                   help=f"process images in N x N tiles (default: only images over {AUTO_TILE_PIXELS} pixels, "
                   f"in {DEFAULT_TILE} tiles); a multiple of the model's 2**depth avoids padding each tile")
    p.add_argument("--overlap", type=int, default=32, metavar="N", help="tile overlap in pixels, feathered (default 32)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """``tfi2i translate``; 1 with ``error: ...`` on a user error or when nothing could be translated."""
    from tfi2i.export import ExportError
    from tfi2i.runs import RunError

    try:
        model = load_translator(args.model)
        result = translate_paths(model, args.input, args.output, batch_size=args.batch_size, tile=args.tile,
                                 overlap=args.overlap, overwrite=args.overwrite,
                                 progress=not getattr(args, "no_progress", False))
    except (TranslateError, RunError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary(result))
    if result["translated"] == 0:
        print("error: no image could be translated", file=sys.stderr)
        return 1
    return 0
