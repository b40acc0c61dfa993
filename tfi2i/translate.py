"""`tfi2i translate`: run a trained model over image files of any size.

The model is a training run directory (its latest checkpoint, through
:func:`tfi2i.runs.load_model`) or a SavedModel written by ``tfi2i export``
(a version folder, or an export root: its highest version), called through its
``serving_default`` (``serving_seeded``) signature. Both follow the model's
contract (`tfi2i.contract`) and compute the same thing: pad the inputs at the
bottom / right to the contract's size multiple (REFLECT), run G in inference
mode, crop each output back (:func:`tfi2i.export.pad_run_crop`).

* The main input files are read by kind: images with
  :func:`tfi2i.data.images.read_image` (the training policy: grey replicated,
  alpha dropped, 16-bit to 8-bit), label maps with
  :func:`tfi2i.data.images.read_ids` (1-channel PNGs of ids, checked against
  the model's class count). A model's other inputs come from folders matched
  by file stem: ``style`` (``--style DIR``, any size, resized to the input's)
  and ``instances`` (``--instances DIR``, instance-id PNGs; the boundary
  map is computed from them, or, for pix2pixHD with instance features, the
  raw ids go to the model, which samples its feature clusters from the seed:
  ``--samples`` / ``--seed`` work as for a stochastic model).
* Outputs: ``OUTPUT/<stem>.png`` (the translation ``y``, the input's size);
  ``outputs=("y", "name", ...)`` also writes ``OUTPUT/<stem>_<name>.png``.
  A stochastic model gives ``samples`` images per input, sample k from seed
  ``seed + k`` (``<stem>_s<k>.png``), the same with a run and its export.
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
  than a tile and the tile's padding replaces the real context. A model whose
  contract says it cannot be tiled (noise, style codes, multi-scale outputs)
  is refused a ``tile`` with the contract's reason, and never tiled
  automatically.
* Files are read with the package's one pixel limit
  (:func:`tfi2i.data.images.max_pixels`: ``$TFI2I_MAX_PIXELS``, default
  4096*4096), checked from the header before decoding, so a small file
  claiming a huge size is skipped ("too large") instead of filling memory;
  raise the limit for genuine large images, which are then tiled.
* Unreadable files are skipped with one warning each and reported at the end;
  inputs are never overwritten and existing outputs only with ``overwrite``.
"""

from __future__ import annotations

import argparse
import dataclasses
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
#: ``--style sampled``: the style of a model with a style encoder is drawn from its fitted prior (`tfi2i.style_prior`).
SAMPLED_STYLE = "sampled"
#: At most this many batches' worth of images wait for a same-size partner.
_PENDING_BATCHES = 4

__all__ = ["TranslateError", "Translator", "load_translator", "translate_array", "translate_paths",
           "AUTO_TILE_PIXELS", "DEFAULT_TILE", "add_parser", "run"]


class TranslateError(ValueError):
    """A translation cannot be done as asked (bad model path, unsafe output folder, ...)."""


