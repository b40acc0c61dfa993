"""Reading a training run directory back: its config and its trained model.

A run is self-describing: ``config.json`` records the config's type and the
builder that made the model (``Config.builder``, a name inside the tfi2i
package, e.g. ``tfi2i.pan:build``), so :func:`load_model` rebuilds any run's
model and restores its latest checkpoint. Every tool that runs a trained
model (``tfi2i evaluate --workdir``, ``tfi2i export``, ``tfi2i translate``,
the super-resolution report) goes through it and then uses only the model's
contract (`tfi2i.contract`). A run directory written before builders were
recorded has none, which means the U-Net pix2pix family
(`tfi2i.config.DEFAULT_BUILDER`).
"""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path


class RunError(ValueError):
    """A path is not a usable run directory (no config.json, no checkpoint, unknown builder)."""


#: What `load_model` returns: the run's config, its model (a `tfi2i.gan.PairedGAN`) and the checkpoint restored.
LoadedRun = collections.namedtuple("LoadedRun", ["cfg", "model", "checkpoint"])


def load_config(workdir):
    """The resolved config a run was trained with (``W/config.json``, read back as its recorded type)."""
    from tfi2i import config as config_lib

    path = Path(workdir) / "config.json"
    if not path.is_file():
        raise RunError(f"{workdir} is not a training run directory (no config.json)")
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunError(f"{path} is not readable JSON: {exc}") from None
    try:
        return config_lib.load(values)
    except config_lib.ConfigError as exc:
        raise RunError(f"{path}: {exc}") from None


def builder_of(cfg):
    """The function ``cfg.builder`` names (``(cfg) -> PairedGAN``)."""
    from tfi2i import config as config_lib

    try:
        fn = config_lib.import_name(cfg.builder, "builder")
    except config_lib.ConfigError as exc:
        raise RunError(str(exc)) from None
    if not callable(fn):
        raise RunError(f"builder {cfg.builder!r} is not a function")
    return fn


def load_model(workdir) -> LoadedRun:
    """Rebuilds a run's model from ``config.json`` and restores its newest readable checkpoint.

    The generator and the discriminators come back; the optimizers are not
    built (inference and evaluation only). A latest checkpoint that cannot be
    read (truncated by a kill or a full disk) is reported and the previous one
    is used, as resuming does (`tfi2i.checkpoint.restore_newest_readable`);
    ``ckpt-N_temp`` folders of killed writes are never read. Returns
    ``LoadedRun(cfg, model, checkpoint_path)``; ``model.contract`` says how
    to call it. Takes no run lock: it reads while a run trains.
    """
    import tensorflow as tf

    from tfi2i.checkpoint import checkpoint_paths, model_objects, restore_newest_readable

    cfg = load_config(workdir)
    build = builder_of(cfg)
    ckpt_dir = os.path.join(workdir, "checkpoints")
    paths = checkpoint_paths(ckpt_dir)
    if not paths:
        raise RunError(f"{ckpt_dir} holds no checkpoint")
    model = build(cfg)
    checkpoint = tf.train.Checkpoint(**model_objects(model))

    tried = []

    def restore(path):
        tried.append(path)
        status = checkpoint.restore(path)
        status.expect_partial()
        status.assert_existing_objects_matched()  # AssertionError: not a read error, no fallback

    try:
        latest = restore_newest_readable(paths, restore)
    except AssertionError as exc:
        raise RunError(f"{tried[-1]} does not fit the model {cfg.builder} builds from {workdir}/config.json: "
                       f"{str(exc)[:300]}") from None
    if latest is None:
        raise RunError(f"{ckpt_dir} holds no readable checkpoint (tried {', '.join(map(os.path.basename, paths))}; "
                       "each is truncated or damaged)")
    if hasattr(model, "attach_run"):  # files of the run the model reads (pix2pixHD's feature clusters)
        model.attach_run(workdir)
    return LoadedRun(cfg, model, latest)


__all__ = ["LoadedRun", "RunError", "builder_of", "load_config", "load_model"]
