"""FCN score: semantic-segmentation accuracy of photos, the pix2pix protocol on Cityscapes.

pix2pix (Isola et al. 2017, "FCN-score") and PAN (Table 1) judge
labels -> photo models by running an off-the-shelf FCN-8s segmenter, trained on
real Cityscapes photos, over the *generated* photos and comparing its per-pixel
predictions with the input label maps: the more realistic and faithful the
photo, the closer the scores come to those of the real photos (the ceiling;
pix2pix reports 0.80 / 0.26 / 0.21 for ground truth with its caffe FCN-8s).

This module holds the protocol; :mod:`tfi2i.segmenter` trains the segmenter
(the pix2pix caffe model cannot be used from TensorFlow).

Scores (:class:`ConfusionMatrix`), exactly those of pix2pix's
``scripts/eval_cityscapes/evaluate.py`` + ``util.py``:

* one confusion matrix ``hist[gt, pred]`` (rows: ground truth, columns:
  prediction) summed over **all pixels of all images** (not averaged per image);
  ground-truth pixels outside ``0..num_classes-1`` (trainId 255 = ignore, and
  pix2pix's ``-1``) are left out (``fast_hist``: ``k = (a >= 0) & (a < n)``);
* ``per_pixel_acc = trace / total``;
* ``per_class_acc = mean_c hist[c, c] / row_sum[c]``;
* ``class_iou = mean_c hist[c, c] / (row_sum[c] + col_sum[c] - hist[c, c])``.

Classes absent from the ground truth (and, for IoU, also from the
predictions): pix2pix's ``get_scores`` divides by ``denominator + 1e-12`` and
then takes ``np.nanmean``; since the ``1e-12`` makes every denominator
positive, no NaN ever reaches ``nanmean`` and **an absent class scores 0 and
still counts in the mean over all 19 classes** (it is *not* skipped). We
reproduce that: a zero denominator gives 0 (what ``0 / 1e-12`` gives), and
every mean is over all ``num_classes`` classes. (We divide exactly where the
denominator is positive instead of adding 1e-12, so a perfect prediction scores
exactly 1.0; pix2pix's values differ from ours by at most ~1e-12 relative.)
:meth:`ConfusionMatrix.scores` with ``skip_absent=True`` gives the other common
convention (means over classes present in the ground truth only) for
comparison; it is not the pix2pix protocol.

Segmenter convention (:class:`Segmenter`, :func:`load_segmenter`):

* Input to the model: float32 ``[B, H, W, 3]``, **RGB, values in [0, 255]**
  (``uint8 / 255 * input_scale + input_offset``; defaults ``input_scale=255``,
  ``input_offset=0``). Models that want [0, 1] take ``input_scale=1``, [-1, 1]
  ``input_scale=2, input_offset=-1``. Any other normalisation (mean
  subtraction, BGR, ...) belongs inside the model; the FCN-8s of
  :mod:`tfi2i.segmenter` carries its VGG16 preprocessing as its first layer, so
  it takes [0, 255] RGB.
* Output of the model: per-pixel class scores ``[B, h, w, num_classes]``
  (logits or probabilities: only the argmax is used), channels-last, channel
  ``c`` = trainId ``c``.
* Images are padded (bottom / right, reflection) to a multiple of ``multiple``
  (32 by default: FCN-8s's pool5 stride) and the scores cropped back. Scores at
  a different size than the (padded) input are resized bilinearly first, and
  scores are resized bilinearly to the label map's size when that differs from
  the photo's, before the argmax. (pix2pix instead upsamples the *photo* to the
  label size with ``scipy.misc.imresize`` before the FCN; with the 256x256
  release photos and labels have the same size and both agree.)
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from tfi2i.metrics.cityscapes import CLASS_NAMES, IGNORE, NUM_CLASSES, colors_to_train_ids

__all__ = [
    "SCORE_KEYS",
    "CLASS_NAMES",
    "SegmenterError",
    "ConfusionMatrix",
    "Segmenter",
    "load_segmenter",
    "fcn_confusion",
    "fcn_score",
    "fcn_score_source",
    "fcn_confusion_source",
    "per_class_report",
]

#: The three FCN scores, in pix2pix's / PAN's table order.
SCORE_KEYS = ("per_pixel_acc", "per_class_acc", "class_iou")


class SegmenterError(ValueError):
    """A segmentation model cannot be loaded or used as given (the message says why and what to do)."""


# --------------------------------------------------------------------------- confusion matrix


class ConfusionMatrix:
    """Confusion matrix ``hist[gt, pred]`` accumulated over images, and pix2pix's FCN scores.

    Args:
        num_classes: number of evaluation classes (19 trainIds for Cityscapes).
        ignore: the ignore label (255). Every ground-truth value outside
            ``0..num_classes-1`` is ignored as well, as in pix2pix's ``fast_hist``.

    Attributes:
        matrix: int64 ``[num_classes, num_classes]``; rows are ground truth,
            columns are predictions.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, ignore: int = IGNORE):
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore = int(ignore)
        self.matrix = np.zeros((self.num_classes, self.num_classes), np.int64)

    def reset(self) -> None:
        self.matrix[...] = 0

    def update(self, pred_train_ids, gt_train_ids) -> "ConfusionMatrix":
        """Add one image (or a batch) of predictions and ground truth.

        Args:
            pred_train_ids: integer array, any shape, values in ``0..num_classes-1``.
            gt_train_ids: integer array with as many elements as ``pred_train_ids``
                (shapes may differ, e.g. ``[1, H, W]`` vs ``[H, W]``); pixels
                equal to ``ignore`` or outside ``0..num_classes-1`` are skipped.

        Returns:
            ``self``.

        Raises:
            ValueError: different element counts, or a prediction out of range
                on a counted pixel (pix2pix silently drops such an image; we stop).
        """
        pred = np.asarray(pred_train_ids).reshape(-1)
        gt = np.asarray(gt_train_ids).reshape(-1)
        if pred.size != gt.size:
            raise ValueError(
                f"prediction has {pred.size} pixels but ground truth has {gt.size}; "
                "they must describe the same pixels"
            )
        if not (np.issubdtype(pred.dtype, np.integer) and np.issubdtype(gt.dtype, np.integer)):
            raise ValueError(f"class ids must be integers, got {pred.dtype} and {gt.dtype}")
        n = self.num_classes
        gt = gt.astype(np.int64)
        keep = (gt >= 0) & (gt < n) & (gt != self.ignore)
        gt, pred = gt[keep], pred[keep].astype(np.int64)
        if pred.size and (pred.min() < 0 or pred.max() >= n):
            raise ValueError(f"predicted class ids must be in 0..{n - 1}, got {pred.min()}..{pred.max()}")
        self.matrix += np.bincount(n * gt + pred, minlength=n * n).reshape(n, n)
        return self

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Add another matrix's counts (e.g. from another worker)."""
        if other.num_classes != self.num_classes:
            raise ValueError("cannot merge confusion matrices of different sizes")
        self.matrix += other.matrix
        return self

    @property
    def total(self) -> int:
        """Number of counted (non-ignored) pixels."""
        return int(self.matrix.sum())

    def per_class(self) -> dict[str, np.ndarray]:
        """Per-class accuracy and IoU (float64 ``[num_classes]``; 0 where the denominator is 0, as in pix2pix)."""
        h = self.matrix.astype(np.float64)
        diag, rows, cols = np.diag(h), h.sum(1), h.sum(0)
        union = rows + cols - diag
        acc = np.divide(diag, rows, out=np.zeros_like(diag), where=rows > 0)
        iou = np.divide(diag, union, out=np.zeros_like(diag), where=union > 0)
        return {"acc": acc, "iou": iou, "gt_pixels": rows.astype(np.int64), "pred_pixels": cols.astype(np.int64)}

    def scores(self, skip_absent: bool = False) -> dict[str, float]:
        """The FCN scores, as pix2pix's ``get_scores`` (see the module docstring).

        Args:
            skip_absent: ``False`` (pix2pix): means over all classes, absent
                classes counting 0. ``True``: means over the classes present in
                the ground truth only (not pix2pix's protocol).

        Returns:
            ``{"per_pixel_acc": float, "per_class_acc": float, "class_iou": float}``
            (all 0.0 for an empty matrix, as pix2pix's ``0 / 1e-12``).
        """
        h = self.matrix
        total = h.sum()
        per = self.per_class()
        acc, iou = per["acc"], per["iou"]
        if skip_absent:
            present = per["gt_pixels"] > 0
            acc, iou = acc[present], iou[present]
        return {
            "per_pixel_acc": float(np.trace(h) / total) if total else 0.0,
            "per_class_acc": float(acc.mean()) if acc.size else 0.0,
            "class_iou": float(iou.mean()) if iou.size else 0.0,
        }

    def __repr__(self) -> str:
        s = self.scores()
        return (f"ConfusionMatrix({self.num_classes} classes, {self.total} pixels, "
                + ", ".join(f"{k}={v:.4f}" for k, v in s.items()) + ")")