class Translator:
    """A model as a callable on float arrays, following its contract.

    ``Translator(fn, multiple)`` wraps a plain function float32 ``[B, H, W,
    C]`` -> ``[B, H, W, C_out]`` (a one-input, one-output model);
    ``contract=`` with ``run_fn=`` wraps any model: ``run_fn(inputs, seeds)``
    takes ``{name: float32 [B, H, W, C]}`` (the network's encoded inputs) and
    int64 seeds ``[B]`` (or None) and returns ``{output name: array}``.

    Attributes:
      contract: the model's `tfi2i.contract.Contract`.
      multiple: H and W are padded internally to a multiple of this.
      max_pixels: largest H*W one call accepts (an export's limit), or None.
      input_channels: channels of the main input.
      mode: the test-time mode, ``deterministic`` or ``reference``
        (`tfi2i.config.EvalConfig`); in reference mode the first seed of a
        call draws the dropout masks.
      source: what was loaded (for messages).
    """

    def __init__(self, fn=None, multiple=1, *, max_pixels=None, input_channels=3, source="", contract=None,
                 run_fn=None, mode="deterministic"):
        from tfi2i.contract import image_contract

        self.contract = contract or image_contract(input_channels, input_channels, multiple)
        if run_fn is None:
            name = self.contract.inputs[0].name

            def run_fn(inputs, seeds=None):
                return {"y": fn(inputs[name])}

        self._run = run_fn
        self.multiple = int(multiple if contract is None else self.contract.multiple)
        self.max_pixels = None if max_pixels is None else int(max_pixels)
        self.input_channels = int(self.contract.main_input.channels)
        self.source = source
        self.mode = mode

    @property
    def random(self):
        """True when the output depends on a seed (noise, sampled feature clusters, or the reference mode's dropout)."""
        return self.contract.seeded or self.mode == "reference"

    def run(self, inputs, seeds=None):
        """``{name: float array [B, H, W, C]}`` -> ``{output name: float32 array}``."""
        import tensorflow as tf

        tensors = {k: tf.convert_to_tensor(np.asarray(v, np.float32)) for k, v in inputs.items()}
        if seeds is not None:
            seeds = tf.convert_to_tensor(np.asarray(seeds, np.int64))
        return {k: np.asarray(v) for k, v in self._run(tensors, seeds).items()}

    def __call__(self, x):
        """The translation ``y`` of the main input ``x`` (one-input models; seed 0 for stochastic ones)."""
        main = self.contract.main_input.name
        if len(self.contract.supplied) != 1:
            raise TranslateError(f"{self.source}: the model takes {', '.join(self.contract.input_names)}; "
                                 "call .run({name: array}) with every input")
        return self.run({main: x})["y"]

    def __repr__(self):
        return f"Translator({self.source!r}, multiple={self.multiple}, max_pixels={self.max_pixels})"


