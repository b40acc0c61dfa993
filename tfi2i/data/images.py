"""Reading image files into uint8 RGB arrays, the same way in NumPy and in tf.data.

Two decoders share one policy:

* :func:`read_image` - eager, NumPy, OpenCV (``cv2.imdecode`` of the file's bytes
  with ``cv2.IMREAD_UNCHANGED``, i.e. the decoder of ``cv2.imread(path,
  cv2.IMREAD_UNCHANGED)``: native bit depth and channel count, no EXIF
  rotation). Decoding the bytes rather than calling ``cv2.imread`` lets empty
  files be told apart from corrupt ones, and ``imread`` grey-fills truncated
  JPEGs instead of failing. JPEGs are decoded with tf.data's own decoder
  (eagerly, see below). Used for validation, evaluation and tests.
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
more than :func:`max_pixels` pixels    :class:`DataError` (from the header, before decoding)
non-image files                        :class:`DataError`
=====================================  ==============================================

Each kind of conversion logs one warning per process on the ``"tfi2i.data"``
logger (naming the first file it happened to); :func:`decode_image_tf` applies
the same conversions silently (it runs in the graph, where files are usually
already validated by :func:`read_image`, see :mod:`tfi2i.data.sources`).

Hostile or damaged files (both decoders; :func:`read_image` raises
:class:`DataError`, :func:`decode_image_tf` an ``InvalidArgumentError`` whose
message names the path wherever the check is an assertion of ours):

* **Pixel limit.** H*W is read from the header *before* anything is decoded
  (PNG IHDR, JPEG SOFn, BMP DIB header, GIF screen, WebP VP8 / VP8L / VP8X, and
  TIFF for the eager reader) and an image of more than :func:`max_pixels`
  pixels (default :data:`DEFAULT_MAX_PIXELS` = 4096*4096; environment variable
  ``TFI2I_MAX_PIXELS`` to change it) is refused as *too large*, so a few-KB
  "decompression bomb" costs nothing. Files of unrecognised content are not
  decoded at all.
* **JPEG.** The eager reader decodes JPEGs with the very decoder tf.data uses
  (``tf.io.decode_jpeg(dct_method="INTEGER_ACCURATE")``, the same bits as
  OpenCV's libjpeg on good files): OpenCV returns an image for streams that
  TensorFlow rejects (``jpeg::Uncompress failed``), so a file that passed the
  up-front check could stop training. A stream whose scan ends early (an
  end-of-image marker written before the image data is complete) is grey-filled
  by libjpeg (OpenCV, TensorFlow and PIL alike) with only a warning on stderr.
  Both decoders refuse it: when the last 8x8 pixels are exact mid-grey (the
  fill), the file is decoded a second time with :data:`_TRAP` bytes inserted
  before its last end-of-image marker; a complete scan never reads them (same
  pixels), a scan that ended early decodes them (different pixels). A scan cut
  inside its very last block is not detected (almost nothing is missing).
  A *progressive* JPEG cut early is not grey-filled (the missing scans only
  refine what earlier scans drew, so it decodes blurred, without a warning):
  its scan headers are read instead (no second decode), and a file whose
  scans stop before every coefficient of every component has reached its last
  bit (successive approximation ``Al = 0`` over the spectral band ``Ss..Se``
  of each start-of-scan header) is refused as corrupt, by both decoders.
  Every common encoder (libjpeg / libjpeg-turbo scripts, as written by OpenCV
  and PIL) finishes every coefficient; a hand-made scan script that leaves
  some out on purpose is refused too (re-encode it). A cut inside the final
  scan (the last refinement bit of some coefficients) is not detected.
* **EXIF orientation** is not applied, by either decoder (the pixels are used
  as stored, as by tf.data and serving, which have no EXIF reader); the eager
  reader logs one warning per file whose orientation tag says it is displayed
  rotated or mirrored, so that such files can be rotated once for good
  (e.g. ``exiftran -ai``, or PIL's ``ImageOps.exif_transpose``).

Agreement of the two decoders: exact for PNG, BMP and lossless WebP, and for
16-bit PNG (both compute ``(v + 128) // 257``, which equals ``round(v / 257)``
since 257 is odd, so there are no ties). For JPEG, :func:`decode_image_tf` uses
``tf.io.decode_jpeg(dct_method="INTEGER_ACCURATE")`` - the same slow-integer
IDCT as OpenCV's libjpeg - which matched OpenCV bit-for-bit on the facades and
cityscapes data; ``tf.io.decode_image`` alone would use the fast IDCT and differ
by up to ~20 grey levels. (The eager reader now decodes JPEGs with that same
TensorFlow op, so the two agree by construction.)
"""

