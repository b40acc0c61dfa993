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

Other layouts (Cityscapes full-resolution labelIds folders, CelebAMask-HQ,
...) are added as further subclasses implementing ``__len__``,
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
LAYOUTS = ("auto", "side_by_side", "two_folders")
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

        sizes = tuple(_decode_all(interleaved, check, group, "two-folder pairs", self.folder_a.parent,
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
        path: a folder. ``layout="auto"``: if it has sub-folders ``A/`` and
            ``B/`` (or ``a/`` and ``b/``) it is a :class:`TwoFolders` source,
            otherwise a folder of side-by-side images (:class:`SideBySide`).
        direction: ``"AtoB"`` (x = A, y = B) or ``"BtoA"``.
        layout: ``"auto"``, ``"side_by_side"`` or ``"two_folders"``.
        validate: decode and check every file at construction.
        x_kind, y_kind, num_classes: the kind of each side (``rgb`` | ``labels``)
            and the class count of a labels side (see :class:`TwoFolders`).
        instances: name of a sub-folder of instance-id maps next to ``A/`` and
            ``B/`` (e.g. ``"inst"``), matched by stem; empty: none.

    Returns:
        The source.

    Raises:
        DataError: invalid ``direction`` or ``layout`` (listing valid values),
            missing folder, labels sides or instances with the side-by-side
            layout, or any error of the chosen source class.
    """
    _check_direction(direction)
    _check_kinds(x_kind, y_kind, num_classes)
    if layout not in LAYOUTS:
        raise DataError(f"layout {layout!r} is not valid; use one of {', '.join(LAYOUTS)}")
    folder = Path(path)
    if not folder.exists():
        raise DataError(f"{folder}: folder not found")
    if not folder.is_dir():
        raise DataError(f"{folder}: is a file, expected a folder of paired images")
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


def find_splits(root: PathLike) -> dict[str, Path]:
    """Find the split folders of a data set in the pix2pix release layout.

    Args:
        root: a folder holding ``train/``, ``val/`` and/or ``test/``; or a folder
            that itself holds the images (or ``A/`` and ``B/``).

    Returns:
        ``{"train": root/train, "val": root/val, "test": root/test}`` for the
        split folders that exist (in that order), or ``{"train": root}`` when
        ``root`` itself holds the data.

    Raises:
        DataError: ``root`` missing, or neither split folders nor data in it.
    """
    r = Path(root)
    if not r.exists():
        raise DataError(f"{r}: folder not found")
    if not r.is_dir():
        raise DataError(f"{r}: is a file, expected a data set folder")
    splits = {s: r / s for s in SPLITS if (r / s).is_dir()}
    if splits:
        return splits
    if _two_folder_dirs(r) is not None or list_images(r):
        return {"train": r}
    raise DataError(
        f"{r}: found neither split folders ({', '.join(SPLITS)}) nor images "
        f"({', '.join(IMAGE_EXTENSIONS)}) nor A/ and B/ sub-folders"
    )
