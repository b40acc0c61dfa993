"""FCN-8s semantic segmenter for the FCN score, and ``tfi2i segmenter train``.

The FCN score of pix2pix / PAN (see :mod:`tfi2i.metrics.fcn`) needs a
segmenter trained on *real* Cityscapes photos. pix2pix used a caffe FCN-8s
(``fcn-8s-cityscapes.caffemodel``) that TensorFlow cannot load, so this module
trains the same architecture on the pix2pix 256x256 cityscapes release:

FCN-8s (Long, Shelhamer, Darrell, CVPR 2015) on ``keras.applications.VGG16``
(``include_top=False``), :func:`build_fcn8s`:

==================  =====================================================================
layer               what
==================  =====================================================================
``vgg_preprocess``  fixed 1x1 conv: RGB [0, 255] -> BGR minus the ImageNet mean (Keras /
                    caffe VGG16 convention), so the saved model takes plain [0, 255] RGB
``block1..block5``  VGG16 convolutions and poolings (strides 2 .. 32)
``fc6`` / ``fc7``   7x7 conv (4096, ReLU) + dropout 0.5, 1x1 conv (4096, ReLU) + dropout 0.5
``score_fr``        1x1 conv to 19 classes on fc7 (stride 32)
``upscore2``        2x Conv2DTranspose (kernel 4), + ``score_pool4`` (1x1 on pool4) -> ``fuse_pool4``
``upscore_pool4``   2x Conv2DTranspose (kernel 4), + ``score_pool3`` (1x1 on pool3) -> ``fuse_pool3``
``upscore8``        8x Conv2DTranspose (kernel 16) -> 19-class logits at input resolution
==================  =====================================================================

The transposed convolutions have no bias, start as bilinear interpolation and
are trained; the score layers start at zero (as in FCN). ``padding="same"``
everywhere, so inputs must be multiples of 32 (the :class:`Segmenter` pads
other sizes); FCN's ``pad=100`` + crop scheme is not needed then.

Deviations from the FCN / pix2pix segmenter, and choices:

* fc6 / fc7 start from random (Glorot) weights even with ImageNet weights: the
  ``notop`` VGG16 weight file has no fully connected layers to convert.
* Adam (``--lr``, default 1e-4) with the cross-entropy averaged over
  non-ignored pixels, instead of FCN's SGD with an unnormalised loss; no
  ``score_pool3`` / ``score_pool4`` input scaling (0.0001 / 0.01 in FCN-8s
  "at once"), which Adam would turn into a 10^4-times slower skip branch.
* Training data: the *real* photos (left, A) and colour label maps (right, B)
  of a pix2pix-layout folder; colours -> labelIds by nearest palette colour ->
  trainIds (255 = ignored, through a 0/1 sample-weight mask). Photos are resized
  bilinearly and label maps nearest-neighbour to ``--size`` (no-op for the
  256x256 release at ``--size 256``), then flipped left-right with probability 1/2.
* At the end the model's FCN scores on the *real* validation photos are printed
  as JSON: the ceiling that generated photos are compared with (pix2pix reports
  0.80 / 0.26 / 0.21 for its caffe FCN on real photos).

Size and speed (2 CPU cores): the full model (``--fc-units 4096``) has 134 M
parameters (fc6 alone 103 M), its ``.keras`` file is 538 MB and building it and
taking 2 steps at 64x64 peaked at 5.4 GB of host memory. A sanity run from
random weights (``--weights none --size 128 --fc-units 512 --batch-size 4
--steps 300``, 222 s) on ``cityscapes_train300`` scored 0.753 / 0.234 / 0.179
(per-pixel acc. / per-class acc. / class IoU) on those same training photos:
the pipeline learns; real ceilings need ImageNet weights, the full train split
and many more steps.

Command line (registered on ``tfi2i`` by ``segmenter.add_parser(sub)``; also
``python -m tfi2i.segmenter train ...``)::

    tfi2i segmenter train --data datasets/cityscapes --out fcn8s.keras --steps 20000
    tfi2i segmenter score --model fcn8s.keras --data datasets/cityscapes/val
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tfi2i.metrics.cityscapes import IGNORE, LABEL_TO_TRAIN, NUM_CLASSES, colors_to_label_ids_tf
from tfi2i.metrics.fcn import (
    Segmenter,
    SegmenterError,
    fcn_confusion_source,
    load_segmenter,
    per_class_report,
)
from tfi2i.pretrained import KERAS_WEIGHTS, WeightsUnavailableError, build_application

__all__ = [
    "VGG16_NOTOP_FILE",
    "VGG16_NOTOP_URL",
    "IMAGENET_MEAN_BGR",
    "SegmenterError",
    "build_fcn8s",
    "bilinear_kernel",
    "vgg16_backbone",
    "train_segmenter",
    "save_model_atomic",
    "add_parser",
    "run",
    "main",
]

#: File name Keras caches the ImageNet VGG16 (no top) weights under (in ``$KERAS_HOME/models``).
VGG16_NOTOP_FILE = KERAS_WEIGHTS["VGG16"].file
#: Where Keras downloads it from.
VGG16_NOTOP_URL = KERAS_WEIGHTS["VGG16"].url
#: Keras / caffe VGG16 input mean, BGR order.
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
#: Total stride of FCN-8s (pool5): inputs must be multiples of it.
STRIDE = 32


# --------------------------------------------------------------------------- model


def vgg16_backbone(weights="imagenet"):
    """``keras.applications.VGG16(include_top=False)`` with input ``[None, None, 3]``.

    Loaded through :func:`tfi2i.pretrained.build_application` (the package's one
    "weights not available offline" path).

    Args:
        weights: ``"imagenet"`` (Keras downloads / caches
            :data:`VGG16_NOTOP_FILE`), ``"none"`` / ``None`` (random), or a path
            to a weights file of the no-top VGG16.

    Raises:
        SegmenterError: the ImageNet weights cannot be had (offline, no cached
            file; the message says where to put the file), or the path is missing
            or does not fit.
    """
    how = "--weights PATH to that .h5 file anywhere, or --weights none to start from random weights"
    try:
        return build_application("VGG16", weights, how_to_pass=how, input_shape=(None, None, 3))
    except (WeightsUnavailableError, ValueError) as e:  # one message, naming the flag for a path
        local = weights is not None and str(weights).lower() not in ("imagenet", "none")
        raise SegmenterError((f"--weights {weights}: " if local else "") + str(e)) from e


def bilinear_kernel(kernel_size: int, channels: int) -> np.ndarray:
    """Bilinear-upsampling kernel for ``Conv2DTranspose`` (shape ``[k, k, channels, channels]``, per channel).

    FCN's ``upsample_filt``: ``(1 - |i - c| / f) * (1 - |j - c| / f)`` with
    ``f = ceil(k / 2)`` and ``c = f - 0.5`` (even k) or ``f - 1`` (odd k). With
    ``kernel_size = 2 * stride`` and ``padding="same"`` it is exact bilinear
    interpolation (half-pixel centres) away from the borders.
    """
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = np.arange(kernel_size, dtype=np.float64)
    f1 = 1 - np.abs(og - center) / factor
    filt = np.outer(f1, f1).astype(np.float32)
    k = np.zeros((kernel_size, kernel_size, channels, channels), np.float32)
    for c in range(channels):
        k[:, :, c, c] = filt
    return k


def build_fcn8s(num_classes: int = NUM_CLASSES, weights="imagenet", *, fc_units: int = 4096,
                dropout: float = 0.5, name: str = "fcn8s_vgg16"):
    """FCN-8s on VGG16 (see the module docstring).

    Args:
        num_classes: output channels (19 Cityscapes trainIds).
        weights: VGG16 backbone weights: ``"imagenet"``, ``"none"`` or a path
            (see :func:`vgg16_backbone`).
        fc_units: width of fc6 / fc7 (4096 in FCN; fc6 alone then has 103 M
            parameters).
        dropout: dropout rate after fc6 and fc7.
        name: model name.

    Returns:
        ``keras.Model``: float32 ``[B, H, W, 3]`` RGB in [0, 255], H and W
        multiples of 32 -> float32 logits ``[B, H, W, num_classes]``.
    """
    import keras
    from keras import layers

    vgg = vgg16_backbone(weights)
    inputs = keras.Input((None, None, 3), name="image")
    pre = layers.Conv2D(3, 1, name="vgg_preprocess", trainable=False)
    x = pre(inputs)
    feats = {}
    for layer in vgg.layers[1:]:  # re-use VGG16's layers (and weights) in one flat graph
        x = layer(x)
        feats[layer.name] = x
    pool3, pool4, pool5 = feats["block3_pool"], feats["block4_pool"], feats["block5_pool"]

    zeros = "zeros"
    x = layers.Conv2D(fc_units, 7, padding="same", activation="relu", name="fc6")(pool5)
    x = layers.Dropout(dropout, name="drop6")(x)
    x = layers.Conv2D(fc_units, 1, activation="relu", name="fc7")(x)
    x = layers.Dropout(dropout, name="drop7")(x)
    x = layers.Conv2D(num_classes, 1, kernel_initializer=zeros, name="score_fr")(x)
    up = dict(padding="same", use_bias=False)
    x = layers.Conv2DTranspose(num_classes, 4, strides=2, name="upscore2", **up)(x)
    s4 = layers.Conv2D(num_classes, 1, kernel_initializer=zeros, name="score_pool4")(pool4)
    x = layers.Add(name="fuse_pool4")([x, s4])
    x = layers.Conv2DTranspose(num_classes, 4, strides=2, name="upscore_pool4", **up)(x)
    s3 = layers.Conv2D(num_classes, 1, kernel_initializer=zeros, name="score_pool3")(pool3)
    x = layers.Add(name="fuse_pool3")([x, s3])
    x = layers.Conv2DTranspose(num_classes, 16, strides=8, name="upscore8", dtype="float32", **up)(x)
    model = keras.Model(inputs, x, name=name)

    perm = np.zeros((1, 1, 3, 3), np.float32)
    for o, i in enumerate((2, 1, 0)):  # output BGR from input RGB
        perm[0, 0, i, o] = 1.0
    pre.set_weights([perm, -np.array(IMAGENET_MEAN_BGR, np.float32)])
    for lname, k in (("upscore2", 4), ("upscore_pool4", 4), ("upscore8", 16)):
        model.get_layer(lname).set_weights([bilinear_kernel(k, num_classes)])
    return model


def save_model_atomic(model, path) -> Path:
    """``model.save`` to a temporary ``.keras`` file next to ``path``, then ``os.replace`` it onto ``path``."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.tmp-", suffix=".keras")
    os.close(fd)
    try:
        os.unlink(tmp)  # Keras writes the file itself
        model.save(tmp)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out


