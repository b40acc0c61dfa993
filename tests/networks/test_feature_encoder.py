"""pix2pixHD feature encoder E (NVIDIA `networks.Encoder`): layers, PyTorch alignment, instance averaging."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfi2i.layers import ReflectionPad2D, torch_bias_init
from tfi2i.networks.feature_encoder import feature_encoder, instance_average


def trainable(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


# ---- NumPy references of PyTorch's ops (NHWC activations) -------------------------------------


def np_conv2d(x, kernel, bias, stride=1, padding=0):
    """``F.conv2d`` with Keras kernel layout ``[kh, kw, in, out]``, zero padding on all four sides."""
    x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    k = kernel.shape[0]
    h_out = (x.shape[1] - k) // stride + 1
    w_out = (x.shape[2] - k) // stride + 1
    out = np.zeros((x.shape[0], h_out, w_out, kernel.shape[-1]))
    for ki in range(k):
        for kj in range(k):
            patch = x[:, ki : ki + stride * (h_out - 1) + 1 : stride, kj : kj + stride * (w_out - 1) + 1 : stride]
            out += patch @ kernel[ki, kj]
    return out + bias


def np_conv_transpose2d(x, weight, bias, stride, padding, output_padding):
    """``F.conv_transpose2d`` by its definition: weight in PyTorch layout ``[in, out, kh, kw]``."""
    b, h, w, _ = x.shape
    k = weight.shape[-1]
    full = np.zeros((b, (h - 1) * stride + k + output_padding, (w - 1) * stride + k + output_padding, weight.shape[1]))
    for i in range(h):
        for j in range(w):
            for ki in range(k):
                for kj in range(k):
                    full[:, i * stride + ki, j * stride + kj] += x[:, i, j] @ weight[:, :, ki, kj]
    h_out = (h - 1) * stride - 2 * padding + k + output_padding
    w_out = (w - 1) * stride - 2 * padding + k + output_padding
    return full[:, padding : padding + h_out, padding : padding + w_out] + bias


def np_instance_norm(x, eps=1e-5):
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def np_reflect(x, p):
    return np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")  # numpy "reflect" == ReflectionPad2d


# ---- layers --------------------------------------------------------------------------------------


def test_parameter_count_matches_hand_computation():
    # NVIDIA Encoder(3, 3, ngf=16, n_downsampling=4): every conv has a bias; instance norm has no parameters.
    first = 3 * 16 * 7 * 7 + 16  # ReflectionPad(3) + Conv 7x7 3->16: 2,368
    down = sum(c * 2 * c * 3 * 3 + 2 * c for c in (16, 32, 64, 128))  # 4,640 + 18,496 + 73,856 + 295,168 = 392,160
    up = sum(c * (c // 2) * 3 * 3 + c // 2 for c in (256, 128, 64, 32))  # 295,040 + 73,792 + 18,464 + 4,624 = 391,920
    last = 16 * 3 * 7 * 7 + 3  # Conv 7x7 16->3: 2,355
    assert (first, down, up, last) == (2_368, 392_160, 391_920, 2_355)
    assert first + down + up + last == 788_803
    assert trainable(feature_encoder(feat_num=3, nef=16, n_downsample=4, norm="instance")) == 788_803


def test_layer_names_follow_nvidia_state_dict():
    model = feature_encoder()
    weighted = [layer.name for layer in model.layers if layer.weights]
    # model.1 (7x7), model.4/7/10/13 (down), model.16/19/22/25 (ConvTranspose2d), model.29 (7x7)
    assert weighted == [f"model_{i}" for i in (1, 4, 7, 10, 13, 16, 19, 22, 25, 29)]
    assert isinstance(model.get_layer("model_16"), keras.layers.Conv2DTranspose)
    assert isinstance(model.get_layer("model_0"), ReflectionPad2D)
    assert isinstance(model.get_layer("model_28"), ReflectionPad2D)
    assert model.get_layer("model_30").activation is keras.activations.tanh


def test_output_shape_and_range():
    model = feature_encoder(feat_num=3, nef=4, n_downsample=2)
    out = model({"image": tf.random.uniform([2, 16, 24, 3], -1, 1)})
    assert out.shape == (2, 16, 24, 3) and out.dtype == tf.float32
    assert np.all(np.abs(out.numpy()) < 1)


def test_init_kernels_normal_002_biases_torch_default():
    keras.utils.set_random_seed(0)
    model = feature_encoder()
    kernel = model.get_layer("model_13").kernel.numpy()  # 128 -> 256, 294,912 values
    assert abs(kernel.mean()) < 1e-3 and abs(kernel.std() - 0.02) < 5e-4
    # Conv2d: fan_in = in * k * k; ConvTranspose2d: fan_in = weight.size(1) * k * k = out * k * k.
    for name, fan_in in [("model_1", 3 * 49), ("model_4", 16 * 9), ("model_16", 128 * 9), ("model_25", 16 * 9),
                         ("model_29", 16 * 49)]:
        bias = model.get_layer(name).bias.numpy()
        bound = 1 / math.sqrt(fan_in)
        assert np.all(np.abs(bias) <= bound) and np.abs(bias).max() > bound / 4, name
    big = torch_bias_init(4)(shape=(10_000,)).numpy()
    assert big.min() >= -0.5 and big.max() <= 0.5 and big.min() < -0.45 and big.max() > 0.45
    with pytest.raises(ValueError):
        torch_bias_init(0)


def test_reflection_pad_matches_numpy_reflect_and_serializes():
    x = np.arange(2 * 4 * 5 * 3, dtype=np.float32).reshape(2, 4, 5, 3)
    layer = ReflectionPad2D(3)
    np.testing.assert_array_equal(layer(x).numpy(), np_reflect(x, 3))
    asym = ReflectionPad2D(((1, 2), (0, 3)))
    np.testing.assert_array_equal(asym(x).numpy(), np.pad(x, ((0, 0), (1, 2), (0, 3), (0, 0)), mode="reflect"))
    # [a, b, c] padded by 1 is [b, a, b, c, b] (the edge is not repeated).
    row = ReflectionPad2D(1)(np.tile(np.array([1.0, 2.0, 3.0], np.float32).reshape(1, 1, 3, 1), (1, 2, 1, 1)))
    np.testing.assert_array_equal(row.numpy()[0, 0, :, 0], [2, 1, 2, 3, 2])
    clone = ReflectionPad2D.from_config(asym.get_config())
    assert clone.padding == ((1, 2), (0, 3))
    model = feature_encoder(nef=2, n_downsample=1)
    rebuilt = keras.models.model_from_json(model.to_json())
    assert isinstance(rebuilt.get_layer("model_0"), ReflectionPad2D)


def test_transposed_conv_alignment_with_pytorch():
    # ConvTranspose2d(3, 2, padding=1, output_padding=1) == Conv2DTranspose(3, 2, "valid") minus the first row/col.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 5, 4)).astype(np.float32)
    weight = rng.normal(size=(4, 6, 3, 3)).astype(np.float32)  # PyTorch [in, out, kh, kw]
    bias = rng.normal(size=(6,)).astype(np.float32)
    expected = np_conv_transpose2d(x, weight, bias, stride=2, padding=1, output_padding=1)
    assert expected.shape == (2, 6, 10, 6)
    deconv = keras.layers.Conv2DTranspose(6, 3, strides=2, padding="valid")
    deconv.build((None, None, None, 4))
    deconv.set_weights([weight.transpose(2, 3, 1, 0), bias])  # -> [kh, kw, out, in], no flip
    got = keras.layers.Cropping2D(((1, 0), (1, 0)))(deconv(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # Keras "same" does not match it.
    same = keras.layers.Conv2DTranspose(6, 3, strides=2, padding="same")
    same.build((None, None, None, 4))
    same.set_weights([weight.transpose(2, 3, 1, 0), bias])
    assert not np.allclose(same(x).numpy(), expected, atol=1e-3)


def test_strided_conv_symmetric_padding_with_pytorch():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 6, 8, 2)).astype(np.float32)
    model = feature_encoder(nef=2, n_downsample=1)
    kernel, bias = model.get_layer("model_4").get_weights()
    pad = model.get_layer("model_4_pad")
    got = model.get_layer("model_4")(pad(x)).numpy()
    np.testing.assert_allclose(got, np_conv2d(x, kernel, bias, stride=2, padding=1), atol=1e-5)
    same = tf.nn.conv2d(x, kernel, 2, "SAME").numpy() + bias  # pads 0 top/left, 1 bottom/right: differs
    assert not np.allclose(same, got, atol=1e-3)


def test_whole_encoder_matches_numpy_reference():
    # nef 3, n_downsample 2, random weights (incl. biases): the composed network as NVIDIA's nn.Sequential.
    keras.utils.set_random_seed(3)
    model = feature_encoder(feat_num=2, nef=3, n_downsample=2)
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([rng.normal(scale=0.3, size=w.shape).astype(np.float32) for w in layer.get_weights()])
    x = rng.uniform(-1, 1, size=(2, 8, 12, 3)).astype(np.float32)
    h = np_reflect(x.astype(np.float64), 3)
    h = np.maximum(np_instance_norm(np_conv2d(h, *model.get_layer("model_1").get_weights())), 0)
    for i in (4, 7):
        h = np.maximum(np_instance_norm(np_conv2d(h, *model.get_layer(f"model_{i}").get_weights(), 2, 1)), 0)
    for i in (10, 13):
        kernel, bias = model.get_layer(f"model_{i}").get_weights()
        h = np_conv_transpose2d(h, kernel.transpose(3, 2, 0, 1), bias, 2, 1, 1)  # Keras -> PyTorch layout
        h = np.maximum(np_instance_norm(h), 0)
    expected = np.tanh(np_conv2d(np_reflect(h, 3), *model.get_layer("model_17").get_weights()))
    np.testing.assert_allclose(model({"image": x}).numpy(), expected, atol=1e-4)


# ---- instance averaging ----------------------------------------------------------------------------


def test_instance_average_hand_values():
    # Two examples of 3x4, two instances each, two channels.
    ids = np.array(
        [
            [[1, 1, 2, 2], [1, 1, 2, 2], [1, 2, 2, 2]],  # 1: 5 pixels, 2: 7 pixels
            [[26001, 7, 7, 7], [26001, 26001, 7, 7], [26001, 26001, 26001, 7]],  # 26001: 6, 7: 6
        ],
        np.int32,
    )[..., None]
    c0 = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    features = np.stack([c0, -2 * c0], axis=-1)
    # example 0, id 1 at flat 0,1,4,5,8 -> mean 3.6; id 2 at 2,3,6,7,9,10,11 -> 48/7
    # example 1 (values 12..23), id 26001 at 12,16,17,20,21,22 -> 108/6 = 18; id 7 at 13,14,15,18,19,23 -> 102/6 = 17
    m = {1: 3.6, 2: 48 / 7, 26001: 18.0, 7: 17.0}
    expected0 = np.vectorize(m.get)(ids[..., 0]).astype(np.float32)
    expected = np.stack([expected0, -2 * expected0], axis=-1)
    np.testing.assert_allclose(instance_average(features, ids).numpy(), expected, rtol=1e-6)
    # Same id in two examples: averaged per example.
    same = np.ones_like(ids)
    out = instance_average(features, same).numpy()
    np.testing.assert_allclose(out[0, ..., 0], 5.5)
    np.testing.assert_allclose(out[1, ..., 0], 17.5)


def test_instance_average_graph_and_gradient():
    fn = tf.function(
        instance_average,
        input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.float32),
            tf.TensorSpec([None, None, None, 1], tf.int32),
        ],
    )
    rng = np.random.default_rng(0)
    features = tf.constant(rng.normal(size=(2, 5, 6, 3)).astype(np.float32))
    ids = tf.constant(rng.choice([0, 33000, 33001, 5], size=(2, 5, 6, 1)).astype(np.int32))
    np.testing.assert_allclose(fn(features, ids).numpy(), instance_average(features, ids).numpy(), rtol=1e-6)
    weights = tf.constant(rng.normal(size=(2, 5, 6, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(features)
        loss = tf.reduce_sum(weights * instance_average(features, ids))
    grad = tape.gradient(loss, features).numpy()
    # d loss / d f[p] = mean of the weights over p's instance (each of its n pixels contributes 1/n).
    np.testing.assert_allclose(grad, instance_average(weights, ids).numpy(), rtol=1e-5, atol=1e-6)


def test_encoder_trains_through_instance_average():
    model = feature_encoder(nef=2, n_downsample=1)
    x = tf.random.uniform([1, 8, 8, 3], -1, 1)
    ids = tf.constant(np.repeat([[1] * 4 + [2] * 4], 8, axis=0)[None, ..., None].astype(np.int32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(instance_average(model({"image": x}), ids) - 0.5))
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in grads)
    assert np.abs(grads[0].numpy()).sum() > 0


def test_instance_average_matches_nvidia_loop_and_compiles_under_xla():
    rng = np.random.default_rng(5)
    features = rng.normal(size=(3, 7, 9, 3)).astype(np.float32)
    ids = rng.choice([0, 1, 24, 26000, 26001, 26002, 33000], size=(3, 7, 9, 1)).astype(np.int32)
    expected = features.copy()  # NVIDIA: for i in np.unique(inst): for b: for j: mean over (inst[b] == i)
    for i in np.unique(ids):
        for b in range(3):
            mask = ids[b, ..., 0] == i
            for j in range(3):
                if mask.any():
                    expected[b, ..., j][mask] = features[b, ..., j][mask].mean()
    np.testing.assert_allclose(instance_average(features, ids).numpy(), expected, rtol=1e-5, atol=1e-6)
    xla = tf.function(instance_average, jit_compile=True)
    np.testing.assert_allclose(xla(features, ids).numpy(), expected, rtol=1e-5, atol=1e-6)
    model = feature_encoder(nef=2, n_downsample=1)

    @tf.function(jit_compile=True)
    def step(x, inst):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(instance_average(model({"image": x}), inst))
        return tape.gradient(loss, model.trainable_weights)

    inst = tf.constant(rng.choice([3, 26001, 26002], size=(2, 8, 8, 1)).astype(np.int32))
    grads = step(tf.random.uniform([2, 8, 8, 3], -1, 1), inst)
    assert all(np.isfinite(g.numpy()).all() for g in grads)
