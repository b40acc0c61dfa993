"""Loss terms as pure functions returning one value per example (`[B]`).

Reduction to a scalar happens in exactly one place, `PairedGAN.weighted_sum`,
through `tf.nn.compute_average_loss` (divides by the GLOBAL batch size, so the
sum over replicas under `tf.distribute` equals the single-device mean).

Adversarial losses (`gan_mode`):
* ``vanilla`` (pix2pix, Isola et al. Eq. 1): sigmoid cross-entropy on logits;
  D: ``-log D(x,y) - log(1 - D(x,G(x)))``; G: the non-saturating
  ``-log D(x, G(x))``.
* ``lsgan`` (pix2pixHD): D: ``(D(x,y) - 1)^2 + D(x,G(x))^2``; G: ``(D(x,G(x)) - 1)^2``.
* ``hinge``: D: ``relu(1 - D(x,y)) + relu(1 + D(x,G(x)))``; G: ``-D(x,G(x))``.
"""

import tensorflow as tf

GAN_MODES = ("vanilla", "lsgan", "hinge")


def per_example_mean(t):
    """Mean over every axis but the first: `[B, ...]` -> `[B]` (float32)."""
    t = tf.cast(t, tf.float32)
    return tf.reduce_mean(tf.reshape(t, [tf.shape(t)[0], -1]), axis=1)


def _check(mode):
    if mode not in GAN_MODES:
        raise ValueError(f"unknown gan_mode '{mode}'; valid: {GAN_MODES}")


def d_real_loss(logits, mode="vanilla"):
    """Discriminator loss on real pairs, `[B]`; `logits`: D's patch map."""
    _check(mode)
    logits = tf.cast(logits, tf.float32)
    if mode == "vanilla":
        loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(logits), logits=logits)
    elif mode == "lsgan":
        loss = tf.square(logits - 1.0)
    else:
        loss = tf.nn.relu(1.0 - logits)
    return per_example_mean(loss)


def d_fake_loss(logits, mode="vanilla"):
    """Discriminator loss on generated pairs, `[B]`."""
    _check(mode)
    logits = tf.cast(logits, tf.float32)
    if mode == "vanilla":
        loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(logits), logits=logits)
    elif mode == "lsgan":
        loss = tf.square(logits)
    else:
        loss = tf.nn.relu(1.0 + logits)
    return per_example_mean(loss)


def g_adversarial_loss(logits, mode="vanilla"):
    """Generator's adversarial loss on D's logits for generated pairs, `[B]`."""
    _check(mode)
    logits = tf.cast(logits, tf.float32)
    if mode == "hinge":
        return per_example_mean(-logits)
    return d_real_loss(logits, mode)  # vanilla (non-saturating) and lsgan: "fool D into saying real"


def l1_loss(y, y_fake):
    """pix2pix Eq. 3, ``E ||y - G(x, z)||_1``: mean absolute error per example, `[B]`."""
    return per_example_mean(tf.abs(tf.cast(y, tf.float32) - tf.cast(y_fake, tf.float32)))


def masked_l2_loss(y, y_fake, mask):
    """Context Encoder's reconstruction loss: mean squared error over the masked pixels only, `[B]`.

    ``sum(mask * (y - y_fake)^2) / (sum(mask) * C)`` per example; `mask` is
    ``[B, H, W, 1]`` with 1 inside the hole (Pathak et al. 2016, Eq. 1,
    normalised like their reference code's MSE on the predicted region).
    """
    y, y_fake, mask = (tf.cast(t, tf.float32) for t in (y, y_fake, mask))
    channels = tf.cast(tf.shape(y)[-1], tf.float32)
    sq = tf.reduce_sum(mask * tf.square(y - y_fake), axis=[1, 2, 3])
    return sq / tf.maximum(tf.reduce_sum(mask, axis=[1, 2, 3]) * channels, 1.0)
