"""Data sources: finite, ordered lists of (x, y) image pairs, or of single images.

A :class:`PairedSource` knows where its pairs are and how to decode one pair
with graph-mode TensorFlow ops (:meth:`PairedSource.load`, usable in
``tf.data.Dataset.range(len(src)).map(src.load)``); batching, shuffling,
resizing, jitter and normalisation are the input pipeline's job, not the
source's. ``x`` is the generator's input, ``y`` its target.

Layouts implemented here:

* :class:`SideBySide` - the pix2pix release layout (facades, cityscapes, maps,
  night2day, edges2shoes, edges2handbags): each file holds A in the left half
  and B in the right half.
* :class:`TwoFolders` - two parallel folders, matched by file stem
  (``a/x.png`` <-> ``b/x.jpg``).
* :class:`SingleImages` - a folder of single images (a :class:`SingleSource`,
  whose ``load`` gives ``{"image", "name"}``): the derived tasks
  (super-resolution, inpainting) make ``x`` from the image in the pipeline,
  see :mod:`tfi2i.data.degrade`.

:class:`Subset` wraps any source (these, the TFDS ones) to keep ``count`` of
its examples, drawn once with a fixed seed (``data.num_train``).

TensorFlow Datasets builders are sources too (:mod:`tfi2i.data.tfds_sources`).

* :class:`Pix2PixHDFolders` - pix2pixHD's ``datasets/cityscapes`` layout: a
  root holding ``<split>_label/``, ``<split>_img/`` and (optional)
  ``<split>_inst/`` for split train / val / test.
* :class:`CityscapesFolders` - the official Cityscapes release:
  ``leftImg8bit/<split>/<city>/<key>_leftImg8bit.png`` and
  ``gtFine/<split>/<city>/<key>_gtFine_labelIds.png`` (``_instanceIds``).

In these two layouts files match by :func:`cityscapes_key` (the stem without
its Cityscapes suffix), the label maps are always A = x (``data.x_kind=labels``,
``data.num_classes``, 35 for Cityscapes labelIds) and the photos B = y, so
``direction`` must be ``AtoB``; any non-empty ``instances`` reads the layout's
own instance maps (``<split>_inst/``, ``*_gtFine_instanceIds.png``). A split
folder of them is ``root/<split>_label`` resp. ``root/gtFine/<split>``
(:func:`find_splits`); a split with label maps but no photos (pix2pixHD's
``test_label/``) cannot be paired (:func:`missing_photos`).

* :class:`~tfi2i.data.celebamask.CelebAMaskHQ` (module :mod:`tfi2i.data.celebamask`) -
  CelebAMask-HQ: ``CelebA-HQ-img/<id>.jpg`` photos (y, resized to the masks'
  size) and ``CelebAMask-HQ-mask-anno/<id // 2000>/<id:05d>_<part>.png`` part
  masks merged into one 19-class label map (x), or already merged maps
  ``CelebAMask-HQ-mask/<id>.png``; splits come from the release's
  ``CelebA-HQ-to-CelebA-mapping.txt`` and CelebA's ``list_eval_partition.txt``
  and are addressed as ``ROOT/train``, ``ROOT/val``, ``ROOT/test`` (no such
  folders exist; :func:`find_splits` returns them).

Other layouts are added as further subclasses implementing ``__len__``,
:meth:`~PairedSource.load`, :meth:`~PairedSource.read_pair` and
:meth:`~PairedSource.describe`, and setting :attr:`~PairedSource.names`.

``direction`` follows pix2pix: ``"AtoB"`` means x = A, y = B; ``"BtoA"`` means
x = B, y = A. (In the facades and cityscapes releases A is the photo, so
labels -> photo is ``BtoA``.)

Construction always checks the listing (folder exists, holds images, stems are
unique and, for two folders, match); with ``validate=True`` (the default) it
also decodes every file once with :func:`~tfi2i.data.images.read_image`
(in a small thread pool) and checks sizes, so that bad files fail at start-up
with a :class:`~tfi2i.data.images.DataError` naming them rather than mid-epoch
inside tf.data. Pairs may differ in size from one another; x and y of one pair
always have the same size. A successful validation is remembered for the
process, keyed by the checked files' paths, sizes and modification times and
by the checks: opening the same unchanged folder again (each ``open_data``,
e.g. a notebook's cells and every ``train.fit``) does not decode it again,
and a changed, added or removed file is validated again. ``validate(indices)``
checks only some examples (:class:`Subset` checks only the ones it keeps).
"""

from __future__ import annotations

import collections
import collections.abc
import hashlib
import logging
import os
import re
import time
import typing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import tensorflow as tf

from tfi2i.data.images import (
    DataError, PathLike, check_id_range, decode_ids_tf, decode_image_tf, read_ids, read_image,
)
from tfi2i.data.labels import check_ids

__all__ = [
    "IMAGE_EXTENSIONS",
    "DIRECTIONS",
    "LAYOUTS",
    "KINDS",
    "SPLITS",
    "Source",
    "PairedSource",
    "SingleSource",
    "SingleImages",
    "SideBySide",
    "TwoFolders",
    "Pix2PixHDFolders",
    "CityscapesFolders",
    "CITYSCAPES_SUFFIXES",
    "cityscapes_key",
    "missing_photos",
    "Subset",
    "open_source",
    "find_splits",
    "is_image_file",
    "list_images",
    "natural_key",
]

logger = logging.getLogger("tfi2i.data")

#: File name extensions (lower case) that are listed as images.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: Valid ``direction`` values.
DIRECTIONS = ("AtoB", "BtoA")
#: Valid kinds of the x and y sides of a pair (``data.x_kind`` / ``data.y_kind``).
KINDS = ("rgb", "labels")
#: Valid ``layout`` values of :func:`open_source`.
LAYOUTS = ("auto", "side_by_side", "two_folders", "pix2pixhd", "cityscapes", "celebamask")
#: Split folder names recognised by :func:`find_splits`, in order.
SPLITS = ("train", "val", "test")
#: Sub-folder names recognised as the two sides of a :class:`TwoFolders` root.
_TWO_FOLDER_NAMES = (("A", "B"), ("a", "b"))

_MAX_LISTED = 5

#: Successful validations of this process: fingerprint (checks + every file's path, size, mtime) -> sizes.
#: The module's one piece of state, on purpose: it only skips decoding files already decoded and checked,
#: unchanged (a bounded memo, like functools.lru_cache).
_VALIDATED: "collections.OrderedDict[str, list]" = collections.OrderedDict()
_VALIDATED_MAX = 32


# --------------------------------------------------------------------------- helpers


def is_image_file(path: PathLike) -> bool:
    """Whether ``path`` is an existing, non-hidden file with an image extension.

    Args:
        path: any path.

    Returns:
        True for regular files named ``*.jpg``, ``*.jpeg``, ``*.png``, ``*.bmp``
        or ``*.webp`` (any case) whose name does not start with ``"."`` (which
        skips e.g. macOS ``._x.jpg`` resource-fork files).
    """
    p = Path(path)
    return p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()


def natural_key(name: str) -> tuple:
    """Sort key ordering digit runs numerically (``"2" < "10"``), deterministically.

    Ties (e.g. ``"01"`` vs ``"1"``) are broken by the plain string.
    """
    parts = re.split(r"(\d+)", name)
    return tuple(int(s) if i % 2 else s for i, s in enumerate(parts)) + (name,)


