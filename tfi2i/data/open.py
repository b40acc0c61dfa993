"""Opening a config's data: the training and evaluation sources and the resolved `DataConfig`.

The one data policy of every entry point (training, `tfi2i evaluate --workdir`,
notebooks): the demo set when no path is given, ``tfds:`` paths, split discovery
(``data.eval_path`` / ``data.eval_split``) and ``data.num_train``.
"""

from __future__ import annotations

import dataclasses
import logging

log = logging.getLogger("tfi2i")


def open_data(cfg):
    """Returns (train_source, eval_source, data_cfg) for a config; the demo set when no path is given.

    ``data.task="paired"``: paired sources (side-by-side files, ``A/`` + ``B/``
    folders, or ``tfds:cityscapes``). ``superres4x`` / ``inpainting``: single
    images (a folder of images, or a ``tfds:`` image data set); the pipeline
    makes x from them. ``data.path`` empty: the embedded demo set (its pairs,
    or for the derived tasks its photos as single images). ``data.num_train``
    > 0 keeps that many training examples (`tfi2i.data.sources.Subset`, seed
    0; all when the split holds no more). Evaluation uses ``data.eval_path``,
    else the split ``data.eval_split`` names: ``auto``: the ``val/`` folder or
    the TFDS ``validation`` split, else ``test``; ``test``: ``test``, else
    ``val/`` (``validation``); ``val``: only ``val/`` (``validation``). With
    none of them - with a warning - the training examples.

    The pix2pixhd and cityscapes layouts (`tfi2i.data.sources.find_splits`):
    ``data.path`` is the root; training uses its ``train`` split
    (``train_label/`` + ``train_img/``, resp. ``gtFine/train`` +
    ``leftImg8bit/train``), evaluation the split ``data.eval_split`` picks as
    above among ``val`` and ``test``. A split with label maps but no photos
    (pix2pixHD's ``test_label/``, `tfi2i.data.sources.missing_photos`) cannot
    be evaluated: ``eval_split=auto`` (and the fallback of ``test``) skips it
    with a log line; the split ``eval_split=test`` / ``val`` names first is an
    error (`DataError`) when it has no photos.

    ``data.validate`` decodes and checks the files once at start-up; with
    ``data.num_train`` only the kept training examples (and the whole
    evaluation split). A folder validated before in this process and
    unchanged since is not decoded again (`tfi2i.data.sources`).
    """
    from tfi2i.data import degrade, demo, sources, tfds_sources
    from tfi2i.data.images import DataError

    data_cfg = cfg.data
    degrade.check_task(data_cfg)
    single = data_cfg.task in degrade.DERIVED_TASKS
    path = data_cfg.path
    if not path:
        path = str(demo.ensure_demo(size=max(data_cfg.crop_hw), photos_only=single))
        log.info("no --data given: using the embedded demo data set%s at %s", " (photos only)" if single else "", path)
        data_cfg = dataclasses.replace(data_cfg, path=path)
    order = {"auto": ("val", "test"), "test": ("test", "val"), "val": ("val",)}[data_cfg.eval_split]  # checked by DataConfig

    def open_(p, validate=data_cfg.validate):
        if tfds_sources.is_tfds_path(p):
            return tfds_sources.open_tfds(p, data_cfg)
        if single:
            return sources.SingleImages(p, validate=validate)
        return sources.open_source(p, direction=data_cfg.direction, layout=data_cfg.layout, validate=validate,
                                   x_kind=data_cfg.x_kind, y_kind=data_cfg.y_kind, num_classes=data_cfg.num_classes,
                                   instances=data_cfg.instances)

    # data.num_train on a folder: validate the training examples after picking them, only those
    later = bool(data_cfg.validate and data_cfg.num_train) and not tfds_sources.is_tfds_path(path)

    if tfds_sources.is_tfds_path(path):
        train = open_(path)
        tfds_order = tuple("validation" if s == "val" else s for s in order)
        default_eval = None if data_cfg.eval_path else tfds_sources.eval_path(path, data_cfg, tfds_order)
    else:
        splits = sources.find_splits(path)
        if "train" not in splits:
            raise DataError(f"{path}: no training split among its split folders ({', '.join(splits)}); "
                            f"add a train split or point data.path to the folder of the training data")
        train = open_(splits["train"], validate=data_cfg.validate and not later)
        default_eval, skipped = None, []
        for s in order:
            if s not in splits:
                continue
            why = sources.missing_photos(splits[s])
            if why is None:
                default_eval = splits[s]
                break
            if data_cfg.eval_path:
                continue
            if data_cfg.eval_split != "auto" and s == order[0]:
                raise DataError(f"data.eval_split={data_cfg.eval_split}: {why}; set data.eval_split=auto (which "
                                "skips it), or data.eval_path to a split with photos")
            log.info("not evaluating on split %r: %s", s, why)
            skipped.append(s)
        if not data_cfg.eval_path and default_eval is not None and order[0] not in splits:
            log.info("%s has no %s/ split: evaluating on %s", path, order[0], default_eval)
        elif not data_cfg.eval_path and default_eval is not None and skipped:
            log.info("%s: split %s has no photos: evaluating on %s", path, skipped[0], default_eval)
    if data_cfg.num_train:
        if data_cfg.num_train >= len(train):
            log.info("data.num_train=%d: the training split holds %d examples, training on all of them",
                     data_cfg.num_train, len(train))
        else:
            train = sources.Subset(train, data_cfg.num_train, seed=0)
        if later:
            train.validate()  # only the kept examples (all of them when the split holds no more)
        if isinstance(train, sources.Subset):
            log.info("data.num_train=%d: training on %s", data_cfg.num_train, train.describe())
    if data_cfg.eval_path:
        evaluation = open_(data_cfg.eval_path)
    elif default_eval:
        evaluation = open_(str(default_eval))
    elif data_cfg.eval_split == "val":
        raise DataError(f"data.eval_split=val: {path} has no {'validation' if tfds_sources.is_tfds_path(path) else 'val/'} "
                        "split; set data.eval_split=auto or test, or data.eval_path")
    elif skipped:
        log.warning("%s has no val/ or test/ split with photos (%s: label maps only): evaluating on the training "
                    "data (set data.eval_path)", path, ", ".join(skipped))
        evaluation = train
    else:
        log.warning("%s has no val/ or test/ split: evaluating on the training data (set data.eval_path)", path)
        evaluation = train
    return train, evaluation, data_cfg
