"""TensorFlow Datasets builders as data sources, read by index (ArrayRecord random access).

``data.path`` (or ``data.eval_path``) ``tfds:NAME[/CONFIG][:VERSION][:SPLIT]``
names a TFDS builder instead of a folder:

* ``tfds:celeb_a``, ``tfds:celeb_a_hq/128:train``, ``tfds:celeb_a:train[:10000]``
  - single images (the ``image`` feature; for builders without one,
  ``image_left``, else their only image feature): :class:`TfdsImages`, for the
  derived tasks (``data.task=superres4x`` or ``inpainting``).
* ``tfds:cityscapes`` (config ``semantic_segmentation``; also
  ``semantic_segmentation_extra``) - pairs: :class:`TfdsCityscapes`, A =
  ``image_left`` (the photo), B = the colour label map made from
  ``segmentation_label`` (labelIds) with the official Cityscapes palette
  (:data:`tfi2i.metrics.cityscapes.LABEL_COLORS`). That is the convention of
  the pix2pix cityscapes release (photo A left, labels B right), so the same
  setting serves both: ``direction=BtoA`` is labels -> photo (x = colour label
  map, y = photo; the recipes' default), ``AtoB`` photo -> labels. With a
  derived task, ``tfds:cityscapes`` gives its photos as single images.

``SPLIT`` is any TFDS split expression (``train``, ``validation``,
``train[:90%]``); the training split defaults to ``train``. Evaluation uses
``data.eval_path`` when set, else the builder's ``validation`` split, else
``test``, else (with a warning) the training split. A version (``:2.1.0``) is
recognised by its three numbers.

Random access: the input pipeline addresses examples by index (stateless
shuffles of indices, which is what makes resume exact), so a TFDS data set is
read through ``builder.as_data_source(split)`` (ArrayRecord), and
:meth:`load` wraps the Python read in ``tf.numpy_function``. This is the one
place where tf.data calls Python: it holds the GIL while it reads and decodes
one example, and such a pipeline cannot be serialised (tf.data service).
Images are checked and converted like files (:func:`~tfi2i.data.images.as_rgb8`:
grey -> RGB, alpha dropped, 16-bit -> 8-bit, each logged once); examples are
not decoded up front (``data.validate`` does not apply: TFDS checked them when
it prepared the data set).

Preparation: random access needs the data set prepared in the ``array_record``
file format (``tfds.load``'s default is ``tfrecord``, which cannot be read by
index). When it is not prepared the error says how:
``python -m tfi2i.data.tfds_sources NAME [--data-dir D] [--manual-dir M]``
(:func:`prepare`; ``tfds build NAME --file_format=array_record`` does the same
where ``apache-beam`` is installed - the ``tfds`` command needs it). Builders
that need manually downloaded files (``cityscapes``: ``leftImg8bit_trainvaltest.zip``
and ``gtFine_trainvaltest.zip`` from cityscapes-dataset.com; ``celeb_a_hq``)
are prepared automatically on first use when ``data.tfds_manual_dir`` names
the folder that holds those files. ``data.tfds_data_dir`` is where prepared
data sets live (empty: TFDS' default, ``$TFDS_DATA_DIR`` or
``~/tensorflow_datasets``). Nothing is ever downloaded implicitly.

Tests use ``tfds.testing.mock_data``, which in tfds 4.9.10 mocks
``as_data_source`` too (random examples per index), plus a real, offline
``array_record`` preparation of ``cityscapes`` from tiny fake zips.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import PurePosixPath

import numpy as np
import tensorflow as tf

from tfi2i.data.images import DataError, as_rgb8
from tfi2i.data.sources import PairedSource, SingleSource, _check_direction

__all__ = [
    "PREFIX", "PAIRED_BUILDERS", "EVAL_SPLITS", "TfdsPath", "is_tfds_path", "parse_tfds_path",
    "TfdsImages", "TfdsCityscapes", "open_tfds", "eval_path", "prepare", "label_colors",
]

logger = logging.getLogger("tfi2i.data")

#: The prefix of a TFDS ``data.path``.
PREFIX = "tfds:"
#: Builders read as (x, y) pairs; every other builder gives single images.
PAIRED_BUILDERS = ("cityscapes",)
#: Evaluation splits tried in this order when ``data.eval_path`` is empty.
EVAL_SPLITS = ("validation", "test")
#: Image features used as the single image, in order of preference.
IMAGE_KEYS = ("image", "image_left")
#: Features naming an example (``image/filename``: its stem is used).
NAME_KEYS = ("image_id", "image/filename", "filename", "id")

_SPEC = re.compile(r"(?P<name>[^:\s]+?)(?P<version>:\d+\.\d+\.\d+)?(?::(?P<split>\S+))?")


# --------------------------------------------------------------------------- paths


@dataclasses.dataclass(frozen=True)
class TfdsPath:
    """A parsed ``tfds:`` path.

    Attributes:
        name: what ``tfds.builder`` takes: ``NAME[/CONFIG][:VERSION]``.
        split: the split expression, or ``None`` when the path gives none.
    """

    name: str
    split: str | None = None

    @property
    def builder_name(self) -> str:
        """The builder without config and version (``celeb_a_hq/128`` -> ``celeb_a_hq``)."""
        return self.name.split(":")[0].split("/")[0]

    def with_split(self, split: str) -> "TfdsPath":
        return dataclasses.replace(self, split=split)

    def __str__(self) -> str:
        return PREFIX + self.name + (f":{self.split}" if self.split else "")


def is_tfds_path(path) -> bool:
    """Whether ``path`` (a ``data.path`` string) names a TFDS builder (``tfds:...``)."""
    return isinstance(path, str) and path.startswith(PREFIX)


def parse_tfds_path(path: str) -> TfdsPath:
    """``"tfds:celeb_a_hq/128:train"`` -> ``TfdsPath("celeb_a_hq/128", "train")``.

    Raises:
        DataError: not of the form ``tfds:NAME[/CONFIG][:VERSION][:SPLIT]``.
    """
    rest = path[len(PREFIX):] if is_tfds_path(path) else ""
    m = _SPEC.fullmatch(rest)
    if not m:
        raise DataError(
            f"{path!r}: expected tfds:NAME[/CONFIG][:VERSION][:SPLIT], e.g. tfds:celeb_a, "
            "tfds:celeb_a_hq/128:train, tfds:cityscapes:validation"
        )
    return TfdsPath(m["name"] + (m["version"] or ""), m["split"])


# --------------------------------------------------------------------------- builders


def _tfds():
    import tensorflow_datasets as tfds  # imported on use: it adds ~1 s to start-up

    return tfds


def _builder(spec: TfdsPath, data_dir: str = ""):
    tfds = _tfds()
    try:
        return tfds.builder(spec.name, data_dir=data_dir or None)
    except tfds.core.registered.DatasetNotFoundError as e:
        first = str(e).strip().splitlines()[0]
        raise DataError(f"{spec}: no TensorFlow Datasets builder of that name ({first})") from None
    except ValueError as e:  # unknown config or version
        raise DataError(f"{spec}: {e}") from None


def _manual_hint(spec: TfdsPath, builder) -> str:
    if not builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
        return ""
    return (
        f"\n{spec.builder_name} needs manually downloaded files; put them in one folder and set "
        "data.tfds_manual_dir=DIR, and tfi2i prepares it on first use. TFDS says:\n"
        + builder.MANUAL_DOWNLOAD_INSTRUCTIONS.rstrip()
    )


def _prepare_hint(spec: TfdsPath, builder, data_dir: str) -> str:
    d = f" --data-dir {data_dir}" if data_dir else ""
    manual = " --manual-dir DIR" if builder.MANUAL_DOWNLOAD_INSTRUCTIONS else ""
    return (
        f"prepare it once in the array_record format (random access needs it):\n"
        f"    python -m tfi2i.data.tfds_sources {spec.name}{d}{manual}\n"
        f"(or `tfds build {spec.name} --file_format=array_record{d.replace('--data-dir', '--data_dir')}"
        f"{manual.replace('--manual-dir', '--manual_dir')}` where apache-beam is installed), "
        "or set data.tfds_data_dir to where it is prepared." + _manual_hint(spec, builder)
    )


def prepare(name: str, data_dir: str = "", manual_dir: str = ""):
    """Prepare a TFDS data set in the ``array_record`` format (once; TFDS shows progress bars).

    Args:
        name: ``NAME[/CONFIG][:VERSION]`` (a ``tfds:`` prefix is accepted).
        data_dir: where to write it (empty: TFDS' default).
        manual_dir: the folder with manually downloaded files (cityscapes zips).

    Returns:
        The prepared builder.

    Raises:
        DataError: the manual files are missing, or preparation failed (the
            cause is in the message).
    """
    tfds = _tfds()
    spec = parse_tfds_path(name if is_tfds_path(name) else PREFIX + name)
    builder = _builder(spec, data_dir)
    logger.info("preparing %s in %s (array_record%s); this runs once", spec, builder.data_dir,
                f", manual files from {manual_dir}" if manual_dir else "")
    config = tfds.download.DownloadConfig(manual_dir=manual_dir or None)
    try:
        builder.download_and_prepare(file_format="array_record", download_config=config)
    except Exception as e:  # noqa: BLE001 - report any preparation failure with the way out
        raise DataError(f"{spec}: preparing it failed: {type(e).__name__}: {e}" + _manual_hint(spec, builder)) from e
    return _builder(spec, data_dir)  # a fresh builder reads the written dataset_info (splits)


def _data_source(spec: TfdsPath, data_dir: str, manual_dir: str):
    """``(builder, data source of spec.split)``, preparing or explaining when it cannot be read."""
    builder = _builder(spec, data_dir)
    try:
        return builder, builder.as_data_source(split=spec.split)
    except Exception as e:  # noqa: BLE001 - diagnosed below
        err = e
    if not builder.is_prepared():
        if manual_dir and builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
            builder = prepare(spec.name, data_dir, manual_dir)
            return builder, builder.as_data_source(split=spec.split)
        raise DataError(f"{spec}: not prepared in {builder.data_dir}; " + _prepare_hint(spec, builder, data_dir)) from None
    splits = sorted(builder.info.splits)
    base = re.split(r"[\[+]", spec.split or "")[0]
    if base not in splits:
        raise DataError(f"{spec}: no split {base!r}; the data set has {', '.join(splits) or 'no splits'}") from None
    raise DataError(
        f"{spec}: cannot be read by index ({type(err).__name__}: {err}); it is prepared in "
        f"{builder.data_dir} as {builder.info.file_format}, random access needs array_record: "
        + _prepare_hint(spec, builder, data_dir).replace("prepare it once", "prepare it again in another data_dir")
    ) from None


class _Reader:
    """One split of a TFDS data set, read by index (shared by the source classes)."""

    def __init__(self, spec: TfdsPath, data_dir: str = "", manual_dir: str = ""):
        self.spec = spec
        self.builder, self.ds = _data_source(spec, data_dir, manual_dir)
        self.features = self.builder.info.features
        self.n = len(self.ds)
        if self.n == 0:
            raise DataError(f"{spec}: the split is empty")
        keys = set(self.features.keys())
        self.name_key = next((k for k in NAME_KEYS if k in keys), None)

    def image_features(self) -> list[str]:
        tfds = _tfds()
        return [k for k, f in self.features.items() if isinstance(f, tfds.features.Image)]

    def example(self, index: int) -> dict:
        if not 0 <= index < self.n:
            raise IndexError(f"{self.spec}: index {index} out of range 0..{self.n - 1}")
        return self.ds[index]

    def name(self, example: dict, index: int) -> str:
        if self.name_key is None:
            return f"{index:06d}"
        v = example[self.name_key]
        v = v.decode() if isinstance(v, bytes) else str(v)
        return PurePosixPath(v).stem if self.name_key.endswith("filename") else v

    def where(self, index: int) -> str:
        return f"{self.spec}[{index}]"


class _LazyNames(Sequence):
    """``names`` of a TFDS source: read from the example on access (not all up front)."""

    def __init__(self, reader: _Reader):
        self._reader = reader

    def __len__(self) -> int:
        return self._reader.n

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = int(index) + (len(self) if int(index) < 0 else 0)
        return self._reader.name(self._reader.example(i), i)


def _numpy_load(fetch, index, dtypes):
    """``tf.numpy_function`` over ``fetch(int) -> tuple of arrays`` with images ``[None, None, 3]``."""
    out = tf.numpy_function(lambda i: fetch(int(i)), [index], dtypes, stateful=False)
    for t in out[:-1]:
        t.set_shape([None, None, 3])
    out[-1].set_shape([])
    return out


# --------------------------------------------------------------------------- sources


class TfdsImages(SingleSource):
    """Single images of one split of a TFDS data set (e.g. ``tfds:celeb_a``), read by index.

    Args:
        path: ``tfds:NAME[/CONFIG][:VERSION][:SPLIT]``.
        data_dir: where prepared data sets live (empty: TFDS' default).
        manual_dir: manually downloaded files; prepares the data set when needed.
        image_key: the image feature (empty: ``image``, else ``image_left``,
            else the only image feature).
        split: the split when ``path`` gives none.

    Raises:
        DataError: unknown builder, not prepared (saying how), no such split,
            no usable image feature.
    """

    def __init__(self, path: str, data_dir: str = "", manual_dir: str = "", image_key: str = "",
                 split: str = "train"):
        spec = parse_tfds_path(path)
        self._reader = _Reader(spec if spec.split else spec.with_split(split), data_dir, manual_dir)
        self.spec = self._reader.spec
        images = self._reader.image_features()
        if image_key:
            if image_key not in images:
                raise DataError(f"{self.spec}: no image feature {image_key!r}; image features: {images}")
            self.image_key = image_key
        else:
            preferred = [k for k in IMAGE_KEYS if k in images]
            if not preferred and len(images) != 1:
                raise DataError(f"{self.spec}: cannot tell which image feature to use among {images or 'none'}")
            self.image_key = (preferred or images)[0]
        self.names = _LazyNames(self._reader)
        self.sizes = None

    def __len__(self) -> int:
        return self._reader.n

    def read(self, index: int) -> dict[str, object]:
        """See :meth:`SingleSource.read`."""
        r = self._reader
        ex = r.example(index)
        return {"image": as_rgb8(ex[self.image_key], r.where(index)), "name": r.name(ex, index)}

    def load(self, index: tf.Tensor) -> dict[str, tf.Tensor]:
        """See :meth:`SingleSource.load` (a ``tf.numpy_function`` over :meth:`read`)."""
        def fetch(i):
            r = self.read(i)
            return r["image"], np.bytes_(r["name"].encode())

        image, name = _numpy_load(fetch, index, (tf.uint8, tf.string))
        return {"image": image, "name": name}

    def describe(self) -> str:
        return f"TfdsImages({self.spec}: {len(self)} images, feature {self.image_key!r})"


def label_colors(label_ids) -> np.ndarray:
    """Cityscapes labelIds ``[H, W]`` or ``[H, W, 1]`` (uint8) -> the official colours ``[H, W, 3]`` uint8.

    Ids 0..33 get :data:`tfi2i.metrics.cityscapes.LABEL_COLORS`; other values
    (never in real labelId maps) are black, the colour of ``unlabeled``.
    """
    ids = np.asarray(label_ids)
    if ids.ndim == 3:
        ids = ids[..., 0]
    if ids.dtype != np.uint8:
        ids = np.where((ids >= 0) & (ids < 256), ids, 0).astype(np.uint8)
    from tfi2i.data.labels import palette_lut

    return palette_lut("cityscapes")[ids]


class TfdsCityscapes(PairedSource):
    """Cityscapes pairs from the TFDS ``cityscapes`` builder: A = photo, B = colour label map.

    A is ``image_left`` ``[1024, 2048, 3]``; B is :func:`label_colors` of
    ``segmentation_label`` (labelIds, fine annotations; coarse with the
    ``semantic_segmentation_extra`` config). A/B as in the pix2pix cityscapes
    release, so ``direction="BtoA"`` is labels -> photo. Names are the
    ``image_id`` (``aachen_000000_000019``).

    Args:
        path: ``tfds:cityscapes[/CONFIG][:VERSION][:SPLIT]``.
        direction: ``"AtoB"`` (x = photo) or ``"BtoA"`` (x = label map).
        data_dir, manual_dir: as :class:`TfdsImages`; ``manual_dir`` holds
            ``leftImg8bit_trainvaltest.zip`` and ``gtFine_trainvaltest.zip``.
        split: the split when ``path`` gives none.

    Reference: Cordts et al., "The Cityscapes Dataset for Semantic Urban Scene
    Understanding", CVPR 2016.
    """

    def __init__(self, path: str = "tfds:cityscapes", direction: str = "AtoB", data_dir: str = "",
                 manual_dir: str = "", split: str = "train"):
        self.direction = _check_direction(direction)
        spec = parse_tfds_path(path)
        self._reader = _Reader(spec if spec.split else spec.with_split(split), data_dir, manual_dir)
        self.spec = self._reader.spec
        missing = {"image_left", "segmentation_label"} - set(self._reader.features.keys())
        if missing:
            raise DataError(f"{self.spec}: this config has no {sorted(missing)}; use the semantic_segmentation "
                            "config (tfds:cityscapes) for label -> photo pairs")
        self.names = _LazyNames(self._reader)
        self.sizes = None

    def __len__(self) -> int:
        return self._reader.n

    def read_pair(self, index: int) -> dict[str, object]:
        """See :meth:`PairedSource.read_pair`."""
        r = self._reader
        ex = r.example(index)
        a = as_rgb8(ex["image_left"], r.where(index))
        b = label_colors(ex["segmentation_label"])
        if a.shape != b.shape:
            raise DataError(f"{r.where(index)}: image_left is {a.shape[:2]} but segmentation_label {b.shape[:2]}")
        x, y = self._swap(a, b)
        return {"x": x, "y": y, "name": r.name(ex, index)}

    def load(self, index: tf.Tensor) -> dict[str, tf.Tensor]:
        """See :meth:`PairedSource.load` (a ``tf.numpy_function`` over :meth:`read_pair`)."""
        def fetch(i):
            p = self.read_pair(i)
            return p["x"], p["y"], np.bytes_(p["name"].encode())

        x, y, name = _numpy_load(fetch, index, (tf.uint8, tf.uint8, tf.string))
        return {"x": x, "y": y, "name": name}

    def describe(self) -> str:
        side = "x=photo, y=colour labels" if self.direction == "AtoB" else "x=colour labels, y=photo"
        return f"TfdsCityscapes({self.spec}: {len(self)} pairs, {self.direction}: {side})"


# --------------------------------------------------------------------------- entry points


def open_tfds(path: str, data_cfg, split: str = "train"):
    """The source for a ``tfds:`` path under a DataConfig.

    Args:
        path: ``tfds:NAME[/CONFIG][:VERSION][:SPLIT]``.
        data_cfg: :class:`tfi2i.config.DataConfig` (``task``, ``direction``,
            ``tfds_data_dir``, ``tfds_manual_dir``).
        split: the split when ``path`` gives none.

    Returns:
        :class:`TfdsCityscapes` for ``cityscapes`` with ``task="paired"``,
        else :class:`TfdsImages`.

    Raises:
        DataError: ``task="paired"`` with a builder of single images, or any
            error of the source classes.
    """
    spec = parse_tfds_path(path)
    kw = {"data_dir": data_cfg.tfds_data_dir, "manual_dir": data_cfg.tfds_manual_dir, "split": split}
    if data_cfg.task == "paired":
        if spec.builder_name not in PAIRED_BUILDERS:
            raise DataError(
                f"{spec}: gives single images, not (x, y) pairs; use it with data.task=superres4x or "
                f"data.task=inpainting (paired TFDS builders: {', '.join(PAIRED_BUILDERS)})"
            )
        return TfdsCityscapes(path, direction=data_cfg.direction, **kw)
    return TfdsImages(path, **kw)


def eval_path(path: str, data_cfg, splits: Sequence[str] = EVAL_SPLITS) -> str | None:
    """The ``tfds:`` path of the evaluation split for a training ``tfds:`` path, or None.

    The first of ``splits`` (default ``validation``, else ``test``:
    :data:`EVAL_SPLITS`) among the prepared splits; when TFDS does not list
    splits (e.g. under ``tfds.testing.mock_data``) the first of them that opens.
    """
    spec = parse_tfds_path(path)
    builder = _builder(spec, data_cfg.tfds_data_dir)
    listed = list(builder.info.splits or [])
    for s in splits:
        if s in listed:
            return str(spec.with_split(s))
    if listed:
        return None
    for s in splits:
        try:
            builder.as_data_source(split=s)
        except Exception:  # noqa: BLE001 - not available: try the next
            continue
        return str(spec.with_split(s))
    return None


def main(argv=None) -> int:
    """``python -m tfi2i.data.tfds_sources NAME [--data-dir D] [--manual-dir M]``: :func:`prepare`."""
    parser = argparse.ArgumentParser(
        prog="python -m tfi2i.data.tfds_sources",
        description="Prepare a TensorFlow Datasets data set in the array_record format that tfi2i reads by index.")
    parser.add_argument("name", help="NAME[/CONFIG][:VERSION], e.g. celeb_a, celeb_a_hq/256, cityscapes")
    parser.add_argument("--data-dir", default="", help="where to write it (default: TFDS' data dir)")
    parser.add_argument("--manual-dir", default="", help="folder with manually downloaded files (cityscapes zips)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        builder = prepare(args.name, args.data_dir, args.manual_dir)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"prepared {builder.data_dir}: " + ", ".join(f"{k} {v.num_examples}" for k, v in builder.info.splits.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