from __future__ import annotations

import logging
import math
import os
import re
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
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "max_pixels",
    "image_size",
    "header_size_tf",
    "check_pixels_tf",
]

logger = logging.getLogger("tfi2i.data")

PathLike = Union[str, os.PathLike]

#: Container formats both decoders support (names as returned by :func:`sniff_format`).
SUPPORTED_FORMATS = ("JPEG", "PNG", "BMP", "WebP")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"

#: Largest H*W accepted by default, at every entry point (training data, evaluate, translate, serving).
DEFAULT_MAX_PIXELS = 4096 * 4096
#: Environment variable that overrides :data:`DEFAULT_MAX_PIXELS` (a positive integer, e.g. ``8192*8192``).
MAX_PIXELS_ENV = "TFI2I_MAX_PIXELS"


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


# --------------------------------------------------------------------------- pixel limit (header sizes)


def max_pixels() -> int:
    """The largest H*W an image may have: ``$TFI2I_MAX_PIXELS``, else :data:`DEFAULT_MAX_PIXELS`.

    Read at each call, so that the variable can be set for one command
    (``TFI2I_MAX_PIXELS=67108864 tfi2i translate ...``).

    Raises:
        DataError: the variable is set to something other than a positive integer.
    """
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise DataError(f"{MAX_PIXELS_ENV}={raw!r} is not valid; set it to a positive number of pixels "
                        f"(H*W, e.g. {8192 * 8192} for 8192x8192) or unset it for the default {DEFAULT_MAX_PIXELS}")
    return value


def too_large_message(where, h: int, w: int, limit: int) -> str:
    """The "too large" message: the file, its size, the limit and how to raise it."""
    side = math.isqrt(limit)
    return (f"{where}: image too large: {w}x{h} (WxH) = {h * w} pixels, more than the limit of {limit} "
            f"pixels (about {side}x{side}), read from the file's header before decoding; if the image is "
            f"genuine, raise the limit with the environment variable {MAX_PIXELS_ENV}=<pixels> "
            f"(e.g. {MAX_PIXELS_ENV}={max(4 * limit, h * w)}), or shrink / tile the image")


def _u(data: bytes, pos: int, n: int, order: str) -> int:
    """Unsigned ``n``-byte integer at ``pos`` (``order``: ``"big"`` / ``"little"``); 0 past the end."""
    chunk = data[pos : pos + n]
    return int.from_bytes(chunk, order) if len(chunk) == n else 0