def list_images(folder: PathLike) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive), in natural order.

    Args:
        folder: an existing folder.

    Returns:
        Paths of the files for which :func:`is_image_file` holds, sorted by
        :func:`natural_key` of the file name.

    Raises:
        DataError: ``folder`` does not exist or is not a folder.
    """
    d = Path(folder)
    if not d.exists():
        raise DataError(f"{d}: folder not found")
    if not d.is_dir():
        raise DataError(f"{d}: is a file, expected a folder of images")
    files = [p for p in d.iterdir() if is_image_file(p)]
    return sorted(files, key=lambda p: natural_key(p.name))


def _images_or_error(folder: Path) -> list[Path]:
    files = list_images(folder)
    if not files:
        raise DataError(
            f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in this folder"
            + _hint_for_empty(folder)
        )
    return files


def _hint_for_empty(folder: Path) -> str:
    subdirs = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    splits = [s for s in SPLITS if s in subdirs]
    if splits:
        return (
            f"; it holds split folders {splits}: open one of them (e.g. {folder / splits[0]}) "
            "or use find_splits()"
        )
    if subdirs:
        shown = ", ".join(subdirs[:_MAX_LISTED])
        return f"; it holds sub-folders ({shown}); point to the folder with the images"
    return ""


def _check_unique_stems(files: Sequence[Path]) -> None:
    seen: dict[str, Path] = {}
    dups: list[str] = []
    for f in files:
        if f.stem in seen:
            dups.append(f"{seen[f.stem].name} and {f.name}")
        else:
            seen[f.stem] = f
    if dups:
        raise DataError(
            f"{files[0].parent}: {len(dups)} file name stem(s) used twice, which makes "
            f"pair names ambiguous: {'; '.join(dups[:_MAX_LISTED])}"
            + (" ..." if len(dups) > _MAX_LISTED else "")
            + "; remove or rename the duplicates"
        )


def _check_kinds(x_kind: str, y_kind: str, num_classes: int) -> tuple[str, str, int]:
    for name, kind in (("x_kind", x_kind), ("y_kind", y_kind)):
        if kind not in KINDS:
            raise DataError(f"data.{name}={kind!r} is not valid; use one of {', '.join(KINDS)}")
    if "labels" in (x_kind, y_kind) and int(num_classes) < 1:
        raise DataError("a labels side needs the number of classes: set data.num_classes "
                        "(ids must lie in [0, num_classes))")
    return x_kind, y_kind, int(num_classes)


def _check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise DataError(f"direction {direction!r} is not valid; use one of {', '.join(DIRECTIONS)}")
    return direction


def _fingerprint(paths: Sequence[Path], checks: tuple) -> str | None:
    """SHA-256 of the checks and of every file's path, size and mtime; None when a file cannot be stat'ed."""
    digest = hashlib.sha256(repr(checks).encode())
    try:
        for f in paths:
            st = os.stat(f)
            digest.update(f"\0{os.path.abspath(f)}\t{st.st_size}\t{st.st_mtime_ns}".encode())
    except OSError:
        return None
    return digest.hexdigest()


def _decode_all(paths: Sequence[Path], check: Callable[[int, list[np.ndarray]], str | None],
                group: int, what: str, where: Path,
                readers: Sequence[Callable[[Path], np.ndarray]] | None = None,
                checks: tuple | None = None) -> list[tuple[int, int]]:
    """Decode every file with read_image (thread pool) and run per-pair checks.

    With ``checks`` (a hashable description of what ``check`` and ``readers``
    verify), a validation that succeeded before in this process on the same
    files, unchanged (path, size, mtime), is not repeated: its sizes are
    returned from the memo.

    Args:
        paths: all files, ``group`` consecutive files per pair.
        check: called with (pair index, decoded images of the pair); returns an
            error message or None.
        group: files per pair (1 or 2).
        what: noun for the log line.
        where: folder named in the log line.
        readers: one reader per file of a group (default :func:`read_image`
            for all), e.g. :func:`read_ids` for the label side.

    Returns:
        The (H, W) size of x of every pair.

    Raises:
        DataError: listing every failing file (up to 5) and the count.
    """
    t0 = time.perf_counter()
    n_pairs = len(paths) // group
    key = _fingerprint(paths, (checks, group)) if checks is not None else None
    if key is not None and key in _VALIDATED:
        _VALIDATED.move_to_end(key)
        logger.info("%d %s (%d files) in %s: unchanged since validated, not decoded again", n_pairs, what,
                    len(paths), where)
        return list(_VALIDATED[key])

    def one(i: int) -> tuple[tuple[int, int] | None, str | None]:
        imgs = []
        for j, f in enumerate(paths[i * group : (i + 1) * group]):
            try:
                imgs.append((readers[j] if readers else read_image)(f))
            except DataError as e:
                return None, str(e)
        msg = check(i, imgs)
        if msg:
            return None, msg
        return imgs[0].shape[:2], None

    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, range(n_pairs)))
    errors = [e for _, e in results if e]
    if errors:
        shown = "\n  ".join(errors[:_MAX_LISTED])
        more = f"\n  ... and {len(errors) - _MAX_LISTED} more" if len(errors) > _MAX_LISTED else ""
        raise DataError(
            f"{len(errors)} of {n_pairs} {what} in {where} failed validation:\n  {shown}{more}"
        )
    logger.info(
        "validated %d %s (%d files) in %s in %.2f s",
        n_pairs, what, len(paths), where, time.perf_counter() - t0,
    )
    sizes = [s for s, _ in results]
    if key is not None:
        _VALIDATED[key] = tuple(sizes)
        while len(_VALIDATED) > _VALIDATED_MAX:
            _VALIDATED.popitem(last=False)
    return sizes  # type: ignore[return-value]


def _size(hw: Iterable[int]) -> str:
    h, w = hw
    return f"{h}x{w} (HxW)"


# --------------------------------------------------------------------------- base


class Source:
    """What every source shares: a finite, ordered list of examples addressed by index.

    Attributes:
        names: one name (file stem) per example, in the source's deterministic
            (natural, by file name) order; ``names[i]`` is example ``i``.
        sizes: ``(H, W)`` per example when the source was validated, else
            ``None``. Sizes may differ between examples.
    """

    names: Sequence[str] = ()
    sizes: tuple[tuple[int, int], ...] | None = None

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: tf.Tensor) -> dict[str, tf.Tensor]:
        """Decode example ``index`` with TensorFlow ops (graph- and tf.data-safe)."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for logs: layout, location, example count."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self.describe()}>"

    def _constant(self, attr: str, values: Sequence[str]) -> tf.Tensor:
        """An eager ``tf.string`` constant, created once and cached on ``self``.

        Created under ``tf.init_scope()`` so that a first call while tracing a
        ``tf.data`` / ``tf.function`` graph still yields one eager tensor that
        every graph captures.
        """
        t = self.__dict__.get(attr)
        if t is None:
            with tf.init_scope():
                t = tf.constant(list(values), dtype=tf.string)
            self.__dict__[attr] = t
        return t


class PairedSource(Source):
    """A finite, ordered list of (x, y) pairs. x = source/input, y = target.

    Attributes:
        names: one name (file stem) per pair, in the source's deterministic
            (natural, by file name) order; ``names[i]`` is pair ``i``.
        direction: ``"AtoB"`` (x = A, y = B) or ``"BtoA"``.
        sizes: ``(H, W)`` of x (== y) per pair when the source was validated,
            else ``None``. Sizes may differ between pairs.
    """

    direction: str = "AtoB"

    def load(self, index: tf.Tensor) -> dict[str, tf.Tensor]:
        """Decode pair ``index`` with TensorFlow ops (graph- and tf.data-safe).

        Args:
            index: integer scalar tensor (any int dtype, e.g. the int64 of
                ``tf.data.Dataset.range``) in ``[0, len(self))``.

        Returns:
            ``{"x": uint8 [H, W, 3], "y": uint8 [H, W, 3], "name": tf.string []}``,
            RGB, static shapes ``[None, None, 3]``.
        """
        raise NotImplementedError

    def read_pair(self, index: int) -> dict[str, object]:
        """Eager NumPy counterpart of :meth:`load` (via :func:`read_image`).

        Args:
            index: Python int in ``[0, len(self))``.

        Returns:
            ``{"x": np.uint8 [H, W, 3], "y": np.uint8 [H, W, 3], "name": str}``.
        """
        raise NotImplementedError

    def describe(self) -> str:
        """One line for logs: layout, location, pair count, direction."""
        raise NotImplementedError

    def _swap(self, a, b):
        """(x, y) from (A, B) according to :attr:`direction`."""
        return (a, b) if self.direction == "AtoB" else (b, a)


