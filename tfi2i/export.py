"""Exporting a trained model's generator as a SavedModel for TensorFlow Serving.

Layout (TF Serving's): ``EXPORT_ROOT/<version>/saved_model.pb`` (+ ``variables/``,
``tfi2i_export.json``), with integer versions 1, 2, 3, ... TF Serving serves the
highest version and ignores folders whose names are not numbers, which is what
makes the export atomic: the SavedModel is written into ``EXPORT_ROOT/.tmp-*``
and renamed to its numeric name only once it is complete.

Only the generator is exported (not the GAN wrapper with its discriminators),
in inference mode (``training=False``: dropout off, batch-norm running
statistics). Everything follows the model's contract (`tfi2i.contract`,
recorded in ``tfi2i_export.json`` under ``"contract"``):

``serving_default``
    one float32 input per contract input, named as in the contract: an image
    ``[batch, H, W, C]`` in [-1, 1], a label map one-hot ``[batch, H, W,
    num_classes]``, an instance boundary map ``[batch, H, W, 1]`` in {0, 1}, a
    style image ``[batch, h, w, 3]`` (resized to H, W inside); every named
    output, float32 ``[batch, H / factor, W / factor, C]`` in [-1, 1]. A
    stochastic model draws its noise with seed 0 for every example here;
    ``serving_seeded`` takes an extra int64 ``seed`` ``[batch]`` (the same
    seed, the same image).

``translate_bytes``
    one tf.string ``[batch]`` input per contract input: ``images`` for the
    first one (its pixels), ``<name>_images`` for the others; encoded PNG /
    JPEG / BMP / WebP / GIF (first frame) images, which may have different
    sizes per example. Label maps travel as 1-channel PNGs of ids (8 or 16
    bit; any other PNG layout, RGB included, is refused as in training) and
    are one-hot encoded inside; an id >= num_classes is an
    ``InvalidArgumentError`` naming the limit. Instance maps travel as PNGs of
    instance ids and become the boundary map inside. Outputs: ``image_bytes``
    (PNG of ``y``) and ``<name>_bytes`` for every other output. The ``_bytes``
    suffix makes TF Serving's REST API answer ``{"b64": ...}``. Decoding of
    images follows :mod:`tfi2i.data.images` (the training policy): JPEG with
    the accurate integer IDCT (as OpenCV), 16-bit PNG to 8 bits by
    ``round(v / 257)``, grey replicated, alpha dropped. ``translate_bytes_seeded``
    adds ``seed`` for stochastic models.

A model with pix2pixHD's instance features (a ``features`` contract input,
`tfi2i.pix2pixhd`) takes no feature map in any signature: the model samples
it from its run's clusters (``W/features_clustered_010.npz``, baked into the
SavedModel as constants; an export without them is refused naming
``tfi2i encode-features``), and its ``instances`` input carries the raw
instance ids (``serving_*``: float32 ids ``[batch, H, W, 1]``;
``translate_bytes*``: the 8/16-bit PNG of ids, decoded as is) from which it
computes the boundary map. Its ``*_seeded`` signatures take the sampling seed
(the first one of the batch in ``serving_seeded``, each example's own in
``translate_bytes_seeded``); the unseeded ones sample with seed 0.

Test-time mode (``tfi2i export --mode``, default the run's ``eval.mode``,
recorded as ``"mode"`` in ``tfi2i_export.json``): ``deterministic`` (dropout
off, moving batch-norm statistics) or ``reference``, the pix2pix test
script's dropout on and batch statistics (of the request's batch in
``serving_default``, of each image in ``translate_bytes``); a reference-mode
export also has the ``*_seeded`` signatures, whose ``seed`` (the first one of
the batch) draws the dropout masks (seed 0 in the unseeded ones). Under
concurrent requests to one server the dropout seed of one request may be used
by another (the masks are the model's RNG state, set per call); the outputs
stay valid samples but are only reproducible one request at a time.

Any H, W works: the inputs are padded at the bottom / right to the next
multiple of the contract's ``multiple`` with REFLECT padding (edge replication
on an axis too short to reflect), run, and each output cropped back to its
share of H, W (:func:`pad_run_crop`, shared by every signature and by
``tfi2i translate``).

Bad requests fail with ``InvalidArgumentError`` and a readable message, the
server keeps running: data that is not an image, truncated / corrupt files
(JPEGs whose data or progressive scans end early too, by training's checks in
:func:`tfi2i.data.images._decode_jpeg_tf`), an id map that is not a 1-channel
8- or 16-bit PNG (:func:`tfi2i.data.images.ids_png_layout_tf`), an
image with more than ``max_pixels`` pixels (checked from the header before
decoding, for every format the signature decodes: PNG, JPEG, BMP, GIF, WebP
lossy / lossless / extended, by :func:`tfi2i.data.images.header_size_tf`; and
on the decoded size), inputs of one example with different
sizes, label ids out of range, a float input with the wrong number of channels
or an empty image.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

DEFAULT_MAX_PIXELS = 4096 * 4096  # == tfi2i.data.images.DEFAULT_MAX_PIXELS (not imported: it loads TensorFlow)
METADATA_FILE = "tfi2i_export.json"
FLOAT_SIGNATURE = "serving_default"
SEEDED_FLOAT_SIGNATURE = "serving_seeded"
BYTES_SIGNATURE = "translate_bytes"
SEED_INPUT = "seed"
FLOAT_INPUT, FLOAT_OUTPUT = "x", "y"
BYTES_INPUT, BYTES_OUTPUT = "images", "image_bytes"
TMP_PREFIX = ".tmp-"

__all__ = [
    "ExportError",
    "export_model",
    "bytes_names",
    "export_run",
    "pad_run_crop",
    "pad_to_multiple",
    "list_versions",
    "resolve_version_dir",
    "read_metadata",
    "add_parser",
    "run",
]


class ExportError(ValueError):
    """An export cannot be written or found as asked."""


# --------------------------------------------------------------------------- graph pieces


def _pad_axis(x, pad, axis):
    """Pads ``x`` at the end of ``axis`` by ``pad`` (scalar tensor): REFLECT, or edge when too short to reflect."""
    import tensorflow as tf

    size = tf.shape(x)[axis]

    def reflect():
        paddings = tf.stack([tf.stack([0, pad]) if a == axis else tf.constant([0, 0]) for a in range(4)])
        return tf.pad(x, paddings, mode="REFLECT")

    def edge():
        last = tf.gather(x, tf.reshape(size - 1, [1]), axis=axis)
        return tf.concat([x, tf.repeat(last, pad, axis=axis)], axis=axis)

    return tf.cond(pad < size, reflect, edge)


def pad_to_multiple(x, multiple):
    """Pads float ``[B, H, W, C]`` at the bottom / right so H and W become multiples of ``multiple``.

    REFLECT padding (``np.pad(mode="reflect")``) on each axis where the pad is
    smaller than the size, else edge replication (``np.pad(mode="edge")``) on
    that axis. Returns the padded tensor.
    """
    import tensorflow as tf

    shape = tf.shape(x)
    ph = (multiple - shape[1] % multiple) % multiple
    pw = (multiple - shape[2] % multiple) % multiple
    channels = x.shape[-1]
    x = _pad_axis(x, ph, 1)
    x = _pad_axis(x, pw, 2)
    x.set_shape([None, None, None, channels])
    return x


def pad_run_crop(model, inputs, multiple=None, seeds=None, mode="deterministic", seed=0):
    """The model's outputs for float `inputs` of any size: pad to the multiple, run (inference), crop each output back.

    Args:
      model: a `tfi2i.gan.PairedGAN` (its contract and generator).
      inputs: ``{name: float32 [B, H, W, C]}``, the network's (encoded)
        inputs; a style image of another size is resized (bilinear) to H, W.
        A bare tensor is the first input of a one-input model.
      multiple: pad H, W to a multiple of this (default: the contract's).
      seeds: int ``[B]`` noise seeds of a stochastic model (default 0).
      mode: ``deterministic`` or ``reference`` (`PairedGAN.generate`; the
        batch statistics are those of the padded batch), dropout from ``seed``.

    Returns:
      ``{output name: float32 [B, ceil(H / f), ceil(W / f), C]}``.
    """
    import tensorflow as tf

    contract = model.contract
    multiple = contract.multiple if multiple is None else int(multiple)
    if not isinstance(inputs, dict):
        inputs = {contract.inputs[0].name: inputs}
    main = inputs[contract.main_input.name]
    shape = tf.shape(main)
    padded = {}
    for spec in contract.inputs:
        if spec.name not in inputs and not spec.supplied:
            continue  # a feature map: the model fills it (at the padded size)
        value = tf.cast(inputs[spec.name], tf.float32)
        if spec.kind == "style":
            value = tf.image.resize(value, shape[1:3], method="bilinear")
        padded[spec.name] = pad_to_multiple(value, multiple)
    outputs = model.generate(padded, training=False, seeds=seeds, mode=mode, seed=seed)
    out = {}
    for spec in contract.outputs:
        h, w = -(-shape[1] // spec.factor), -(-shape[2] // spec.factor)
        out[spec.name] = tf.cast(outputs[spec.name][:, :h, :w, :], tf.float32)
    return out


def _sniff(data):
    """(zero-padded first 32 bytes, is_jpeg, is_png, is_png16) of an encoded image (tf.string scalar)."""
    import tensorflow as tf

    head = tf.strings.substr(tf.strings.join([tf.strings.substr(data, 0, 32), b"\0" * 32]), 0, 32)
    is_jpeg = tf.equal(tf.strings.substr(head, 0, 3), b"\xff\xd8\xff")
    is_png = tf.equal(tf.strings.substr(head, 0, 8), b"\x89PNG\r\n\x1a\n")
    is_png16 = tf.logical_and(is_png, tf.equal(tf.strings.substr(head, 24, 1), b"\x10"))  # IHDR bit depth
    return head, is_jpeg, is_png, is_png16


def _decode(data, channels, is_jpeg, is_png16, where="input"):
    """One encoded image -> uint8 ``[H, W, channels]``, following :mod:`tfi2i.data.images`' policy.

    JPEGs get training's checks (:func:`tfi2i.data.images._decode_jpeg_tf`): a scan that ends early
    (grey-filled) and a progressive JPEG whose scans stop early (blurred) are ``InvalidArgumentError``
    naming ``where``.
    """
    import tensorflow as tf

    from tfi2i.data.images import _decode_jpeg_tf

    def jpeg():
        return _decode_jpeg_tf(data, where, channels=channels)

    def png16():
        v = tf.cast(tf.io.decode_png(data, channels=channels, dtype=tf.uint16), tf.int32)
        return tf.cast((v + 128) // 257, tf.uint8)

    def other():
        return tf.io.decode_image(data, channels=channels, dtype=tf.uint8, expand_animations=False)

    img = tf.switch_case(tf.where(is_jpeg, 0, tf.where(is_png16, 1, 2)), [jpeg, png16, other])
    img.set_shape([None, None, channels])
    return img


def _header_pixels(data):
    """H*W (int64) from the image's header without decoding the pixels (every format decoded here); 0 if unknown."""
    from tfi2i.data.images import header_size_tf

    hw = header_size_tf(data)
    return hw[0] * hw[1]


def _limit_message(max_pixels):
    side = int(max_pixels**0.5)
    return (f"tfi2i: image too large: more than max_pixels={max_pixels} pixels (H*W; e.g. {side}x{side}); "
            "split it into tiles (tfi2i translate --tile) or re-export with a larger --max-pixels "
            "(or TFI2I_MAX_PIXELS set when exporting)")


def _check_size(h, w, max_pixels):
    """Assertions on an image's H, W (int tensors): non-empty and H*W <= max_pixels."""
    import tensorflow as tf

    pixels = tf.cast(h, tf.int64) * tf.cast(w, tf.int64)
    return [
        tf.debugging.assert_positive(tf.stack([tf.cast(h, tf.int64), tf.cast(w, tf.int64)]),
                                     message="tfi2i: empty image (height or width is 0)"),
        tf.debugging.assert_less_equal(pixels, tf.constant(max_pixels, tf.int64), message=_limit_message(max_pixels)),
    ]


def _float_specs(contract):
    import tensorflow as tf

    return [tf.TensorSpec([None, None, None, None], tf.float32, name=spec.name) for spec in contract.supplied]


def _seed_spec():
    import tensorflow as tf

    return tf.TensorSpec([None], tf.int64, name=SEED_INPUT)


def _make_float_fn(model, max_pixels, seeded=False, mode="deterministic"):
    """``serving_default`` (``serving_seeded`` with ``seeded``): the contract's float inputs -> every output."""
    import tensorflow as tf

    contract = model.contract
    main = contract.main_input.name

    supplied = contract.supplied

    def serve(*args):
        values = dict(zip([spec.name for spec in supplied], args[: len(supplied)]))
        shape = tf.shape(values[main])
        checks = list(_check_size(shape[1], shape[2], max_pixels))
        for spec in supplied:
            s = tf.shape(values[spec.name])
            what = {"labels": f"one-hot [batch, H, W, {spec.channels}] ({spec.num_classes} classes)",
                    "instances": "raw instance ids [batch, H, W, 1]" if spec.ids else
                    "boundary map [batch, H, W, 1] in {0, 1}"}.get(
                spec.kind, f"float32 [batch, H, W, {spec.channels}] in [-1, 1]")
            checks.append(tf.debugging.assert_equal(
                s[3], spec.channels, message=f"tfi2i: input {spec.name} must be {what}; wrong number of channels "
                "(last axis)"))
            checks.append(tf.debugging.assert_equal(s[0], shape[0], message=f"tfi2i: input {spec.name} has another "
                                                    f"batch size than {main}"))
            if spec.kind != "style" and spec.name != main:
                checks.append(tf.debugging.assert_equal(s[1:3], shape[1:3], message=f"tfi2i: input {spec.name} "
                                                        f"must have the size (H, W) of {main}"))
        with tf.control_dependencies(checks):
            values = {k: tf.identity(v) for k, v in values.items()}
        values = {spec.name: tf.ensure_shape(values[spec.name], [None, None, None, spec.channels])
                  for spec in supplied}
        seeds = args[-1] if seeded else None
        return pad_run_crop(model, values, seeds=seeds if model.contract.stochastic else None, mode=mode,
                            seed=seeds[0] if seeded else 0)

    return serve


def _decode_input(spec, data, max_pixels):
    """One encoded file -> the network's float ``[1, H, W, C]`` for input `spec` (ids one-hot, instance edges)."""
    import tensorflow as tf

    from tfi2i.data.labels import instance_edges, one_hot

    _, is_jpeg, is_png, is_png16 = _sniff(data)
    header_check = tf.debugging.assert_less_equal(  # before decoding: no huge allocation for a small file
        _header_pixels(data), tf.constant(max_pixels, tf.int64),
        message=_limit_message(max_pixels) + " (read from the image's header, before decoding)")
    with tf.control_dependencies([header_check]):
        data = tf.identity(data)
    if spec.kind in ("labels", "instances"):
        from tfi2i.data.images import ids_png_layout_tf

        ok, _, layout = ids_png_layout_tf(data)  # training's check (read_ids / decode_ids_tf): no grey conversion
        needed = f"tfi2i: input {spec.name} ({spec.kind}) must be a 1-channel PNG of ids"
        message = tf.where(is_png, tf.strings.join([
            needed, " (greyscale, 8 or 16 bit); this PNG has ", layout, ": a colour-coded map (or a grey one saved "
            "as RGB) must be converted to ids first (one id per pixel, saved as a greyscale PNG)"]), needed)
        png = tf.debugging.Assert(ok, [message])
        with tf.control_dependencies([png]):
            ids = tf.cond(is_png16, lambda: tf.cast(tf.io.decode_png(data, channels=1, dtype=tf.uint16), tf.int32),
                          lambda: tf.cast(tf.io.decode_png(data, channels=1, dtype=tf.uint8), tf.int32))
        ids.set_shape([None, None, 1])
        shape = tf.shape(ids)
        checks = list(_check_size(shape[0], shape[1], max_pixels))
        if spec.kind == "labels":
            checks.append(tf.debugging.assert_less(
                tf.reduce_max(ids), spec.num_classes,
                message=f"tfi2i: input {spec.name}: label id out of range (the model knows ids 0..{spec.num_classes - 1})"))
        with tf.control_dependencies(checks):
            ids = tf.identity(ids)[None]
        if spec.kind == "labels":
            return one_hot(ids, spec.num_classes)
        return tf.cast(ids, tf.float32) if spec.ids else instance_edges(ids)  # ids=True: the model needs the raw ids
    img = _decode(data, spec.channels, is_jpeg, is_png16, where=f"input {spec.name}")
    shape = tf.shape(img)
    with tf.control_dependencies(_check_size(shape[0], shape[1], max_pixels)):
        return tf.cast(img, tf.float32)[None] / 127.5 - 1.0


def bytes_names(contract):
    """(input names, output names) of the bytes signature: ``images`` / ``<name>_images``; ``image_bytes`` / ``<name>_bytes``."""
    ins = [BYTES_INPUT if i == 0 else f"{spec.name}_images" for i, spec in enumerate(contract.supplied)]
    outs = [BYTES_OUTPUT if spec.name == "y" else f"{spec.name}_bytes" for spec in contract.outputs]
    return ins, outs


def _make_bytes_fn(model, max_pixels, seeded=False, mode="deterministic"):
    """``translate_bytes``: encoded files per input -> PNGs per output, one example at a time (mixed sizes)."""
    import tensorflow as tf

    contract = model.contract
    in_names, out_names = bytes_names(contract)
    main = contract.main_input.name

    def one(elems):
        *datas, seed = elems
        values = {spec.name: _decode_input(spec, d, max_pixels) for spec, d in zip(contract.supplied, datas)}
        shape = tf.shape(values[main])
        checks = [tf.debugging.assert_equal(tf.shape(values[spec.name])[1:3], shape[1:3],
                                            message=f"tfi2i: {in_names[i]} must have the size of the "
                                            f"{main} image of the same example")
                  for i, spec in enumerate(contract.supplied) if spec.kind != "style" and spec.name != main]
        with tf.control_dependencies(checks):
            values = {k: tf.identity(v) for k, v in values.items()}
        outputs = pad_run_crop(model, values, seeds=tf.reshape(seed, [1]) if contract.stochastic else None,
                               mode=mode, seed=seed)
        pngs = []
        for spec in contract.outputs:
            y = outputs[spec.name][0]
            pngs.append(tf.io.encode_png(tf.cast(tf.clip_by_value(tf.round((y + 1.0) * 127.5), 0.0, 255.0), tf.uint8)))
        return tuple(pngs)

    def serve(*args):
        datas = list(args[: len(contract.supplied)])
        seeds = args[-1] if seeded else tf.zeros(tf.shape(datas[0]), tf.int64)
        pngs = tf.map_fn(one, (*datas, seeds), fn_output_signature=tuple(tf.string for _ in out_names))
        return dict(zip(out_names, pngs))

    return serve


# --------------------------------------------------------------------------- versions


def list_versions(export_root):
    """Numeric version folders under ``export_root`` (ints, ascending); [] when it does not exist."""
    root = Path(export_root)
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit() and p.is_dir())


