"""The frozen VGG-19 of pix2pixHD's VGG loss (random weights only) and the offline-weights helper."""

import urllib.error

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfi2i import losses, pretrained
from tfi2i.networks.vgg import VGG19_FEATURE_LAYERS, VGGInputMapping, vgg19_features

# VGG-19 (configuration E) up to block5_conv1: (c_in, c_out) of each 3x3 conv
VGG19_CONVS_TO_RELU5_1 = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256)] + [(256, 256)] * 3 + [(256, 512)] + [
    (512, 512)
] * 4


@pytest.fixture(scope="module")
def vgg():
    return vgg19_features(weights=None, input_shape=(32, 48, 3))


def test_parameter_count_golden(vgg):
    by_hand = sum(3 * 3 * cin * cout + cout for cin, cout in VGG19_CONVS_TO_RELU5_1)
    assert by_hand == 12_944_960
    assert vgg.count_params() == by_hand
    assert vgg.trainable_weights == [] and not vgg.trainable  # frozen
    convs = [l for l in vgg.get_layer("vgg19_to_relu5_1").layers if isinstance(l, keras.layers.Conv2D)]
    assert [l.name for l in convs][-1] == "block5_conv1" and len(convs) == 13
    assert all(l.activation is keras.activations.relu for l in convs)  # outputs are the relu*_1 activations


def test_output_shapes(vgg):
    x = tf.random.stateless_uniform([2, 32, 48, 3], seed=[0, 1], minval=-1, maxval=1)
    outs = vgg(x)
    assert [tuple(o.shape) for o in outs] == [
        (2, 32, 48, 64), (2, 16, 24, 128), (2, 8, 12, 256), (2, 4, 6, 512), (2, 2, 3, 512)
    ]
    assert all(o.dtype == tf.float32 and float(tf.reduce_min(o)) >= 0 for o in outs)  # ReLU outputs
    assert len(VGG19_FEATURE_LAYERS) == len(losses.VGG_LOSS_WEIGHTS) == 5


def test_gradient_reaches_the_image_not_the_weights(vgg):
    x = tf.Variable(tf.random.stateless_uniform([1, 32, 48, 3], seed=[1, 1], minval=-1, maxval=1))
    y = tf.zeros([1, 32, 48, 3])
    with tf.GradientTape() as tape:
        loss = losses.vgg_loss(vgg(x), vgg(y))
    grads = tape.gradient(loss, [x] + vgg.weights)
    assert grads[0] is not None and float(tf.reduce_sum(tf.abs(grads[0]))) > 0
    assert len(grads) == 1 + 26 and loss.shape == (1,)


def test_input_mappings():
    x = tf.constant([[[[-1.0, 0.0, 1.0], [0.5, -0.5, 0.25]]]])  # RGB in [-1, 1]
    preprocess = keras.applications.vgg19.preprocess_input  # caffe: RGB->BGR, minus the BGR mean
    np.testing.assert_allclose(VGGInputMapping("caffe")(x), preprocess(127.5 * (x.numpy() + 1)), atol=1e-4)
    torch_view = 255 * (np.array([0.485, 0.456, 0.406]) + np.array([0.229, 0.224, 0.225]) * x.numpy())
    np.testing.assert_allclose(VGGInputMapping("pix2pixhd")(x), preprocess(torch_view.astype(np.float32)), atol=1e-4)
    np.testing.assert_array_equal(VGGInputMapping("none")(x), x)
    with pytest.raises(ValueError, match="mapping"):
        VGGInputMapping("torch")
    clone = VGGInputMapping.from_config(VGGInputMapping("caffe").get_config())
    assert clone.mode == "caffe"


def _offline(*args, **kwargs):
    raise Exception(  # what keras.utils.get_file raises when the host cannot be reached
        f"URL fetch failure on https://storage.googleapis.com/...: None -- {urllib.error.URLError('no network')}"
    )


def test_imagenet_weights_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras.utils, "get_file", _offline)
    with pytest.raises(pretrained.WeightsUnavailableError) as info:
        vgg19_features("imagenet", how_to_pass="--vgg-weights PATH")
    msg = str(info.value)
    assert "VGG19" in msg and pretrained.KERAS_WEIGHTS["VGG19"].file in msg
    assert str(tmp_path / "models") in msg and "--vgg-weights PATH" in msg
    with pytest.raises(pretrained.WeightsUnavailableError, match="weights='/path/to/vgg19_weights"):
        vgg19_features("imagenet")  # the default hint: the Python argument
    with pytest.raises(pretrained.WeightsUnavailableError, match="not found"):
        vgg19_features(str(tmp_path / "nope.h5"))