def _jpeg_segments(data: bytes):
    """``(marker, payload start, payload length)`` of a JPEG's header segments, up to and including SOS."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        if marker == 0xD9:
            return
        seglen = _u(data, i + 2, 2, "big")
        yield marker, i + 4, seglen - 2
        if marker == 0xDA:
            return
        i += 2 + seglen


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOF0..SOF15 (not DHT, JPG, DAC)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    for marker, start, _ in _jpeg_segments(data):
        if marker in _SOF_MARKERS:
            h, w = _u(data, start + 1, 2, "big"), _u(data, start + 3, 2, "big")
            return (h, w) if h else None  # height 0: defined later by a DNL marker
    return None


def _bmp_size(data: bytes) -> tuple[int, int]:
    if _u(data, 14, 4, "little") == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return _u(data, 20, 2, "little"), _u(data, 18, 2, "little")
    h = int.from_bytes(data[22:26], "little", signed=True)  # negative: top-down rows
    return abs(h), _u(data, 18, 4, "little")


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: 14-bit sizes after the frame tag and start code
        return _u(data, 28, 2, "little") & 0x3FFF, _u(data, 26, 2, "little") & 0x3FFF
    if chunk == b"VP8L":  # lossless: 14-bit (size - 1) fields after the 0x2F signature
        bits = _u(data, 21, 4, "little")
        return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: 24-bit (canvas size - 1) fields
        return _u(data, 27, 3, "little") + 1, _u(data, 24, 3, "little") + 1
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order = "little" if data[:2] == b"II" else "big"
    ifd = _u(data, 4, 4, order)
    sizes = {}
    for k in range(min(_u(data, ifd, 2, order), 512)):
        e = ifd + 2 + 12 * k
        tag, kind = _u(data, e, 2, order), _u(data, e + 2, 2, order)
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG
            sizes[tag] = _u(data, e + 8, 2 if kind == 3 else 4, order)
    return (sizes[257], sizes[256]) if len(sizes) == 2 else None


def image_size(data: bytes) -> tuple[int, int] | None:
    """``(H, W)`` of an encoded image read from its header, without decoding; None when unknown.

    Formats: PNG (IHDR), JPEG (the first SOFn segment), BMP, GIF (logical
    screen), WebP (VP8, VP8L and VP8X chunks) and TIFF (first IFD).
    """
    fmt = sniff_format(data)
    if fmt == "PNG":
        return _u(data, 20, 4, "big"), _u(data, 16, 4, "big")
    if fmt == "JPEG":
        return _jpeg_size(data)
    if fmt == "BMP":
        return _bmp_size(data)
    if fmt == "GIF":
        return _u(data, 8, 2, "little"), _u(data, 6, 2, "little")
    if fmt == "WebP":
        return _webp_size(data)
    if fmt == "TIFF":
        return _tiff_size(data)
    return None


def _check_pixels(data: bytes, where) -> None:
    """DataError naming ``where`` when the header says more than :func:`max_pixels` pixels."""
    size = image_size(data)
    limit = max_pixels()
    if size is not None and size[0] * size[1] > limit:
        raise DataError(too_large_message(where, size[0], size[1], limit))


# --------------------------------------------------------------------------- JPEG scan checks

#: Bytes inserted before a JPEG's last end-of-image marker to tell a complete
#: scan from one that ended early: a complete scan never reads them, a short one
#: decodes them (no 0xFF byte, so no marker and no stuffing).
_TRAP = bytes((i * 73 + 41) % 255 for i in range(256))
_EOI = b"\xff\xd9"


def _with_trap(data: bytes) -> bytes:
    """``data`` with :data:`_TRAP` inserted before its last EOI marker."""
    m = data.rfind(_EOI)
    return data[:m] + _TRAP + data[m:] if m >= 0 else data + _TRAP


def _jpeg_orientation(data: bytes) -> int:
    """The EXIF Orientation tag (1..8) of a JPEG's APP1 segment; 0 when there is none."""
    for marker, start, length in _jpeg_segments(data):
        if marker != 0xE1 or data[start : start + 6] != b"Exif\0\0":
            continue
        tiff = data[start + 6 : start + length]
        order = {b"II": "little", b"MM": "big"}.get(tiff[:2])
        if order is None:
            return 0
        ifd = _u(tiff, 4, 4, order)
        for k in range(min(_u(tiff, ifd, 2, order), 512)):
            e = ifd + 2 + 12 * k
            if _u(tiff, e, 2, order) == 0x0112:
                return _u(tiff, e + 8, 2, order)
        return 0
    return 0


_ORIENTATIONS = {2: "mirrored", 3: "rotated 180 degrees", 4: "flipped upside down",
                 5: "transposed", 6: "rotated 90 degrees clockwise", 7: "transversed",
                 8: "rotated 90 degrees counter-clockwise"}
_EXIF_WARNED_MAX = 20  # files named one by one; then one line for all the others


def _warn_orientation(data: bytes, where) -> None:
    """One warning per file (up to 20 files) whose EXIF orientation is not 'as stored'."""
    tag = _jpeg_orientation(data)
    if tag not in _ORIENTATIONS:
        return
    with _WARN_LOCK:
        named = sum(k.startswith("exif:") for k in _WARNED_KINDS)
    if named >= _EXIF_WARNED_MAX:
        _warn_once("exif-more", f"further JPEGs with an EXIF orientation (e.g. {where}) are read as stored too")
        return
    _warn_once(f"exif:{where}", f"{where}: EXIF orientation {tag} ({_ORIENTATIONS[tag]} when displayed) is "
               "ignored: the pixels are used as stored, by training, evaluation, translation and serving alike; "
               "rotate the file itself if that is not what you want (e.g. exiftran -ai FILE)")


