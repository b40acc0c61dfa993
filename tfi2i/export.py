"""Exporting a trained generator as a SavedModel for TensorFlow Serving.

Layout (TF Serving's): ``EXPORT_ROOT/<version>/saved_model.pb`` (+ ``variables/``,
``tfi2i_export.json``), with integer versions 1, 2, 3, ... TF Serving serves the
highest version and ignores folders whose names are not numbers, which is what
makes the export atomic: the SavedModel is written into ``EXPORT_ROOT/.tmp-*``
and renamed to its numeric name only once it is complete.

Only the generator is exported (not the GAN wrapper with its discriminators),
in inference mode (``training=False``: dropout off, batch-norm running
statistics). Two signatures:

``serving_default``
    input ``x``: float32 ``[batch, H, W, C]`` in [-1, 1] (any H, W);
    output ``y``: float32 ``[batch, H, W, C_out]`` in [-1, 1].

``translate_bytes``
    input ``images``: tf.string ``[batch]``, encoded PNG / JPEG / BMP / WebP / GIF
    (first frame) images, which may have different sizes;
    output ``image_bytes``: tf.string ``[batch]``, PNG images of the same sizes.
    The ``_bytes`` suffix makes TF Serving's REST API answer ``{"b64": ...}``.
    Decoding follows :mod:`tfi2i.data.images` (the training policy): JPEG with
    the accurate integer IDCT (as OpenCV), 16-bit PNG to 8 bits by
    ``round(v / 257)``, grey replicated, alpha dropped.

Any H, W works: the image is padded at the bottom / right to the next multiple
of ``multiple`` (``2**depth`` of the U-Net) with REFLECT padding (edge
replication on an axis too short to reflect), run, and cropped back
(:func:`pad_run_crop`, shared by both signatures and by ``tfi2i translate``).

Bad requests fail with ``InvalidArgumentError`` and a readable message, the
server keeps running: data that is not an image, truncated / corrupt files, an
image with more than ``max_pixels`` pixels (checked from the PNG / JPEG header
before decoding and on the decoded size), a float input with the wrong number
of channels or an empty image.
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

DEFAULT_MAX_PIXELS = 4096 * 4096
METADATA_FILE = "tfi2i_export.json"
FLOAT_SIGNATURE = "serving_default"
BYTES_SIGNATURE = "translate_bytes"
FLOAT_INPUT, FLOAT_OUTPUT = "x", "y"
BYTES_INPUT, BYTES_OUTPUT = "images", "image_bytes"
TMP_PREFIX = ".tmp-"

__all__ = [
    "ExportError",
    "export_generator",
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


def pad_run_crop(generator, x, multiple):
    """``generator(pad(x), training=False)`` cropped back to x's H and W: any size in, same size out."""
    import tensorflow as tf

    shape = tf.shape(x)
    y = generator(pad_to_multiple(x, multiple), training=False)
    return tf.cast(y[:, : shape[1], : shape[2], :], tf.float32)


def _sniff(data):
    """(zero-padded first 32 bytes, is_jpeg, is_png, is_png16) of an encoded image (tf.string scalar)."""
    import tensorflow as tf

    head = tf.strings.substr(tf.strings.join([tf.strings.substr(data, 0, 32), b"\0" * 32]), 0, 32)
    is_jpeg = tf.equal(tf.strings.substr(head, 0, 3), b"\xff\xd8\xff")
    is_png = tf.equal(tf.strings.substr(head, 0, 8), b"\x89PNG\r\n\x1a\n")
    is_png16 = tf.logical_and(is_png, tf.equal(tf.strings.substr(head, 24, 1), b"\x10"))  # IHDR bit depth
    return head, is_jpeg, is_png, is_png16