# --------------------------------------------------------------------------- segmenter


def _as_model_fn(model) -> Callable:
    try:
        import keras

        if isinstance(model, keras.Model):
            return lambda x: model(x, training=False)
    except ImportError:  # pragma: no cover
        pass
    return model


def _pad_amounts(size: int, multiple: int) -> int:
    return (-size) % multiple


class Segmenter:
    """A segmentation model as a callable: RGB photos -> per-pixel trainIds.

    Args:
        model: a ``keras.Model`` (called with ``training=False``) or any callable
            taking float32 ``[B, H, W, 3]`` (see the module docstring for the
            value range) and returning class scores ``[B, h, w, num_classes]``
            (NumPy or tensor; a dict with a single entry is unwrapped).
        num_classes: number of classes the model scores (19 trainIds).
        input_scale, input_offset: the model gets ``uint8 / 255 * input_scale
            + input_offset`` (default: [0, 255]).
        multiple: photos are reflection-padded at the bottom / right to a
            multiple of this before the model, the scores cropped back (1: no padding).
        input_size: ``(H, W)``: resize every photo (bilinear) to this size before
            the model (e.g. the size the segmenter was trained at); the scores
            are resized back. ``None``: run at the photo's own size.
        source: a description for messages.
    """

    def __init__(self, model, *, num_classes: int = NUM_CLASSES, input_scale: float = 255.0,
                 input_offset: float = 0.0, multiple: int = 32, input_size=None, source: str = ""):
        if not callable(model):
            raise SegmenterError(f"the segmentation model must be callable, got {type(model).__name__}")
        self._fn = _as_model_fn(model)
        self.num_classes = int(num_classes)
        self.input_scale = float(input_scale)
        self.input_offset = float(input_offset)
        self.multiple = max(1, int(multiple))
        self.input_size = None if input_size is None else (int(input_size[0]), int(input_size[1]))
        self.source = source or type(model).__name__

    def __repr__(self) -> str:
        return (f"Segmenter({self.source!r}, classes={self.num_classes}, input=uint8/255*"
                f"{self.input_scale:g}{self.input_offset:+g}, multiple={self.multiple}, input_size={self.input_size})")

    def _prepare(self, photos) -> np.ndarray:
        x = np.asarray(photos)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[-1] != 3:
            raise SegmenterError(f"photos must be RGB [H, W, 3] or [B, H, W, 3], got shape {x.shape}")
        return x.astype(np.float32) * np.float32(self.input_scale / 255.0) + np.float32(self.input_offset)

    def logits(self, photos, out_size=None) -> np.ndarray:
        """Class scores at the photo's size (or ``out_size``).

        Args:
            photos: uint8 RGB ``[H, W, 3]`` or ``[B, H, W, 3]`` (floats are taken
                to be on the same 0..255 scale).
            out_size: ``(H, W)`` of the returned scores; default: the photos' size.

        Returns:
            float32 ``[B, H, W, num_classes]``.
        """
        import tensorflow as tf

        x = self._prepare(photos)
        h, w = x.shape[1:3]
        out_size = (h, w) if out_size is None else (int(out_size[0]), int(out_size[1]))
        if self.input_size is not None and self.input_size != (h, w):
            x = tf.image.resize(x, self.input_size, method="bilinear").numpy()
        ih, iw = x.shape[1:3]
        ph, pw = _pad_amounts(ih, self.multiple), _pad_amounts(iw, self.multiple)
        if ph or pw:
            mode = "reflect" if min(ih, iw) > 1 else "edge"
            x = np.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode=mode)
        y = self._fn(tf.convert_to_tensor(x))
        if isinstance(y, dict):
            if len(y) != 1:
                raise SegmenterError(f"{self.source}: the model returns several outputs ({sorted(y)}); "
                                     "expected one tensor of class scores")
            y = next(iter(y.values()))
        if isinstance(y, (list, tuple)):
            if len(y) != 1:
                raise SegmenterError(f"{self.source}: the model returns {len(y)} outputs; expected one")
            y = y[0]
        y = tf.convert_to_tensor(y)
        if y.shape.rank != 4 or y.shape[-1] != self.num_classes:
            raise SegmenterError(
                f"{self.source}: the model returned shape {tuple(y.shape)}; expected channels-last class "
                f"scores [B, H, W, {self.num_classes}] (channel c = trainId c)"
            )
        y = tf.cast(y, tf.float32)
        padded = (ih + ph, iw + pw)
        if tuple(y.shape[1:3]) != padded:
            y = tf.image.resize(y, padded, method="bilinear")
        y = y[:, :ih, :iw]
        if (ih, iw) != out_size:
            y = tf.image.resize(y, out_size, method="bilinear")
        return y.numpy()

    def __call__(self, photos, label_size=None) -> np.ndarray:
        """Per-pixel argmax trainIds (uint8): ``[H, W]`` for one photo, ``[B, H, W]`` for a batch.

        Args:
            photos: uint8 RGB ``[H, W, 3]`` or ``[B, H, W, 3]``.
            label_size: ``(H, W)`` of the label map the prediction is compared
                with (class scores are resized bilinearly to it); default: the photo's size.
        """
        single = np.ndim(photos) == 3
        ids = np.argmax(self.logits(photos, label_size), axis=-1).astype(np.uint8)
        return ids[0] if single else ids