class SingleSource(Source):
    """A finite, ordered list of single images (the derived tasks of :mod:`tfi2i.data.degrade`).

    Attributes:
        names: one name per image; ``names[i]`` is image ``i``.
        sizes: ``(H, W)`` per image when validated, else ``None``.
    """

    def load(self, index: tf.Tensor) -> dict[str, tf.Tensor]:
        """Decode image ``index`` with TensorFlow ops (graph- and tf.data-safe).

        Args:
            index: integer scalar tensor in ``[0, len(self))``.

        Returns:
            ``{"image": uint8 [H, W, 3], "name": tf.string []}``, RGB, static
            shape ``[None, None, 3]``.
        """
        raise NotImplementedError

    def read(self, index: int) -> dict[str, object]:
        """Eager NumPy counterpart of :meth:`load`: ``{"image": np.uint8 [H, W, 3], "name": str}``."""
        raise NotImplementedError


# --------------------------------------------------------------------------- side by side


class SideBySide(PairedSource):
    """pix2pix layout: every image holds A in its left half and B in its right half.

    Args:
        folder: folder of ``.jpg/.jpeg/.png/.bmp/.webp`` files (not recursive).
        direction: ``"AtoB"`` (x = left half, y = right half) or ``"BtoA"``.
        validate: decode every file once and check it (see module docstring).

    Attributes:
        folder: the folder.
        files: one file per pair, in :attr:`names` order.

    Raises:
        DataError: folder missing or without images, duplicate stems, bad
            direction; with ``validate``: unreadable/unsupported files and odd
            widths (the message names every failing file, up to 5).
    """

    def __init__(self, folder: PathLike, direction: str = "AtoB", validate: bool = True):
        self.direction = _check_direction(direction)
        self.folder = Path(folder)
        self.files: tuple[Path, ...] = tuple(_images_or_error(self.folder))
        _check_unique_stems(self.files)
        self.names = tuple(f.stem for f in self.files)
        self.sizes = None
        if validate:
            self.validate()

    def validate(self, indices: Sequence[int] | None = None) -> tuple[tuple[int, int], ...]:
        """Decode and check the pairs ``indices`` (default: all, which also sets :attr:`sizes`); their sizes.

        Raises:
            DataError: unreadable/unsupported files and odd widths (up to 5 named).
        """
        idx = range(len(self.files)) if indices is None else list(indices)

        def check(j: int, imgs: list[np.ndarray]) -> str | None:
            h, w = imgs[0].shape[:2]
            if w % 2:
                return (
                    f"{self.files[idx[j]]}: width {w} is odd, so it cannot be split into equal "
                    "halves (A left, B right); is this really a side-by-side pair image?"
                )
            return None

        full = _decode_all([self.files[i] for i in idx], check, 1, "side-by-side pairs", self.folder,
                           checks=("side_by_side",))
        sizes = tuple((h, w // 2) for h, w in full)
        if indices is None:
            self.sizes = sizes
        return sizes

    def load(self, index: tf.Tensor) -> dict[str, tf.Tensor]:
        """See :meth:`PairedSource.load`. x and y are the two halves of one file."""
        paths = self._constant("_paths_t", [str(f) for f in self.files])
        names = self._constant("_names_t", self.names)
        path = tf.gather(paths, index)
        img = decode_image_tf(path)
        w = tf.shape(img)[1]
        half = w // 2
        check = tf.debugging.Assert(
            tf.equal(w % 2, 0), ["tfi2i: side-by-side image with odd width:", path, w]
        )
        with tf.control_dependencies([check]):
            a = img[:, :half]
        b = img[:, half:]
        x, y = self._swap(a, b)
        return {"x": x, "y": y, "name": tf.gather(names, index)}

    def read_pair(self, index: int) -> dict[str, object]:
        """See :meth:`PairedSource.read_pair`."""
        f = self.files[index]
        img = read_image(f)
        h, w = img.shape[:2]
        if w % 2:
            raise DataError(f"{f}: width {w} is odd, cannot split it into A and B halves")
        x, y = self._swap(img[:, : w // 2], img[:, w // 2 :])
        return {"x": np.ascontiguousarray(x), "y": np.ascontiguousarray(y), "name": self.names[index]}

    def describe(self) -> str:
        side = "x=left half (A), y=right half (B)" if self.direction == "AtoB" else \
            "x=right half (B), y=left half (A)"
        sizes = ""
        if self.sizes:
            uniq = sorted(set(self.sizes))
            sizes = f", pair size {_size(uniq[0])}" if len(uniq) == 1 else f", {len(uniq)} pair sizes"
        return f"SideBySide({self.folder}: {len(self)} pairs, {self.direction}: {side}{sizes})"


# --------------------------------------------------------------------------- two folders


class TwoFolders(PairedSource):
    """Two parallel folders of images matched by file stem (``a/x.png`` <-> ``b/x.jpg``).

    Args:
        folder_a: folder of A images.
        folder_b: folder of B images.
        direction: ``"AtoB"`` (x from ``folder_a``) or ``"BtoA"``.
        validate: decode every file once and check it (see module docstring).
        x_kind, y_kind: ``"rgb"`` (images, as everywhere) or ``"labels"``
            (class ids: 1-channel 8- or 16-bit PNGs read exactly, see
            :func:`~tfi2i.data.images.read_ids`) for x and y (after ``direction``).
        num_classes: with a ``labels`` side: ids must lie in ``[0, num_classes)``;
            checked for every file when ``validate`` and always in :meth:`load`
            (a ``tf.debugging`` assertion naming the file).
        folder_inst: optional third folder of instance-id maps (1-channel 8- or
            16-bit PNGs, e.g. Cityscapes ``*_instanceIds.png``), matched by
            stem like A and B; :meth:`load` then adds ``"instances"``.

    Attributes:
        folder_a, folder_b, folder_inst: the folders (``folder_inst`` None without instances).
        files_a, files_b, files_inst: matched files, in :attr:`names` order.
        x_kind, y_kind, num_classes: as given.

    Raises:
        DataError: a folder missing or without images, duplicate stems within a
            folder, stems present on one side only (up to 5 listed, plus the
            count), bad direction or kind, a labels side without
            ``num_classes``; with ``validate``: unreadable/unsupported files,
            id maps that are not 1-channel 8/16-bit PNGs, ids outside
            ``[0, num_classes)`` (naming the file and the value) and size
            mismatches (naming both files and sizes).
    """

    #: Noun of the validation log line.
    _what = "two-folder pairs"

    def __init__(self, folder_a: PathLike, folder_b: PathLike, direction: str = "AtoB",
                 validate: bool = True, *, x_kind: str = "rgb", y_kind: str = "rgb", num_classes: int = 0,
                 folder_inst: PathLike | None = None):
        self.direction = _check_direction(direction)
        self.x_kind, self.y_kind, self.num_classes = _check_kinds(x_kind, y_kind, num_classes)
        self._kind_a, self._kind_b = self._swap(self.x_kind, self.y_kind)
        self.folder_a, self.folder_b = Path(folder_a), Path(folder_b)
        self.folder_inst = Path(folder_inst) if folder_inst else None
        files_a = _images_or_error(self.folder_a)
        files_b = _images_or_error(self.folder_b)
        files_i = _images_or_error(self.folder_inst) if self.folder_inst else []
        _check_unique_stems(files_a)
        _check_unique_stems(files_b)
        if files_i:
            _check_unique_stems(files_i)
        by_a = {f.stem: f for f in files_a}
        by_b = {f.stem: f for f in files_b}
        by_i = {f.stem: f for f in files_i}
        only_a = [f.name for f in files_a if f.stem not in by_b]
        only_b = [f.name for f in files_b if f.stem not in by_a]
        if self.folder_inst:
            no_inst = [f.name for f in files_a if f.stem not in by_i]
            extra_inst = [f.name for f in files_i if f.stem not in by_a]
            if no_inst or extra_inst:
                parts = []
                if no_inst:
                    parts.append(f"{len(no_inst)} file(s) in {self.folder_a} have no instance map (same stem) in "
                                 f"{self.folder_inst}: {', '.join(no_inst[:_MAX_LISTED])}")
                if extra_inst:
                    parts.append(f"{len(extra_inst)} instance map(s) in {self.folder_inst} have no counterpart in "
                                 f"{self.folder_a}: {', '.join(extra_inst[:_MAX_LISTED])}")
                raise DataError("unmatched instance maps: " + "; ".join(parts)
                                + "; add the missing files or remove the extra ones (or set data.instances='')")
        if only_a or only_b:
            parts = []
            for only, here, there in ((only_a, self.folder_a, self.folder_b),
                                      (only_b, self.folder_b, self.folder_a)):
                if only:
                    more = " ..." if len(only) > _MAX_LISTED else ""
                    parts.append(
                        f"{len(only)} file(s) in {here} have no counterpart (same stem) in "
                        f"{there}: {', '.join(only[:_MAX_LISTED])}{more}"
                    )
            raise DataError("unmatched pairs: " + "; ".join(parts)
                            + "; add the missing files or remove the extra ones")
        self.files_a: tuple[Path, ...] = tuple(files_a)  # already in natural order
        self.files_b: tuple[Path, ...] = tuple(by_b[f.stem] for f in files_a)
        self.files_inst: tuple[Path, ...] | None = tuple(by_i[f.stem] for f in files_a) if files_i else None
        self.names = tuple(f.stem for f in files_a)
        self.sizes = None
        if validate:
            self.validate()

    def validate(self, indices: Sequence[int] | None = None) -> tuple[tuple[int, int], ...]:
        """Decode and check the pairs ``indices`` (default: all, which also sets :attr:`sizes`); their sizes.

        Raises:
            DataError: unreadable/unsupported files, ids out of range, size
                mismatches within a pair (up to 5 named).
        """
        idx = range(len(self.names)) if indices is None else list(indices)
        group = 3 if self.files_inst else 2
        lists = (self.files_a, self.files_b) + ((self.files_inst,) if self.files_inst else ())
        interleaved = [files[i] for i in idx for files in lists]
        readers = [self._reader(self._kind_a), self._reader(self._kind_b)] + [self._reader("instances")]

        def check(j: int, imgs: list[np.ndarray]) -> str | None:
            i = idx[j]
            sizes = [im.shape[:2] for im in imgs]
            for k in range(1, len(imgs)):
                if sizes[k] != sizes[0]:
                    return (
                        f"size mismatch for pair {self.names[i]!r}: {lists[0][i]} is "
                        f"{_size(sizes[0])} but {lists[k][i]} is {_size(sizes[k])}; x and y of a pair "
                        "(and its instance map) must have the same size"
                    )
            return None

        sizes = tuple(_decode_all(interleaved, check, group, self._what, getattr(self, "root", self.folder_a.parent),
                                  readers[:group], checks=("two_folders", self._kind_a, self._kind_b,
                                                           self.num_classes)))
        if indices is None:
            self.sizes = sizes
        return sizes

    def _reader(self, kind: str) -> Callable[[Path], np.ndarray]:
        """The eager reader of one side: images, or id maps (labels range-checked)."""
        if kind == "labels":
            def labels(f: Path) -> np.ndarray:
                ids = read_ids(f, "label map")
                check_id_range(ids, self.num_classes, f)
                return ids
            return labels
        if kind == "instances":
            return lambda f: read_ids(f, "instance map")
        return read_image

    def _decode(self, path: tf.Tensor, kind: str) -> tf.Tensor:
        """The graph decoder of one side (labels: ids checked against ``num_classes``, naming ``path``)."""
        if kind == "labels":
            return check_ids(decode_ids_tf(path), self.num_classes, path)
        if kind == "instances":
            return decode_ids_tf(path)
        return decode_image_tf(path)

    def load(self, index: tf.Tensor) -> dict[str, tf.Tensor]:
        """See :meth:`PairedSource.load`. Asserts that A, B (and the instance map) have the same size.

        A ``labels`` side is int32 ``[H, W, 1]`` class ids (asserted to be in
        ``[0, num_classes)``, the message naming the file); with
        ``folder_inst`` the result also holds ``"instances"``: int32 ``[H, W, 1]``
        instance ids.
        """
        pa = tf.gather(self._constant("_paths_a_t", [str(f) for f in self.files_a]), index)
        pb = tf.gather(self._constant("_paths_b_t", [str(f) for f in self.files_b]), index)
        a, b = self._decode(pa, self._kind_a), self._decode(pb, self._kind_b)
        check = tf.debugging.Assert(
            tf.reduce_all(tf.equal(tf.shape(a)[:2], tf.shape(b)[:2])),
            ["tfi2i: A/B size mismatch:", pa, tf.shape(a), pb, tf.shape(b)],
        )
        with tf.control_dependencies([check]):
            a = tf.identity(a)
        x, y = self._swap(a, b)
        out = {"x": x, "y": y, "name": tf.gather(self._constant("_names_t", self.names), index)}
        if self.files_inst:
            pi = tf.gather(self._constant("_paths_i_t", [str(f) for f in self.files_inst]), index)
            inst = self._decode(pi, "instances")
            check = tf.debugging.Assert(
                tf.reduce_all(tf.equal(tf.shape(a)[:2], tf.shape(inst)[:2])),
                ["tfi2i: image/instance map size mismatch:", pa, tf.shape(a), pi, tf.shape(inst)],
            )
            with tf.control_dependencies([check]):
                out["instances"] = tf.identity(inst)
        return out

    def read_pair(self, index: int) -> dict[str, object]:
        """See :meth:`PairedSource.read_pair` (labels sides and ``"instances"`` as in :meth:`load`)."""
        a = self._reader(self._kind_a)(self.files_a[index])
        b = self._reader(self._kind_b)(self.files_b[index])
        if a.shape[:2] != b.shape[:2]:
            raise DataError(
                f"size mismatch for pair {self.names[index]!r}: {self.files_a[index]} is "
                f"{_size(a.shape[:2])} but {self.files_b[index]} is {_size(b.shape[:2])}"
            )
        x, y = self._swap(a, b)
        out = {"x": x, "y": y, "name": self.names[index]}
        if self.files_inst:
            inst = read_ids(self.files_inst[index], "instance map")
            if inst.shape[:2] != a.shape[:2]:
                raise DataError(f"size mismatch for pair {self.names[index]!r}: {self.files_a[index]} is "
                                f"{_size(a.shape[:2])} but {self.files_inst[index]} is {_size(inst.shape[:2])}")
            out["instances"] = inst
        return out

    def describe(self) -> str:
        xs, ys = self._swap(self.folder_a, self.folder_b)
        kinds = "" if (self.x_kind, self.y_kind) == ("rgb", "rgb") else \
            f", kinds x={self.x_kind}, y={self.y_kind}, {self.num_classes} classes"
        inst = f", instances={self.folder_inst}" if self.folder_inst else ""
        return f"TwoFolders({len(self)} pairs, {self.direction}: x={xs}, y={ys}{kinds}{inst})"


# --------------------------------------------------------------------------- pix2pixHD / Cityscapes layouts


#: Cityscapes file-name suffixes (of the stem) and the role of such a file: ``label`` (class ids, x),
#: ``inst`` (instance ids) or ``img`` (the photo, y). The :class:`Pix2PixHDFolders` and
#: :class:`CityscapesFolders` layouts match files by :func:`cityscapes_key`.
CITYSCAPES_SUFFIXES = {"_gtFine_labelIds": "label", "_gtFine_instanceIds": "inst", "_leftImg8bit": "img"}
#: Cityscapes suffixes of files that are not what their folder needs, and why.
_REFUSED_SUFFIXES = {"_gtFine_color": "a colour-coded label map (RGB palette), not class ids: use the "
                                      "*_gtFine_labelIds.png files"}
_ROLE_NOUNS = {"label": "label map", "inst": "instance map", "img": "photo"}


def cityscapes_key(path: PathLike) -> tuple[str, str | None]:
    """The matching key of a file of the pix2pixhd / cityscapes layouts, and what its suffix says it is.

    The key is the file's stem without a known Cityscapes suffix
    (:data:`CITYSCAPES_SUFFIXES`: ``_gtFine_labelIds``, ``_gtFine_instanceIds``,
    ``_leftImg8bit``; also ``_gtFine_color``), else the plain stem:
    ``aachen_000000_000019_gtFine_labelIds.png`` and
    ``aachen_000000_000019_leftImg8bit.png`` share the key
    ``aachen_000000_000019``.

    Returns:
        ``(key, role)``: role ``"label"``, ``"inst"``, ``"img"``, ``"color"``
        (``_gtFine_color``, a colour map: never a label map) or None (no known
        suffix).
    """
    stem = Path(path).stem
    for suffix, role in list(CITYSCAPES_SUFFIXES.items()) + [("_gtFine_color", "color")]:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)], role
    return stem, None


def _shown(names: Sequence[str]) -> str:
    return ", ".join(names[:_MAX_LISTED]) + (f" ... ({len(names)} in all)" if len(names) > _MAX_LISTED else "")


def _keyed(files: Sequence[Path], role: str, where: Path) -> dict[str, Path]:
    """``{key: file}`` of one role's files (natural order), refusing colour maps, other roles' suffixes and
    duplicate keys; the listed names are relative to the folder ``where``."""
    refused, wrong, by_key, dups = [], [], {}, []
    for f in files:
        key, r = cityscapes_key(f)
        rel = str(f.relative_to(where))
        if r == "color":
            refused.append(rel)
        elif r is not None and r != role:
            wrong.append(f"{rel} (suffix of a {_ROLE_NOUNS[r]})")
        elif key in by_key:
            dups.append(f"{by_key[key].relative_to(where)} and {rel}")
        else:
            by_key[key] = f
    if refused:
        raise DataError(f"{where}: {len(refused)} file(s) are {_REFUSED_SUFFIXES['_gtFine_color']}, "
                        f"not {_ROLE_NOUNS[role]}s: {_shown(refused)}; remove them from this folder")
    if wrong:
        raise DataError(f"{where}: {len(wrong)} file(s) in this {_ROLE_NOUNS[role]} folder have the suffix of "
                        f"another kind of file: {_shown(wrong)}; move them to their own folder")
    if dups:
        raise DataError(f"{where}: {len(dups)} key(s) used twice (the file name without its Cityscapes suffix), "
                        f"which makes pair names ambiguous: {_shown(dups)}; remove or rename the duplicates")
    return by_key


def _match_keys(sides: Sequence[tuple[dict[str, Path], Path, str]]) -> list[str]:
    """The keys of ``sides[0]`` (in its order) after checking that every side holds exactly those keys.

    Args:
        sides: ``(files by key, folder, noun)`` per side; the first is the reference (the label maps).
            The listed names are relative to the side's folder.

    Raises:
        DataError: keys present on one side only: per side, the count and up to 5 names.
    """
    ref, ref_where, ref_what = sides[0]
    parts = []
    for keys, where, what in sides[1:]:
        missing = [str(f.relative_to(ref_where)) for k, f in ref.items() if k not in keys]
        extra = [str(f.relative_to(where)) for k, f in keys.items() if k not in ref]
        if missing:
            parts.append(f"{len(missing)} {ref_what}(s) in {ref_where} have no {what} (same key) in {where}: "
                         f"{_shown(missing)}")
        if extra:
            parts.append(f"{len(extra)} {what}(s) in {where} have no {ref_what} (same key) in {ref_where}: "
                         f"{_shown(extra)}")
    if parts:
        raise DataError("unmatched files: " + "; ".join(parts) + "; files match by their name without the "
                        f"Cityscapes suffix ({', '.join(CITYSCAPES_SUFFIXES)}): add the missing files or remove "
                        "the extra ones")
    return list(ref)


def _check_label_photo(layout: str, direction: str, x_kind: str, y_kind: str, num_classes: int) -> None:
    """The pix2pixhd and cityscapes layouts map label maps (A, x) to photos (B, y) only."""
    _check_direction(direction)
    _check_kinds(x_kind, y_kind, num_classes)
    if direction != "AtoB" or (x_kind, y_kind) != ("labels", "rgb"):
        raise DataError(f"layout {layout!r} maps label maps (A, x) to photos (B, y): set data.direction=AtoB, "
                        f"data.x_kind=labels, data.y_kind=rgb and data.num_classes (35 for Cityscapes labelIds); "
                        f"got direction={direction}, x_kind={x_kind}, y_kind={y_kind}")


class _LabelPhotoFolders(TwoFolders):
    """Label maps (A = x) matched with photos (B = y) and optional instance maps by :func:`cityscapes_key`.

    Shares :class:`TwoFolders`' decoding (:meth:`~TwoFolders.load`,
    :meth:`~TwoFolders.read_pair`, :meth:`~TwoFolders.validate`); subclasses
    list the files of their layout and call :meth:`_setup`.
    """

    _what = "label/photo pairs"
    layout = ""

    def _setup(self, root: Path, split: str, labels: dict[str, Path], photos: dict[str, Path],
               insts: dict[str, Path] | None, folders: tuple[Path, Path, Path | None],
               num_classes: int, validate: bool) -> None:
        """Match the files of each role by key and set the :class:`TwoFolders` attributes (then validate)."""
        self.root, self.split = root, split
        self.direction, self.x_kind, self.y_kind, self.num_classes = "AtoB", "labels", "rgb", int(num_classes)
        self._kind_a, self._kind_b = "labels", "rgb"
        self.folder_a, self.folder_b, self.folder_inst = folders
        sides = [(labels, folders[0], "label map"), (photos, folders[1], "photo")]
        if insts is not None:
            sides.append((insts, folders[2], "instance map"))
        keys = _match_keys(sides)
        self.names = tuple(keys)
        self.files_a: tuple[Path, ...] = tuple(labels[k] for k in keys)
        self.files_b: tuple[Path, ...] = tuple(photos[k] for k in keys)
        self.files_inst = tuple(insts[k] for k in keys) if insts is not None else None
        self.sizes = None
        if validate:
            self.validate()

    def describe(self) -> str:
        inst = f", instances={self.folder_inst}" if self.folder_inst else ""
        return (f"{type(self).__name__}({self.root}, split {self.split}: {len(self)} pairs, x=label maps "
                f"{self.folder_a} ({self.num_classes} classes), y=photos {self.folder_b}{inst})")


class Pix2PixHDFolders(_LabelPhotoFolders):
    """pix2pixHD's folder layout (``datasets/cityscapes``): ``<split>_label/``, ``<split>_img/``, ``<split>_inst/``.

    One split of a root holding ``train_label/``, ``train_img/``,
    ``train_inst/`` (and the same for ``val`` and ``test``), as NVIDIA
    pix2pixHD's ``data/aligned_dataset.py`` reads it: A = the label maps
    (1-channel class-id PNGs, always x), B = the photos (always y), optional
    instance-id maps. Files match by :func:`cityscapes_key` (the stem without
    ``_gtFine_labelIds`` / ``_leftImg8bit`` / ``_gtFine_instanceIds``, else
    the plain stem), so ``train_label/aachen_000000_000019_gtFine_labelIds.png``
    pairs with ``train_img/aachen_000000_000019_leftImg8bit.png``; the names
    are the keys.

    Args:
        root: the folder holding the ``<split>_*`` folders.
        split: ``"train"``, ``"val"`` or ``"test"``.
        num_classes: ids must lie in ``[0, num_classes)`` (35 for Cityscapes
            ``labelIds``), checked as in :class:`TwoFolders`.
        instances: read ``<split>_inst/`` (:meth:`load` then adds ``"instances"``).
        validate: decode every file once and check it (see module docstring).

    Attributes:
        root, split: as given.
        folder_a, folder_b, folder_inst: ``<split>_label``, ``<split>_img``,
            ``<split>_inst`` (None without instances).
        files_a, files_b, files_inst, names, sizes: as :class:`TwoFolders`.

    Raises:
        DataError: a missing folder (a ``<split>_label/`` without
            ``<split>_img/`` cannot be trained or evaluated against photos),
            a folder without images, ``*_gtFine_color`` files or files with
            another role's suffix in a folder, duplicate keys, unmatched files
            (up to 5 named per side, plus the count), ``num_classes < 1``;
            with ``validate`` as :class:`TwoFolders`.
    """

    layout = "pix2pixhd"

    def __init__(self, root: PathLike, split: str = "train", num_classes: int = 0, instances: bool = False,
                 validate: bool = True):
        root = Path(root)
        if split not in SPLITS:
            raise DataError(f"split {split!r} is not valid for layout 'pix2pixhd'; use one of {', '.join(SPLITS)}")
        _check_kinds("labels", "rgb", num_classes)
        folders = (root / f"{split}_label", root / f"{split}_img", root / f"{split}_inst" if instances else None)
        if not folders[0].is_dir():
            raise DataError(f"{folders[0]}: label-map folder not found (layout 'pix2pixhd': {root} should hold "
                            f"{split}_label/, {split}_img/[, {split}_inst/])")
        if not folders[1].is_dir():
            raise DataError(f"{folders[1]}: photo folder not found: {folders[0].name}/ has label maps but there are "
                            f"no photos for them, so split {split!r} of {root} cannot be trained on or evaluated "
                            "against photos (pix2pixHD's test_label/ is for inference only)")
        if instances and not folders[2].is_dir():
            raise DataError(f"{folders[2]}: instance-map folder not found (data.instances is set: layout 'pix2pixhd' "
                            f"reads {split}_inst/ next to {split}_label/); add it or set data.instances=''")
        labels = _keyed(_images_or_error(folders[0]), "label", folders[0])
        photos = _keyed(_images_or_error(folders[1]), "img", folders[1])
        insts = _keyed(_images_or_error(folders[2]), "inst", folders[2]) if instances else None
        self._setup(root, split, labels, photos, insts, folders, num_classes, validate)


class CityscapesFolders(_LabelPhotoFolders):
    """The official Cityscapes release: ``leftImg8bit/<split>/<city>/`` and ``gtFine/<split>/<city>/``.

    Photos ``leftImg8bit/<split>/<city>/<key>_leftImg8bit.png`` (y), label
    maps ``gtFine/<split>/<city>/<key>_gtFine_labelIds.png`` (x, 35 classes),
    instance maps ``..._gtFine_instanceIds.png``; the other files of
    ``gtFine/`` (``*_gtFine_color.png``, ``*_gtFine_polygons.json``, ...) are
    ignored. Files match by key (:func:`cityscapes_key`, e.g.
    ``aachen_000000_000019``), which is the name of the pair; pairs are in
    natural order of the city, then the file name.

    Args:
        root: the folder holding ``leftImg8bit/`` and ``gtFine/``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        num_classes, instances, validate: as :class:`Pix2PixHDFolders`.

    Attributes:
        root, split: as given.
        folder_a, folder_b, folder_inst: ``gtFine/<split>``,
            ``leftImg8bit/<split>``, ``gtFine/<split>`` (None without instances).
        files_a, files_b, files_inst, names, sizes: as :class:`TwoFolders`.

    Raises:
        DataError: a missing split folder, no ``*_gtFine_labelIds.png`` (the
            message says when only colour maps are there), no photos or
            instance maps, duplicate keys, unmatched files (up to 5 per side);
            with ``validate`` as :class:`TwoFolders`.
    """

    layout = "cityscapes"

    def __init__(self, root: PathLike, split: str = "train", num_classes: int = 0, instances: bool = False,
                 validate: bool = True):
        root = Path(root)
        if split not in SPLITS:
            raise DataError(f"split {split!r} is not valid for layout 'cityscapes'; use one of {', '.join(SPLITS)}")
        _check_kinds("labels", "rgb", num_classes)
        gt, img = root / "gtFine" / split, root / "leftImg8bit" / split
        for folder, what in ((gt, "label-map"), (img, "photo")):
            if not folder.is_dir():
                raise DataError(f"{folder}: {what} folder of split {split!r} not found (layout 'cityscapes': "
                                f"{root} should hold leftImg8bit/{split}/<city>/ and gtFine/{split}/<city>/)")
        gt_files = [f for f in sorted(gt.glob("*/*"), key=lambda p: (natural_key(p.parent.name), natural_key(p.name)))
                    if is_image_file(f)]
        img_files = [f for f in sorted(img.glob("*/*"), key=lambda p: (natural_key(p.parent.name),
                                                                         natural_key(p.name))) if is_image_file(f)]

        def of_role(files: list[Path], role: str, where: Path, suffix: str) -> dict[str, Path]:
            picked = [f for f in files if cityscapes_key(f)[1] == role]
            if not picked:
                colour = [f for f in files if cityscapes_key(f)[1] == "color"]
                found = ""
                if colour and role == "label":
                    found = f"; it holds {len(colour)} *_gtFine_color.png file(s), {_REFUSED_SUFFIXES['_gtFine_color']}"
                elif role == "inst":
                    found = "; data.instances is set: add the instance maps or set data.instances=''"
                raise DataError(f"{where}: no *{suffix}.png files in its city folders (<city>/<key>{suffix}.png)"
                                + found)
            return _keyed(picked, role, where)

        labels = of_role(gt_files, "label", gt, "_gtFine_labelIds")
        photos = of_role(img_files, "img", img, "_leftImg8bit")
        insts = of_role(gt_files, "inst", gt, "_gtFine_instanceIds") if instances else None
        self._setup(root, split, labels, photos, insts, (gt, img, gt if instances else None), num_classes, validate)


def _pix2pixhd_splits(root: Path) -> list[str]:
    return [s for s in SPLITS if (root / f"{s}_label").is_dir()]


def _cityscapes_root(root: Path) -> bool:
    return (root / "leftImg8bit").is_dir() and (root / "gtFine").is_dir()


def _label_photo_split(folder: Path) -> tuple[str, Path, str] | None:
    """``(layout, root, split)`` when ``folder`` names one split of the pix2pixhd or cityscapes layout.

    pix2pixhd: ``root/<split>_label`` (or ``_img``, ``_inst``) with ``root/<split>_label`` present;
    cityscapes: ``root/gtFine/<split>`` or ``root/leftImg8bit/<split>`` with both top folders present.
    """
    m = re.fullmatch(r"(train|val|test)_(label|img|inst)", folder.name)
    if m and (folder.parent / f"{m.group(1)}_label").is_dir():
        return "pix2pixhd", folder.parent, m.group(1)
    if folder.name in SPLITS and folder.parent.name in ("gtFine", "leftImg8bit") and \
            _cityscapes_root(folder.parent.parent):
        return "cityscapes", folder.parent.parent, folder.name
    return None


def missing_photos(path: PathLike) -> str | None:
    """Why a split folder :func:`find_splits` returned cannot be paired with photos, or None when it can.

    Only the pix2pixhd and cityscapes layouts have label maps without photos
    (pix2pixHD's ``test_label/``, for inference only): for such a split the
    reason names the missing folder. Every other path gives None.
    """
    found = _label_photo_split(Path(path))
    if found is None:
        return None
    layout, root, split = found
    photos = root / f"{split}_img" if layout == "pix2pixhd" else root / "leftImg8bit" / split
    if photos.is_dir():
        return None
    labels = root / f"{split}_label" if layout == "pix2pixhd" else root / "gtFine" / split
    return (f"{labels} holds label maps but {photos} (their photos) does not exist, so split {split!r} "
            "cannot be evaluated against photos")


# --------------------------------------------------------------------------- single images


class SingleImages(SingleSource):
    """A folder of single images (not recursive), for the derived tasks (super-resolution, inpainting).

    Args:
        folder: folder of ``.jpg/.jpeg/.png/.bmp/.webp`` files; images may
            differ in size.
        validate: decode every file once and check it (see module docstring).

    Attributes:
        folder: the folder.
        files: one file per image, in :attr:`names` order.

    Raises:
        DataError: folder missing or without images (with a hint when it holds
            split folders), duplicate stems; with ``validate``: unreadable,
            corrupt or unsupported files (the message names every failing file,
            up to 5).
    """

    def __init__(self, folder: PathLike, validate: bool = True):
        self.folder = Path(folder)
        self.files: tuple[Path, ...] = tuple(_images_or_error(self.folder))
        _check_unique_stems(self.files)
        self.names = tuple(f.stem for f in self.files)
        self.sizes = None
        if validate:
            self.validate()

    def validate(self, indices: Sequence[int] | None = None) -> tuple[tuple[int, int], ...]:
        """Decode the images ``indices`` (default: all, which also sets :attr:`sizes`); their sizes.

        Raises:
            DataError: unreadable, corrupt or unsupported files (up to 5 named).
        """
        files = self.files if indices is None else [self.files[i] for i in indices]
        sizes = tuple(_decode_all(files, lambda i, imgs: None, 1, "images", self.folder, checks=("single",)))
        if indices is None:
            self.sizes = sizes
        return sizes

    def load(self, index: tf.Tensor) -> dict[str, tf.Tensor]:
        """See :meth:`SingleSource.load`."""
        path = tf.gather(self._constant("_paths_t", [str(f) for f in self.files]), index)
        return {"image": decode_image_tf(path), "name": tf.gather(self._constant("_names_t", self.names), index)}

    def read(self, index: int) -> dict[str, object]:
        """See :meth:`SingleSource.read`."""
        return {"image": read_image(self.files[index]), "name": self.names[index]}

    def describe(self) -> str:
        sizes = ""
        if self.sizes:
            uniq = sorted(set(self.sizes))
            sizes = f", size {_size(uniq[0])}" if len(uniq) == 1 else f", {len(uniq)} sizes"
        return f"SingleImages({self.folder}: {len(self)} images{sizes})"


# --------------------------------------------------------------------------- subsets


class _Picked(collections.abc.Sequence):
    """``values[indices[i]]`` on access: the ``names`` of a subset of a lazy source (TFDS)."""

    def __init__(self, values: Sequence, indices: Sequence[int]):
        self._values, self._indices = values, indices

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._values[j] for j in self._indices[i]]
        return self._values[self._indices[i]]


class Subset(Source):
    """``count`` examples of ``source``, drawn once uniformly without replacement, in the source's order.

    The indices are ``sorted(numpy.random.default_rng(seed).choice(len(source),
    count, replace=False))``, so a subset is a pure function of the source's
    (deterministic) order, ``count`` and ``seed``. Works for every source
    kind (paired, single images, TFDS): :meth:`load` maps the index and calls
    ``source.load``; names are the source's.

    Args:
        source: any source (``__len__`` and ``load``).
        count: examples to keep, ``1 <= count <= len(source)``.
        seed: the NumPy generator's seed.

    Attributes:
        source: the wrapped source.
        indices: the kept indices of ``source`` (ascending ints).
        seed: the seed.
        names: the kept examples' names.
        sizes: their sizes when ``source`` has them, else ``None``.
        files, files_a, files_b: their files, where ``source`` has these.

    ``read`` / ``read_pair`` (with the index mapped) exist when ``source`` has
    them; other public attributes (``direction``, ``folder``, ``spec``, ...)
    are the source's.

    Raises:
        DataError: ``count`` outside ``[1, len(source)]``.
    """

    def __init__(self, source, count: int, seed: int = 0):
        n = len(source)
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 1 <= count <= n:
            raise DataError(f"cannot take {count!r} examples of {source.describe()}: it holds {n}; "
                            f"choose a count from 1 to {n}")
        self.source, self.seed = source, seed
        picked = np.random.default_rng(seed).choice(n, size=int(count), replace=False)
        self.indices: tuple[int, ...] = tuple(sorted(int(i) for i in picked))
        names = source.names
        self.names = tuple(names[i] for i in self.indices) if isinstance(names, (tuple, list)) \
            else _Picked(names, self.indices)
        for attr in ("files", "files_a", "files_b", "sizes"):
            values = getattr(source, attr, None)
            if values is not None:
                setattr(self, attr, tuple(values[i] for i in self.indices))

    def __len__(self) -> int:
        return len(self.indices)

    def load(self, index: tf.Tensor) -> dict[str, tf.Tensor]:
        """``source.load`` of the ``index``-th kept example (graph- and tf.data-safe)."""
        t = self.__dict__.get("_indices_t")
        if t is None:
            with tf.init_scope():  # one eager constant that every traced graph captures (see Source._constant)
                t = tf.constant(self.indices, dtype=tf.int64)
            self.__dict__["_indices_t"] = t
        return self.source.load(tf.gather(t, index))

    def describe(self) -> str:
        return f"{len(self)} of {self.source.describe()} (seed {self.seed})"

    def validate(self, indices: Sequence[int] | None = None) -> tuple[tuple[int, int], ...]:
        """Decode and check only the kept examples (``source.validate`` on them; default all, which sets :attr:`sizes`).

        Raises:
            AttributeError: the source cannot be validated (TFDS: checked by TFDS itself).
            DataError: as the source's ``validate``.
        """
        own = self.indices if indices is None else [self.indices[i] for i in indices]
        sizes = self.source.validate(own)
        if indices is None:
            self.sizes = sizes
        return sizes

    def __getattr__(self, name: str):
        # only called for attributes the subset does not have itself
        if name.startswith("_") or name in ("source", "indices", "seed"):
            raise AttributeError(name)
        value = getattr(self.source, name)  # AttributeError when the source lacks it too
        if name in ("read", "read_pair"):
            return lambda index: value(self.indices[index])
        return value


# --------------------------------------------------------------------------- entry points


class PluggedLayout(typing.NamedTuple):
    """A layout defined in a module of its own that builds on this one (`register_layout`)."""

    detect: Callable[[Path], bool]  # is this folder (a root or a split address) of the layout?
    open_split: Callable  # (folder, layout, direction, validate, x_kind, y_kind, num_classes, instances) -> source
    find_splits: Callable[[Path], "dict[str, Path] | None"]  # a root's splits, or None when it is not one


_PLUGGED: dict[str, PluggedLayout] = {}


def register_layout(name: str, layout: PluggedLayout) -> None:
    """Lets `open_source` and `find_splits` open layout `name` (listed in `LAYOUTS`), defined in another module.

    That module builds on this one (it subclasses `TwoFolders`), so this one cannot import it: it registers
    itself when imported, and `tfi2i.data` imports it (``tfi2i.data.celebamask``).
    """
    if name not in LAYOUTS:
        raise ValueError(f"register_layout: {name!r} is not in LAYOUTS")
    _PLUGGED[name] = layout


def _plugged_layouts() -> dict[str, PluggedLayout]:
    return dict(_PLUGGED)


def _two_folder_dirs(folder: Path) -> tuple[Path, Path] | None:
    for a, b in _TWO_FOLDER_NAMES:
        if (folder / a).is_dir() and (folder / b).is_dir():
            return folder / a, folder / b
    return None


def open_source(path: PathLike, direction: str = "AtoB", layout: str = "auto",
                validate: bool = True, *, x_kind: str = "rgb", y_kind: str = "rgb", num_classes: int = 0,
                instances: str = "") -> PairedSource:
    """Open one split of paired data, detecting its layout.

    Args:
        path: a folder. ``layout="auto"``: a split folder of the pix2pixhd
            layout (``root/<split>_label``, or its ``_img`` / ``_inst``
            sibling) is a :class:`Pix2PixHDFolders` split; one of the
            cityscapes layout (``root/gtFine/<split>`` or
            ``root/leftImg8bit/<split>``) a :class:`CityscapesFolders` split;
            a folder with sub-folders ``A/`` and ``B/`` (or ``a/`` and ``b/``)
            a :class:`TwoFolders` source; otherwise a folder of side-by-side
            images (:class:`SideBySide`). ``ROOT/train`` (``val``, ``test``)
            of a CelebAMask-HQ root (``CelebA-HQ-img/`` and
            ``CelebAMask-HQ-mask-anno/`` or ``CelebAMask-HQ-mask/``; the
            folder need not exist) is a
            :class:`~tfi2i.data.celebamask.CelebAMaskHQ` split. The root of a
            pix2pixhd, cityscapes or CelebAMask-HQ data set is refused with a
            hint (open one of its splits, or use :func:`find_splits`).
        direction: ``"AtoB"`` (x = A, y = B) or ``"BtoA"``; the pix2pixhd,
            cityscapes and celebamask layouts need ``"AtoB"`` (A = label maps,
            B = photos).
        layout: one of :data:`LAYOUTS`: ``"auto"``, ``"side_by_side"``,
            ``"two_folders"``, ``"pix2pixhd"``, ``"cityscapes"`` or
            ``"celebamask"``.
        validate: decode and check every file at construction.
        x_kind, y_kind, num_classes: the kind of each side (``rgb`` | ``labels``)
            and the class count of a labels side (see :class:`TwoFolders`);
            pix2pixhd / cityscapes / celebamask: ``labels`` and ``rgb``
            (celebamask: ``num_classes`` >= 19).
        instances: two_folders: name of a sub-folder of instance-id maps next
            to ``A/`` and ``B/`` (e.g. ``"inst"``), matched by stem;
            pix2pixhd / cityscapes: any non-empty value reads the layout's
            instance maps (``<split>_inst/``, ``*_gtFine_instanceIds.png``);
            empty: none. celebamask: must be empty.

    Returns:
        The source.

    Raises:
        DataError: invalid ``direction`` or ``layout`` (listing valid values),
            missing folder, labels sides or instances with the side-by-side
            layout, a path that is not a split of the layout asked for, kinds
            or direction the pix2pixhd / cityscapes layouts cannot give, or any
            error of the chosen source class.
    """
    _check_direction(direction)
    _check_kinds(x_kind, y_kind, num_classes)
    if layout not in LAYOUTS:
        raise DataError(f"layout {layout!r} is not valid; use one of {', '.join(LAYOUTS)}")
    folder = Path(path)
    for name, plugged in _plugged_layouts().items():
        if layout == name or (layout == "auto" and plugged.detect(folder)):
            return plugged.open_split(folder, layout, direction, validate, x_kind, y_kind, num_classes, instances)
    if not folder.exists():
        raise DataError(f"{folder}: folder not found")
    if not folder.is_dir():
        raise DataError(f"{folder}: is a file, expected a folder of paired images")
    split = _label_photo_split(folder)
    if layout in ("pix2pixhd", "cityscapes") or (layout == "auto" and split is not None):
        return _open_label_photo(folder, split, layout, direction, validate, x_kind, y_kind, num_classes,
                                 instances)
    if layout == "auto" and (_pix2pixhd_splits(folder) or _cityscapes_root(folder)):
        raise DataError(_root_hint(folder))
    two = _two_folder_dirs(folder)
    if layout == "two_folders" or (layout == "auto" and two is not None):
        if two is None:
            raise DataError(
                f"{folder}: layout 'two_folders' needs sub-folders A/ and B/ (or a/ and b/) here"
            )
        inst = None
        if instances:
            inst = two[0].parent / instances
            if not inst.is_dir():
                raise DataError(f"{inst}: instance-map folder not found (data.instances={instances!r} names a "
                                f"sub-folder next to {two[0].name}/ and {two[1].name}/); create it or set data.instances=''")
        return TwoFolders(two[0], two[1], direction=direction, validate=validate, x_kind=x_kind, y_kind=y_kind,
                          num_classes=num_classes, folder_inst=inst)
    if "labels" in (x_kind, y_kind) or instances:
        raise DataError(f"{folder}: label maps (data.x_kind / data.y_kind = labels) and instance maps "
                        "(data.instances) need the two-folder layout (A/, B/[, inst/] of 1-channel id PNGs "
                        "matched by file stem); a side-by-side file holds two RGB images")
    return SideBySide(folder, direction=direction, validate=validate)


def _root_hint(folder: Path) -> str:
    """The message for the root of a pix2pixhd / cityscapes data set given where one split is expected."""
    if _cityscapes_root(folder):
        splits = [s for s in SPLITS if (folder / "gtFine" / s).is_dir()]
        example = folder / "gtFine" / (splits[0] if splits else "train")
        kind = "the official Cityscapes layout (leftImg8bit/, gtFine/)"
    else:
        splits = _pix2pixhd_splits(folder)
        example = folder / f"{splits[0]}_label"
        kind = "the pix2pixHD layout (<split>_label/, <split>_img/, <split>_inst/)"
    return (f"{folder}: is the root of a data set in {kind} with splits {', '.join(splits) or 'none'}; open one "
            f"split (e.g. {example}) or use find_splits() (as data.path, the root is right: open_data does that)")


def _open_label_photo(folder: Path, split: tuple[str, Path, str] | None, layout: str, direction: str,
                      validate: bool, x_kind: str, y_kind: str, num_classes: int, instances: str) -> PairedSource:
    """Open a split of the pix2pixhd / cityscapes layout (``split`` as :func:`_label_photo_split` found it)."""
    if split is None or (layout != "auto" and split[0] != layout):
        if layout == "pix2pixhd":
            want = "a <split>_label folder (train_label, val_label or test_label) of a root holding <split>_label/, " \
                   "<split>_img/[, <split>_inst/]"
        else:
            want = "a gtFine/<split> (or leftImg8bit/<split>) folder of a root holding leftImg8bit/ and gtFine/"
        hint = f"; {_root_hint(folder)}" if (_pix2pixhd_splits(folder) or _cityscapes_root(folder)) else ""
        raise DataError(f"{folder}: layout {layout!r} needs {want}, split train, val or test{hint}")
    found, root, name = split
    _check_label_photo(found, direction, x_kind, y_kind, num_classes)
    cls = Pix2PixHDFolders if found == "pix2pixhd" else CityscapesFolders
    return cls(root, name, num_classes=num_classes, instances=bool(instances), validate=validate)


def find_splits(root: PathLike) -> dict[str, Path]:
    """Find the split folders of a data set (pix2pix release, pix2pixhd, cityscapes or celebamask layout).

    Args:
        root: a folder holding ``train/``, ``val/`` and/or ``test/``; or a folder
            that itself holds the images (or ``A/`` and ``B/``); or the root of
            the pix2pixhd layout (``<split>_label/``, ...), of the official
            cityscapes layout (``leftImg8bit/``, ``gtFine/``) or of
            CelebAMask-HQ (``CelebA-HQ-img/``, ``CelebAMask-HQ-mask-anno/`` or
            ``CelebAMask-HQ-mask/``).

    Returns:
        ``{"train": root/train, "val": root/val, "test": root/test}`` for the
        split folders that exist (in that order), or ``{"train": root}`` when
        ``root`` itself holds the data. pix2pixhd: ``root/<split>_label`` for
        every split with label maps; cityscapes: ``root/gtFine/<split>`` for
        every split in ``gtFine/``; celebamask: ``root/<split>`` (not a
        folder: the split's address) for every split that holds at least
        one label map by the mapping and partition files. A split may lack
        its photos (e.g. pix2pixHD's ``test_label/``): :func:`missing_photos`
        says so, and opening it raises a :class:`DataError` naming the
        missing folder.

    Raises:
        DataError: ``root`` missing, or neither split folders nor data in it.
    """
    r = Path(root)
    if not r.exists():
        raise DataError(f"{r}: folder not found")
    if not r.is_dir():
        raise DataError(f"{r}: is a file, expected a data set folder")
    for plugged in _plugged_layouts().values():
        splits = plugged.find_splits(r)
        if splits is not None:
            return splits
    if _cityscapes_root(r):
        splits = {s: r / "gtFine" / s for s in SPLITS if (r / "gtFine" / s).is_dir()}
        if not splits:
            raise DataError(f"{r / 'gtFine'}: no split folders ({', '.join(SPLITS)}) in this Cityscapes label folder")
        return splits
    if _pix2pixhd_splits(r):
        return {s: r / f"{s}_label" for s in _pix2pixhd_splits(r)}
    splits = {s: r / s for s in SPLITS if (r / s).is_dir()}
    if splits:
        return splits
    if _two_folder_dirs(r) is not None or list_images(r):
        return {"train": r}
    raise DataError(
        f"{r}: found neither split folders ({', '.join(SPLITS)}) nor images "
        f"({', '.join(IMAGE_EXTENSIONS)}) nor A/ and B/ sub-folders"
    )