def load_translator(path, mode=None, sampled_style=False) -> Translator:
    """A :class:`Translator` from a run directory (has ``config.json``) or a SavedModel export.

    ``mode``: the test-time mode of a run directory (default: its ``eval.mode``);
    an export runs in the mode it was exported with (asking for another is an error).
    ``sampled_style``: a run with a style encoder (GRIT) draws its style from
    the run's fitted prior and each sample's seed (`tfi2i.style_prior`); an
    export does so when it was exported with ``--style sampled``.

    Raises:
      TranslateError: the path does not exist or is neither.
      tfi2i.runs.RunError: a run directory without a checkpoint.
    """
    import tensorflow as tf

    from tfi2i import export
    from tfi2i.contract import Contract, image_contract
    from tfi2i.layers.transposed import freeze_for_inference

    p = Path(path)
    if not p.exists():
        raise TranslateError(f"{path}: no such file or folder")
    if (p / "config.json").is_file():
        from tfi2i.runs import load_model

        cfg, model, ckpt = load_model(p)
        if sampled_style:
            from tfi2i import style_prior

            try:
                model = style_prior.with_sampled_style(model, p)
            except style_prior.StylePriorError as exc:
                raise TranslateError(str(exc)) from None
        contract = model.contract
        mode = mode or cfg.eval.mode
        check = getattr(model, "check_inference", None)
        if check is not None:  # e.g. pix2pixHD with features: its clusters must be there
            try:
                check()
            except ValueError as exc:
                raise TranslateError(str(exc)) from None
        specs = {s.name: tf.TensorSpec([None, None, None, s.channels], tf.float32) for s in contract.supplied}
        freeze_for_inference(model.generator)  # this model only translates: sub-pixel decoders where they pay

        @tf.function(input_signature=[specs])
        def plain(inputs):
            return export.pad_run_crop(model, inputs, mode=mode)

        @tf.function(input_signature=[specs, tf.TensorSpec([None], tf.int64)])
        def seeded(inputs, seeds):
            return export.pad_run_crop(model, inputs, seeds=seeds if contract.stochastic else None, mode=mode,
                                       seed=seeds[0])

        def run_fn(inputs, seeds=None):
            random = contract.seeded or mode == "reference"
            return plain(inputs) if seeds is None or not random else seeded(inputs, seeds)

        return Translator(contract=contract, run_fn=run_fn, source=f"run {p} ({os.path.basename(ckpt)})", mode=mode)
    try:
        version_dir = export.resolve_version_dir(p)
    except export.ExportError:
        raise TranslateError(f"{path} is neither a training run directory (no config.json) nor a SavedModel "
                             "export (a folder with saved_model.pb, or an export root with numeric versions)")
    meta = export.read_metadata(version_dir)
    loaded = tf.saved_model.load(str(version_dir))
    if export.FLOAT_SIGNATURE not in loaded.signatures:
        raise TranslateError(f"{version_dir}: the SavedModel has no '{export.FLOAT_SIGNATURE}' signature")
    if "contract" in meta:
        contract = Contract.from_dict(meta["contract"])
    else:  # an export written before contracts were recorded: one image in, one out
        signature = loaded.signatures[export.FLOAT_SIGNATURE]
        inputs, outputs = signature.structured_input_signature[1], signature.structured_outputs
        if len(inputs) != 1 or len(outputs) != 1:
            raise TranslateError(f"{version_dir}: '{export.FLOAT_SIGNATURE}' must have one input and one output, "
                                 f"has {sorted(inputs)} -> {sorted(outputs)} (and the export records no contract)")
        contract = image_contract(meta.get("input_channels", 3), meta.get("output_channels", 3),
                                  meta.get("multiple", 1))
        contract = dataclasses.replace(contract, inputs=(dataclasses.replace(contract.inputs[0], name=list(inputs)[0]),))
    if sampled_style and "style" not in meta:
        raise TranslateError(f"{version_dir} was not exported with sampled styles (`tfi2i export --style sampled` "
                             "of a run with a style encoder); translate from the run directory, or re-export it")
    plain = loaded.signatures[export.FLOAT_SIGNATURE]
    seeded = loaded.signatures.get(export.SEEDED_FLOAT_SIGNATURE)

    def run_fn(inputs, seeds=None):
        if seeds is not None and seeded is not None:
            out = seeded(**inputs, **{export.SEED_INPUT: seeds})
        else:
            out = plain(**inputs)
        return dict(out)

    run_fn.loaded = loaded  # keeps the variables alive as long as the translator
    exported_mode = meta.get("mode", "deterministic")
    if mode is not None and mode != exported_mode:
        raise TranslateError(f"{version_dir} was exported in {exported_mode} mode; re-export it with "
                             f"`tfi2i export --mode {mode}` or translate from the run directory")
    return Translator(contract=contract, run_fn=run_fn, max_pixels=meta.get("max_pixels"),
                      source=f"export {version_dir}", mode=exported_mode)


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
    """float ``[H, W, C]`` (or ``{input name: [H, W, C]}``) -> the outputs through overlapping tiles, feathered.

    A bare array gives the translation ``y`` ``[H, W, C_out]``; a dict gives
    ``{output name: [H, W, C]}``.
    """
    single = not isinstance(x, dict)
    inputs = {model.contract.main_input.name: x} if single else x
    h, w = next(iter(inputs.values())).shape[:2]
    th, tw = min(tile, h), min(tile, w)
    boxes = [(top, left) for top in _starts(h, tile, overlap) for left in _starts(w, tile, overlap)]
    acc, weight = {}, np.zeros((h, w, 1), np.float64)
    for i in range(0, len(boxes), batch_size):
        chunk = boxes[i: i + batch_size]
        out = model.run({k: np.stack([v[t: t + th, l: l + tw] for t, l in chunk]) for k, v in inputs.items()})
        for (t, l), j in zip(chunk, range(len(chunk))):
            wt = np.outer(_ramp(t, th, h, overlap), _ramp(l, tw, w, overlap))[:, :, None]
            for name, y in out.items():
                if name not in acc:
                    acc[name] = np.zeros((h, w, y.shape[-1]), np.float64)
                acc[name][t: t + th, l: l + tw] += y[j] * wt
            weight[t: t + th, l: l + tw] += wt
    result = {name: (a / weight).astype(np.float32) for name, a in acc.items()}
    return result["y"] if single else result


def _tile_for(model, h, w, tile):
    """The tile side to use for an ``h`` x ``w`` image (None: whole image)."""
    if getattr(model, "mode", "deterministic") == "reference":
        if tile is not None:
            raise TranslateError(f"{model.source}: reference test-time mode normalises with each call's batch "
                                 "statistics and draws dropout per call, so tiles would not fit together; leave "
                                 "out --tile or use --mode deterministic")
        return None
    if not model.contract.tileable:
        if tile is not None:
            raise TranslateError(f"{model.source}: this model cannot be tiled: "
                                 f"{model.contract.why_not_tileable or 'its contract says so'}; leave out --tile")
        return None
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