def _saved_model_fn(path: Path) -> Callable:
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as e:  # noqa: BLE001 - any loader failure is a user error here
        raise SegmenterError(f"{path}: cannot load the SavedModel ({type(e).__name__}: {e})") from e
    sig = getattr(loaded, "signatures", {}).get("serving_default")
    if sig is not None:
        inputs = sig.structured_input_signature[1]
        if len(inputs) != 1:
            raise SegmenterError(f"{path}: signature serving_default takes {len(inputs)} inputs "
                                 f"({sorted(inputs)}); expected one image batch")
        name = next(iter(inputs))
        dtype = inputs[name].dtype
        return lambda x: sig(**{name: tf.cast(x, dtype)})
    if callable(loaded):
        return lambda x: loaded(x)
    raise SegmenterError(f"{path}: the SavedModel has no serving_default signature and is not callable")


def load_segmenter(path, **kwargs) -> Segmenter:
    """Load a segmentation model from a ``.keras`` file, a legacy ``.h5`` file or a SavedModel folder.

    Args:
        path: a ``.keras`` / ``.h5`` file (``keras.models.load_model``, not
            compiled) or a folder with ``saved_model.pb`` (its
            ``serving_default`` signature, e.g. from ``model.export(dir)``, or
            the loaded object's ``__call__``).
        **kwargs: :class:`Segmenter` options (``input_scale``, ``input_offset``,
            ``multiple``, ``input_size``, ``num_classes``).

    Returns:
        The :class:`Segmenter`.

    Raises:
        SegmenterError: missing path, unknown format or unloadable model.
    """
    p = Path(path)
    if not p.exists():
        raise SegmenterError(f"{p}: segmentation model not found (give a .keras file or a SavedModel folder; "
                             "train one with `tfi2i segmenter train`)")
    if p.is_dir():
        if not (p / "saved_model.pb").is_file():
            raise SegmenterError(f"{p}: folder without saved_model.pb; expected a SavedModel folder or a .keras file")
        return Segmenter(_saved_model_fn(p), source=str(p), **kwargs)
    if p.suffix.lower() not in (".keras", ".h5", ".hdf5"):
        raise SegmenterError(f"{p}: unknown model format {p.suffix!r}; expected a .keras (or .h5) file "
                             "or a SavedModel folder")
    import keras

    try:
        model = keras.models.load_model(os.fspath(p), compile=False)
    except Exception as e:  # noqa: BLE001
        raise SegmenterError(f"{p}: cannot load the Keras model ({type(e).__name__}: {e})") from e
    return Segmenter(model, source=str(p), **kwargs)


