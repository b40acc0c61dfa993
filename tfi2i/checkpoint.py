"""Resumable training state: both networks, both optimizers, step and epoch.

A `tf.train.Checkpoint` over the generator, the discriminator(s), both
optimizers (Adam moments, their step counters = the LR schedule position) and
the run's step/epoch counters and the dropout RNG states. Data order and augmentation are pure functions
of ``(seed, step)`` (see `tfi2i.data.pipeline`) and the dropout RNGs are Keras
`SeedGenerator` variables inside the networks, so they are restored too.

Atomicity: TensorFlow writes a checkpoint's files first and updates the
``checkpoint`` index file last (itself with an atomic rename), so a crash
mid-write leaves the previous checkpoint as the latest. On restore, a latest
checkpoint that cannot be read (e.g. a disk filled up) is reported and the
previous one is used (`restore_newest_readable`, shared by resume and
`tfi2i.runs.load_model`). A write killed mid-way leaves a ``ckpt-N_temp``
folder; nothing reads it and `remove_stale_temp` deletes it when the next
training process starts (under the run lock).
"""

import logging
import os
import re
import shutil

import tensorflow as tf

log = logging.getLogger("tfi2i")

#: What reading a truncated or half-written checkpoint raises (TF's read errors, ``Read less bytes than requested``).
UNREADABLE = (tf.errors.OpError, ValueError, IndexError, RuntimeError)
_TEMP = re.compile(r"^ckpt-\d+_temp$")


class TrainingState:
    """Checkpointed state of a run.

    Args:
      directory: ``<workdir>/checkpoints``.
      keep: how many recent checkpoints to keep.
      **objects: trackables to save (``generator=G, discriminator=D, ...``).
    """

    def __init__(self, directory, keep=3, **objects):
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        rng = {f"s{i}": v for i, v in enumerate(_seed_states(objects.values()))}
        self.checkpoint = tf.train.Checkpoint(step=self.step, epoch=self.epoch, rng=tf.train.Checkpoint(**rng), **objects)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=keep)
        self._good = None  # (path, step) of the checkpoint restored or last written by this process

    def save(self, step, epoch):
        self.step.assign(step)
        self.epoch.assign(epoch)
        path = self.manager.save(checkpoint_number=step)
        self._good = (path, int(step))
        return path

    def restore_latest(self):
        """Restores the newest readable checkpoint; returns its path or None when there is none."""
        path = restore_newest_readable(
            self.manager.checkpoints, lambda path: self.checkpoint.restore(path).assert_existing_objects_matched(),
            fallback_on=UNREADABLE + (AssertionError,))
        if path is not None:
            self._good = (path, int(self.step.numpy()))
        return path

    def last_good(self):
        """``(path, step)`` of the checkpoint this process restored or wrote last, or None when there is none."""
        return self._good


def checkpoint_paths(directory):
    """The checkpoint prefixes the ``checkpoint`` index file of ``directory`` lists, oldest first ([] when none)."""
    state = tf.train.get_checkpoint_state(os.fspath(directory))
    if state is None or not state.model_checkpoint_path:
        return []
    paths = list(state.all_model_checkpoint_paths)
    if state.model_checkpoint_path not in paths:
        paths.append(state.model_checkpoint_path)
    return paths


def restore_newest_readable(paths, restore, fallback_on=UNREADABLE):
    """Calls ``restore(path)`` on ``paths`` newest first until one succeeds; returns that path (None when none does).

    An exception in ``fallback_on`` (an unreadable checkpoint) is logged as a
    warning naming the checkpoint and the previous one is tried; any other
    exception propagates. Training's resume (`TrainingState.restore_latest`)
    and `tfi2i.runs.load_model` (evaluate, export, translate) share it.
    """
    for path in reversed(list(paths)):
        try:
            restore(path)
            return path
        except fallback_on as err:
            log.warning("checkpoint %s is unreadable (%s); trying the previous one", path, _first_line(err))
    return None


def remove_stale_temp(directory):
    """Deletes ``ckpt-N_temp`` folders (checkpoint writes killed mid-way) in ``directory``; returns their bytes.

    Only the training process holding the run lock may call it: a live writer's
    temporary folder looks the same.
    """
    if not os.path.isdir(directory):
        return 0
    freed = 0
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if _TEMP.match(name) and os.path.isdir(path):
            size = tree_bytes(path)
            shutil.rmtree(path, ignore_errors=True)
            log.warning("removed %s, left by a checkpoint write that was killed (%.1f MB)", path, size / 1e6)
            freed += size
    return freed


def checkpoint_bytes(prefix):
    """Bytes on disk of checkpoint ``prefix`` (its ``.index`` and ``.data-*`` files)."""
    return sum(os.path.getsize(p) for p in tf.io.gfile.glob(prefix + ".*") if os.path.isfile(p))


def tree_bytes(path):
    """Bytes of the files under ``path``."""
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def _first_line(err):
    text = str(getattr(err, "message", None) or err).strip()
    return (text.splitlines() or [type(err).__name__])[0][:300]


def model_objects(model):
    """The trackables a checkpoint stores for a `PairedGAN`: ``generator``, ``discriminator`` and its extra networks.

    One discriminator is stored as itself, several as ``d0, d1, ...`` under
    ``discriminator`` (so pix2pix checkpoints keep the layout they always had).
    ``model.extra_networks`` (``{name: network}``, e.g. pix2pixHD's
    ``encoder``) are stored under their names; a model without any keeps the
    two-entry layout.
    """
    discs = list(model.discriminators)
    discriminator = discs[0] if len(discs) == 1 else tf.train.Checkpoint(**{f"d{i}": d for i, d in enumerate(discs)})
    extra = dict(getattr(model, "extra_networks", None) or {})
    clash = sorted(set(extra) & {"generator", "discriminator"})
    if clash:
        raise ValueError(f"extra_networks may not be named {clash}")
    return {"generator": model.generator, "discriminator": discriminator, **extra}


def _seed_states(objects):
    """The state variables of Keras `SeedGenerator`s (dropout RNGs) inside the given models.

    `tf.train.Checkpoint` does not track them through a Keras model, so they
    are added explicitly; without them a resumed run would replay the first
    dropout masks.
    """
    states = []
    for obj in objects:
        for v in getattr(obj, "variables", []) if hasattr(obj, "layers") else []:
            if "seed_generator_state" in v.path:
                states.append(v)
    return states
