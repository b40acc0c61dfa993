"""Reading image files into uint8 RGB arrays, the same way in NumPy and in tf.data.

Two decoders share one policy:

* :func:`read_image` - eager, NumPy, OpenCV (``cv2.imdecode`` of the file's bytes
  with ``cv2.IMREAD_UNCHANGED``, i.e. the decoder of ``cv2.imread(path,
  cv2.IMREAD_UNCHANGED)``: native bit depth and channel count, no EXIF
  rotation). Decoding the bytes rather than calling ``cv2.imread`` lets empty
  files be told apart from corrupt ones, and ``imread`` grey-fills truncated
  JPEGs instead of failing. Used for validation, evaluation and tests.
* :func:`decode_image_tf` - graph-mode TensorFlow ops, usable inside
  ``tf.data.Dataset.map``. Used by the training input pipelines.

Both return ``uint8`` ``[H, W, 3]`` **RGB**. Id maps (class labels, instance
ids) follow a stricter policy of their own: :func:`read_ids` /
:func:`decode_ids_tf` accept only 1-channel 8- or 16-bit PNGs and return the
ids exactly as int32 ``[H, W, 1]`` (no 16 -> 8 bit scaling, no grey -> RGB). :func:`as_rgb8` applies the same
checks and conversions to arrays that were decoded elsewhere (TensorFlow
Datasets examples).

Input policy (decided: convert explicitly, never silently guess):

=====================================  ==============================================
file holds                             result
=====================================  ==============================================
8-bit RGB (JPEG, PNG, BMP, WebP)       unchanged (OpenCV's BGR is reordered to RGB)
grayscale (1 channel)                  replicated to 3 channels            (warning)
RGBA, grey+alpha, palette+tRNS         alpha channel dropped, no compositing (warning)
16-bit PNG                             8-bit by ``round(v / 257)``         (warning)
float images (TIFF, EXR, HDR, ...)     :class:`DataError`
more than 4 channels                   :class:`DataError`
formats other than JPEG/PNG/BMP/WebP   :class:`DataError` (tf.data cannot decode them)
empty, unreadable, corrupt, truncated  :class:`DataError`
non-image files                        :class:`DataError`
=====================================  ==============================================

Each kind of conversion logs one warning per process on the ``"tfi2i.data"``
logger (naming the first file it happened to); :func:`decode_image_tf` applies
the same conversions silently (it runs in the graph, where files are usually
already validated by :func:`read_image`, see :mod:`tfi2i.data.sources`).

Agreement of the two decoders: exact for PNG, BMP and lossless WebP, and for
16-bit PNG (both compute ``(v + 128) // 257``, which equals ``round(v / 257)``
since 257 is odd, so there are no ties). For JPEG, :func:`decode_image_tf` uses
``tf.io.decode_jpeg(dct_method="INTEGER_ACCURATE")`` - the same slow-integer
IDCT as OpenCV's libjpeg - which matched OpenCV bit-for-bit on the facades and
cityscapes data; ``tf.io.decode_image`` alone would use the fast IDCT and differ
by up to ~20 grey levels.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Union

import cv2
import numpy as np
import tensorflow as tf

__all__ = [
    "DataError",
    "SUPPORTED_FORMATS",
    "read_image",
    "decode_image_tf",
    "sniff_format",
    "as_rgb8",
    "read_ids",
    "decode_ids_tf",
    "check_id_range",
]

logger = logging.getLogger("tfi2i.data")

PathLike = Union[str, os.PathLike]

#: Container formats both decoders support (names as returned by :func:`sniff_format`).
SUPPORTED_FORMATS = ("JPEG", "PNG", "BMP", "WebP")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"


class DataError(ValueError):
    """A data file or folder cannot be used as given.

    The message always names the offending file(s) and what is wrong with them,
    and how to fix it where that is obvious.
    """


# --------------------------------------------------------------------------- warnings

_WARNED_KINDS: set[str] = set()
_WARN_LOCK = threading.Lock()


def _warn_once(kind: str, message: str) -> None:
    """Log ``message`` as a warning the first time ``kind`` occurs in this process."""
    with _WARN_LOCK:
        if kind in _WARNED_KINDS:
            return
        _WARNED_KINDS.add(kind)
    logger.warning("%s (shown once per process)", message)


# --------------------------------------------------------------------------- sniffing


def sniff_format(data: bytes) -> str | None:
    """Name the image container format from a file's first bytes.

    Args:
        data: the file's bytes (at least its first 12 bytes).

    Returns:
        ``"JPEG"``, ``"PNG"``, ``"BMP"``, ``"WebP"``, ``"GIF"``, ``"TIFF"``, or
        ``None`` when the signature is not recognised.
    """
    if data.startswith(_JPEG_SIGNATURE):
        return "JPEG"
    if data.startswith(_PNG_SIGNATURE):
        return "PNG"
    if data.startswith(b"BM"):
        return "BMP"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[:4] in (b"GIF8",):
        return "GIF"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


def _jpeg_is_complete(data: bytes) -> bool:
    """Whether a JPEG stream reaches its end-of-image marker after the image data.

    OpenCV decodes truncated JPEGs "successfully" (grey-filling the rest, with a
    libjpeg warning on stderr), while TensorFlow's decoder rejects them, so
    truncation is detected here: walk the header segments to the first
    start-of-scan, then look for the EOI marker ``FF D9`` after it (entropy-coded
    data cannot contain it, since ``FF`` bytes are stuffed as ``FF 00`` there).
    Streams this parser does not understand are reported complete (the decoder
    has the last word).
    """
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return True  # not a marker where one is expected: leave it to the decoder
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:  # EOI before any scan
            return True
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        seglen = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xDA:  # start of scan
            return data.find(b"\xff\xd9", i + 2 + seglen) != -1
        i += 2 + seglen
    return False


# --------------------------------------------------------------------------- NumPy


def _to_8bit(arr16: np.ndarray) -> np.ndarray:
    """``round(v / 257)`` for uint16 ``v``, exactly, as uint8 (257 is odd: no ties)."""
    return ((arr16.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _read_bytes(p: Path, what: str) -> bytes:
    """A file's bytes; `DataError` naming the file when it is missing, a folder, unreadable or empty."""
    if not p.exists():
        raise DataError(f"{p}: {what} file not found")
    if p.is_dir():
        raise DataError(f"{p}: is a folder, expected an {what} file" if what[0] in "aeiou" else
                        f"{p}: is a folder, expected a {what} file")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise DataError(f"{p}: cannot read the file ({e.strerror or e})") from e
    if not data:
        raise DataError(f"{p}: empty file (0 bytes); delete it or replace it with the real {what}")
    return data