# --------------------------------------------------------------------------- scoring


def _to_train_ids(label) -> np.ndarray:
    a = np.asarray(label)
    if a.ndim == 3 and a.shape[-1] == 3:
        return colors_to_train_ids(a)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise SegmenterError(f"label maps must be trainIds [H, W] or colour maps [H, W, 3], got shape {a.shape}")
    return a


_END = object()


def _pairs(photos: Iterable, labels: Iterable):
    for i, (x, y) in enumerate(itertools.zip_longest(photos, labels, fillvalue=_END)):
        if x is _END or y is _END:
            raise SegmenterError(f"photos and labels differ in number: one ran out after {i} images")
        yield x, y


def _accumulate(segmenter, pairs: Iterable, *, batch_size: int = 4, matrix: ConfusionMatrix | None = None,
                progress: bool = False, total: int | None = None) -> ConfusionMatrix:
    cm = matrix if matrix is not None else ConfusionMatrix(getattr(segmenter, "num_classes", NUM_CLASSES))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="FCN score", unit="img", leave=False)
    batch_x: list[np.ndarray] = []
    batch_y: list[np.ndarray] = []

    def flush():
        if not batch_x:
            return
        pred = np.asarray(segmenter(np.stack(batch_x), batch_y[0].shape))
        for p, g in zip(pred, batch_y):
            cm.update(p, g)
        if bar is not None:
            bar.update(len(batch_x))
        batch_x.clear()
        batch_y.clear()

    try:
        for i, (x, y) in enumerate(pairs):
            x = np.asarray(x)
            if x.ndim != 3 or x.shape[-1] != 3:
                raise SegmenterError(f"photo {i}: expected RGB [H, W, 3], got shape {x.shape}")
            y = _to_train_ids(y)
            if batch_x and (x.shape != batch_x[0].shape or y.shape != batch_y[0].shape):
                flush()
            batch_x.append(x)
            batch_y.append(y)
            if len(batch_x) >= max(1, batch_size):
                flush()
        flush()
    finally:
        if bar is not None:
            bar.close()
    return cm


