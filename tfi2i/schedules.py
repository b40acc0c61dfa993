"""Learning-rate schedules."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfi2i")
class Pix2PixLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant for `n_epochs`, then linear decay towards 0 over `n_epochs_decay`.

    Exactly the reference rule (junyanz `get_scheduler(lr_policy="linear")`,
    `epoch_count=1`), applied per epoch: during 0-based epoch ``e``
    ``lr = base * (1 - max(0, e + 1 - n_epochs) / (n_epochs_decay + 1))``;
    so the last of 100 + 100 epochs runs at ``base / 101``. The position is
    the optimizer's step counter, which is checkpointed, so a resumed run
    continues the schedule where it stopped.
    """

    def __init__(self, base_lr, steps_per_epoch, n_epochs=100, n_epochs_decay=100):
        self.base_lr = float(base_lr)
        self.steps_per_epoch = int(steps_per_epoch)
        self.n_epochs = int(n_epochs)
        self.n_epochs_decay = int(n_epochs_decay)

    def __call__(self, step):
        epoch = tf.cast(tf.math.floordiv(tf.cast(step, tf.int64), self.steps_per_epoch), tf.float32)
        decay = tf.maximum(0.0, epoch + 1.0 - self.n_epochs) / float(self.n_epochs_decay + 1)
        return self.base_lr * tf.maximum(0.0, 1.0 - decay)

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "steps_per_epoch": self.steps_per_epoch,
            "n_epochs": self.n_epochs,
            "n_epochs_decay": self.n_epochs_decay,
        }
