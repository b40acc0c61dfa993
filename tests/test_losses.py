"""Each loss equation on tiny tensors with hand-computed values."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfi2i import losses

LOGITS = tf.constant([[[[0.0], [2.0]]], [[[-1.0], [1.0]]]])  # [B=2, 1, 2, 1]


def sp(v):  # softplus, by hand
    return math.log1p(math.exp(v))


def test_vanilla_is_binary_cross_entropy():
    # real: -log sigmoid(l) = softplus(-l); fake: -log(1 - sigmoid(l)) = softplus(l)
    np.testing.assert_allclose(losses.d_real_loss(LOGITS, "vanilla"), [(sp(0) + sp(-2)) / 2, (sp(1) + sp(-1)) / 2], rtol=1e-6)
    np.testing.assert_allclose(losses.d_fake_loss(LOGITS, "vanilla"), [(sp(0) + sp(2)) / 2, (sp(-1) + sp(1)) / 2], rtol=1e-6)
    # non-saturating generator loss = real-label BCE on fake logits
    np.testing.assert_allclose(losses.g_adversarial_loss(LOGITS, "vanilla"), losses.d_real_loss(LOGITS, "vanilla"))


def test_lsgan():
    np.testing.assert_allclose(losses.d_real_loss(LOGITS, "lsgan"), [(1 + 1) / 2, (4 + 0) / 2])
    np.testing.assert_allclose(losses.d_fake_loss(LOGITS, "lsgan"), [(0 + 4) / 2, (1 + 1) / 2])
    np.testing.assert_allclose(losses.g_adversarial_loss(LOGITS, "lsgan"), [(1 + 1) / 2, (4 + 0) / 2])


def test_hinge():
    np.testing.assert_allclose(losses.d_real_loss(LOGITS, "hinge"), [(1 + 0) / 2, (2 + 0) / 2])
    np.testing.assert_allclose(losses.d_fake_loss(LOGITS, "hinge"), [(1 + 3) / 2, (0 + 2) / 2])
    np.testing.assert_allclose(losses.g_adversarial_loss(LOGITS, "hinge"), [(0 - 2) / 2, (1 - 1) / 2])


def test_l1_per_example():
    y = tf.constant([[[[0.0, 1.0]]], [[[0.5, -0.5]]]])  # [2, 1, 1, 2]
    y_fake = tf.constant([[[[1.0, 1.0]]], [[[0.0, 0.5]]]])
    np.testing.assert_allclose(losses.l1_loss(y, y_fake), [0.5, 0.75])


def test_unknown_mode():
    with pytest.raises(ValueError, match="gan_mode"):
        losses.d_real_loss(LOGITS, "wgan")