def _output_names(stem, outputs, samples):
    """File names of one input's results: ``<stem>[_<output>][_s<k>].png``, in (sample, output) order."""
    names = []
    for k in range(samples):
        for name in outputs:
            names.append(f"{stem}{'' if name == 'y' else '_' + name}{'' if samples == 1 else f'_s{k}'}.png")
    return names


def _plan_outputs(files, folders, output_dir, overwrite, outputs=("y",), samples=1):
    """Output paths per input; refuses anything that could overwrite an input or an unasked-for file."""
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
        targets = [out / n for n in _output_names(f.stem, outputs, samples)]
        for target in targets:
            if target.name in by_name:
                raise TranslateError(f"{by_name[target.name]} and {f} would both be written to {target}; rename one")
            by_name[target.name] = f
            if os.path.realpath(target) in inputs_real:
                raise TranslateError(f"output {target} would overwrite the input "
                                     f"{inputs_real[os.path.realpath(target)]}")
        plan.append((f, targets))
    if not overwrite:
        for _, targets in plan:
            for target in targets:
                if os.path.lexists(target):
                    raise TranslateError(f"{target} already exists; pass --overwrite (overwrite=True) to replace "
                                         "existing outputs, or choose another --output folder")
    return plan


def _index_by_stem(folder, what):
    from tfi2i.data.sources import list_images

    p = Path(folder)
    if not p.is_dir():
        raise TranslateError(f"--{what} {folder}: no such folder")
    return {f.stem: f for f in list_images(p)}


def _read_input(spec, path):
    """One file -> the network's float ``[H, W, C]`` for input `spec` (DataError when unreadable or out of range)."""
    from tfi2i.data.images import check_id_range, read_ids, read_image

    if spec.kind == "labels":
        ids = read_ids(path, "label map")
        check_id_range(ids, spec.num_classes, path)
        return np.eye(spec.num_classes, dtype=np.float32)[ids[..., 0]]
    if spec.kind == "instances" and spec.ids:  # the model takes the raw ids (and computes the boundary map)
        return read_ids(path, "instance map").astype(np.float32)
    if spec.kind == "instances":
        from tfi2i.data.labels import instance_edges

        return np.asarray(instance_edges(read_ids(path, "instance map")))
    rgb = read_image(path).astype(np.float32) / 127.5 - 1.0
    return rgb if spec.channels == 3 else rgb.mean(axis=-1, keepdims=True)


