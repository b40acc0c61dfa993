"""The CelebAMask-HQ layout (GRIT's data set): face parts -> photos.

The release (``switchablenorms/CelebAMask-HQ``, extracted as ``CelebAMask-HQ/``)::

    ROOT/CelebA-HQ-img/<id>.jpg                                  photos, 1024x1024, id 0..29999
    ROOT/CelebAMask-HQ-mask-anno/<id // 2000>/<id:05d>_<part>.png one binary mask per face part, 512x512,
                                                                 white (255) on black; a part an image
                                                                 lacks has no file
    ROOT/CelebA-HQ-to-CelebA-mapping.txt                         "idx orig_idx orig_file" (header line,
                                                                 then e.g. "0 119613 119614.jpg")
    ROOT/list_eval_partition.txt                                 CelebA's "<orig_file> <0|1|2>" (train,
                                                                 val, test); copy it here from CelebA's
                                                                 Eval/ folder (optional, see below)

or, instead of the part masks, label maps that are already merged
(:data:`MERGED_DIR`, ``ROOT/CelebAMask-HQ-mask/<id>.png``: 1-channel class
ids 0..18: what the release's ``face_parsing/Data_preprocessing/g_mask.py``
writes, into ``CelebAMaskHQ-mask/``, and its ``g_partition.py`` reads from
``CelebAMask-HQ-mask/``, the name used here).

Label map (x, ``data.x_kind=labels``, :data:`NUM_CLASSES` = 19 with
background 0): the part masks of an image merged in the order of
``g_mask.py``'s ``label_list`` (:data:`PARTS`), part ``k`` (0-based) labelled
``k + 1``, later parts over earlier ones; a pixel belongs to a part where its
mask is > 127 (:data:`MASK_THRESHOLD`). ``g_mask.py`` counts every non-zero
pixel; the masks must be binary (0 or 255 only, else a :class:`DataError`
naming the file), on which both rules agree, so the merge is exactly
``g_mask.py``'s and no file is decided differently by a threshold. A part mask
is a greyscale PNG, or a colour one whose channels are equal (``g_mask.py``
reads channel 0 of ``cv2.imread``).

Photo (y): resized to its label map's size before any size check, with
OpenCV's ``INTER_AREA`` (``cv2.resize``; the mean of each ``f x f`` block) -
the 1024x1024 release photos become 512x512, the size the masks were drawn
at. A photo must be the label map's size or an integer multiple ``f`` of it
in both dimensions; any other size (another aspect ratio, a non-integer
factor, smaller than the masks) is a :class:`DataError` naming the photo.
The graph decoder (:func:`resize_photo_tf`) computes the same block means
with OpenCV's rounding, bit-exactly.

Splits (the paper uses Liu et al.'s, i.e. CelebA's ``list_eval_partition``):
an image's CelebA file (``orig_file`` of the mapping) looks up its split in
``list_eval_partition.txt`` (0 = train, 1 = val, 2 = test; 24,183 / 2,993 /
2,824 images of CelebAMask-HQ). Without that file the split follows CelebA's
published ranges of file numbers (:data:`CELEBA_RANGES`: 000001-162770
train, 162771-182637 val, 182638-202599 test, which the partition file
holds), with a warning that says so. (The release's ``g_partition.py`` applies
those bounds to ``orig_idx``, the 0-based number, which moves the images at
the two boundaries into the next split; this module goes by ``orig_file``
like ``list_eval_partition.txt``.)

Checked formats (public copies of the release and of CelebA): ``g_mask.py``
(part list, ``folder_base/<k // 2000>/<k:05d>_<part>.png``, merged maps
``<k>.png``), ``g_partition.py`` (the mapping file, whitespace separated with
a header line), and scripts pairing ``CelebA-HQ-to-CelebA-mapping.txt`` with
``list_eval_partition.txt`` (``000001.jpg 0`` lines).

Why the merge happens in the graph (:func:`merge_parts_tf`) and not in a
cache folder or a ``tf.numpy_function``: the source stays a pure, parallel
``tf.data`` map like every other (no Python / GIL in the input pipeline, no
second copy of a 30,000-image data set to write, keep current and invalidate,
nothing written next to a possibly read-only data set). The eager NumPy
merge (:func:`merge_parts`) serves validation and ``read_pair``; the two
agree exactly (tests).

:class:`CelebAMaskHQ` is the source (``layout="celebamask"`` of
:func:`tfi2i.data.sources.open_source`). A split is addressed as
``ROOT/train``, ``ROOT/val``, ``ROOT/test`` (no such folders exist: the split
comes from the mapping files), which :func:`tfi2i.data.sources.find_splits`
returns for a root, so that ``DataConfig(path=ROOT, x_kind="labels",
num_classes=19)`` trains on ``train`` and evaluates on the split
``data.eval_split`` picks (``test`` for the paper's protocol).

The data set is for non-commercial research only and never enters this
repository: tests use :func:`tfi2i.data.demo.make_face_demo`'s synthetic faces.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import tensorflow as tf

from tfi2i.data.images import (
    DataError, PathLike, _read_bytes, _warn_once, check_id_range, decode_ids_tf, decode_image_tf, read_ids, read_image,
    sniff_format,
)
from tfi2i.data.labels import check_ids
from tfi2i.data.sources import (
    SPLITS, PluggedLayout, TwoFolders, register_layout, _check_direction, _check_kinds, _decode_all, _fingerprint, _shown, _size, is_image_file,
    natural_key,
)

__all__ = [
    "PARTS", "CLASSES", "NUM_CLASSES", "PHOTO_DIR", "PARTS_DIR", "MERGED_DIR", "MAPPING_FILE", "PARTITION_FILE",
    "CELEBA_RANGES", "MASK_THRESHOLD", "CelebAMaskHQ", "is_root", "split_address", "read_mapping",
    "read_partition", "split_of_ids", "list_part_masks", "list_photos", "list_merged", "read_part_mask",
    "merge_masks", "merge_parts", "merge_parts_tf", "resize_photo", "resize_photo_tf", "available_splits",
]

logger = logging.getLogger("tfi2i.data")

#: The face parts in the merge order of the release's ``g_mask.py`` (``label_list``); part ``k`` has label ``k + 1``.
PARTS = ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth", "u_lip",
         "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth")
#: Class names; the index is the class id (0 = background).
CLASSES = ("background",) + PARTS
#: Classes of the label maps, background included.
NUM_CLASSES = len(CLASSES)
#: Folder of the photos, ``<id>.jpg``.
PHOTO_DIR = "CelebA-HQ-img"
#: Folder of the part masks, ``<id // 2000>/<id:05d>_<part>.png``.
PARTS_DIR = "CelebAMask-HQ-mask-anno"
#: Folder of already merged label maps, ``<id>.png`` (1-channel ids 0..18, ``g_mask.py``'s output).
MERGED_DIR = "CelebAMask-HQ-mask"
#: The release's table from CelebA-HQ ids to CelebA files: ``idx orig_idx orig_file``.
MAPPING_FILE = "CelebA-HQ-to-CelebA-mapping.txt"
#: CelebA's split of its files: ``<orig_file> <0|1|2>``.
PARTITION_FILE = "list_eval_partition.txt"
#: The split codes of :data:`PARTITION_FILE`.
PARTITION_CODES = {"0": "train", "1": "val", "2": "test"}
#: CelebA's split by file number (``000001.jpg`` = 1), inclusive ranges: the rule without :data:`PARTITION_FILE`.
CELEBA_RANGES = (("train", 1, 162770), ("val", 162771, 182637), ("test", 182638, 202599))
#: A mask pixel belongs to its part where its value is above this.
MASK_THRESHOLD = 127
#: Label-map sources of :class:`CelebAMaskHQ` (``masks=``).
MASK_KINDS = ("auto", "parts", "merged")

_MASK_NAME = re.compile(r"(\d+)_(.+)")
_LABEL_OF = {p: k + 1 for k, p in enumerate(PARTS)}


# --------------------------------------------------------------------------- layout and splits


def is_root(path: PathLike) -> bool:
    """Whether ``path`` holds ``CelebA-HQ-img/`` and ``CelebAMask-HQ-mask-anno/`` (or ``CelebAMask-HQ-mask/``)."""
    p = Path(path)
    return (p / PHOTO_DIR).is_dir() and ((p / PARTS_DIR).is_dir() or (p / MERGED_DIR).is_dir())


def split_address(path: PathLike) -> tuple[Path, str] | None:
    """``(root, split)`` when ``path`` is ``ROOT/<split>`` of a CelebAMask-HQ root (the form find_splits gives)."""
    p = Path(path)
    if p.name in SPLITS and is_root(p.parent) and not p.is_dir():
        return p.parent, p.name
    return None


def _lines(path: Path, what: str) -> list[tuple[int, list[str]]]:
    """(line number, whitespace-split fields) of the non-blank lines of a text file; DataError when unreadable."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read the {what} ({e.strerror or e})") from e
    return [(n, line.split()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_mapping(root: PathLike) -> dict[int, str]:
    """``{CelebA-HQ id: CelebA file}`` from ``ROOT/CelebA-HQ-to-CelebA-mapping.txt``.

    The file has a header line (``idx orig_idx orig_file``), then one line per
    image: ``<idx> <orig_idx> <orig_file>``, e.g. ``0 119613 119614.jpg``.

    Raises:
        DataError: the file is missing or a line is malformed / an id repeated
            (naming the file and the line).
    """
    path = Path(root) / MAPPING_FILE
    mapping: dict[int, str] = {}
    for n, fields in _lines(path, "CelebA-HQ -> CelebA mapping file (it ships with CelebAMask-HQ)"):
        if n == 1 and fields and fields[0] == "idx":
            continue
        if len(fields) != 3 or not fields[0].isdigit():
            raise DataError(f"{path}, line {n}: expected '<idx> <orig_idx> <orig_file>' (e.g. '0 119613 "
                            f"119614.jpg'), got {' '.join(fields)!r}")
        idx = int(fields[0])
        if idx in mapping:
            raise DataError(f"{path}, line {n}: id {idx} listed twice")
        mapping[idx] = fields[2]
    return mapping


def read_partition(path: PathLike) -> dict[str, str]:
    """``{CelebA file: split}`` from CelebA's ``list_eval_partition.txt`` (``000001.jpg 0`` lines, 0/1/2).

    Raises:
        DataError: a line that is not ``<file> <0|1|2>`` (naming the file and the line).
    """
    path = Path(path)
    out: dict[str, str] = {}
    for n, fields in _lines(path, "CelebA partition file"):
        if len(fields) != 2 or fields[1] not in PARTITION_CODES:
            raise DataError(f"{path}, line {n}: expected '<orig_file> <0|1|2>' (CelebA's list_eval_partition.txt, "
                            f"e.g. '000001.jpg 0'), got {' '.join(fields)!r}")
        out[fields[0]] = PARTITION_CODES[fields[1]]
    return out


def _range_split(orig_file: str) -> str | None:
    """The split of a CelebA file by :data:`CELEBA_RANGES` (its number), None when it has no number in them."""
    m = re.fullmatch(r"0*(\d+)\.\w+", orig_file)
    number = int(m.group(1)) if m else -1
    for split, lo, hi in CELEBA_RANGES:
        if lo <= number <= hi:
            return split
    return None


def split_of_ids(root: PathLike) -> dict[int, str]:
    """``{CelebA-HQ id: "train" | "val" | "test"}`` for every id of the mapping file.

    Through ``orig_file`` and ``ROOT/list_eval_partition.txt``; without that
    file by :data:`CELEBA_RANGES` of the file number, logging a warning (once
    per root and process) that names the missing file and the rule.

    Raises:
        DataError: a missing / malformed mapping file; an ``orig_file`` the
            partition file lacks, or (without it) outside the ranges.
    """
    root = Path(root)
    mapping = read_mapping(root)
    part_path = root / PARTITION_FILE
    if part_path.is_file():
        partition = read_partition(part_path)
        missing = [f"{i} ({f})" for i, f in mapping.items() if f not in partition]
        if missing:
            raise DataError(f"{part_path}: {len(missing)} CelebA file(s) of {root / MAPPING_FILE} are not in it: "
                            f"{_shown(missing)}; use CelebA's complete list_eval_partition.txt")
        return {i: partition[f] for i, f in mapping.items()}
    _warn_once(f"celebamask-ranges:{root}",
               f"{part_path} not found: splitting CelebAMask-HQ by CelebA's file-number ranges instead (train "
               f"000001-162770, val 162771-182637, test 182638-202599, as CelebA's list_eval_partition.txt has "
               f"them); copy that file from CelebA's Eval/ folder to {root} to use it")
    out, bad = {}, []
    for i, f in mapping.items():
        s = _range_split(f)
        if s is None:
            bad.append(f"{i} ({f})")
        else:
            out[i] = s
    if bad:
        raise DataError(f"{root / MAPPING_FILE}: {len(bad)} CelebA file name(s) outside CelebA's numbered files "
                        f"000001-202599: {_shown(bad)}; add {part_path} to give their splits")
    return out


# --------------------------------------------------------------------------- listing


def _int_stems(folder: Path, what: str) -> dict[int, Path]:
    """``{int(stem): file}`` of the image files in ``folder``; DataError for other stems and duplicates."""
    if not folder.is_dir():
        raise DataError(f"{folder}: {what} folder not found")
    out: dict[int, Path] = {}
    bad, dups = [], []
    for f in sorted((p for p in folder.iterdir() if is_image_file(p)), key=lambda p: natural_key(p.name)):
        if not f.stem.isdigit():
            bad.append(f.name)
        elif int(f.stem) in out:
            dups.append(f"{out[int(f.stem)].name} and {f.name}")
        else:
            out[int(f.stem)] = f
    if bad:
        raise DataError(f"{folder}: {len(bad)} file(s) not named by a CelebA-HQ id (<id>.jpg / <id>.png): "
                        f"{_shown(bad)}; remove them from this folder")
    if dups:
        raise DataError(f"{folder}: {len(dups)} id(s) with two files: {_shown(dups)}; remove the duplicates")
    return out


def list_photos(root: PathLike) -> dict[int, Path]:
    """``{id: photo}`` of ``ROOT/CelebA-HQ-img`` (files ``<id>.jpg``; other image types work too)."""
    return _int_stems(Path(root) / PHOTO_DIR, "photo")


def list_merged(root: PathLike) -> dict[int, Path]:
    """``{id: label map}`` of ``ROOT/CelebAMask-HQ-mask`` (files ``<id>.png``, 1-channel ids 0..18)."""
    return _int_stems(Path(root) / MERGED_DIR, "merged label-map")


def list_part_masks(root: PathLike) -> dict[int, dict[str, Path]]:
    """``{id: {part: mask file}}`` of ``ROOT/CelebAMask-HQ-mask-anno/<folder>/<id:05d>_<part>.png``.

    Every image file in the sub-folders counts (the release's are ``0`` ..
    ``14``, 2000 ids each; the folder a file is in is not checked); hidden
    files and other file types are skipped.

    Raises:
        DataError: the folder is missing; a file name that is not
            ``<digits>_<part>``, a part not in :data:`PARTS`, or a part of an
            id given twice (up to 5 named, with the count).
    """
    base = Path(root) / PARTS_DIR
    if not base.is_dir():
        raise DataError(f"{base}: part-mask folder not found")
    out: dict[int, dict[str, Path]] = {}
    bad, unknown, dups = [], [], []
    folders = sorted((d for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")),
                     key=lambda d: natural_key(d.name))
    for d in folders:
        for f in sorted((p for p in d.iterdir() if is_image_file(p)), key=lambda p: natural_key(p.name)):
            rel = f"{d.name}/{f.name}"
            m = _MASK_NAME.fullmatch(f.stem)
            if m is None:
                bad.append(rel)
                continue
            i, part = int(m.group(1)), m.group(2)
            if part not in _LABEL_OF:
                unknown.append(rel)
            elif part in out.setdefault(i, {}):
                dups.append(f"{out[i][part].relative_to(base)} and {rel}")
            else:
                out[i][part] = f
    if bad:
        raise DataError(f"{base}: {len(bad)} file(s) not named <id:05d>_<part>.png: {_shown(bad)}; remove them")
    if unknown:
        raise DataError(f"{base}: {len(unknown)} mask(s) of an unknown part name: {_shown(unknown)}; the parts of "
                        f"CelebAMask-HQ are {', '.join(PARTS)}")
    if dups:
        raise DataError(f"{base}: {len(dups)} part mask(s) given twice: {_shown(dups)}; remove the duplicates")
    return {i: parts for i, parts in out.items() if parts}


def _label_maps(root: Path, masks: str) -> tuple[str, dict[int, object]]:
    """(kind, ``{id: label-map files}``) with ``masks`` resolved: auto = parts when their folder exists, else merged.

    ``parts``: ``{id: ((label, mask file), ...)}`` in merge order; ``merged``: ``{id: file}``.
    """
    if masks not in MASK_KINDS:
        raise DataError(f"masks={masks!r} is not valid; use one of {', '.join(MASK_KINDS)}")
    if masks == "auto":
        masks = "parts" if (root / PARTS_DIR).is_dir() else "merged"
        if masks == "parts" and (root / MERGED_DIR).is_dir():
            logger.info("%s: reading the part masks of %s/ (the original annotation); %s/ is not used",
                        root, PARTS_DIR, MERGED_DIR)
    if masks == "merged":
        return "merged", dict(list_merged(root))
    parts = list_part_masks(root)
    return "parts", {i: tuple((_LABEL_OF[p], by_part[p]) for p in PARTS if p in by_part)
                     for i, by_part in parts.items()}


def available_splits(root: PathLike) -> list[str]:
    """The splits (in :data:`~tfi2i.data.sources.SPLITS` order) holding at least one id with a label map."""
    root = Path(root)
    _, maps = _label_maps(root, "auto")
    split_of = split_of_ids(root)
    present = {split_of[i] for i in maps if i in split_of}
    return [s for s in SPLITS if s in present]


# --------------------------------------------------------------------------- masks and photos (NumPy)


def read_part_mask(path: PathLike) -> np.ndarray:
    """One part mask as bool ``[H, W]`` (value > :data:`MASK_THRESHOLD`).

    Accepts an 8-bit PNG, greyscale or colour with equal channels (an alpha
    channel is ignored), as ``g_mask.py`` reads channel 0.

    Raises:
        DataError: naming the file: missing, empty or unreadable, not an 8-bit
            PNG, colour channels that differ, or values other than 0 and 255
            (a non-binary mask).
    """
    p = Path(path)
    data = _read_bytes(p, "part mask")
    arr = None
    if sniff_format(data) == "PNG":
        try:
            arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        except cv2.error:
            arr = None
    if arr is None or arr.dtype != np.uint8 or arr.ndim not in (2, 3):
        raise DataError(f"{p}: a part mask must be an 8-bit PNG, white (255) on black (0); this file is "
                        f"{'a ' + str(arr.dtype) + ' image' if arr is not None else 'not a readable PNG'}")
    if arr.ndim == 3:
        grey = arr[:, :, 0]
        for c in range(1, min(3, arr.shape[2])):
            if not np.array_equal(arr[:, :, c], grey):
                raise DataError(f"{p}: a part mask must be grey, white (255) on black (0); this one's colour "
                                "channels differ, so it is not a CelebAMask-HQ part mask")
        arr = grey
    values = np.unique(arr)
    bad = values[(values != 0) & (values != 255)]
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:8]) + (" ..." if bad.size > 8 else "")
        raise DataError(f"{p}: not a binary mask: it holds values other than 0 and 255 ({shown}); a CelebAMask-HQ "
                        "part mask is white (255) on black (0)")
    return arr > MASK_THRESHOLD


def merge_masks(masks: Sequence[tuple[int, np.ndarray]]) -> np.ndarray:
    """Merge ``(label, bool mask)`` pairs in order, later over earlier, onto background 0: uint8 ``[H, W]``.

    All masks must have one size (checked by the callers, which name files).
    """
    if not masks:
        raise ValueError("merge_masks needs at least one mask")
    out = np.zeros(masks[0][1].shape, np.uint8)
    for label, mask in masks:
        out[mask] = label
    return out


def merge_parts(parts: Sequence[tuple[int, PathLike]]) -> np.ndarray:
    """Read and merge the part masks of one image: int32 ``[H, W, 1]`` class ids (0 = background).

    Args:
        parts: ``(label, mask file)`` in merge order (:data:`PARTS` order, label = index + 1).

    Raises:
        DataError: a mask :func:`read_part_mask` refuses, or one whose size
            differs from the image's first mask (naming both files and sizes).
    """
    masks = []
    for label, f in parts:
        m = read_part_mask(f)
        if masks and m.shape != masks[0][1].shape:
            raise DataError(f"{f}: mask of the wrong size: {_size(m.shape)}, but {parts[0][1]} of the same image is "
                            f"{_size(masks[0][1].shape)}; all part masks of an image have one size (512x512 in "
                            "the release)")
        masks.append((label, m))
    return merge_masks(masks).astype(np.int32)[:, :, None]


def _factor(photo_hw: Sequence[int], label_hw: Sequence[int]) -> int | None:
    """The integer factor ``f`` with photo size = f * label size in both dimensions, else None."""
    (ph, pw), (lh, lw) = (int(v) for v in photo_hw[:2]), (int(v) for v in label_hw[:2])
    if lh < 1 or lw < 1 or ph % lh or pw % lw or ph // lh != pw // lw or ph < lh:
        return None
    return ph // lh


def resize_photo(photo: np.ndarray, label_hw: Sequence[int], path: PathLike, label_path: PathLike) -> np.ndarray:
    """``photo`` resized to the label map's size with ``cv2.INTER_AREA`` (unchanged when already that size).

    Raises:
        DataError: naming the photo (and the label map) when its size is not an
            integer multiple of the label map's in both dimensions.
    """
    f = _factor(photo.shape, label_hw)
    if f is None:
        raise DataError(f"{path}: the photo is {_size(photo.shape[:2])}, but its label map {label_path} is "
                        f"{_size(label_hw[:2])}; a photo must be the label map's size or an integer multiple of "
                        "it with the same aspect ratio (the release: 1024x1024 photos, 512x512 masks)")
    if f == 1:
        return photo
    return cv2.resize(photo, (int(label_hw[1]), int(label_hw[0])), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------- masks and photos (TensorFlow)


def _part_mask_tf(path: tf.Tensor) -> tf.Tensor:
    """One part mask, bool ``[H, W, 1]`` (channel 0 > threshold), asserting a binary mask (naming ``path``)."""
    v = tf.io.decode_png(tf.io.read_file(path), channels=0, dtype=tf.uint8)[:, :, :1]
    v.set_shape([None, None, 1])
    check = tf.debugging.Assert(tf.reduce_all((v == 0) | (v == 255)),
                                ["tfi2i: not a binary part mask (values other than 0 and 255):", path])
    with tf.control_dependencies([check]):
        return tf.identity(v > MASK_THRESHOLD)


def merge_parts_tf(paths: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Graph counterpart of :func:`merge_parts`: int32 ``[H, W, 1]`` ids of the masks ``paths`` (in merge order).

    Args:
        paths: ``tf.string [n]``, n >= 1, the image's part masks in :data:`PARTS` order.
        labels: ``int32 [n]``, their labels.

    Raises:
        tf.errors.InvalidArgumentError: at run time, a non-binary mask or masks of different sizes (naming the file).
    """
    first = _part_mask_tf(paths[0])
    ids = tf.where(first, labels[0], tf.zeros_like(labels[0]))

    def body(i, ids):
        m = _part_mask_tf(paths[i])
        same = tf.debugging.Assert(tf.reduce_all(tf.equal(tf.shape(m), tf.shape(ids))),
                                   ["tfi2i: part mask of the wrong size:", paths[i], tf.shape(m), "but", paths[0],
                                    tf.shape(ids)])
        with tf.control_dependencies([same]):
            return i + 1, tf.where(m, labels[i], ids)

    _, ids = tf.while_loop(lambda i, _: i < tf.shape(paths)[0], body, (tf.constant(1), ids),
                           shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, None, 1])))
    return ids


def resize_photo_tf(photo: tf.Tensor, label_hw: tf.Tensor, path: tf.Tensor) -> tf.Tensor:
    """Graph counterpart of :func:`resize_photo`: block means of ``f x f`` blocks with ``cv2.INTER_AREA``'s rounding.

    OpenCV's integer-factor ``INTER_AREA`` on uint8 rounds ``(sum + 2) >> 2``
    for ``f = 2`` and ``saturate_cast(sum * (1.f / f^2))`` (round half to
    even) otherwise; both are reproduced here.

    Args:
        photo: uint8 ``[h, w, 3]``.
        label_hw: int32 ``[2]``, the label map's (H, W).
        path: the photo's path, named by the size assertion.
    """
    shape = tf.shape(photo)
    lh, lw = label_hw[0], label_hw[1]
    f = shape[0] // tf.maximum(lh, 1)
    ok = (f >= 1) & tf.equal(shape[0], f * lh) & tf.equal(shape[1], f * lw)
    check = tf.debugging.Assert(ok, ["tfi2i: photo size is not an integer multiple of its label map's:", path,
                                     shape, label_hw])
    with tf.control_dependencies([check]):
        f = tf.identity(f)

    def area():
        blocks = tf.reshape(tf.cast(photo, tf.int32), [lh, f, lw, f, 3])
        total = tf.reduce_sum(blocks, axis=[1, 3])
        half_up = (total + 2) // 4
        even = tf.round(tf.cast(total, tf.float32) * (1.0 / tf.cast(f * f, tf.float32)))
        out = tf.where(tf.equal(f, 2), half_up, tf.cast(even, tf.int32))
        return tf.cast(tf.clip_by_value(out, 0, 255), tf.uint8)

    out = tf.cond(tf.equal(f, 1), lambda: photo, area)
    out.set_shape([None, None, 3])
    return out


# --------------------------------------------------------------------------- the source


class CelebAMaskHQ(TwoFolders):
    """One split of CelebAMask-HQ: merged face-part label maps (x, 19 classes) and photos (y).

    See the module docstring for the layout, the merge and the photo resize.
    Names are the ids (``"0"``, ``"1"``, ...) in numeric order.

    Args:
        root: the folder holding ``CelebA-HQ-img/``, ``CelebAMask-HQ-mask-anno/``
            (or ``CelebAMask-HQ-mask/``) and ``CelebA-HQ-to-CelebA-mapping.txt``.
        split: ``"train"``, ``"val"`` or ``"test"`` (CelebA's partition).
        num_classes: ids must lie in ``[0, num_classes)``; at least 19.
        masks: ``"auto"`` (the part masks when ``CelebAMask-HQ-mask-anno/``
            exists, else the merged maps), ``"parts"`` or ``"merged"``.
        validate: read every example once (merging its masks) and check it.

    Attributes:
        root, split, masks: as resolved (``masks`` is ``"parts"`` or ``"merged"``).
        folder_a, folder_b: the label-map folder and ``CelebA-HQ-img``.
        files_a: per example, ``((label, mask file), ...)`` (parts) or the merged map.
        files_b: per example, the photo.
        names, sizes: as :class:`TwoFolders` (sizes are the label maps').

    Raises:
        DataError: a missing folder or mapping file; an unknown part name or
            a badly named mask; an id of a label map or photo that the mapping
            lacks; a label map without its photo (naming the photo expected)
            or a photo of the split without label maps; an empty split;
            ``num_classes < 19``; with ``validate``: non-binary or wrong-size
            masks, ids out of range in merged maps, photos whose size is not a
            multiple of the label map's (each naming the file).
    """

    layout = "celebamask"
    _what = "face label/photo pairs"

    def __init__(self, root: PathLike, split: str = "train", num_classes: int = NUM_CLASSES, masks: str = "auto",
                 validate: bool = True):
        self.root = Path(root)
        if split not in SPLITS:
            raise DataError(f"split {split!r} is not valid for layout 'celebamask'; use one of {', '.join(SPLITS)}")
        _check_kinds("labels", "rgb", num_classes)
        if int(num_classes) < NUM_CLASSES:
            raise DataError(f"layout 'celebamask' has {NUM_CLASSES} classes (background + {len(PARTS)} face parts): "
                            f"set data.num_classes={NUM_CLASSES}, got {num_classes}")
        self.split = split
        self.direction, self.x_kind, self.y_kind, self.num_classes = "AtoB", "labels", "rgb", int(num_classes)
        self._kind_a, self._kind_b = "labels", "rgb"
        self.masks, maps = _label_maps(self.root, masks)
        self.folder_a = self.root / (PARTS_DIR if self.masks == "parts" else MERGED_DIR)
        self.folder_b, self.folder_inst, self.files_inst = self.root / PHOTO_DIR, None, None
        photos = list_photos(self.root)
        ids = self._split_ids(maps, photos)
        self.names = tuple(str(i) for i in ids)
        self.files_a = tuple(maps[i] for i in ids)
        self.files_b: tuple[Path, ...] = tuple(photos[i] for i in ids)
        self.sizes = None
        if validate:
            self.validate()

    def _split_ids(self, maps: dict[int, object], photos: dict[int, Path]) -> list[int]:
        """The ids of :attr:`split` that have label maps, after checking them against the mapping and the photos."""
        split_of = split_of_ids(self.root)
        unknown = sorted(set(maps) - set(split_of)) + sorted(set(photos) - set(maps) - set(split_of))
        if unknown:
            raise DataError(f"{self.root / MAPPING_FILE}: {len(unknown)} id(s) with a label map or photo are not in "
                            f"this mapping file: {_shown([str(i) for i in unknown])}; use the release's mapping file")
        ids = sorted(i for i in maps if split_of[i] == self.split)
        no_photo = [str(self.folder_b / f"{i}.jpg") for i in ids if i not in photos]
        if no_photo:
            raise DataError(f"{len(no_photo)} label map(s) of split {self.split!r} have no photo: {_shown(no_photo)} "
                            f"not found (label maps in {self.folder_a}); add the photos or remove the masks")
        no_map = [photos[i].name for i in sorted(photos) if split_of.get(i) == self.split and i not in maps]
        if no_map:
            raise DataError(f"{self.folder_b}: {len(no_map)} photo(s) of split {self.split!r} have no label map "
                            f"(no masks in {self.folder_a}): {_shown(no_map)}; add their masks or remove the photos")
        if not ids:
            raise DataError(f"{self.root}: split {self.split!r} is empty: none of the {len(maps)} image(s) with "
                            f"label maps in {self.folder_a} is in it by {self.root / MAPPING_FILE} and "
                            f"{PARTITION_FILE}; open another split (find_splits lists the non-empty ones)")
        return ids

    # ---------------------------------------------------------------- eager

    def _label_file(self, index: int) -> Path:
        """The file named for the label map of ``index``: the merged map, or the first part mask."""
        a = self.files_a[index]
        return a if self.masks == "merged" else a[0][1]

    def read_labels(self, index: int) -> np.ndarray:
        """The label map of example ``index``: int32 ``[H, W, 1]`` ids (merged part masks, or the merged file)."""
        if self.masks == "merged":
            ids = read_ids(self.files_a[index], "label map")
            check_id_range(ids, self.num_classes, self.files_a[index])
            return ids
        return merge_parts(self.files_a[index])

    def read_pair(self, index: int) -> dict[str, object]:
        """See :meth:`PairedSource.read_pair`: x int32 ids ``[H, W, 1]``, y the photo at the label map's size."""
        ids = self.read_labels(index)
        photo = resize_photo(read_image(self.files_b[index]), ids.shape[:2], self.files_b[index],
                             self._label_file(index))
        return {"x": ids, "y": photo, "name": self.names[index]}

    def validate(self, indices: Sequence[int] | None = None) -> tuple[tuple[int, int], ...]:
        """Read, merge and check the examples ``indices`` (default: all, which also sets :attr:`sizes`); their sizes.

        Remembered for the process like the other sources' validations (keyed
        by every photo and mask file's path, size and modification time).

        Raises:
            DataError: every failing example's message (up to 5), each naming its file.
        """
        idx = list(range(len(self.names))) if indices is None else list(indices)
        position = {self.files_b[i]: i for i in idx}
        masks: list[Path] = []
        for i in idx:
            masks += [self.files_a[i]] if self.masks == "merged" else [f for _, f in self.files_a[i]]
        of_masks = _fingerprint(masks, ())
        checks = None if of_masks is None else ("celebamask", self.masks, self.num_classes, of_masks)
        sizes = tuple(_decode_all([self.files_b[i] for i in idx], lambda j, imgs: None, 1, self._what,
                                  self.root, [lambda f: self.read_pair(position[f])["x"]], checks=checks))
        if indices is None:
            self.sizes = sizes
        return sizes

    # ---------------------------------------------------------------- graph

    def _parts_constants(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(flat mask paths, flat labels, row starts [n + 1]) of every example's parts, created once (eager)."""
        cached = self.__dict__.get("_parts_t")
        if cached is None:
            paths = [str(f) for parts in self.files_a for _, f in parts]
            labels = [label for parts in self.files_a for label, _ in parts]
            starts = np.cumsum([0] + [len(parts) for parts in self.files_a])
            with tf.init_scope():  # one eager constant that every traced graph captures (see Source._constant)
                cached = (tf.constant(paths, tf.string), tf.constant(labels, tf.int32),
                          tf.constant(starts, tf.int32))
            self.__dict__["_parts_t"] = cached
        return cached

    def load(self, index: tf.Tensor) -> dict[str, tf.Tensor]:
        """See :meth:`PairedSource.load`: x int32 ``[H, W, 1]`` ids merged in the graph, y the resized photo (uint8).

        Graph counterpart of :meth:`read_pair` (identical results); bad files
        stop with an ``InvalidArgumentError`` naming them.
        """
        index = tf.cast(index, tf.int64)
        photo_path = tf.gather(self._constant("_paths_b_t", [str(f) for f in self.files_b]), index)
        if self.masks == "merged":
            path = tf.gather(self._constant("_paths_a_t", [str(f) for f in self.files_a]), index)
            ids = check_ids(decode_ids_tf(path), self.num_classes, path)
        else:
            paths, labels, starts = self._parts_constants()
            lo, hi = tf.gather(starts, index), tf.gather(starts, index + 1)  # int32: slicing needs one index type
            ids = merge_parts_tf(paths[lo:hi], labels[lo:hi])
        photo = resize_photo_tf(decode_image_tf(photo_path), tf.shape(ids)[:2], photo_path)
        return {"x": ids, "y": photo, "name": tf.gather(self._constant("_names_t", self.names), index)}

    def describe(self) -> str:
        maps = "part masks" if self.masks == "parts" else "merged label maps"
        sizes = ""
        if self.sizes:
            uniq = sorted(set(self.sizes))
            sizes = f", size {_size(uniq[0])}" if len(uniq) == 1 else f", {len(uniq)} sizes"
        return (f"CelebAMaskHQ({self.root}, split {self.split}: {len(self)} pairs, x={maps} {self.folder_a} "
                f"({self.num_classes} classes), y=photos {self.folder_b}{sizes})")


def open_split(path: PathLike, layout: str, direction: str, validate: bool, x_kind: str, y_kind: str,
               num_classes: int, instances: str) -> CelebAMaskHQ:
    """Open ``ROOT/<split>`` as a :class:`CelebAMaskHQ` split, for :func:`~tfi2i.data.sources.open_source`.

    Raises:
        DataError: the root itself or a path that is no split of a CelebAMask-HQ root (with a hint), kinds or
            direction the layout cannot give, instance maps asked for.
    """
    folder = Path(path)
    found = split_address(folder)
    if found is None:
        if is_root(folder):
            raise DataError(f"{folder}: is the root of a CelebAMask-HQ data set; open one split ({folder / 'train'}, "
                            f"{folder / 'val'} or {folder / 'test'}: the split comes from {MAPPING_FILE} and "
                            f"{PARTITION_FILE}, no such folder exists) or use find_splits() (as data.path, the root "
                            "is right: open_data does that)")
        raise DataError(f"{folder}: layout {layout!r} needs ROOT/train, ROOT/val or ROOT/test of a ROOT holding "
                        f"{PHOTO_DIR}/ and {PARTS_DIR}/ (or {MERGED_DIR}/) and {MAPPING_FILE}")
    _check_direction(direction)
    _check_kinds(x_kind, y_kind, num_classes)
    if direction != "AtoB" or (x_kind, y_kind) != ("labels", "rgb"):
        raise DataError(f"layout 'celebamask' maps face label maps (x) to photos (y): set data.direction=AtoB, "
                        f"data.x_kind=labels, data.y_kind=rgb and data.num_classes={NUM_CLASSES}; got "
                        f"direction={direction}, x_kind={x_kind}, y_kind={y_kind}")
    if instances:
        raise DataError(f"data.instances={instances!r}: CelebAMask-HQ has no instance maps; set data.instances=''")
    root, split = found
    return CelebAMaskHQ(root, split, num_classes=num_classes, validate=validate)


def _find_splits(root: Path):
    """`tfi2i.data.sources.find_splits` of a CelebAMask-HQ root: ``{split: root/<split>}``, None for other folders."""
    if not is_root(root):
        return None
    splits = {s: Path(root) / s for s in available_splits(root)}
    if not splits:
        raise DataError(f"{root}: no image with a label map is in any split of {Path(root) / MAPPING_FILE}")
    return splits


register_layout("celebamask", PluggedLayout(
    detect=lambda folder: split_address(folder) is not None or is_root(folder),
    open_split=open_split, find_splits=_find_splits))