def _decode_jpeg_eager(data: bytes, p: Path) -> np.ndarray:
    """A JPEG decoded by tf.data's own decoder; DataError naming ``p`` when it fails or its scans ended early."""
    def decode(d: bytes) -> np.ndarray:
        with tf.device("/CPU:0"):
            return tf.io.decode_jpeg(d, channels=0, dct_method="INTEGER_ACCURATE").numpy()

    try:
        arr = decode(data)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        raise DataError(
            f"{p}: corrupt JPEG ({len(data)} bytes): TensorFlow's decoder, the one training uses, fails "
            f"({_op_reason(e)}); re-download or re-encode it") from None
    if _grey_filled(arr) and not np.array_equal(decode(_with_trap(data)), arr):
        raise DataError(_early_end_message(p, len(data)))
    gap = _progressive_gap(data)
    if gap is not None:
        raise DataError(_progressive_gap_message(p, len(data), *gap))
    return arr


def _op_reason(e: tf.errors.OpError) -> str:
    """An op error's own words, without TensorFlow's ``{{function_node ...}}`` and ``[Op:...]`` wrapping."""
    text = re.sub(r"\{\{[^}]*\}\}|\[Op:[^\]]*\]", "", (e.message or "").splitlines()[0] if e.message else "")
    return " ".join(text.split()) or type(e).__name__


def _grey_filled(arr: np.ndarray) -> bool:
    """Whether the last 8x8 pixels are the exact mid-grey that libjpeg fills a scan that ended early with."""
    return bool(np.all(arr[-8:, -8:] == 128))


def _early_end_message(where, nbytes) -> str:
    return (f"{where}: corrupt JPEG ({nbytes} bytes): the image data ends before the last pixel (an "
            "end-of-image marker written early; decoders grey-fill the rest); re-download or re-encode it")


#: Start-of-frame markers of progressive (non-hierarchical) JPEGs: SOF2 (Huffman) and SOF10 (arithmetic).
_PROGRESSIVE_SOF = (0xC2, 0xCA)
#: A marker after entropy-coded data: ``FF`` then anything but ``00`` (stuffing), ``D0``-``D7`` (RSTn), ``FF`` (fill).
_MARKER_AFTER_SCAN = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")
#: Segments walked at most (a file of a million fill bytes is not walked byte by byte); beyond: not judged.
_MAX_SEGMENTS = 10_000


def _progressive_gap(data: bytes) -> tuple[int, list[int]] | None:
    """``(scans, unfinished component ids)`` of a progressive JPEG whose scans stop early; None otherwise.

    Walks the marker segments (and, after each start of scan, skips its
    entropy-coded data to the next marker) and records, per component and
    coefficient 0..63, the lowest successive-approximation bit position ``Al``
    of the scans that covered it (band ``Ss..Se``). The file is complete when
    every coefficient of every component of the frame reached ``Al = 0``.
    Baseline / sequential JPEGs (one scan per component), and streams this
    parser does not understand, give None: the decoder has the last word.
    """
    i, n = 2, len(data)
    progressive, scans, lowest = False, 0, {}
    for _ in range(_MAX_SEGMENTS):
        if i + 1 >= n:
            break
        if data[i] != 0xFF:
            return None  # not a marker where one is expected
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:  # end of image
            break
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        end = i + 2 + _u(data, i + 2, 2, "big")
        if marker in _SOF_MARKERS:
            if marker not in _PROGRESSIVE_SOF:
                return None
            progressive = True
            lowest = {data[i + 10 + 3 * j]: [99] * 64 for j in range(_u(data, i + 9, 1, "big"))
                      if i + 10 + 3 * j < n}
        elif marker == 0xDA:  # start of scan: Ns, Ns x (Cs, Td/Ta), Ss, Se, Ah/Al
            if not progressive:
                return None
            ns = min(_u(data, i + 4, 1, "big"), 4)  # a scan holds at most 4 components
            q = i + 5 + 2 * ns
            ss, se, al = _u(data, q, 1, "big"), min(_u(data, q + 1, 1, "big"), 63), _u(data, q + 2, 1, "big") & 15
            for c in (data[i + 5 + 2 * j] for j in range(ns) if i + 5 + 2 * j < n):
                row = lowest.get(c)
                for k in range(ss, se + 1) if row is not None else ():
                    row[k] = min(row[k], al)
            scans += 1
            nxt = _MARKER_AFTER_SCAN.search(data, end)
            if nxt is None:
                break
            i = nxt.start()
            continue
        i = end
    else:
        return None  # too many segments to judge
    if not progressive:
        return None
    unfinished = sorted(c for c, row in lowest.items() if max(row) > 0)
    return (scans, unfinished) if unfinished else None


