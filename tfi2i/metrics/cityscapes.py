"""The official Cityscapes label table and colour-map decoding for the FCN score.

The table is ``cityscapesscripts/helpers/labels.py`` of the Cityscapes
benchmark (Cordts et al. 2016): 34 labelIds (0..33), their names, trainIds
(0..18 for the 19 evaluation classes, 255 = ignored in training and evaluation)
and colours (the official palette, also used by the ``gtFine_color.png`` files
and by the colour label maps of the pix2pix 256x256 cityscapes release). The
extra row ``license plate`` (id -1, trainId -1, colour of ``car``) never occurs
in labelId images and is left out.

Decoding colour maps (:func:`colors_to_label_ids`)
==================================================

The pix2pix release stores label maps as lossy, resized JPEG colour images, so
their pixels are only close to palette colours. Each pixel gets the labelId of
the **nearest palette colour** (squared Euclidean distance in RGB, integers).

* Several labelIds share a colour. The palette used for decoding
  (:data:`PALETTE_IDS` / :data:`PALETTE_COLORS`) keeps, for each distinct
  colour, the **lowest labelId** with that colour:

  - black ``(0, 0, 0)``: labelIds 0-4 (unlabeled, ego vehicle, rectification
    border, out of roi, static) -> **0 ``unlabeled``** (all five have trainId
    255, so the choice does not change any score);
  - grey ``(153, 153, 153)``: 17 ``pole`` and 18 ``polegroup`` -> **17
    ``pole``** (trainId 5). ``polegroup`` is ignored in the official
    evaluation but cannot be told apart in a colour map, so its (rare) pixels
    count as ``pole`` here.

  Every other colour is unique, so the round trip labelIds -> colours ->
  labelIds is exact except for ids 1-4 (-> 0) and 18 (-> 17).
* Ties (a pixel exactly halfway between two palette colours) go to the colour
  listed first in :data:`PALETTE_COLORS` (i.e. the lower labelId); NumPy and
  TensorFlow implementations break ties identically.
* Pixels blended across a class boundary by the release's downscaling (from
  2048x1024) and JPEG get whichever class is nearest; nothing is marked
  "unknown". Such pixels can land on a third class: between ``car`` (0, 0, 142)
  and black, blends decode as ``trailer`` (0, 0, 110), ``caravan`` or
  ``truck``. On the first 100 images of ``cityscapes_train300`` the median
  distance to the chosen palette colour is 2.2 (RGB units), the 90th
  percentile 28 (boundaries); trailer + caravan + truck together are 1.4 %
  of the pixels (part of them real trucks). Away from boundaries the decoding is exact (JPEG noise at
  quality ~95, the release's, is far smaller than the palette's spacing).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "Label",
    "LABELS",
    "NUM_LABEL_IDS",
    "NUM_CLASSES",
    "IGNORE",
    "CLASS_NAMES",
    "LABEL_TO_TRAIN",
    "LABEL_COLORS",
    "TRAIN_COLORS",
    "PALETTE_IDS",
    "PALETTE_COLORS",
    "colors_to_label_ids",
    "colors_to_label_ids_tf",
    "label_ids_to_train_ids",
    "label_ids_to_colors",
    "train_ids_to_colors",
    "colors_to_train_ids",
]


class Label(NamedTuple):
    """One row of the Cityscapes label table."""

    name: str
    id: int
    train_id: int  #: 0..18, or 255 = ignored
    category: str
    color: tuple[int, int, int]  #: RGB


#: The official Cityscapes labels, labelId 0..33 (``cityscapesscripts/helpers/labels.py``).
LABELS: tuple[Label, ...] = (
    Label("unlabeled", 0, 255, "void", (0, 0, 0)),
    Label("ego vehicle", 1, 255, "void", (0, 0, 0)),
    Label("rectification border", 2, 255, "void", (0, 0, 0)),
    Label("out of roi", 3, 255, "void", (0, 0, 0)),
    Label("static", 4, 255, "void", (0, 0, 0)),
    Label("dynamic", 5, 255, "void", (111, 74, 0)),
    Label("ground", 6, 255, "void", (81, 0, 81)),
    Label("road", 7, 0, "flat", (128, 64, 128)),
    Label("sidewalk", 8, 1, "flat", (244, 35, 232)),
    Label("parking", 9, 255, "flat", (250, 170, 160)),
    Label("rail track", 10, 255, "flat", (230, 150, 140)),
    Label("building", 11, 2, "construction", (70, 70, 70)),
    Label("wall", 12, 3, "construction", (102, 102, 156)),
    Label("fence", 13, 4, "construction", (190, 153, 153)),
    Label("guard rail", 14, 255, "construction", (180, 165, 180)),
    Label("bridge", 15, 255, "construction", (150, 100, 100)),
    Label("tunnel", 16, 255, "construction", (150, 120, 90)),
    Label("pole", 17, 5, "object", (153, 153, 153)),
    Label("polegroup", 18, 255, "object", (153, 153, 153)),
    Label("traffic light", 19, 6, "object", (250, 170, 30)),
    Label("traffic sign", 20, 7, "object", (220, 220, 0)),
    Label("vegetation", 21, 8, "nature", (107, 142, 35)),
    Label("terrain", 22, 9, "nature", (152, 251, 152)),
    Label("sky", 23, 10, "sky", (70, 130, 180)),
    Label("person", 24, 11, "human", (220, 20, 60)),
    Label("rider", 25, 12, "human", (255, 0, 0)),
    Label("car", 26, 13, "vehicle", (0, 0, 142)),
    Label("truck", 27, 14, "vehicle", (0, 0, 70)),
    Label("bus", 28, 15, "vehicle", (0, 60, 100)),
    Label("caravan", 29, 255, "vehicle", (0, 0, 90)),
    Label("trailer", 30, 255, "vehicle", (0, 0, 110)),
    Label("train", 31, 16, "vehicle", (0, 80, 100)),
    Label("motorcycle", 32, 17, "vehicle", (0, 0, 230)),
    Label("bicycle", 33, 18, "vehicle", (119, 11, 32)),
)

#: Number of labelIds (0..33).
NUM_LABEL_IDS = len(LABELS)
#: Number of evaluation classes (trainIds 0..18).
NUM_CLASSES = 19
#: The trainId of pixels ignored in training and evaluation.
IGNORE = 255

#: Names of the 19 evaluation classes, indexed by trainId (pix2pix's ``cityscapes.classes``).
CLASS_NAMES: tuple[str, ...] = tuple(
    sorted((lab for lab in LABELS if lab.train_id != IGNORE), key=lambda lab: lab.train_id)[i].name
    for i in range(NUM_CLASSES)
)

#: ``LABEL_TO_TRAIN[label_id] -> train_id`` (uint8, 256 entries; ids 34..255 -> 255).
LABEL_TO_TRAIN = np.full(256, IGNORE, np.uint8)
for _lab in LABELS:
    LABEL_TO_TRAIN[_lab.id] = _lab.train_id

#: ``LABEL_COLORS[label_id] -> RGB`` (uint8 ``[34, 3]``).
LABEL_COLORS = np.array([lab.color for lab in LABELS], np.uint8)

#: ``TRAIN_COLORS[train_id] -> RGB`` (uint8 ``[256, 3]``; 255 -> black).
TRAIN_COLORS = np.zeros((256, 3), np.uint8)
for _lab in LABELS:
    if _lab.train_id != IGNORE:
        TRAIN_COLORS[_lab.train_id] = _lab.color


def _palette() -> tuple[np.ndarray, np.ndarray]:
    ids, colors, seen = [], [], set()
    for lab in LABELS:  # ascending labelId: the first (lowest) id of a colour wins
        if lab.color not in seen:
            seen.add(lab.color)
            ids.append(lab.id)
            colors.append(lab.color)
    return np.array(ids, np.uint8), np.array(colors, np.int32)


#: The decoding palette: distinct colours and, for each, the lowest labelId with it
#: (black -> 0 ``unlabeled``, grey (153, 153, 153) -> 17 ``pole``). 29 entries.
PALETTE_IDS, PALETTE_COLORS = _palette()
del _lab

# Tie-break key: distance * _KEY + palette index, so the minimum is unique and
# picks the first palette entry among equally near ones (max 3 * 255**2 * 64 < 2**31).
_KEY = 64
_CHUNK = 1 << 16


def colors_to_label_ids(rgb) -> np.ndarray:
    """Colour label map -> labelIds by nearest palette colour (see module docstring).

    Args:
        rgb: uint8 (or any integer / float in [0, 255]) array ``[..., 3]``, RGB,
            e.g. the right half of a pix2pix cityscapes image ``[H, W, 3]``.

    Returns:
        uint8 array ``[...]`` (e.g. ``[H, W]``) of labelIds in 0..33 (never
        1-4 or 18, see the module docstring).
    """
    arr = np.asarray(rgb)
    if arr.ndim < 1 or arr.shape[-1] != 3:
        raise ValueError(f"expected an RGB array [..., 3], got shape {arr.shape}")
    flat = np.rint(arr.reshape(-1, 3)).astype(np.int32) if arr.dtype.kind == "f" else \
        arr.reshape(-1, 3).astype(np.int32)
    out = np.empty(flat.shape[0], np.uint8)
    index = np.arange(len(PALETTE_COLORS), dtype=np.int32)
    for s in range(0, flat.shape[0], _CHUNK):
        d = flat[s : s + _CHUNK, None, :] - PALETTE_COLORS[None, :, :]
        key = np.einsum("npc,npc->np", d, d) * _KEY + index
        out[s : s + _CHUNK] = PALETTE_IDS[np.argmin(key, axis=1)]
    return out.reshape(arr.shape[:-1])


def colors_to_label_ids_tf(rgb):
    """TensorFlow-ops version of :func:`colors_to_label_ids` (graph / tf.data safe; identical results).

    Args:
        rgb: ``tf.Tensor`` uint8 (or integer) ``[..., 3]``, RGB.

    Returns:
        ``tf.Tensor`` uint8 ``[...]`` of labelIds.
    """
    import tensorflow as tf

    x = tf.cast(rgb, tf.int32)
    pal = tf.constant(PALETTE_COLORS, tf.int32)
    d = x[..., None, :] - pal  # [..., P, 3]
    key = tf.reduce_sum(d * d, axis=-1) * _KEY + tf.range(len(PALETTE_COLORS), dtype=tf.int32)
    idx = tf.reduce_min(key, axis=-1) % _KEY
    return tf.gather(tf.constant(PALETTE_IDS, tf.uint8), idx)


def label_ids_to_train_ids(ids) -> np.ndarray:
    """labelIds -> trainIds (0..18, 255 = ignore) with :data:`LABEL_TO_TRAIN`.

    Args:
        ids: integer array of labelIds, any shape (values outside 0..33 -> 255;
            negative values, e.g. license plate -1, -> 255).

    Returns:
        uint8 array of the same shape.
    """
    a = np.asarray(ids)
    if a.dtype == np.uint8:
        return LABEL_TO_TRAIN[a]
    a = a.astype(np.int64)
    out = np.full(a.shape, IGNORE, np.uint8)
    ok = (a >= 0) & (a < 256)
    out[ok] = LABEL_TO_TRAIN[a[ok]]
    return out


def colors_to_train_ids(rgb) -> np.ndarray:
    """Colour label map ``[..., 3]`` -> trainIds ``[...]`` (uint8, 255 = ignore)."""
    return LABEL_TO_TRAIN[colors_to_label_ids(rgb)]


def label_ids_to_colors(ids) -> np.ndarray:
    """labelIds ``[...]`` (0..33) -> official colours uint8 ``[..., 3]``."""
    a = np.asarray(ids)
    if a.size and (a.min() < 0 or a.max() >= NUM_LABEL_IDS):
        raise ValueError(f"labelIds must be in 0..{NUM_LABEL_IDS - 1}, got {a.min()}..{a.max()}")
    return LABEL_COLORS[a]


def train_ids_to_colors(train_ids) -> np.ndarray:
    """trainIds ``[...]`` (0..18, 255) -> colours uint8 ``[..., 3]`` (255 -> black), e.g. to show predictions."""
    return TRAIN_COLORS[np.asarray(train_ids).astype(np.uint8)]
