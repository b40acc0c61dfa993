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

Feature matching (`feature_matching_loss`, one implementation for two papers):
``sum_l w_l * mean_{H,W,C} d(phi_l(fake), sg(phi_l(real)))`` with ``d`` = L1 or
squared L2 and ``sg`` the stop-gradient. It serves PAN's Eq. 8 perceptual loss
(squared L2 over D_high's activations, betas; `tfi2i.pan.perceptual_loss`),
pix2pixHD's ``loss_G_GAN_Feat`` (L1 over the multi-scale D's intermediate
layers; `multiscale_feature_matching_loss`) and pix2pixHD's ``VGGLoss`` (L1
over VGG-19 relu1_1..relu5_1; `vgg_loss`, features from
`tfi2i.networks.vgg.vgg19_features`). PyTorch's ``L1Loss`` / ``MSELoss``
average over the batch as well; these functions return the per-example means,
which `PairedGAN.weighted_sum` averages over the global batch: the same number
for equal-size examples.
"""

import tensorflow as tf

GAN_MODES = ("vanilla", "lsgan", "hinge")
FEATURE_DISTANCES = ("l1", "l2")
VGG_LOSS_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
"""pix2pixHD ``VGGLoss.weights`` for relu1_1 .. relu5_1 (``models/networks.py``)."""


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


@tf.custom_gradient
def absolute(x):
    """``|x|`` whose backward pass keeps ``sign(x)`` as int8 instead of ``x`` (a quarter of float32's memory).

    The gradient is TensorFlow's own for ``tf.abs``, ``dy * sign(x)`` (0 at 0),
    bit for bit. An L1 over feature maps keeps one difference per layer alive
    until the backward pass (the discriminators' feature matching; VGG-19's
    L1 has a backward pass of its own, `tfi2i.networks.vgg.vgg_l1_loss`).
    """
    sign = tf.cast(tf.sign(x), tf.int8)
    return tf.abs(x), lambda dy: dy * tf.cast(sign, dy.dtype)


def l1_loss(y, y_fake):
    """pix2pix Eq. 3, ``E ||y - G(x, z)||_1``: mean absolute error per example, `[B]`."""
    return per_example_mean(absolute(tf.cast(y, tf.float32) - tf.cast(y_fake, tf.float32)))


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


def _is_zero(w):
    return isinstance(w, (int, float)) and w == 0


def feature_matching_loss(fake_features, real_features, weights=None, distance="l1"):
    """``sum_l w_l * mean_{H,W,C} d(fake_l, stop_gradient(real_l))`` per example, `[B]`.

    The mean over every axis but the batch is the division by a layer's element
    count ``C_l H_l W_l`` (PAN Eq. 8; PyTorch's ``L1Loss`` per example). The real
    features are constants: no gradient reaches them (nor what produced them).

    Args:
      fake_features: list of ``[B, ...]`` tensors (e.g. a D's activations on the fake pair).
      real_features: list of tensors of the same shapes (on the real pair).
      weights: one weight per layer (Python numbers or scalar tensors); ``None``
        = all 1. A layer whose weight is the number 0 is skipped (not computed).
      distance: ``"l1"`` (``|a - b|``: pix2pixHD) or ``"l2"`` (``(a - b)^2``: PAN Eq. 8).

    Returns:
      float32 `[B]`.

    Raises:
      ValueError: the lists (and weights) differ in length or are empty, or an unknown `distance`.
    """
    if distance not in FEATURE_DISTANCES:
        raise ValueError(f"unknown feature distance '{distance}'; valid: {FEATURE_DISTANCES}")
    fake_features, real_features = list(fake_features), list(real_features)
    weights = [1.0] * len(fake_features) if weights is None else list(weights)
    if not fake_features or len(fake_features) != len(real_features) or len(weights) != len(fake_features):
        raise ValueError(
            f"feature matching: {len(fake_features)} fake feature layers, {len(real_features)} real, "
            f"{len(weights)} weights (need the same, at least 1)"
        )
    total = tf.zeros([tf.shape(fake_features[0])[0]], tf.float32)
    for w, f, r in zip(weights, fake_features, real_features):
        if _is_zero(w):
            continue
        diff = tf.cast(f, tf.float32) - tf.stop_gradient(tf.cast(r, tf.float32))
        d = absolute(diff) if distance == "l1" else tf.square(diff)
        total = total + tf.cast(w, tf.float32) * per_example_mean(d)
    return total


def _features_of(out):
    """A discriminator's intermediate features: ``out`` is its ``(features, logits)`` pair or the features list."""
    out = list(out)
    if len(out) == 2 and isinstance(out[0], (list, tuple)):
        return list(out[0])
    return out


def multiscale_feature_matching_loss(d_fake, d_real, n_layers_d=3, distance="l1"):
    """pix2pixHD's ``loss_G_GAN_Feat`` without ``lambda_feat``, `[B]`.

    ``sum_i sum_{j < last} (1 / num_D) * (4 / (n_layers_D + 1)) * L1(pred_fake[i][j], sg(pred_real[i][j]))``
    (NVIDIA/pix2pixHD ``models/pix2pixHD_model.py``): for every discriminator
    ``i`` of the multi-scale D and every intermediate output ``j`` (all but the
    logits), with ``D_weights = 1/num_D`` and ``feat_weights = 4/(n_layers_D+1)``.
    Multiply by ``lambda_feat`` (10) through the term's weight in the config.

    Args:
      d_fake: one entry per discriminator (``num_D`` of them) on the fake pair:
        its ``(features, logits)`` pair, as every discriminator of the package
        returns (the ``n_layers_D + 1`` LeakyReLU activations, then the logits,
        which are not matched), or the ``features`` list alone.
      d_real: the same on the real pair (treated as constants).
      n_layers_d: the discriminators' ``n_layers`` (pix2pixHD ``--n_layers_D``, 3).
      distance: ``"l1"`` (pix2pixHD) or ``"l2"``.

    Returns:
      float32 `[B]`.
    """
    d_fake, d_real = list(d_fake), list(d_real)
    if not d_fake or len(d_fake) != len(d_real):
        raise ValueError(f"feature matching: {len(d_fake)} fake discriminator outputs, {len(d_real)} real")
    weight = (1.0 / len(d_fake)) * (4.0 / (n_layers_d + 1))
    total = 0.0
    for fake, real in zip(d_fake, d_real):
        fake, real = _features_of(fake), _features_of(real)
        total = total + feature_matching_loss(fake, real, [weight] * len(fake), distance)
    return total


def vgg_loss(fake_features, real_features, weights=VGG_LOSS_WEIGHTS):
    """pix2pixHD's ``VGGLoss`` without ``lambda_feat``: ``sum_l w_l * L1(phi_l(G(x)), sg(phi_l(y)))``, `[B]`.

    `fake_features` / `real_features`: the five VGG-19 activations relu1_1 ..
    relu5_1 of G(x) and y (`tfi2i.networks.vgg.vgg19_features`); `weights`
    default ``[1/32, 1/16, 1/8, 1/4, 1]``. pix2pixHD multiplies the sum by
    ``lambda_feat`` (10): the term's weight in the config.
    """
    return feature_matching_loss(fake_features, real_features, weights, distance="l1")