def _progressive_gap_message(where, nbytes, scans: int, unfinished: list[int]) -> str:
    return (f"{where}: corrupt JPEG ({nbytes} bytes): a progressive JPEG whose scans stop early (its {scans} "
            f"scan(s) leave coefficients of component(s) {', '.join(map(str, unfinished))} unfinished; an "
            "end-of-image marker written before the last scan, which decoders show blurred, without an error); "
            "re-download or re-encode it")


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
        DataError: the file is missing, empty, unreadable, corrupt or truncated
            (for JPEGs: by TensorFlow's decoder, or its scans end early), too
            large (more than :func:`max_pixels` pixels, from the header, before
            decoding), not an image, in a format other than JPEG/PNG/BMP/WebP,
            floating point, or has more than 4 channels. The message names the file.
    """
    p = Path(path)
    data = _read_bytes(p, "image")
    fmt = sniff_format(data)
    if fmt is None:  # never handed to a decoder: no size check is possible
        raise DataError(
            f"{p}: not a readable image (unrecognised content, {len(data)} bytes); "
            f"supported formats are {', '.join(SUPPORTED_FORMATS)}"
        )
    _check_pixels(data, p)
    if fmt == "JPEG":
        return _read_jpeg(data, p)
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
        raise DataError(
            f"{p}: unsupported image format {fmt}; supported formats are "
            f"{', '.join(SUPPORTED_FORMATS)}; convert it to PNG"
        )
    _check_array(arr, p)
    if fmt not in SUPPORTED_FORMATS:
        raise DataError(
            f"{p}: format {fmt} is readable by OpenCV but not by the "
            f"tf.data decoder, which supports {', '.join(SUPPORTED_FORMATS)}; convert it to PNG"
        )
    return _convert(arr, p, bgr=True)


def _read_jpeg(data: bytes, p: Path) -> np.ndarray:
    """:func:`read_image` of a JPEG: truncation, tf.data's decoder, early end of scan, EXIF orientation."""
    if not _jpeg_is_complete(data):
        raise DataError(
            f"{p}: truncated JPEG (no end-of-image marker after the image data, "
            f"{len(data)} bytes); re-download or re-encode the file"
        )
    arr = _decode_jpeg_eager(data, p)
    _warn_orientation(data, p)
    if arr.shape[2] == 1:
        arr = arr[:, :, 0]
    _check_array(arr, p)
    return _convert(arr, p, bgr=False)


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


def header_size_tf(data: tf.Tensor) -> tf.Tensor:
    """``[H, W]`` (int64) of an encoded image (``tf.string`` scalar) from its header, without decoding.

    The graph counterpart of :func:`image_size` for the formats TensorFlow
    decodes: PNG, JPEG (``tf.image.extract_jpeg_shape``, header only), BMP, GIF
    and WebP (VP8, VP8L, VP8X); ``[0, 0]`` for anything else.
    """
    head = tf.strings.substr(tf.strings.join([tf.strings.substr(data, 0, 32), b"\0" * 32]), 0, 32)
    b = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)

    # Little-endian 2-, 3- and 4-byte and big-endian 4-byte integers at every offset, then the fields.
    le2 = b[:31] + 256 * b[1:]
    le3, le4 = le2[:30] + 65536 * b[2:], le2[:29] + 65536 * le2[2:]
    be4 = 16777216 * b[:29] + 65536 * b[1:30] + 256 * b[2:31] + b[3:]
    gif_w, gif_h, bmp_w16, bmp_h16, vp8_w, vp8_h = tf.unstack(tf.gather(le2, [6, 8, 18, 20, 26, 28]))
    vp8x_w, vp8x_h = tf.unstack(tf.gather(le3, [24, 27]) + 1)
    dib, bmp_w, bmp_h, vp8l = tf.unstack(tf.gather(le4, [14, 18, 22, 21]))
    png_w, png_h = tf.unstack(tf.gather(be4, [16, 20]))

    def starts(pos: int, sig: bytes) -> tf.Tensor:
        return tf.equal(tf.strings.substr(head, pos, len(sig)), sig)

    def hw(h, w) -> tf.Tensor:
        return tf.stack([h, w])

    # Every candidate is cheap arithmetic on the first 32 bytes and tf.where picks one (no branch
    # functions to trace), except the JPEG header parse, which must not run on other data.
    bmp = tf.where(tf.equal(dib, 12), hw(bmp_h16, bmp_w16),  # OS/2 core header: 16-bit sizes
                   hw(tf.abs(tf.where(bmp_h >= 2**31, bmp_h - 2**32, bmp_h)), bmp_w))  # negative: top-down
    webp = tf.where(starts(12, b"VP8 "), hw(vp8_h % 16384, vp8_w % 16384),
                    tf.where(starts(12, b"VP8L"), hw(vp8l // 16384 % 16384 + 1, vp8l % 16384 + 1),
                             tf.where(starts(12, b"VP8X"), hw(vp8x_h, vp8x_w), tf.zeros([2], tf.int64))))
    is_jpeg = starts(0, _JPEG_SIGNATURE)
    jpeg = tf.cond(is_jpeg, lambda: tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64),
                   lambda: tf.zeros([2], tf.int64))
    size = tf.zeros([2], tf.int64)
    for fmt, value in [(tf.logical_and(starts(0, b"RIFF"), starts(8, b"WEBP")), webp),
                       (starts(0, b"GIF8"), hw(gif_h, gif_w)), (starts(0, b"BM"), bmp), (is_jpeg, jpeg),
                       (starts(0, _PNG_SIGNATURE), hw(png_h, png_w))]:
        size = tf.where(fmt, value, size)
    return size