def resolve_version_dir(path):
    """A SavedModel folder from a version folder or an export root (-> its highest version)."""
    p = Path(path)
    if (p / "saved_model.pb").is_file():
        return p
    versions = [v for v in list_versions(p) if (p / str(v) / "saved_model.pb").is_file()]
    if versions:
        return p / str(versions[-1])
    raise ExportError(f"{path} is neither a SavedModel folder (no saved_model.pb) nor an export root with "
                      "numeric version folders")


def read_metadata(version_dir):
    """The export's ``tfi2i_export.json`` as a dict ({} when absent, e.g. an export made by other tools)."""
    path = Path(version_dir) / METADATA_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _publish(tmp, root, version):
    """Renames the complete ``tmp`` folder to ``root/<version>`` (next free version when None)."""
    for _ in range(1000):
        v = version if version is not None else (max(list_versions(root), default=0) + 1)
        final = root / str(v)
        if final.exists():
            if version is not None:
                raise ExportError(f"{final} already exists; choose another version or leave it out")
            continue
        try:
            os.rename(tmp, final)  # atomic; fails if another exporter took this number meanwhile
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY) and version is None:
                continue
            raise
        _fsync_dir(root)
        return final
    raise ExportError(f"could not find a free version number under {root}")


# --------------------------------------------------------------------------- export


