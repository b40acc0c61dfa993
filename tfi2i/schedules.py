"""Learning-rate schedules."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfi2i")
class Pix2PixLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """The reference's ``linear`` policy: constant, then linear decay to 0, per epoch.

    junyanz `get_scheduler(lr_policy="linear")` (models/networks.py) wraps
    ``lambda_rule(epoch) = 1 - max(0, epoch + epoch_count - n_epochs) /
    (n_epochs_decay + 1)`` in a ``torch.optim.lr_scheduler.LambdaLR``; the
    scheduler's own counter is the ``epoch`` it passes (0 after construction,
    +1 per ``scheduler.step()``). Which value an epoch trains with depends on
    where train.py calls ``model.update_learning_rate()`` (= ``step()``):

    * versions since July 2020 (the ones in use; issue #1100 is the PyTorch
      warning "lr_scheduler.step() before optimizer.step()" this order causes)
      call it at the **start** of every epoch, so 1-based epoch ``E`` trains
      with ``lambda_rule(E)``: with ``epoch_count = 1``, 100 + 100 epochs run
      at base for epochs 1..99, ``base * (1 - k/101)`` for epoch ``99 + k``,
      and the last epoch (200) at exactly 0;
    * 2017-2020 versions (the train.py of 2017/2018 calls it after the epoch's
      iterations) trained epoch ``E`` with ``lambda_rule(E - 1)``: the last
      epoch at base / 101.

    We follow the current order (the first value ``lambda_rule(0)`` is never
    used, as in PyTorch). Checked with torch 2.13's ``LambdaLR`` stepped at
    the start of each epoch (tests/reference/make_pix2pix_fixtures.py: factors
    1, 2/3, 1/3 for n_epochs 2, n_epochs_decay 2). Here ``E = floor(step / steps_per_epoch) + 1`` and
    ``epoch_count = 1``; a resumed run continues from the optimizer's step
    counter, which is checkpointed.

    ``total_steps`` (``optim.fit_to_run``): when given, the ``n_epochs +
    n_epochs_decay`` "epochs" are stretched or squeezed onto ``total_steps``
    steps with the same proportions, ``E = ceil((step + 1) * N / total_steps)``
    with ``N = n_epochs + n_epochs_decay`` (the plain rule when ``total_steps
    = N * steps_per_epoch``; the last step is always epoch ``N``, at 0).
    """

    def __init__(self, base_lr, steps_per_epoch, n_epochs=100, n_epochs_decay=100, total_steps=None):
        self.base_lr = float(base_lr)
        self.steps_per_epoch = int(steps_per_epoch)
        self.n_epochs = int(n_epochs)
        self.n_epochs_decay = int(n_epochs_decay)
        self.total_steps = None if total_steps is None else int(total_steps)
        if self.total_steps is not None and self.total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")

    def epoch(self, step):
        """The 1-based epoch ``E`` whose rate the 0-based `step` uses (int64)."""
        step = tf.cast(step, tf.int64)
        if self.total_steps is None:
            return tf.math.floordiv(step, self.steps_per_epoch) + 1
        n = self.n_epochs + self.n_epochs_decay
        return tf.math.floordiv((step + 1) * n + self.total_steps - 1, self.total_steps)

    def factor(self, epoch):
        """``lambda_rule(epoch)`` clipped at 0 (float32)."""
        epoch = tf.cast(epoch, tf.float32)
        decay = tf.maximum(0.0, epoch + 1.0 - self.n_epochs) / float(self.n_epochs_decay + 1)
        return tf.maximum(0.0, 1.0 - decay)

    def __call__(self, step):
        return self.base_lr * self.factor(self.epoch(step))

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "steps_per_epoch": self.steps_per_epoch,
            "n_epochs": self.n_epochs,
            "n_epochs_decay": self.n_epochs_decay,
            "total_steps": self.total_steps,
        }


@keras.saving.register_keras_serializable(package="tfi2i")
class Pix2PixHDLinearDecay(Pix2PixLinearDecay):
    """NVIDIA pix2pixHD's rule: ``niter`` epochs at the base rate, then ``lr / niter_decay`` less after each epoch.

    ``train.py`` calls ``update_learning_rate()`` at the *end* of every epoch
    ``E > niter`` (``lr = old_lr - opt.lr / opt.niter_decay``), so 1-based
    epoch ``E`` trains with ``base * (1 - max(0, E - 1 - niter) / niter_decay)``:
    epochs 1 .. niter + 1 at the base rate, the last one (``niter +
    niter_decay``) at ``base / niter_decay`` (never 0). NVIDIA/pix2pixHD
    ``train.py`` and ``models/pix2pixHD_model.py`` (``update_learning_rate``),
    commit 14b3b3c. Epoch mapping and ``total_steps`` as `Pix2PixLinearDecay`
    (``n_epochs`` = ``niter``, ``n_epochs_decay`` = ``niter_decay``).
    """

    def factor(self, epoch):
        epoch = tf.cast(epoch, tf.float32)
        if self.n_epochs_decay == 0:
            return tf.ones_like(epoch)
        decay = tf.maximum(0.0, epoch - 1.0 - self.n_epochs) / float(self.n_epochs_decay)
        return tf.maximum(0.0, 1.0 - decay)


#: ``optim.decay_rule`` -> schedule class.
DECAY_RULES = {"pix2pix": Pix2PixLinearDecay, "pix2pixhd": Pix2PixHDLinearDecay}


def linear_decay(rule, base_lr, steps_per_epoch, n_epochs, n_epochs_decay, total_steps=None):
    """The schedule of ``optim.decay_rule`` `rule` (``pix2pix``: junyanz's; ``pix2pixhd``: NVIDIA's)."""
    if rule not in DECAY_RULES:
        raise ValueError(f"unknown decay rule {rule!r}; valid: {', '.join(DECAY_RULES)}")
    return DECAY_RULES[rule](base_lr, steps_per_epoch, n_epochs, n_epochs_decay, total_steps=total_steps)
