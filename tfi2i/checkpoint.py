"""Resumable training state: both networks, both optimizers, step and epoch.

A `tf.train.Checkpoint` over the generator, the discriminator(s), both
optimizers (Adam moments, their step counters = the LR schedule position) and
the run's step/epoch counters and the dropout RNG states. Data order and augmentation are pure functions
of ``(seed, step)`` (see `tfi2i.data.pipeline`) and the dropout RNGs are Keras
`SeedGenerator` variables inside the networks, so they are restored too.

Atomicity: TensorFlow writes a checkpoint's files first and updates the
``checkpoint`` index file last (itself with an atomic rename), so a crash
mid-write leaves the previous checkpoint as the latest. Old checkpoints are
deleted here, not by `tf.train.CheckpointManager` (whose ``max_to_keep``
sweep runs as soon as the new files are registered, so with
``keep_checkpoints=1`` a new checkpoint that cannot be read back, e.g. cut
short by a full disk, would be the only one left): each new checkpoint is
read back in full (every tensor, with its checksum) and only then are the
ones beyond the newest ``keep`` deleted; one that cannot be read back is
removed, the previous ones stay, and `TrainingState.save` raises
(`CheckpointWriteError`, or ``OSError(ENOSPC)`` when the disk is full, which
training reports as a full disk). On restore, a latest checkpoint that
cannot be read (e.g. a disk filled up) is reported and the previous one is used (`restore_newest_readable`, shared by resume and
`tfi2i.runs.load_model`). A write killed mid-way leaves a ``ckpt-N_temp``
folder; nothing reads it and `remove_stale_temp` deletes it when the next
training process starts (under the run lock).
"""

import errno
import logging
import os
import re
import shutil

import tensorflow as tf

log = logging.getLogger("tfi2i")

#: What reading a truncated or half-written checkpoint raises (TF's read errors, ``Read less bytes than requested``).
UNREADABLE = (tf.errors.OpError, ValueError, IndexError, RuntimeError)
_TEMP = re.compile(r"^ckpt-\d+_temp$")
_FILE = re.compile(r"^ckpt-(\d+)\.(?:index|data-\d{5}-of-\d{5})$")


class CheckpointWriteError(ValueError):
    """A checkpoint was written but cannot be read back; it was removed and the previous ones kept."""


class TrainingState:
    """Checkpointed state of a run.

    Args:
      directory: ``<workdir>/checkpoints``.
      keep: how many recent checkpoints to keep (at least 1); older ones are
        deleted only once a new one has been read back in full.
      **objects: trackables to save (``generator=G, discriminator=D, ...``).
    """

    def __init__(self, directory, keep=3, **objects):
        if int(keep) < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.keep = int(keep)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        rng = {f"s{i}": v for i, v in enumerate(_seed_states(objects.values()))}
        self.checkpoint = tf.train.Checkpoint(step=self.step, epoch=self.epoch, rng=tf.train.Checkpoint(**rng), **objects)
        # max_to_keep=None: the manager deletes nothing; `save` trims to `keep` after reading the new one back.
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=None)
        self._good = None  # (path, step) of the checkpoint restored or last written by this process

    def save(self, step, epoch):
        """Writes checkpoint ``step``, reads it back, then deletes all but the newest `keep`; returns its path.

        Raises:
          OSError: ``ENOSPC`` when the new checkpoint cannot be read back and
            the disk has less free space than a checkpoint takes.
          CheckpointWriteError: it cannot be read back otherwise.
          In both cases the new checkpoint's files are removed and the index
          names the previous checkpoint again; nothing else is deleted.
        """
        self.step.assign(step)
        self.epoch.assign(epoch)
        path = self.manager.save(checkpoint_number=step)
        try:
            read_back(path)
        except UNREADABLE as err:
            error = self._unreadable_error(path, err)  # free space measured before the files are removed
            self._discard(path)
            raise error from err
        self._good = (path, int(step))
        self._trim()
        return path

    def _discard(self, path):
        """Forgets checkpoint ``path`` (the index names the previous one again) and deletes its files."""
        manager = self.manager
        manager._maybe_delete.pop(path, None)  # the manager's list of checkpoints (TF has no public API for this)
        manager._latest_checkpoint = manager.checkpoints[-1] if manager.checkpoints else None
        if manager.checkpoints:
            manager._record_state()
        else:
            _remove(os.path.join(manager.directory, "checkpoint"))
        _delete_checkpoint_files(path)

    def _trim(self):
        """Deletes the checkpoints beyond the newest `keep` (the index first), and files of ones no index lists."""
        manager = self.manager
        surplus = manager.checkpoints[: -self.keep]
        if surplus:
            for path in surplus:
                manager._maybe_delete.pop(path, None)
            manager._record_state()
            for path in surplus:
                _delete_checkpoint_files(path)
        # Files of older checkpoints that a process killed between the index update and the deletion left behind.
        kept = {os.path.basename(p) for p in manager.checkpoints}
        oldest = min((_number(p) for p in kept), default=None)
        for name in os.listdir(manager.directory) if oldest is not None else ():
            match = _FILE.match(name)
            if match and f"ckpt-{match.group(1)}" not in kept and int(match.group(1)) < oldest:
                _remove(os.path.join(manager.directory, name))

    def _unreadable_error(self, path, err):
        previous = self._good
        if previous is None or previous[0] == path:
            older = [p for p in self.manager.checkpoints if p != path]
            previous = (older[-1], _number(older[-1])) if older else None
        kept = (f"the previous checkpoint, {previous[0]} (step {previous[1]}), is kept" if previous else
                "no earlier checkpoint exists")
        try:
            free = shutil.disk_usage(self.manager.directory).free
        except OSError:
            free = None
        needed = max(checkpoint_bytes(previous[0]) if previous else 0, 1 << 20)
        text = (f"checkpoint {path} was written but cannot be read back ({_first_line(err)}); it was removed and "
                f"{kept}")
        if free is not None and free < needed:  # a full disk (what cut the write short)
            return OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}: {text}")
        return CheckpointWriteError(f"{text}; check the disk of {self.manager.directory}, then continue with --resume")

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


def read_back(path):
    """Reads every tensor of checkpoint ``path`` (each one's checksum is checked); one of `UNREADABLE` if one fails."""
    reader = tf.train.load_checkpoint(path)
    for key in reader.get_variable_to_dtype_map():
        reader.get_tensor(key)


def _delete_checkpoint_files(path):
    """Deletes ``path.index`` and ``path.data-*`` of checkpoint prefix ``path``."""
    for name in tf.io.gfile.glob(path + ".index") + tf.io.gfile.glob(path + ".data-?????-of-?????"):
        _remove(name)


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _number(path):
    """``N`` of ``.../ckpt-N``."""
    return int(os.path.basename(path).rsplit("-", 1)[1])


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