def read_image(path: PathLike) -> np.ndarray:
    """Read an image file as 8-bit RGB, applying the module's conversion policy.

    Args:
        path: a JPEG, PNG, BMP or WebP file (the format is recognised from the
            file's content, not its extension).

    Returns:
        ``np.ndarray`` of dtype ``uint8`` and shape ``[H, W, 3]``, RGB channel
        order, C-contiguous.

    Raises:
        DataError: the file is missing, empty, unreadable, corrupt or truncated,
            not an image, in a format other than JPEG/PNG/BMP/WebP, floating
            point, or has more than 4 channels. The message names the file.
    """
    p = Path(path)
    data = _read_bytes(p, "image")

    fmt = sniff_format(data)
    try:
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        arr = None
    if arr is None:
        if fmt in SUPPORTED_FORMATS:
            raise DataError(
                f"{p}: corrupt or truncated {fmt} file ({len(data)} bytes), OpenCV "
                "cannot decode it; re-download or re-export it"
            )
        if fmt is not None:
            raise DataError(
                f"{p}: unsupported image format {fmt}; supported formats are "
                f"{', '.join(SUPPORTED_FORMATS)}; convert it to PNG"
            )
        raise DataError(
            f"{p}: not a readable image (unrecognised content, {len(data)} bytes); "
            f"supported formats are {', '.join(SUPPORTED_FORMATS)}"
        )

    _check_array(arr, p)
    if fmt not in SUPPORTED_FORMATS:
        raise DataError(
            f"{p}: format {fmt or 'unknown'} is readable by OpenCV but not by the "
            f"tf.data decoder, which supports {', '.join(SUPPORTED_FORMATS)}; convert it to PNG"
        )
    if fmt == "JPEG" and not _jpeg_is_complete(data):
        raise DataError(
            f"{p}: truncated JPEG (no end-of-image marker after the image data, "
            f"{len(data)} bytes); re-download or re-encode the file"
        )
    return _convert(arr, p, bgr=True)


