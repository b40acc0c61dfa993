"""`tfi2i.layers.transposed`: the sub-pixel form equals Keras' transposed convolution, outputs and gradients."""

import numpy as np
import pytest
import keras
import tensorflow as tf

from tfi2i.layers.transposed import (Conv2DTranspose, freeze_for_inference, freezing_pays, resolve_implementation,
                                    subpixel_conv2d_transpose, subpixel_kernel, unfreeze)

CASES = [  # kernel, stride, padding, (H, W): the generators' cases, odd and rectangular sizes
    (4, 2, "same", (5, 7)),  # U-Net / GRIT / MSG U-Net decoders
    (3, 2, "valid", (4, 3)),  # pix2pixHD (+ a crop)
    (3, 2, "same", (3, 6)),
    (5, 2, "same", (4, 4)),
    (2, 2, "valid", (3, 5)),
    (16, 8, "valid", (2, 3)),  # FCN-8s upscore8
]


@pytest.mark.parametrize("k,s,padding,hw", CASES)
def test_equals_tf_conv2d_transpose_outputs_and_gradients(k, s, padding, hw):
    rng = np.random.default_rng(k * 10 + s)
    x = tf.constant(rng.normal(size=(2, *hw, 3)), tf.float32)
    kernel = tf.Variable(rng.normal(size=(k, k, 4, 3)), dtype=tf.float32)
    out_h = hw[0] * s + (max(k - s, 0) if padding == "valid" else 0)
    out_w = hw[1] * s + (max(k - s, 0) if padding == "valid" else 0)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        want = tf.nn.conv2d_transpose(x, kernel, [2, out_h, out_w, 4], s, padding.upper())
        got = subpixel_conv2d_transpose(x, kernel, (s, s), padding)
        probe = tf.constant(rng.normal(size=want.shape), tf.float32)
        loss_want, loss_got = tf.reduce_sum(want * probe), tf.reduce_sum(got * probe)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    # the kernel's gradient sums over every position (entries up to ~100): float noise is relative there; with
    # oneDNN (TF's default on AVX-512 CPUs, TF_ENABLE_ONEDNN_OPTS=1 here) one entry of 67 differed by 1.2e-4
    for a, b in zip(tape.gradient(loss_got, [x, kernel]), tape.gradient(loss_want, [x, kernel])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_kernel_rearrangement_by_hand():
    # 1-D along width, k = 4, s = 2: phase 0 taps (w2, w0), phase 1 taps (w3, w1)
    w = tf.reshape(tf.constant([1.0, 2.0, 3.0, 4.0]), (1, 4, 1, 1))
    got = subpixel_kernel(w, (1, 2))  # T_w = 2, output channels (r_w = 0, r_w = 1)
    assert got.shape == (1, 2, 1, 2)
    np.testing.assert_array_equal(np.asarray(got)[0, :, 0, :], [[3.0, 4.0], [1.0, 2.0]])
    # x = [1, 10], SAME: out[2m] = w1 x[m] + w3 x[m-1], out[2m+1] = w2 x[m] + w0 x[m+1] (w0 = 1 ... w3 = 4)
    x = tf.reshape(tf.constant([1.0, 10.0]), (1, 1, 2, 1))
    w2d = tf.reshape(tf.constant([[0.0] * 4, [1.0, 2.0, 3.0, 4.0], [0.0] * 4, [0.0] * 4]), (4, 4, 1, 1))
    out = subpixel_conv2d_transpose(x, w2d, (2, 2), "same")  # row kernel only at k_h = 1: even rows
    np.testing.assert_allclose(np.asarray(out)[0, 0, :, 0], [2 * 1, 3 * 1 + 1 * 10, 2 * 10 + 4 * 1, 3 * 10])


@pytest.mark.parametrize("use_bias", [True, False])
def test_layer_is_keras_layer_with_its_weights(use_bias):
    x = tf.constant(np.random.default_rng(0).normal(size=(1, 6, 5, 3)), tf.float32)
    native = Conv2DTranspose(4, 4, strides=2, padding="same", use_bias=use_bias, implementation="native",
                             bias_initializer="random_normal", activation="tanh")
    sub = Conv2DTranspose.from_config({**native.get_config(), "implementation": "subpixel"})
    want = native(x)
    sub.build(x.shape)
    sub.set_weights(native.get_weights())
    assert isinstance(sub, keras.layers.Conv2DTranspose) and [v.path for v in sub.weights] != []
    assert [w.shape for w in sub.weights] == [w.shape for w in native.weights]
    np.testing.assert_allclose(sub(x), want, rtol=0, atol=1e-5)
    again = keras.layers.deserialize(keras.layers.serialize(sub))
    assert isinstance(again, Conv2DTranspose) and again.implementation == "subpixel"


def test_mixed_precision_and_xla():
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 4, 4, 8)), tf.float32)
    native = Conv2DTranspose(6, 4, strides=2, padding="same", implementation="native", dtype="mixed_float16")
    sub = Conv2DTranspose(6, 4, strides=2, padding="same", implementation="subpixel", dtype="mixed_float16")
    want = native(x)
    sub.build(x.shape)
    sub.set_weights(native.get_weights())
    got = tf.function(sub, jit_compile=True)(x)
    assert got.dtype == tf.float16
    np.testing.assert_allclose(np.float32(got), np.float32(want), rtol=0, atol=2e-2)


