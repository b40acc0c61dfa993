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