def fcn_confusion(segmenter: Segmenter, photos: Iterable, labels: Iterable, *, batch_size: int = 4,
                  matrix: ConfusionMatrix | None = None, progress: bool = False,
                  total: int | None = None) -> ConfusionMatrix:
    """Run ``segmenter`` over photos and accumulate the confusion matrix against their labels.

    Args:
        segmenter: a :class:`Segmenter` (or any callable ``(photos [B, H, W, 3],
            label_size) -> trainIds [B, H, W]``).
        photos: iterable of uint8 RGB photos ``[H, W, 3]`` (real or generated).
        labels: iterable, in the same order, of trainId maps ``[H, W]`` (uint8,
            255 = ignore) or Cityscapes colour maps ``[H, W, 3]`` (decoded with
            :func:`~tfi2i.metrics.cityscapes.colors_to_train_ids`). A label may
            be larger or smaller than its photo (the scores are resized to it).
        batch_size: consecutive photos of equal size (and equal label size)
            are segmented together, up to this many.
        matrix: accumulate into this matrix (default: a new one with the
            segmenter's ``num_classes``).
        progress: show a tqdm progress bar.
        total: number of images, for the progress bar.

    Returns:
        The :class:`ConfusionMatrix`.

    Raises:
        SegmenterError: the two iterables have different lengths, or bad shapes.
    """
    return _accumulate(segmenter, _pairs(photos, labels), batch_size=batch_size, matrix=matrix,
                       progress=progress, total=total)


def fcn_score(segmenter: Segmenter, photos_iter: Iterable, labels_iter: Iterable, **kwargs) -> dict[str, float]:
    """FCN scores of ``segmenter`` on photos against their label maps (pix2pix protocol).

    Args:
        segmenter, photos_iter, labels_iter, **kwargs: as :func:`fcn_confusion`.

    Returns:
        ``{"per_pixel_acc", "per_class_acc", "class_iou"}`` (floats in [0, 1]),
        over all pixels of all images (see :class:`ConfusionMatrix`).
    """
    return fcn_confusion(segmenter, photos_iter, labels_iter, **kwargs).scores()


def fcn_confusion_source(segmenter: Segmenter, source, **kwargs) -> ConfusionMatrix:
    """Confusion matrix on a paired source whose ``x`` is the photo and ``y`` the colour label map.

    For the pix2pix cityscapes layout (photo left = A, labels right = B) open it
    with ``open_source(path, direction="AtoB")``. For generated photos, a
    two-folder source ``A/`` = generated photos, ``B/`` = their input label maps
    (matched by file stem) works the same way.

    Args:
        segmenter: the :class:`Segmenter`.
        source: a :class:`~tfi2i.data.sources.PairedSource`.
        **kwargs: as :func:`fcn_confusion` (``total`` defaults to ``len(source)``).
    """
    kwargs.setdefault("total", len(source))
    pairs = ((p["x"], p["y"]) for p in (source.read_pair(i) for i in range(len(source))))
    return _accumulate(segmenter, pairs, **kwargs)


def fcn_score_source(segmenter: Segmenter, source, **kwargs) -> dict[str, float]:
    """FCN scores on a paired source (photo = ``x``, colour label map = ``y``); see :func:`fcn_confusion_source`."""
    return fcn_confusion_source(segmenter, source, **kwargs).scores()


def per_class_report(matrix: ConfusionMatrix, names=CLASS_NAMES) -> dict[str, dict[str, float]]:
    """``{class name: {"acc", "iou", "gt_pixels"}}`` from a confusion matrix (pix2pix's per-class lines)."""
    per = matrix.per_class()
    return {
        str(names[c]) if c < len(names) else str(c): {
            "acc": float(per["acc"][c]), "iou": float(per["iou"][c]), "gt_pixels": int(per["gt_pixels"][c]),
        }
        for c in range(matrix.num_classes)
    }