def _decode(data, channels, is_jpeg, is_png16):
    """One encoded image -> uint8 ``[H, W, channels]``, following :mod:`tfi2i.data.images`' policy."""
    import tensorflow as tf

    def jpeg():
        return tf.io.decode_jpeg(data, channels=channels, dct_method="INTEGER_ACCURATE")

    def png16():
        v = tf.cast(tf.io.decode_png(data, channels=channels, dtype=tf.uint16), tf.int32)
        return tf.cast((v + 128) // 257, tf.uint8)

    def other():
        return tf.io.decode_image(data, channels=channels, dtype=tf.uint8, expand_animations=False)

    img = tf.switch_case(tf.where(is_jpeg, 0, tf.where(is_png16, 1, 2)), [jpeg, png16, other])
    img.set_shape([None, None, channels])
    return img


def _header_pixels(data, head, is_jpeg, is_png):
    """H*W (int64) from a PNG / JPEG header without decoding the pixels; 0 for other formats."""
    import tensorflow as tf

    def png():
        wh = tf.io.decode_raw(tf.strings.substr(head, 16, 8), tf.int32, little_endian=False)
        return tf.cast(wh[0], tf.int64) * tf.cast(wh[1], tf.int64)

    def jpeg():
        hw = tf.cast(tf.image.extract_jpeg_shape(data), tf.int64)
        return hw[0] * hw[1]

    return tf.case([(is_png, png), (is_jpeg, jpeg)], default=lambda: tf.constant(0, tf.int64))


def _limit_message(max_pixels):
    side = int(max_pixels**0.5)
    return (f"tfi2i: image too large: more than max_pixels={max_pixels} pixels (H*W; e.g. {side}x{side}); "
            "split it into tiles (tfi2i translate --tile) or re-export with a larger --max-pixels")


def _check_size(h, w, max_pixels):
    """Assertions on an image's H, W (int tensors): non-empty and H*W <= max_pixels."""
    import tensorflow as tf

    pixels = tf.cast(h, tf.int64) * tf.cast(w, tf.int64)
    return [
        tf.debugging.assert_positive(tf.stack([tf.cast(h, tf.int64), tf.cast(w, tf.int64)]),
                                     message="tfi2i: empty image (height or width is 0)"),
        tf.debugging.assert_less_equal(pixels, tf.constant(max_pixels, tf.int64), message=_limit_message(max_pixels)),
    ]


def _make_float_fn(generator, multiple, max_pixels, in_channels):
    import tensorflow as tf

    def serve(x):
        shape = tf.shape(x)
        checks = [
            tf.debugging.assert_equal(
                shape[3], in_channels,
                message=f"tfi2i: input {FLOAT_INPUT} must be float32 [batch, H, W, {in_channels}] in [-1, 1]; "
                "wrong number of channels (last axis)"),
            *_check_size(shape[1], shape[2], max_pixels),
        ]
        with tf.control_dependencies(checks):
            x = tf.identity(x)
        x = tf.ensure_shape(x, [None, None, None, in_channels])
        return {FLOAT_OUTPUT: pad_run_crop(generator, x, multiple)}

    return serve


def _make_bytes_fn(generator, multiple, max_pixels, in_channels):
    import tensorflow as tf

    def one(data):
        head, is_jpeg, is_png, is_png16 = _sniff(data)
        header_check = tf.debugging.assert_less_equal(  # before decoding: no huge allocation for a small file
            _header_pixels(data, head, is_jpeg, is_png), tf.constant(max_pixels, tf.int64),
            message=_limit_message(max_pixels))
        with tf.control_dependencies([header_check]):
            img = _decode(tf.identity(data), in_channels, is_jpeg, is_png16)
        shape = tf.shape(img)
        with tf.control_dependencies(_check_size(shape[0], shape[1], max_pixels)):
            x = tf.cast(img, tf.float32)[None] / 127.5 - 1.0
        y = pad_run_crop(generator, x, multiple)[0]
        out = tf.cast(tf.clip_by_value(tf.round((y + 1.0) * 127.5), 0.0, 255.0), tf.uint8)
        return tf.io.encode_png(out)

    def serve(images):
        return {BYTES_OUTPUT: tf.map_fn(one, images, fn_output_signature=tf.string)}

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


def export_generator(generator, export_root, multiple, *, max_pixels=DEFAULT_MAX_PIXELS, version=None,
                     metadata=None) -> Path:
    """Writes ``generator`` as a SavedModel into ``export_root/<version>``, atomically.

    Args:
      generator: a Keras model float32 ``[B, H, W, C]`` in [-1, 1] -> same.
      export_root: the folder TF Serving watches (created if needed).
      multiple: H and W are padded to a multiple of this (``2**depth`` of the U-Net).
      max_pixels: largest accepted H*W per image (requests above fail cleanly).
      version: integer version folder; default: highest existing numeric folder + 1 (1 when none).
      metadata: extra JSON-serialisable fields for ``tfi2i_export.json``.

    Returns:
      The version folder (``Path``), holding ``saved_model.pb``, ``variables/`` and
      ``tfi2i_export.json``.
    """
    import keras
    import tensorflow as tf

    import tfi2i

    multiple = int(multiple)
    max_pixels = int(max_pixels)
    if multiple < 1:
        raise ExportError(f"multiple must be >= 1, got {multiple}")
    if max_pixels < 1:
        raise ExportError(f"max_pixels must be >= 1, got {max_pixels}")
    if version is not None and (int(version) < 1):
        raise ExportError(f"version must be a positive integer, got {version}")
    in_channels = int(generator.input_shape[-1])
    out_channels = int(generator.output_shape[-1])
    root = Path(export_root)
    root.mkdir(parents=True, exist_ok=True)
    if version is not None and (root / str(int(version))).exists():
        raise ExportError(f"{root / str(int(version))} already exists; choose another version or leave it out")

    tmp = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=root)
    try:
        archive = keras.export.ExportArchive()
        archive.track(generator)
        archive.add_endpoint(
            FLOAT_SIGNATURE,
            _make_float_fn(generator, multiple, max_pixels, in_channels),
            input_signature=[tf.TensorSpec([None, None, None, None], tf.float32, name=FLOAT_INPUT)],
        )
        signatures = {FLOAT_SIGNATURE: {"inputs": {FLOAT_INPUT: f"float32 [batch, H, W, {in_channels}] in [-1, 1]"},
                                        "outputs": {FLOAT_OUTPUT: f"float32 [batch, H, W, {out_channels}] in [-1, 1]"}}}
        if in_channels in (1, 3) and out_channels in (1, 3):
            archive.add_endpoint(
                BYTES_SIGNATURE,
                _make_bytes_fn(generator, multiple, max_pixels, in_channels),
                input_signature=[tf.TensorSpec([None], tf.string, name=BYTES_INPUT)],
            )
            signatures[BYTES_SIGNATURE] = {"inputs": {BYTES_INPUT: "string [batch]: encoded PNG/JPEG/BMP/WebP/GIF"},
                                           "outputs": {BYTES_OUTPUT: "string [batch]: PNG"}}
        archive.write_out(tmp, verbose=False)
        info = {
            "format": "tfi2i-export-1",
            "tfi2i_version": tfi2i.__version__,
            "tensorflow_version": tf.__version__,
            "keras_version": keras.__version__,
            "generator": generator.name,
            "input_channels": in_channels,
            "output_channels": out_channels,
            "multiple": multiple,
            "max_pixels": max_pixels,
            "signatures": signatures,
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


def export_run(workdir, export_root=None, **kw) -> Path:
    """Exports a run's generator (latest checkpoint) into ``export_root`` (default ``W/export``).

    Keyword arguments go to :func:`export_generator` (``max_pixels``, ``version``).
    Raises :class:`tfi2i.runs.RunError` for a folder that is not a run or has no checkpoint.
    """
    from tfi2i.networks.unet import unet_depth
    from tfi2i.runs import load_generator

    cfg, generator, ckpt = load_generator(workdir)
    try:
        multiple = 2 ** unet_depth(cfg.generator.name)
    except ValueError as exc:
        raise ExportError(f"{workdir}: cannot derive the size multiple of generator '{cfg.generator.name}': {exc}")
    metadata = {"config_name": cfg.name, "generator_name": cfg.generator.name,
                "checkpoint": os.path.abspath(ckpt), "workdir": os.path.abspath(workdir)}
    return export_generator(generator, export_root or os.path.join(workdir, "export"), multiple,
                            metadata=metadata, **kw)


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
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"largest H*W a request may have (default {DEFAULT_MAX_PIXELS} = 4096*4096)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """``tfi2i export``: prints the version folder; ``error: ...`` and 1 on a user error."""
    from tfi2i.runs import RunError

    try:
        if args.max_pixels < 1:
            raise ExportError(f"--max-pixels must be >= 1, got {args.max_pixels}")
        if not os.path.isdir(args.workdir):
            raise RunError(f"{args.workdir}: no such folder")
        path = export_run(args.workdir, args.out, max_pixels=args.max_pixels)
    except (RunError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