def test_implementation_choice(monkeypatch):
    monkeypatch.delenv("TFI2I_TRANSPOSED_CONV", raising=False)
    assert resolve_implementation("native") == "native" and resolve_implementation("subpixel") == "subpixel"
    assert resolve_implementation() == "auto"  # per call: native, or the matmul form for small inputs (not subpixel)
    assert freezing_pays() == (not tf.config.list_logical_devices("GPU"))
    monkeypatch.setenv("TFI2I_TRANSPOSED_CONV", "subpixel")
    assert resolve_implementation() == "subpixel" and freezing_pays()
    monkeypatch.setenv("TFI2I_TRANSPOSED_CONV", "native")
    assert resolve_implementation() == "native" and not freezing_pays()
    monkeypatch.setenv("TFI2I_TRANSPOSED_CONV", "fast")
    with pytest.raises(ValueError, match="TFI2I_TRANSPOSED_CONV"):
        resolve_implementation()
    with pytest.raises(ValueError, match="valid: auto, native, subpixel, matmul"):
        Conv2DTranspose(4, 4, implementation="fast")


def test_frozen_generator_gives_the_same_images_and_keeps_its_checkpoint(monkeypatch, tmp_path):
    from tfi2i.networks import unet_generator

    monkeypatch.delenv("TFI2I_TRANSPOSED_CONV", raising=False)
    g = unet_generator("unet_6", 4, "batch")  # 64x64 -> 1x1
    x = tf.constant(np.random.default_rng(2).uniform(-1, 1, (2, 64, 64, 3)), tf.float32)
    want = g({"x": x}, training=False)["y"]
    names_before = [v.path for v in g.weights]
    frozen = freeze_for_inference(g, force=True)
    decoders = [layer for layer in g._flatten_layers() if isinstance(layer, Conv2DTranspose)]
    assert len(frozen) == len(decoders) == 6 and all(layer._frozen_kernel is not None for layer in decoders)
    fn = tf.function(lambda x: g({"x": x}, training=False)["y"])
    ops = {op.type for op in fn.get_concrete_function(tf.TensorSpec((None, 64, 64, 3))).graph.get_operations()}
    assert "Conv2DBackpropInput" not in ops and "DepthToSpace" in ops
    np.testing.assert_allclose(fn(x), want, rtol=0, atol=1e-5)
    assert [v.path for v in g.weights] == names_before  # the frozen kernels are not weights: same checkpoint
    path = tf.train.Checkpoint(g=g).save(str(tmp_path / "ckpt"))
    assert not [k for k, _ in tf.train.list_variables(path) if "subpixel" in k]
    unfreeze(g)
    assert all(layer._frozen_kernel is None for layer in decoders)
    assert freeze_for_inference(g, force=False) == []


def test_kernels_not_a_multiple_of_the_stride_stay_native():
    from tfi2i.networks.pix2pixhd import global_generator

    g = global_generator({"x": 4}, ngf=4, n_downsample=2, n_blocks=1)  # 3x3 stride-2 decoders
    decoders = [layer for layer in g._flatten_layers() if isinstance(layer, Conv2DTranspose)]
    assert len(decoders) == 2 and freeze_for_inference(g, force=True) == []
    assert all(layer._frozen_kernel is None for layer in decoders)