def export_model(model, export_root, *, max_pixels=None, version=None, metadata=None,
                 mode="deterministic") -> Path:
    """Writes ``model``'s generator as a SavedModel into ``export_root/<version>``, atomically.

    Args:
      model: a `tfi2i.gan.PairedGAN` (``tfi2i.runs.load_model(W).model``); its
        contract says the signatures' inputs and outputs.
      export_root: the folder TF Serving watches (created if needed).
      max_pixels: largest accepted H*W per image (requests above fail cleanly); default
        :func:`tfi2i.data.images.max_pixels` (``$TFI2I_MAX_PIXELS``, else 4096*4096), the
        limit of every other entry point.
      version: integer version folder; default: highest existing numeric folder + 1 (1 when none).
      metadata: extra JSON-serialisable fields for ``tfi2i_export.json``.
      mode: ``deterministic`` (dropout off, moving batch-norm statistics) or
        ``reference`` (the pix2pix test script's dropout on and request-batch
        statistics; the ``*_seeded`` signatures then take the dropout seed).

    Returns:
      The version folder (``Path``), holding ``saved_model.pb``, ``variables/`` and
      ``tfi2i_export.json``.
    """
    import keras
    import tensorflow as tf

    import tfi2i

    from tfi2i.data.images import DataError, max_pixels as default_limit

    contract = model.contract
    try:
        max_pixels = int(default_limit() if max_pixels is None else max_pixels)
    except DataError as exc:
        raise ExportError(str(exc)) from None
    if max_pixels < 1:
        raise ExportError(f"max_pixels must be >= 1, got {max_pixels}")
    if version is not None and (int(version) < 1):
        raise ExportError(f"version must be a positive integer, got {version}")
    root = Path(export_root)
    root.mkdir(parents=True, exist_ok=True)
    if version is not None and (root / str(int(version))).exists():
        raise ExportError(f"{root / str(int(version))} already exists; choose another version or leave it out")

    check = getattr(model, "check_inference", None)
    if check is not None:  # e.g. pix2pixHD with features: its clusters must be there
        try:
            check(for_export=True)
        except ValueError as exc:
            raise ExportError(str(exc)) from None

    def describe(spec):
        return {"labels": f"float32 [batch, H, W, {spec.channels}]: one-hot label map ({spec.num_classes} classes)",
                "instances": "float32 [batch, H, W, 1]: raw instance ids (the model computes the boundary map)"
                if spec.ids else "float32 [batch, H, W, 1]: instance boundary map in {0, 1}",
                "style": f"float32 [batch, h, w, {spec.channels}] in [-1, 1]: style image (resized to H, W)"}.get(
            spec.kind, f"float32 [batch, H, W, {spec.channels}] in [-1, 1]")

    float_outputs = {o.name: f"float32 [batch, H/{o.factor}, W/{o.factor}, {o.channels}] in [-1, 1]"
                     if o.factor != 1 else f"float32 [batch, H, W, {o.channels}] in [-1, 1]" for o in contract.outputs}
    in_names, out_names = bytes_names(contract)
    with_bytes = all(o.channels in (1, 3) for o in contract.outputs)
    tmp = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=root)
    from tfi2i.layers.transposed import freeze_for_inference, unfreeze

    frozen = freeze_for_inference(model.generator)  # sub-pixel decoders where they pay (CPU serving)
    try:
        archive = keras.export.ExportArchive()
        if not frozen:  # else add_endpoint tracks what the functions use: not the replaced kernels (half the size)
            archive.track(model.generator)
        signatures = {}
        if mode not in ("deterministic", "reference"):
            raise ExportError(f"mode must be deterministic or reference, got {mode!r}")
        variants = [(False, "")] + ([(True, "_seeded")] if contract.seeded or mode == "reference" else [])
        for seeded, suffix in variants:
            extra = [_seed_spec()] if seeded else []
            name = FLOAT_SIGNATURE if not seeded else SEEDED_FLOAT_SIGNATURE
            archive.add_endpoint(name, _make_float_fn(model, max_pixels, seeded, mode),
                                 input_signature=_float_specs(contract) + extra)
            signatures[name] = {"inputs": {s.name: describe(s) for s in contract.supplied}, "outputs": float_outputs}
            if seeded:
                signatures[name]["inputs"][SEED_INPUT] = ("int64 [batch]: noise seed per example" if contract.stochastic
                                                          else "int64 [batch]: seed (the first one of the batch)")
            if with_bytes:
                archive.add_endpoint(
                    BYTES_SIGNATURE + suffix, _make_bytes_fn(model, max_pixels, seeded, mode),
                    input_signature=[tf.TensorSpec([None], tf.string, name=n) for n in in_names] + extra,
                )
                signatures[BYTES_SIGNATURE + suffix] = {
                    "inputs": {n: ("string [batch]: 1-channel PNG of ids" if s.kind in ("labels", "instances")
                                   else "string [batch]: encoded PNG/JPEG/BMP/WebP/GIF")
                               for n, s in zip(in_names, contract.supplied)},
                    "outputs": {n: "string [batch]: PNG" for n in out_names}}
                if seeded:
                    signatures[BYTES_SIGNATURE + suffix]["inputs"][SEED_INPUT] = "int64 [batch]: noise seed per example"
        archive.write_out(tmp, verbose=False)
        main, y = contract.inputs[0], contract.outputs[0]
        info = {
            "format": "tfi2i-export-2",
            "tfi2i_version": tfi2i.__version__,
            "tensorflow_version": tf.__version__,
            "keras_version": keras.__version__,
            "generator": model.generator.name,
            "input_channels": main.channels,
            "output_channels": y.channels,
            "multiple": contract.multiple,
            "max_pixels": max_pixels,
            "contract": contract.to_dict(),
            "mode": mode,
            "transposed_convolutions": "sub-pixel, kernels rearranged at export" if frozen else "native",
            "signatures": signatures,
            **({} if with_bytes else {"no_bytes_signature": "an output is not a 1- or 3-channel image"}),
            **(metadata or {}),
        }
        with open(os.path.join(tmp, METADATA_FILE), "w") as f:
            json.dump(info, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; the server may run as another user
        return _publish(tmp, root, None if version is None else int(version))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        unfreeze(model.generator)  # the caller's model computes from its own kernels again


def export_run(workdir, export_root=None, sampled_style=False, **kw) -> Path:
    """Exports a run's generator (latest checkpoint, `tfi2i.runs.load_model`) into ``export_root`` (default ``W/export``).

    Keyword arguments go to :func:`export_model` (``max_pixels``, ``version``, ``mode``: default the run's
    ``eval.mode``). ``sampled_style``: a model with a style encoder (GRIT) is exported without its style
    input, its style drawn from the run's fitted prior and the request's seed (`tfi2i.style_prior`).
    Raises :class:`tfi2i.runs.RunError` for a folder that is not a run or has no checkpoint.
    """
    from tfi2i.runs import load_model

    cfg, model, ckpt = load_model(workdir)
    kw.setdefault("mode", cfg.eval.mode)
    metadata = {"config_name": cfg.name, "builder": cfg.builder, "generator_name": cfg.generator.name,
                "checkpoint": os.path.abspath(ckpt), "workdir": os.path.abspath(workdir)}
    if sampled_style:
        from tfi2i import style_prior

        try:
            model = style_prior.with_sampled_style(model, workdir)
        except style_prior.StylePriorError as exc:
            raise ExportError(str(exc)) from None
        metadata["style"] = f"sampled from {style_prior.STYLE_PRIOR_FILE} (the style input is gone)"
    return export_model(model, export_root or os.path.join(workdir, "export"), metadata=metadata, **kw)


# --------------------------------------------------------------------------- CLI


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="export a run's generator as a SavedModel for TF Serving",
        description="Write the generator of run W (latest checkpoint) as a SavedModel into OUT/<version> "
        "(default OUT: W/export; version: highest existing + 1). Prints the version folder. See docs/serving.md.",
    )
    p.add_argument("--workdir", required=True, metavar="W", help="training run directory")
    p.add_argument("--out", default=None, metavar="DIR", help="export root (default: W/export)")
    p.add_argument("--max-pixels", type=int, default=None, metavar="N",
                   help=f"largest H*W a request may have (default: $TFI2I_MAX_PIXELS, else {DEFAULT_MAX_PIXELS} "
                   "= 4096*4096, the limit of training, evaluate and translate)")
    p.add_argument("--mode", choices=("deterministic", "reference"), default=None,
                   help="test-time mode (default: the run's eval.mode): deterministic = dropout off, moving "
                   "batch-norm statistics; reference = the pix2pix test script's dropout on, batch statistics, "
                   "seeded through the *_seeded signatures")
    p.add_argument("--style", choices=("image", "sampled"), default="image",
                   help="a model with a style input (GRIT): take a style image (default) or sample the style from "
                   "the run's style_prior.npz (`tfi2i style-prior`) with each request's seed")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """``tfi2i export``: prints the version folder; ``error: ...`` and 1 on a user error."""
    from tfi2i.runs import RunError

    try:
        if args.max_pixels is not None and args.max_pixels < 1:
            raise ExportError(f"--max-pixels must be >= 1, got {args.max_pixels}")
        if not os.path.isdir(args.workdir):
            raise RunError(f"{args.workdir}: no such folder")
        extra = {"mode": args.mode} if getattr(args, "mode", None) else {}
        path = export_run(args.workdir, args.out, max_pixels=args.max_pixels,
                          sampled_style=getattr(args, "style", "image") == "sampled", **extra)
    except (RunError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
