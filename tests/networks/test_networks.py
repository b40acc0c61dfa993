"""Golden parameter counts and shapes of the pix2pix networks (junyanz reference numbers)."""

import numpy as np
import pytest
import tensorflow as tf

from tfi2i.networks import patchgan_discriminator, unet_depth, unet_generator


def trainable(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


@pytest.mark.parametrize("norm,expected", [("batch", 54_413_955), ("instance", 54_409_603)])
def test_unet256_parameter_count(norm, expected):
    assert trainable(unet_generator("unet_256", 64, norm)) == expected


@pytest.mark.parametrize("norm,expected", [("batch", 2_768_705), ("instance", 2_767_809)])
def test_patchgan_parameter_count(norm, expected):
    assert trainable(patchgan_discriminator(6, 64, 3, norm)) == expected


def test_patchgan_30x30_map_for_256():
    d = patchgan_discriminator(6, 8, 3, "batch")
    assert d(tf.zeros([2, 256, 256, 6]))[1].shape == (2, 30, 30, 1)


def test_unet_depths_and_sizes():
    assert unet_depth("unet_128") == 7 and unet_depth("unet_256") == 8
    g = unet_generator("unet_256", 4, "instance")
    for shape in [(1, 256, 256, 3), (1, 512, 256, 3), (1, 512, 512, 3)]:
        out = g({"x": tf.zeros(shape)}, training=False)["y"]
        assert out.shape == shape and out.dtype == tf.float32
    with pytest.raises(ValueError):
        unet_depth("resnet_9blocks")


def test_unet_structure_matches_reference():
    g = unet_generator("unet_256", 64, "batch")
    names = [layer.name for layer in g.layers]
    # dropout only in the three decoder blocks next to the innermost one
    assert [n for n in names if "dropout" in n] == ["up7_dropout", "up6_dropout", "up5_dropout"]
    # no normalisation at the 1x1 bottleneck, nor on the outermost down conv
    assert "down8_norm" not in names and "down1_norm" not in names
    lrelu = [layer for layer in g.layers if layer.name.endswith("_lrelu")]
    assert lrelu and all(abs(float(layer.negative_slope) - 0.2) < 1e-7 for layer in lrelu)
    # batch-norm convs carry no bias; the last transposed conv does
    assert g.get_layer("down2").use_bias is False and g.get_layer("up1").use_bias is True
    bn = g.get_layer("down2_norm")
    assert bn.momentum == pytest.approx(0.9) and bn.epsilon == pytest.approx(1e-5)
    # innermost feature map is 1x1 at 256x256
    probe = __import__("keras").Model(g.input, g.get_layer("down8").output)
    assert probe(tf.zeros([1, 256, 256, 3])).shape == (1, 1, 1, 512)


def test_weights_are_normal_0_002():
    g = unet_generator("unet_256", 64, "batch")
    kernel = g.get_layer("down4").kernel.numpy()
    assert abs(kernel.mean()) < 1e-3 and kernel.std() == pytest.approx(0.02, rel=0.05)
    gamma = g.get_layer("down4_norm").gamma.numpy()
    assert gamma.mean() == pytest.approx(1.0, abs=0.01)


def test_instance_norm_is_per_image_per_channel():
    g = unet_generator("unet_5", 4, "instance")
    layer = g.get_layer("down2_norm")
    x = tf.random.normal([2, 8, 8, 8]) * 3.0 + 5.0
    y = layer(x).numpy()
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=(1, 2)), 1.0, atol=1e-2)


def test_patchgan_returns_features():
    d = patchgan_discriminator(6, 4, 3, "instance")
    features, logits = d(tf.zeros([1, 64, 64, 6]))
    outs = [*features, logits]
    assert len(outs) == 5 and outs[-1].shape == (1, 6, 6, 1)