# --------------------------------------------------------------------------- data


def _train_dataset(source, size: int, batch_size: int, seed: int):
    """Endless, shuffled, batched ``(photo float32 [0, 255], trainIds int32, weight float32)``."""
    import tensorflow as tf

    lut = tf.constant(LABEL_TO_TRAIN, tf.uint8)

    def prep(i):
        pair = source.load(i)
        photo, colors = pair["x"], pair["y"]
        train = tf.gather(lut, tf.cast(colors_to_label_ids_tf(colors), tf.int32))[..., None]
        photo = tf.image.resize(tf.cast(photo, tf.float32), (size, size), method="bilinear")
        train = tf.image.resize(train, (size, size), method="nearest")
        flip = tf.random.uniform([], seed=seed) < 0.5
        photo = tf.cond(flip, lambda: tf.reverse(photo, [1]), lambda: photo)
        train = tf.cond(flip, lambda: tf.reverse(train, [1]), lambda: train)
        train = tf.cast(train[..., 0], tf.int32)
        weight = tf.cast(tf.not_equal(train, IGNORE), tf.float32)
        train = tf.where(train == IGNORE, 0, train)
        photo = tf.clip_by_value(photo, 0.0, 255.0)
        photo.set_shape([size, size, 3])
        return photo, train, weight

    n = len(source)
    ds = tf.data.Dataset.range(n).shuffle(n, seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(2)


# --------------------------------------------------------------------------- training


def _resolve_splits(data, val):
    """(train folder, val folder, warning or None). ``data`` may be a root with train/ and val/."""
    from tfi2i.data.sources import find_splits

    splits = find_splits(data)
    train = splits["train"]
    if val:
        return train, Path(val), None
    for name in ("val", "test"):
        if name in splits:
            return train, splits[name], None
    return train, train, (f"no --val folder given (and no val/ or test/ split in {data}): the final FCN "
                          f"scores are measured on the TRAINING photos in {train}, which overstates the ceiling")


def train_segmenter(data, out, *, val=None, steps: int = 20000, batch_size: int = 8, lr: float = 1e-4,
                    weights="imagenet", size: int = 256, seed: int = 0, fc_units: int = 4096,
                    save_every: int = 0, progress: bool = True, eval_batch_size: int = 4) -> dict:
    """Train FCN-8s on real photos + colour label maps, save it, score it on real validation photos.

    Args:
        data: pix2pix-layout cityscapes folder (photo left, colour labels right),
            or a root with ``train/`` (and ``val/``) split folders.
        out: the ``.keras`` file to write (atomically; also every ``save_every`` steps).
        val: validation folder (default: ``data``'s ``val/`` or ``test/`` split, else
            the training folder, with a warning).
        steps, batch_size, lr, weights, size, seed, fc_units: see ``tfi2i segmenter train -h``.
        progress: show progress bars.
        eval_batch_size: photos per segmenter call in the final evaluation.

    Returns:
        ``{"per_pixel_acc", "per_class_acc", "class_iou", "images", "val", "model", "steps", "note"}``.

    Raises:
        SegmenterError, tfi2i.data.images.DataError: bad arguments or data.
    """
    import keras
    import tensorflow as tf

    from tfi2i.data.sources import open_source

    out = Path(out)
    if out.suffix != ".keras":
        raise SegmenterError(f"--out {out}: the model file name must end in .keras")
    if steps < 1 or batch_size < 1:
        raise SegmenterError("--steps and --batch-size must be at least 1")
    if size < STRIDE or size % STRIDE:
        raise SegmenterError(f"--size {size}: must be a positive multiple of {STRIDE} (FCN-8s' total stride)")
    if not lr > 0:
        raise SegmenterError(f"--lr {lr}: must be positive")

    train_dir, val_dir, warning = _resolve_splits(data, val)
    keras.utils.set_random_seed(seed)
    model = build_fcn8s(NUM_CLASSES, weights, fc_units=fc_units)  # first: weight problems show at once
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    train_src = open_source(train_dir, direction="AtoB")
    val_src = train_src if val_dir == train_dir else open_source(val_dir, direction="AtoB")
    print(f"training FCN-8s on {train_src.describe()}; validation: {val_src.describe()}", file=sys.stderr)

    optimizer = keras.optimizers.Adam(learning_rate=lr)
    optimizer.build(model.trainable_variables)
    variables = model.trainable_variables

    @tf.function
    def train_step(x, y, w):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            ce = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
            loss = tf.reduce_sum(ce * w) / tf.maximum(tf.reduce_sum(w), 1.0)
        grads = tape.gradient(loss, variables)
        optimizer.apply(grads, variables)
        return loss

    from tqdm import tqdm

    it = iter(_train_dataset(train_src, size, batch_size, seed))
    t0 = time.perf_counter()
    bar = tqdm(range(1, steps + 1), desc="segmenter", unit="step", disable=not progress, file=sys.stderr)
    loss = float("nan")
    for step in bar:
        x, y, w = next(it)
        loss = float(train_step(x, y, w))
        if not np.isfinite(loss):
            raise SegmenterError(f"the loss became {loss} at step {step}; lower --lr")
        bar.set_postfix(loss=f"{loss:.4f}")
        if save_every and step % save_every == 0 and step < steps:
            save_model_atomic(model, out)
    bar.close()
    save_model_atomic(model, out)
    print(f"saved {out} after {steps} steps in {time.perf_counter() - t0:.1f} s (last loss {loss:.4f})",
          file=sys.stderr)

    segmenter = Segmenter(model, input_size=(size, size), source=str(out))
    cm = fcn_confusion_source(segmenter, val_src, batch_size=eval_batch_size, progress=progress)
    return {
        **cm.scores(),
        "images": len(val_src),
        "val": str(val_dir),
        "model": str(out),
        "steps": steps,
        "size": size,
        "note": "FCN scores of the segmenter on the REAL validation photos: the ceiling that generated "
                "photos are compared with",
        "per_class": per_class_report(cm),
    }


# --------------------------------------------------------------------------- command line


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``segmenter`` (sub-commands ``train`` and ``score``) on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "segmenter",
        help="FCN-8s segmenter for the FCN score (pix2pix / PAN Cityscapes protocol)",
        description="Train and apply the FCN-8s segmenter behind the FCN score.",
    )
    sub = p.add_subparsers(dest="segmenter_command", required=True)

    t = sub.add_parser(
        "train",
        help="train FCN-8s (VGG16) on real Cityscapes photos + colour label maps",
        description=(
            "Train FCN-8s on a VGG16 backbone on the REAL photos (left half) and colour label maps "
            "(right half) of a pix2pix-layout Cityscapes folder, save it as a .keras file and print its "
            "FCN scores on the real validation photos as JSON (the ceiling generated photos are compared with)."
        ),
    )
    t.add_argument("--data", required=True, metavar="DIR",
                   help="pix2pix cityscapes folder (photo | colour labels), or a root with train/ and val/")
    t.add_argument("--val", default=None, metavar="DIR",
                   help="validation folder for the final scores (default: DATA's val/ split, else the "
                        "training folder, with a warning)")
    t.add_argument("--out", required=True, metavar="MODEL.keras", help="model file to write (atomically)")
    t.add_argument("--steps", type=int, default=20000, help="training steps (default 20000)")
    t.add_argument("--batch-size", type=int, default=8, help="images per step (default 8)")
    t.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default 1e-4)")
    t.add_argument("--weights", default="imagenet", metavar="imagenet|none|PATH",
                   help=f"VGG16 backbone weights: imagenet (downloaded or from $KERAS_HOME/models/"
                        f"{VGG16_NOTOP_FILE}), none, or the path of that file (default imagenet)")
    t.add_argument("--size", type=int, default=256, help="training resolution, a multiple of 32 (default 256)")
    t.add_argument("--fc-units", type=int, default=4096, help="width of fc6/fc7 (default 4096, as FCN)")
    t.add_argument("--save-every", type=int, default=0, metavar="N",
                   help="also save the model every N steps (default: only at the end)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-progress", action="store_true", help="hide progress bars")
    t.set_defaults(func=run)

    s = sub.add_parser(
        "score",
        help="FCN scores of a segmenter on a folder of photo | colour-label pairs",
        description=(
            "Run a segmentation model over the photos of a paired folder and print the FCN scores "
            "(per-pixel acc., per-class acc., class IoU) against the colour label maps as JSON. "
            "Side-by-side images: photo left, labels right (the cityscapes release); for generated "
            "photos use a folder with A/ (photos) and B/ (colour label maps) matched by file stem."
        ),
    )
    s.add_argument("--model", required=True, metavar="PATH", help=".keras file or SavedModel folder")
    s.add_argument("--data", required=True, metavar="DIR", help="paired folder: photo = A, colour labels = B")
    s.add_argument("--input-scale", type=float, default=255.0,
                   help="the model gets uint8/255*SCALE+OFFSET (default 255: [0, 255])")
    s.add_argument("--input-offset", type=float, default=0.0)
    s.add_argument("--input-size", type=int, default=None, metavar="N",
                   help="resize photos to NxN before the model (default: native size)")
    s.add_argument("--batch-size", type=int, default=4)
    s.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    s.set_defaults(func=run)
    return p


