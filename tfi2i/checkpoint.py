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
previous one is used.
"""

import logging

import tensorflow as tf

log = logging.getLogger("tfi2i")


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

    def save(self, step, epoch):
        self.step.assign(step)
        self.epoch.assign(epoch)
        return self.manager.save(checkpoint_number=step)

    def restore_latest(self):
        """Restores the newest readable checkpoint; returns its path or None when there is none."""
        for path in reversed(self.manager.checkpoints):
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
                return path
            except (tf.errors.OpError, ValueError, AssertionError, IndexError, RuntimeError) as err:
                log.warning("checkpoint %s is unreadable (%s); trying the previous one", path, err)
        return None


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
