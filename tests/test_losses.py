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


def test_absolute_has_tf_abs_gradient_and_keeps_only_the_sign_for_it():
    x = tf.constant([-2.0, -0.0, 0.0, 1e-30, 3.5, -1e-30])
    dy = tf.constant([1.0, 2.0, 3.0, 4.0, 5.0, -6.0])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours, theirs = losses.absolute(x), tf.abs(x)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(tape.gradient(ours, x, dy), tape.gradient(theirs, x, dy))
    np.testing.assert_array_equal(tape.gradient(ours, x, dy), [-1.0, 0.0, 0.0, 4.0, 5.0, 6.0])  # dy * sign(x)

    @tf.function
    def grad(a, b):
        with tf.GradientTape() as t:
            t.watch(a)
            loss = tf.reduce_sum(losses.absolute(tf.identity(a - b, name="diff")))
        return t.gradient(loss, a)

    graph = grad.get_concrete_function(tf.TensorSpec([4]), tf.TensorSpec([4])).graph
    diff = graph.get_operation_by_name("diff").outputs[0]
    # the backward pass reads the int8 sign, not the float32 difference (which is freed after the forward pass);
    # IdentityN is tf.custom_gradient's marker op, and its copy of the difference has no consumer
    assert sorted(op.type for op in diff.consumers()) == ["Abs", "IdentityN", "Sign"]
    marker = next(op for op in diff.consumers() if op.type == "IdentityN")
    assert all(not marker.outputs[i].consumers() for i, t in enumerate(marker.inputs) if t is diff)
    sign = next(op for op in diff.consumers() if op.type == "Sign").outputs[0].consumers()[0].outputs[0]
    assert sign.dtype == tf.int8 and [op.type for op in sign.consumers()] == ["Cast"]  # the backward pass's dy * sign


def test_unknown_mode():
    with pytest.raises(ValueError, match="gan_mode"):
        losses.d_real_loss(LOGITS, "wgan")


# ----------------------------------------------------------------------------- feature matching
# layer 1 [B=2, 1, 2, 1]: |diff| ex0 (1, 2), ex1 (0, 2); layer 2 [2, 1, 1, 3]: |diff| ex0 (1, 1, 1), ex1 (2, 0, 0)
FAKE = [tf.constant([[[[1.0], [3.0]]], [[[0.0], [-2.0]]]]), tf.constant([[[[1.0, 1.0, 1.0]]], [[[2.0, 0.0, 0.0]]]])]
REAL = [tf.constant([[[[0.0], [1.0]]], [[[0.0], [0.0]]]]), tf.zeros([2, 1, 1, 3])]


def test_feature_matching_by_hand():
    # L1 means: layer 1 (1.5, 1), layer 2 (1, 2/3); squared: layer 1 (2.5, 2), layer 2 (1, 4/3)
    np.testing.assert_allclose(losses.feature_matching_loss(FAKE, REAL, [0.5, 3.0]), [0.75 + 3, 0.5 + 2], rtol=1e-6)
    np.testing.assert_allclose(losses.feature_matching_loss(FAKE, REAL, [0.5, 3.0], "l2"), [1.25 + 3, 1 + 4], rtol=1e-6)
    np.testing.assert_allclose(losses.feature_matching_loss(FAKE, REAL), [1.5 + 1, 1 + 2 / 3], rtol=1e-6)
    # torch's L1Loss averages over the batch too: for equal-size examples the batch mean is the same number
    np.testing.assert_allclose(tf.reduce_mean(losses.feature_matching_loss(FAKE[:1], REAL[:1])), 1.25)
    with pytest.raises(ValueError, match="weights"):
        losses.feature_matching_loss(FAKE, REAL, [1.0])
    with pytest.raises(ValueError, match="distance"):
        losses.feature_matching_loss(FAKE, REAL, distance="l3")


def test_feature_matching_gradient_skips_real_features_and_zero_weights():
    fake, real = [tf.Variable(t) for t in FAKE], [tf.Variable(t) for t in REAL]
    with tf.GradientTape(persistent=True) as tape:
        loss = tf.reduce_sum(losses.feature_matching_loss(fake, real, [0.5, 0.0]))
    assert all(g is None for g in tape.gradient(loss, real))  # real features are constants
    g1, g2 = tape.gradient(loss, fake)
    np.testing.assert_allclose(g1, 0.5 * np.sign(FAKE[0] - REAL[0]) / 2)  # w * sign(diff) / element count
    assert g2 is None  # weight 0: layer not computed
    # a zero-weight layer is skipped, even one whose shapes would not match
    out = losses.feature_matching_loss([FAKE[0], tf.ones([2, 3])], [REAL[0], tf.ones([2, 5])], [1.0, 0])
    np.testing.assert_allclose(out, [1.5, 1.0])


def test_multiscale_feature_matching_is_pix2pixhd_loss_g_gan_feat():
    # two Ds returning (features, logits); the logits differ wildly and are not matched
    d_fake = [(FAKE, tf.fill([2, 1, 1, 1], 100.0)), (FAKE[::-1], tf.fill([2, 1, 1, 1], -100.0))]
    d_real = [(REAL, tf.zeros([2, 1, 1, 1])), (REAL[::-1], tf.zeros([2, 1, 1, 1]))]
    per_d = np.array([1.5 + 1, 1 + 2 / 3])  # each D: sum of its layers' L1 means
    # n_layers_D = 3 (pix2pixHD default): D_weights * feat_weights = 1/2 * 4/4
    np.testing.assert_allclose(losses.multiscale_feature_matching_loss(d_fake, d_real, 3), 2 * 0.5 * per_d, rtol=1e-6)
    np.testing.assert_allclose(losses.multiscale_feature_matching_loss(d_fake, d_real, 1), 2 * 1.0 * per_d, rtol=1e-6)
    # features lists alone work the same
    np.testing.assert_allclose(
        losses.multiscale_feature_matching_loss([FAKE, FAKE], [REAL, REAL], 3), 2 * 0.5 * per_d, rtol=1e-6
    )


def test_vgg_loss_weights():
    fake = [tf.ones([2, 2, 2, 1])] * 5
    real = [tf.zeros([2, 2, 2, 1])] * 5
    np.testing.assert_allclose(losses.vgg_loss(fake, real), [1 / 32 + 1 / 16 + 1 / 8 + 1 / 4 + 1] * 2)