def _run_train(args) -> dict:
    return train_segmenter(
        args.data, args.out, val=args.val, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        weights=args.weights, size=args.size, seed=args.seed, fc_units=args.fc_units,
        save_every=args.save_every, progress=not args.no_progress,
    )


def _run_score(args) -> dict:
    from tfi2i.data.sources import open_source

    size = None if args.input_size is None else (args.input_size, args.input_size)
    seg = load_segmenter(args.model, input_scale=args.input_scale, input_offset=args.input_offset,
                         input_size=size)
    src = open_source(args.data, direction="AtoB")
    cm = fcn_confusion_source(seg, src, batch_size=args.batch_size, progress=not args.no_progress)
    return {**cm.scores(), "images": len(src), "data": str(args.data), "model": str(args.model),
            "per_class": per_class_report(cm)}


def run(args: argparse.Namespace) -> int:
    """Run ``tfi2i segmenter train|score``; print the scores as JSON. Returns 0, or 1 after ``error: ...``."""
    from tfi2i.data.images import DataError

    try:
        if args.segmenter_command == "train":
            result = _run_train(args)
        elif args.segmenter_command == "score":
            result = _run_score(args)
        else:  # pragma: no cover - argparse enforces the choices
            raise SegmenterError(f"unknown segmenter command {args.segmenter_command!r}")
    except (SegmenterError, DataError) as exc:
        if os.environ.get("TFI2I_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


def main(argv=None) -> int:
    """``python -m tfi2i.segmenter train|score ...`` (the same as ``tfi2i segmenter ...``)."""
    parser = argparse.ArgumentParser(prog="tfi2i")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["segmenter", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