def _check_array(arr: np.ndarray, where) -> None:
    """The sample type and channel checks of the policy (DataError naming ``where``)."""
    if np.issubdtype(arr.dtype, np.floating):
        raise DataError(
            f"{where}: floating-point image ({arr.dtype}) is not supported; only 8-bit and "
            "16-bit integer images are; save it as an 8-bit PNG"
        )
    if arr.dtype not in (np.uint8, np.uint16):
        raise DataError(
            f"{where}: unsupported sample type {arr.dtype}; only 8-bit and 16-bit unsigned "
            "images are supported; save it as an 8-bit PNG"
        )
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    if arr.ndim not in (2, 3) or channels not in (1, 2, 3, 4):
        raise DataError(
            f"{where}: image has {channels} channels (shape {arr.shape}); only 1 (grey), "
            "2 (grey+alpha), 3 (colour) and 4 (colour+alpha) are supported"
        )


def _convert(arr: np.ndarray, where, bgr: bool) -> np.ndarray:
    """The conversions of the policy (16-bit, alpha, grey), each logged once; ``bgr``: colour order of OpenCV."""
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    p = where  # named in the warnings
    if arr.dtype == np.uint16:
        _warn_once(
            "16bit",
            f"{p}: 16-bit image converted to 8-bit by round(v / 257); further 16-bit "
            "files are converted the same way",
        )
        arr = _to_8bit(arr)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if channels in (2, 4):
        _warn_once(
            "alpha",
            f"{p}: alpha channel dropped (not composited); further images with "
            "alpha are treated the same way",
        )
        arr = arr[:, :, : channels - 1]
    if arr.shape[2] == 1:
        _warn_once(
            "grayscale",
            f"{p}: grayscale image replicated to 3 channels; further grayscale "
            "files are treated the same way",
        )
        return np.ascontiguousarray(np.repeat(arr, 3, axis=2))
    return np.ascontiguousarray(arr[:, :, ::-1] if bgr else arr)  # OpenCV: BGR -> RGB


def as_rgb8(array, where: str = "image") -> np.ndarray:
    """Apply the module's policy to an already decoded RGB(A) / grey array.

    For images that do not come from files (e.g. TensorFlow Datasets
    examples): the same checks and conversions as :func:`read_image`, each
    conversion logged once per process, naming ``where``.

    Args:
        array: ``uint8`` or ``uint16`` ``[H, W]`` or ``[H, W, C]`` (C in 1..4),
            RGB channel order.
        where: what to name in messages (e.g. ``"tfds:celeb_a:train[3]"``).

    Returns:
        ``np.uint8 [H, W, 3]`` RGB, C-contiguous.

    Raises:
        DataError: floating-point or other unsupported sample types, bad channel counts.
    """
    arr = np.asarray(array)
    _check_array(arr, where)
    return _convert(arr, where, bgr=False)


# --------------------------------------------------------------------------- TensorFlow


def _to_rgb_tf(img: tf.Tensor) -> tf.Tensor:
    """``[H, W, C]`` (C in 1..4) -> ``[H, W, 3]``: grey replicated, alpha dropped."""
    c = tf.shape(img)[2]
    rgb = tf.cond(
        c < 3,
        lambda: tf.tile(img[:, :, :1], [1, 1, 3]),
        lambda: img[:, :, :3],
    )
    rgb.set_shape([None, None, 3])
    return rgb