def check_pixels_tf(data: tf.Tensor, where: tf.Tensor | str, limit: int | None = None) -> tf.Tensor:
    """``data`` after an assertion that its header's H*W is at most ``limit`` (default :func:`max_pixels`).

    The limit is read when the graph is built; the message names ``where``
    (the path), the header's H and W, the limit and how to raise it.
    """
    limit = max_pixels() if limit is None else int(limit)
    hw = header_size_tf(data)
    check = tf.debugging.Assert(
        hw[0] * hw[1] <= limit,
        [f"tfi2i: image too large (more than the limit of {limit} pixels, read from the header before "
         f"decoding; raise it with the environment variable {MAX_PIXELS_ENV}=<pixels>):", where,
         "height", hw[0], "width", hw[1]])
    with tf.control_dependencies([check]):
        return tf.identity(data)


def _decode_jpeg_tf(data: tf.Tensor, path: tf.Tensor, channels: int = 0) -> tf.Tensor:
    """``tf.io.decode_jpeg`` (INTEGER_ACCURATE) plus the early-end-of-scan check of :func:`_decode_jpeg_eager`.

    The second decode (with :data:`_TRAP` before the last EOI) only runs when the
    last 8x8 pixels are exact mid-grey, i.e. almost never for a good file.
    """
    img = tf.io.decode_jpeg(data, channels=channels, dct_method="INTEGER_ACCURATE")

    def same_with_trap() -> tf.Tensor:
        b = tf.io.decode_raw(data, tf.uint8)
        hits = tf.where(tf.logical_and(tf.equal(b[:-1], 0xFF), tf.equal(b[1:], 0xD9)))[:, 0]
        n = tf.strings.length(data, unit="BYTE")
        m = tf.cond(tf.size(hits) > 0, lambda: tf.cast(hits[-1], tf.int32), lambda: n)
        trapped = tf.strings.join([tf.strings.substr(data, 0, m), _TRAP, tf.strings.substr(data, m, n - m)])
        again = tf.io.decode_jpeg(trapped, channels=channels, dct_method="INTEGER_ACCURATE")
        return tf.reduce_all(tf.equal(again, img))

    grey = tf.reduce_all(tf.equal(img[-8:, -8:], 128))
    ok = tf.cond(grey, same_with_trap, lambda: tf.constant(True))
    check = tf.debugging.Assert(ok, ["tfi2i: corrupt JPEG: the image data ends before the last pixel (an "
                                     "end-of-image marker written early; decoders grey-fill the rest):", path])
    scans = tf.debugging.Assert(_progressive_complete_tf(data), [
        "tfi2i: corrupt JPEG: a progressive JPEG whose scans stop early (coefficients left unfinished; an "
        "end-of-image marker written before the last scan, which decoders show blurred, without an error):", path])
    with tf.control_dependencies([check, scans]):
        return tf.identity(img)


