"""Reading a training run directory back: its config and its trained generator."""

from __future__ import annotations

import json
import os
from pathlib import Path


class RunError(ValueError):
    """A path is not a usable run directory (no config.json, no checkpoint)."""


def load_config(workdir):
    """The resolved `Config` a run was trained with (``W/config.json``)."""
    from tfi2i import config as config_lib

    path = Path(workdir) / "config.json"
    if not path.is_file():
        raise RunError(f"{workdir} is not a training run directory (no config.json)")
    return config_lib.from_dict(config_lib.Config, json.loads(path.read_text()))


def load_generator(workdir):
    """Builds the run's generator and restores it from the latest checkpoint.

    Returns:
      (cfg, generator, checkpoint_path). Only the generator is restored; the
      discriminators and optimizers in the checkpoint are ignored.
    """
    import tensorflow as tf

    from tfi2i.networks import build_generator

    cfg = load_config(workdir)
    latest = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    if latest is None:
        raise RunError(f"{workdir}/checkpoints holds no checkpoint")
    generator = build_generator(cfg.generator)
    tf.train.Checkpoint(generator=generator).restore(latest).expect_partial()
    return cfg, generator, latest