def test_pretrained_helper_names_the_model_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras.utils, "get_file", _offline)
    for model, spec in pretrained.KERAS_WEIGHTS.items():
        with pytest.raises(pretrained.WeightsUnavailableError) as info:
            pretrained.resolve_weights(model, "imagenet", how_to_pass="--x-weights PATH")
        assert model in str(info.value) and spec.file in str(info.value) and "--x-weights PATH" in str(info.value)
    assert pretrained.resolve_weights("VGG19", None) is None and pretrained.resolve_weights("VGG19", "none") is None
    with pytest.raises(ValueError, match="known"):
        pretrained.resolve_weights("ResNet50", "imagenet")


# ----------------------------------------------------------------- vgg_l1_loss: autodiff's numbers, a later backward
@pytest.mark.parametrize("layers,recompute", [("all", False), ("pix2pixhd", False), ("all", True)])
def test_vgg_l1_loss_is_feature_matching_over_vgg_with_the_same_gradient(layers, recompute):
    from tfi2i.networks.vgg import VGG19_CONV_LAYERS, vgg_l1_loss

    keras.utils.set_random_seed(0)
    names, weights = (VGG19_CONV_LAYERS, None) if layers == "all" else (VGG19_FEATURE_LAYERS, losses.VGG_LOSS_WEIGHTS)
    net = vgg19_features(None, layers=names)
    rng = np.random.default_rng(0)
    fake, real = (tf.constant(rng.uniform(-1, 1, (2, 32, 48, 3)).astype(np.float32)) for _ in range(2))

    @tf.function(autograph=False)
    def both(fake):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(fake)
            ours = vgg_l1_loss(net, fake, real, weights, recompute=recompute)
            autodiff = losses.feature_matching_loss(net(fake, training=False), net(real, training=False), weights)
            seed = tf.constant([1.0, -3.0])  # a different dL/dloss per example
        return ours, autodiff, tape.gradient(ours, fake, seed), tape.gradient(autodiff, fake, seed)

    ours, autodiff, g_ours, g_autodiff = both(fake)
    np.testing.assert_allclose(ours, autodiff, rtol=1e-6)
    assert np.abs(g_autodiff).max() > 0
    np.testing.assert_allclose(g_ours, g_autodiff, rtol=1e-5, atol=1e-7 * np.abs(g_autodiff).max())
    with pytest.raises(ValueError, match="weights"):
        vgg_l1_loss(net, fake, real, [1.0])


@pytest.mark.parametrize("recompute", [False, True])
def test_vgg_l1_loss_makes_each_layers_gradient_when_the_backward_pass_reaches_it(recompute):
    from tests.helpers import waits_for
    from tfi2i.networks.vgg import vgg_l1_loss

    net = vgg19_features(None, layers=VGG19_FEATURE_LAYERS)
    fake = tf.zeros([1, 32, 32, 3])

    @tf.function(autograph=False)
    def grad(fake):
        with tf.GradientTape() as tape:
            tape.watch(fake)
            loss = vgg_l1_loss(net, fake, tf.ones([1, 32, 32, 3]), recompute=recompute)
        return tape.gradient(loss, fake)

    ops = grad.get_concrete_function(fake).graph.get_operations()
    backprops = [op for op in ops if op.type == "Conv2DBackpropInput"]
    assert len(backprops) == 13  # one per convolution, the first for the image
    deepest = backprops[0]
    # autodiff's form: each layer's sign(diff) * dL/dmean exists as soon as the forward pass has made it; here all
    # but the deepest layer's wait for the deepest backward convolution (the backward pass starts at the top)
    per_layer = [op for op in ops if op.type == "Mul" and any(t.dtype == tf.float32 and t.op.type == "Cast"
                                                               and t.op.inputs[0].dtype == tf.int8 for t in op.inputs)]
    assert len(per_layer) == len(VGG19_FEATURE_LAYERS)
    assert sum(waits_for(op, deepest.name) for op in per_layer) == len(VGG19_FEATURE_LAYERS) - 1
    # recompute: 13 convolutions again, those of blocks 1-4 (12) after the backward pass has left block 5
    convs = [op for op in ops if op.type == "Conv2D"]
    assert len(convs) == 2 * 13 + 13 * recompute
    assert sum(waits_for(op, deepest.name) for op in convs) == 12 * recompute