def _progressive_complete_tf(data: tf.Tensor) -> tf.Tensor:
    """Graph counterpart of :func:`_progressive_gap`: False for a progressive JPEG whose scans stop early.

    The same walk over the marker segments (a ``tf.while_loop``, one step per
    segment; after a start of scan, a jump to the next marker found by one
    vectorised search of the bytes), the lowest ``Al`` per component id and
    coefficient in a ``[256, 64]`` table; only run when the bytes hold a
    progressive start-of-frame marker. True for baseline JPEGs and streams the
    walk does not understand.
    """
    b = tf.cast(tf.io.decode_raw(data, tf.uint8), tf.int32)
    ff, nxt = tf.equal(b[:-1], 0xFF), b[1:]
    # No FF C2 / FF CA anywhere (entropy-coded data cannot hold one): not progressive, no walk (almost every file).
    maybe = tf.reduce_any(tf.logical_and(ff, tf.logical_or(tf.equal(nxt, _PROGRESSIVE_SOF[0]),
                                                           tf.equal(nxt, _PROGRESSIVE_SOF[1]))))
    return tf.cond(maybe, lambda: _walk_scans_tf(b, ff, nxt), lambda: tf.constant(True))


def _walk_scans_tf(b: tf.Tensor, ff: tf.Tensor, nxt: tf.Tensor) -> tf.Tensor:
    """The walk of :func:`_progressive_complete_tf` over the bytes ``b`` (int32; ``ff``: ``b[:-1] == 0xFF``).

    One ``tf.while_loop`` whose body computes every kind of segment's next
    state and picks one with ``tf.where`` (no nested control flow: in tf.data,
    nested conditionals cost more than the arithmetic).
    """
    n = tf.size(b)
    last = tf.maximum(n - 1, 0)

    def at(i):  # byte(s) at i; 0 past the end
        return tf.where(i < n, tf.gather(b, tf.clip_by_value(i, 0, last)), 0)

    after_scan = tf.logical_and(ff, tf.logical_and(tf.logical_and(nxt != 0x00, nxt != 0xFF),
                                                   tf.logical_or(nxt < 0xD0, nxt > 0xD7)))
    markers = tf.concat([tf.cast(tf.where(after_scan)[:, 0], tf.int32), [n]], 0)  # what _MARKER_AFTER_SCAN finds
    k = tf.range(64)
    four = tf.range(4)  # a scan holds at most 4 components

    def step(i, it, done, prog, lowest):
        m = at(i + 1)
        end = i + 2 + at(i + 2) * 256 + at(i + 3)
        marker = tf.equal(at(i), 0xFF)
        fill = tf.logical_and(marker, tf.equal(m, 0xFF))
        bare = tf.logical_and(marker, tf.logical_or(tf.logical_or(tf.equal(m, 0x01), tf.equal(m, 0xD8)),
                                                    tf.logical_and(m >= 0xD0, m <= 0xD7)))
        eoi = tf.logical_and(marker, tf.equal(m, 0xD9))
        sof = tf.logical_and(marker, tf.logical_and(tf.logical_and(m >= 0xC0, m <= 0xCF), tf.logical_and(
            tf.logical_and(m != 0xC4, m != 0xC8), m != 0xCC)))
        is_prog = tf.logical_or(tf.equal(m, _PROGRESSIVE_SOF[0]), tf.equal(m, _PROGRESSIVE_SOF[1]))
        scan = tf.logical_and(marker, tf.equal(m, 0xDA))
        sos = tf.logical_and(scan, prog)
        unjudged = tf.logical_or(tf.logical_not(marker), tf.logical_or(  # no marker where one is expected, or
            tf.logical_and(sof, tf.logical_not(is_prog)), tf.logical_and(scan, tf.logical_not(prog))))  # not progressive
        # SOF: the frame's component ids (at most 255) get a row of 99s in a fresh table
        nf = tf.where(sof, at(i + 9), 0)
        frame = tf.tensor_scatter_nd_update(tf.zeros_like(lowest), at(i + 10 + 3 * tf.range(nf))[:, None],
                                            tf.fill([nf, 64], 99))
        # SOS: the lowest Al of each of its components' coefficients Ss..Se
        ns = tf.minimum(at(i + 4), 4)
        q = i + 5 + 2 * ns
        row = tf.where(tf.logical_and(k >= at(q), k <= at(q + 1)), at(q + 2) % 16, 99)
        ids = tf.where(four < ns, at(i + 5 + 2 * four), -1)
        scanned = tf.reduce_any(tf.equal(tf.range(256)[:, None], ids[None, :]), axis=1)
        lowest = tf.where(sof, frame, tf.where(tf.logical_and(sos, scanned[:, None]), tf.minimum(lowest, row), lowest))
        j = tf.minimum(tf.searchsorted(markers, end[None])[0], tf.size(markers) - 1)
        after = tf.gather(markers, j)  # the next marker after the scan's data (n: none)
        i2 = tf.where(fill, i + 1, tf.where(bare, i + 2, tf.where(sos, after, end)))
        done2 = tf.logical_or(tf.logical_or(unjudged, eoi), tf.logical_and(sos, after >= n))
        prog2 = tf.logical_and(tf.where(sof, is_prog, prog), tf.logical_not(unjudged))
        return i2, it + 1, done2, prog2, lowest

    def more(i, it, done, prog, lowest):
        return tf.logical_and(tf.logical_not(done), tf.logical_and(i + 1 < n, it < _MAX_SEGMENTS))

    i, _, done, prog, lowest = tf.while_loop(
        more, step, (tf.constant(2), tf.constant(0), tf.constant(False), tf.constant(False),
                     tf.zeros([256, 64], tf.int32)))
    judged = tf.logical_and(prog, tf.logical_or(done, i + 1 >= n))  # not when it stopped at _MAX_SEGMENTS
    return tf.logical_or(tf.logical_not(judged), tf.equal(tf.reduce_max(lowest), 0))


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
        tf.errors.InvalidArgumentError: at run time, naming the path: formats
            other than JPEG/PNG/BMP/WebP, more than :func:`max_pixels` pixels
            (from the header, before decoding; the limit is read when the graph
            is built), a JPEG whose scans end early. Data the decoder itself
            rejects (``jpeg::Uncompress failed``, ...) fails without the path:
            an op's error cannot be caught in the graph; the up-front check
            (``data.validate``, :func:`read_image`) finds those files first.
        tf.errors.NotFoundError: at run time, for a missing file.
    """
    path = tf.convert_to_tensor(path_tensor, dtype=tf.string)
    data = check_pixels_tf(tf.io.read_file(path), path)
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
        return _to_rgb_tf(_decode_jpeg_tf(data, path))

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
    _check_pixels(data, p)
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


def ids_png_layout_tf(data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(ok, sixteen, layout)`` of encoded bytes sent as an id map, from the PNG header (graph ops, no decoding).

    The check of :func:`read_ids` / :func:`decode_ids_tf`: ``ok`` (bool) when
    ``data`` is a greyscale (colour type 0, 1-channel) PNG of bit depth 8 or 16;
    ``sixteen`` (bool) when its bit depth is 16; ``layout`` (string) what the
    header says for messages, as :func:`read_ids` words it (``"3 channel(s) at
    bit depth 8"``, ``"a palette channel(s) at bit depth 8"``). RGB is refused
    even when its three channels are equal, as in training.
    """
    head = tf.strings.substr(tf.strings.join([tf.strings.substr(data, 0, 32), b"\0" * 32]), 0, 32)
    is_png = tf.equal(tf.strings.substr(head, 0, 8), _PNG_SIGNATURE)
    depth = tf.strings.substr(head, 24, 1)
    grey = tf.equal(tf.strings.substr(head, 25, 1), b"\x00")
    ok = is_png & grey & (tf.equal(depth, b"\x08") | tf.equal(depth, b"\x10"))
    depth_colour = tf.cast(tf.io.decode_raw(tf.strings.substr(head, 24, 2), tf.uint8), tf.int32)
    channels = tf.gather(tf.constant(["1", "?", "3", "a palette", "2", "?", "4", "?"]),
                         tf.minimum(depth_colour[1], 7))  # colour type -> channels, as read_ids says it
    layout = tf.strings.join([channels, " channel(s) at bit depth ", tf.strings.as_string(depth_colour[0])])
    return ok, tf.equal(depth, b"\x10"), layout


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
    data = check_pixels_tf(tf.io.read_file(path), path)
    ok, sixteen, _ = ids_png_layout_tf(data)
    check = tf.debugging.Assert(
        ok, ["tfi2i: an id map (labels, instances) must be a 1-channel 8- or 16-bit PNG:", path])
    with tf.control_dependencies([check]):
        sixteen = tf.identity(sixteen)
    ids = tf.cond(
        sixteen,
        lambda: tf.cast(tf.io.decode_png(data, channels=1, dtype=tf.uint16), tf.int32),
        lambda: tf.cast(tf.io.decode_png(data, channels=1, dtype=tf.uint8), tf.int32),
    )
    ids.set_shape([None, None, 1])
    return ids