def translate_paths(model, inputs, output_dir, batch_size=4, tile=None, overlap=32, overwrite=False,
                    progress=True, extra=None, outputs=("y",), samples=1, seed=0) -> dict:
    """Translates files into ``output_dir/<stem>.png`` (and ``<stem>_<output>[_s<k>].png``).

    Args:
      model: a :class:`Translator` (:func:`load_translator`), or a path for it.
      inputs: files of the model's main input (an image, or a label map of
        ids), a folder (its non-hidden files, sorted), or a list of those.
      output_dir: created if needed; must not be an input folder.
      batch_size: images of one size (or tiles of one image) per model call.
      tile: tile side in pixels (None: whole images, tiling only above :data:`AUTO_TILE_PIXELS`
        for models that can be tiled).
      overlap: overlap of neighbouring tiles in pixels (feathered), ``0 <= overlap < tile``.
      overwrite: replace existing outputs (else :class:`TranslateError` up front).
      progress: show a tqdm bar over the images.
      extra: ``{input name: folder}`` for the model's other inputs (a style
        image, an instance map), matched to the main input by file stem.
      outputs: the named outputs to write (``("all",)``: every one).
      samples: images per input from a stochastic model, or in the reference
        test-time mode (seeds ``seed + k``).
      seed: first noise (or reference-mode dropout) seed.

    Returns:
      ``{"translated": int, "tiled": int, "skipped": [{"path", "reason"}], "outputs": [str], "output_dir": str}``.
    """
    from tqdm import tqdm

    from tfi2i.data.images import DataError
    from tfi2i.visualize import save_png, to_uint8_image

    if not isinstance(model, Translator):
        model = load_translator(model)
    contract = model.contract
    main = contract.main_input
    outputs = contract.output_names if tuple(outputs) == ("all",) else tuple(outputs)
    unknown = [o for o in outputs if o not in contract.output_names]
    if unknown or not outputs:
        raise TranslateError(f"{model.source}: no output(s) {', '.join(unknown) or '(none asked)'}; the model gives "
                             f"{', '.join(contract.output_names)}")
    samples, seed = int(samples), int(seed)
    if samples < 1:
        raise TranslateError(f"samples must be >= 1, got {samples}")
    if samples > 1 and not model.random:
        raise TranslateError(f"{model.source}: the model is deterministic (no noise inputs, deterministic test-time "
                             "mode): --samples must be 1 (or --mode reference for the pix2pix test-time dropout)")
    extra = dict(extra or {})
    others = [s for s in contract.supplied if s.name != main.name]
    missing = [s for s in others if s.name not in extra]
    if missing:
        flags = ", ".join(f"--{s.name} DIR ({s.kind})" for s in missing)
        raise TranslateError(f"{model.source}: the model also takes {flags}, matched to the inputs by file stem")
    stray = sorted(set(extra) - {s.name for s in others})
    if stray:
        raise TranslateError(f"{model.source}: the model has no input(s) {', '.join(stray)}; it takes "
                             f"{', '.join(s.name for s in contract.supplied)}")
    if main.kind == "rgb" and main.channels != 3:
        raise TranslateError(f"{model.source}: the generator takes {main.channels} channels; "
                             "translate reads RGB images (3 channels)")
    indexes = {s.name: _index_by_stem(extra[s.name], s.name) for s in others}
    batch_size, overlap = int(batch_size), int(overlap)
    if batch_size < 1:
        raise TranslateError(f"batch size must be >= 1, got {batch_size}")
    if tile is not None:
        tile = int(tile)
        if model.mode == "reference":
            _tile_for(model, 0, 0, tile)  # raises with the reason
        if not contract.tileable:
            raise TranslateError(f"{model.source}: this model cannot be tiled: "
                                 f"{contract.why_not_tileable or 'its contract says so'}; leave out --tile")
        if tile < 1:
            raise TranslateError(f"tile must be >= 1, got {tile}")
        if model.max_pixels is not None and tile * tile > model.max_pixels:
            raise TranslateError(f"tile {tile}x{tile} exceeds the export's max_pixels={model.max_pixels}; "
                                 f"use --tile {math.isqrt(model.max_pixels)} or less")
    if overlap < 0 or (tile is not None and overlap >= tile):
        raise TranslateError(f"overlap must be >= 0 and smaller than the tile ({tile}), got {overlap}")
    auto_tile = min(DEFAULT_TILE, math.isqrt(min(AUTO_TILE_PIXELS, model.max_pixels or AUTO_TILE_PIXELS)))
    if tile is None and contract.tileable and overlap >= auto_tile:
        raise TranslateError(f"overlap {overlap} must be smaller than the automatic tile size {auto_tile}")

    files, folders = _list_inputs(inputs)
    if not files:
        raise TranslateError(f"no input files in {', '.join(str(f) for f in folders) or inputs}")
    for s in others:
        absent = [f.name for f in files if f.stem not in indexes[s.name]]
        if absent:
            raise TranslateError(f"--{s.name} {extra[s.name]}: no file with the stem of {', '.join(absent[:10])}"
                                 f"{' ...' if len(absent) > 10 else ''}")
    folders += [Path(extra[s.name]) for s in others]
    plan = _plan_outputs(files, folders, output_dir, overwrite, outputs, samples)
    os.makedirs(output_dir, exist_ok=True)

    result = {"translated": 0, "tiled": 0, "skipped": [], "outputs": [], "output_dir": str(output_dir)}
    bar = tqdm(total=len(plan), desc="translate", unit="img", disable=not progress, dynamic_ncols=True)
    pending = {}  # (h, w) -> [(targets, inputs)], insertion order = order of first appearance

    def write(targets, outs):
        """outs: one {output: [h, w, C]} per sample."""
        for target, image in zip(targets, [o[name] for o in outs for name in outputs]):
            save_png(target, to_uint8_image(image))
            result["outputs"].append(str(target))
        result["translated"] += 1
        bar.update(1)

    def run_samples(stacked, n):
        """{input: [n, h, w, C]} -> [n][samples] of {output: [h, w, C]}."""
        per = [[None] * samples for _ in range(n)]
        for k in range(samples):
            seeds = np.full([n], seed + k, np.int64) if model.random else None
            out = model.run(stacked, seeds)
            for i in range(n):
                per[i][k] = {name: out[name][i] for name in outputs}
        return per

    def flush(size):
        group = pending.pop(size)
        stacked = {s.name: np.stack([x[s.name] for _, x in group]) for s in contract.supplied}
        for (targets, _), outs in zip(group, run_samples(stacked, len(group))):
            write(targets, outs)

    try:
        for src, targets in plan:
            try:
                x = {main.name: _read_input(main, src)}
                for s in others:
                    x[s.name] = _read_input(s, indexes[s.name][src.stem])
            except DataError as exc:
                logger.warning("skipped unreadable %s: %s", src, exc)
                result["skipped"].append({"path": str(src), "reason": str(exc)})
                bar.update(1)
                continue
            h, w = x[main.name].shape[:2]
            bad = [s.name for s in others if s.kind != "style" and x[s.name].shape[:2] != (h, w)]
            if bad:
                reason = f"{', '.join(bad)} input(s) differ in size from {src} ({w}x{h})"
                logger.warning("skipped %s: %s", src, reason)
                result["skipped"].append({"path": str(src), "reason": reason})
                bar.update(1)
                continue
            for s in others:
                if s.kind == "style" and x[s.name].shape[:2] != (h, w):
                    import tensorflow as tf

                    x[s.name] = np.asarray(tf.image.resize(x[s.name], (h, w), method="bilinear"))
            side = _tile_for(model, h, w, tile)
            if side is not None:
                write(targets, [_translate_tiled(model, x, side, overlap, batch_size)])
                result["tiled"] += 1
                continue
            pending.setdefault((h, w), []).append((targets, x))
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
        help="run a trained model (run directory or export) over image files (or label maps)",
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
    p.add_argument("--style", default=None, metavar="DIR",
                   help="style images for a model with a style input, matched to --input by file stem (any size); "
                   "'sampled': draw each sample's style from the run's fitted prior (tfi2i style-prior) and seed")
    p.add_argument("--instances", default=None, metavar="DIR",
                   help="instance-id PNGs for a model with an instance input, matched to --input by file stem")
    p.add_argument("--mode", choices=("deterministic", "reference"), default=None,
                   help="test-time mode of a run directory (default: its eval.mode; an export keeps its own): "
                   "deterministic = dropout off, moving batch-norm statistics; reference = the pix2pix test "
                   "script's dropout on and per-batch statistics, seeded by --seed")
    p.add_argument("--samples", type=int, default=1, metavar="K",
                   help="images per input from a stochastic model, sample k from seed S+k (<stem>_s<k>.png)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="first noise seed of a stochastic model (default 0)")
    p.add_argument("--outputs", default="y", metavar="LIST",
                   help="named outputs to write, comma-separated, or 'all' (default y; others as <stem>_<name>.png)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """``tfi2i translate``; 1 with ``error: ...`` on a user error or when nothing could be translated."""
    from tfi2i.export import ExportError
    from tfi2i.runs import RunError

    try:
        sampled = getattr(args, "style", None) == SAMPLED_STYLE
        if sampled and os.path.isdir(SAMPLED_STYLE):
            raise TranslateError(f"--style {SAMPLED_STYLE} samples styles, but a folder '{SAMPLED_STYLE}' is here: "
                                 f"write --style ./{SAMPLED_STYLE} for the folder")
        model = load_translator(args.model, mode=getattr(args, "mode", None), sampled_style=sampled)
        extra = {name: getattr(args, name, None) for name in ("style", "instances")
                 if getattr(args, name, None) and not (name == "style" and sampled)}
        extra = {next((s.name for s in model.contract.inputs if s.kind == kind), kind): folder
                 for kind, folder in extra.items()}
        outputs = tuple(o.strip() for o in str(getattr(args, "outputs", "y")).split(",") if o.strip()) or ("y",)
        result = translate_paths(model, args.input, args.output, batch_size=args.batch_size, tile=args.tile,
                                 overlap=args.overlap, overwrite=args.overwrite,
                                 progress=not getattr(args, "no_progress", False), extra=extra, outputs=outputs,
                                 samples=getattr(args, "samples", 1), seed=getattr(args, "seed", 0))
    except (TranslateError, RunError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary(result))
    if result["translated"] == 0:
        print("error: no image could be translated", file=sys.stderr)
        return 1
    return 0