def decode_image_tf(path_tensor: tf.Tensor | str) -> tf.Tensor:
    """Read and decode one image file with TensorFlow ops (graph- and tf.data-safe).

    Applies the same policy as :func:`read_image` (grey -> 3 channels, alpha
    dropped, 16-bit -> ``round(v / 257)``), without logging. Decoders: JPEG with
    ``tf.io.decode_jpeg(dct_method="INTEGER_ACCURATE")`` (bit-exact with
    OpenCV), 16-bit PNG with ``tf.io.decode_png(dtype=tf.uint16)`` then
    ``(v + 128) // 257`` (``tf.io.decode_image(dtype=tf.uint8)`` would truncate,
    ``v >> 8``, up to 1 level off), everything else with
    ``tf.io.decode_image(channels=0, expand_animations=False)``.

    Args:
        path_tensor: ``tf.string`` scalar (or a Python ``str``): the file path.

    Returns:
        ``tf.Tensor`` of dtype ``uint8``, shape ``[H, W, 3]`` (static shape
        ``[None, None, 3]``), RGB.

    Raises:
        tf.errors.InvalidArgumentError: at run time, for formats other than
            JPEG/PNG/BMP/WebP (message includes the path) or undecodable data.
        tf.errors.NotFoundError: at run time, for a missing file.
    """
    path = tf.convert_to_tensor(path_tensor, dtype=tf.string)
    data = tf.io.read_file(path)
    # First 32 bytes, zero-padded so that every substr below is in range.
    head = tf.strings.substr(tf.strings.join([tf.strings.substr(data, 0, 32), b"\0" * 32]), 0, 32)

    def starts(pos: int, sig: bytes) -> tf.Tensor:
        return tf.equal(tf.strings.substr(head, pos, len(sig)), sig)

    is_jpeg = starts(0, _JPEG_SIGNATURE)
    is_png = starts(0, _PNG_SIGNATURE)
    is_png16 = tf.logical_and(is_png, starts(24, b"\x10"))  # IHDR bit depth
    is_bmp = starts(0, b"BM")
    is_webp = tf.logical_and(starts(0, b"RIFF"), starts(8, b"WEBP"))
    supported = tf.reduce_any(tf.stack([is_jpeg, is_png, is_bmp, is_webp]))
    check = tf.debugging.Assert(
        supported,
        ["tfi2i: unsupported or unrecognised image format (JPEG, PNG, BMP, WebP are supported):", path],
    )
    with tf.control_dependencies([check]):
        branch = tf.where(is_jpeg, 0, tf.where(is_png16, 1, 2))

    def jpeg() -> tf.Tensor:
        return _to_rgb_tf(tf.io.decode_jpeg(data, channels=0, dct_method="INTEGER_ACCURATE"))

    def png16() -> tf.Tensor:
        v = tf.cast(tf.io.decode_png(data, channels=0, dtype=tf.uint16), tf.int32)
        return _to_rgb_tf(tf.cast((v + 128) // 257, tf.uint8))

    def other() -> tf.Tensor:
        img = tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False)
        return _to_rgb_tf(img)

    img = tf.switch_case(branch, [jpeg, png16, other])
    img.set_shape([None, None, 3])
    return img


# --------------------------------------------------------------------------- id maps (labels, instances)


def _png_ihdr(data: bytes) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR chunk (bytes 24 and 25)."""
    return data[24], data[25]


def read_ids(path: PathLike, what: str = "label map") -> np.ndarray:
    """Read a class-id or instance-id map exactly: a 1-channel 8- or 16-bit PNG.

    No conversion of any kind: 16-bit values are kept (no ``/ 257``), grey is
    not replicated. This is the eager counterpart of :func:`decode_ids_tf`.

    Args:
        path: a greyscale PNG (colour type 0) of bit depth 8 or 16.
        what: what the file is, for messages (``"label map"``, ``"instance map"``).

    Returns:
        ``np.int32 [H, W, 1]``, C-contiguous.

    Raises:
        DataError: missing, empty or corrupt file; not a PNG; more than one
            channel (a colour-coded map, RGB, palette, alpha); a bit depth
            other than 8 or 16. The message names the file.
    """
    p = Path(path)
    data = _read_bytes(p, what)
    fmt = sniff_format(data)
    if fmt != "PNG" or len(data) < 26:
        raise DataError(f"{p}: a {what} must be a 1-channel 8- or 16-bit PNG of ids (lossless), "
                        f"this file is {fmt or 'not a recognised image'}; save the ids as a greyscale PNG")
    depth, colour = _png_ihdr(data)
    if colour != 0 or depth not in (8, 16):
        channels = {0: 1, 2: 3, 3: "a palette", 4: 2, 6: 4}.get(colour, "?")
        raise DataError(
            f"{p}: a {what} must be a 1-channel (greyscale) 8- or 16-bit PNG of ids, this one has "
            f"{channels} channel(s) at bit depth {depth}; a colour-coded map must be converted to ids "
            "first (one id per pixel, e.g. Cityscapes *_labelIds.png / *_instanceIds.png)")
    try:
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        arr = None
    if arr is None or arr.ndim != 2:
        raise DataError(f"{p}: corrupt or truncated PNG ({len(data)} bytes), OpenCV cannot decode it; "
                        "re-download or re-export it")
    return np.ascontiguousarray(arr.astype(np.int32)[:, :, None])


def check_id_range(ids: np.ndarray, num_classes: int, where) -> None:
    """Raise :class:`DataError` naming ``where`` and the offending value unless all ids are in ``[0, num_classes)``."""
    lo, hi = int(ids.min()), int(ids.max())
    if lo >= 0 and hi < num_classes:
        return
    values = np.unique(ids)
    bad = values[(values < 0) | (values >= num_classes)]
    shown = ", ".join(str(int(v)) for v in bad[:8]) + (" ..." if len(bad) > 8 else "")
    raise DataError(
        f"{where}: class id {int(bad[0])} is outside [0, {num_classes}) (data.num_classes={num_classes}); "
        f"offending ids: {shown}; set data.num_classes to at least {hi + 1}, or remap the ids "
        "(e.g. an 'ignore' id 255 to a class of its own)")


def decode_ids_tf(path_tensor: tf.Tensor | str) -> tf.Tensor:
    """Decode a 1-channel 8- or 16-bit PNG of ids exactly, with TensorFlow ops (tf.data-safe).

    The graph counterpart of :func:`read_ids`: 8-bit PNGs with
    ``tf.io.decode_png(dtype=uint8)``, 16-bit ones with ``dtype=uint16`` (no
    scaling either way), then int32.

    Returns:
        int32 ``[H, W, 1]`` (static shape ``[None, None, 1]``).

    Raises:
        tf.errors.InvalidArgumentError: at run time, for a file that is not a
            greyscale 8- or 16-bit PNG (the message names the path).
    """
    path = tf.convert_to_tensor(path_tensor, dtype=tf.string)
    data = tf.io.read_file(path)
    head = tf.strings.substr(tf.strings.join([tf.strings.substr(data, 0, 32), b"\0" * 32]), 0, 32)
    is_png = tf.equal(tf.strings.substr(head, 0, 8), _PNG_SIGNATURE)
    depth = tf.strings.substr(head, 24, 1)
    grey = tf.equal(tf.strings.substr(head, 25, 1), b"\x00")
    ok = is_png & grey & (tf.equal(depth, b"\x08") | tf.equal(depth, b"\x10"))
    check = tf.debugging.Assert(
        ok, ["tfi2i: an id map (labels, instances) must be a 1-channel 8- or 16-bit PNG:", path])
    with tf.control_dependencies([check]):
        sixteen = tf.identity(tf.equal(depth, b"\x10"))
    ids = tf.cond(
        sixteen,
        lambda: tf.cast(tf.io.decode_png(data, channels=1, dtype=tf.uint16), tf.int32),
        lambda: tf.cast(tf.io.decode_png(data, channels=1, dtype=tf.uint8), tf.int32),
    )
    ids.set_shape([None, None, 1])
    return ids
