"""tfi2i.layers.conv (and the matmul form of tfi2i.layers.transposed): the same layer as oneDNN's, to float rounding."""

import numpy as np
import pytest
import tensorflow as tf

from tfi2i.layers import conv as C
from tfi2i.layers.transposed import Conv2DTranspose, matmul_conv2d_transpose

RNG = np.random.default_rng(0)


def _t(*shape):
    return tf.constant(RNG.standard_normal(shape), tf.float32)


def _grads(fn, x, w):
    w = tf.Variable(w)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x, w)
        loss = tf.reduce_sum(y * tf.constant(RNG.standard_normal(y.shape), tf.float32))
    dx, dw = tape.gradient(loss, [x, w])
    return y, dx, dw


def _close(got, want, rtol):
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=rtol * float(np.max(np.abs(b.numpy()))))


FORMS = {"matmul": C.matmul_conv2d, "taps": C.taps_filter_gradient, "shift_add": C.shift_add_conv2d}


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("size,stride,padding,filters", [(8, 2, "same", 5), (7, 2, "same", 3), (6, 1, "valid", 1),
                                                         (9, 1, "same", 2), (4, 2, "valid", 6), (2, 2, "same", 4)])
def test_conv_forms_equal_tf_conv2d_with_gradients(form, size, stride, padding, filters):
    x, w = _t(2, size, size, 3), _t(4, 4, 3, filters)
    fn = FORMS[form]
    seed = RNG.bit_generator.state
    want = _grads(lambda x, w: tf.nn.conv2d(x, w, stride, padding.upper()), x, w)
    RNG.bit_generator.state = seed  # the same upstream gradient
    got = _grads(lambda x, w: fn(x, w, (stride, stride), padding), x, w)
    _close(got, want, 1e-5)


@pytest.mark.parametrize("form", ["taps", "shift_add"])
def test_tap_forms_by_hand(form):
    """2 taps in 1-D: y[i] = x[i] w0 + x[i+1] w1; dW[j] = sum_i x[i + j] dy[i]; dx[k] = sum_j w[j] dy[k - j]."""
    x = tf.constant([[[[1.0], [2.0], [3.0]]]])  # (1, 1, 3, 1)
    w = tf.Variable(tf.constant([[[[0.5]], [[-1.0]]]]))  # (1, 2, 1, 1)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = FORMS[form](x, w, (1, 1), "valid")  # [1*.5 - 2, 2*.5 - 3] = [-1.5, -2]
        loss = tf.reduce_sum(y * tf.constant([[[[1.0], [10.0]]]]))
    dx, dw = tape.gradient(loss, [x, w])
    np.testing.assert_allclose(y.numpy().ravel(), [-1.5, -2.0])
    np.testing.assert_allclose(dw.numpy().ravel(), [1 * 1 + 2 * 10, 2 * 1 + 3 * 10])
    np.testing.assert_allclose(dx.numpy().ravel(), [0.5 * 1, -1 * 1 + 0.5 * 10, -1 * 10])


@pytest.mark.parametrize("size,kernel,stride,padding", [(1, 4, 2, "same"), (3, 4, 2, "same"), (2, 4, 2, "valid"),
                                                        (4, 6, 3, "same"), (2, 2, 2, "same")])
def test_transposed_matmul_form_equals_tf_conv2d_transpose(size, kernel, stride, padding):
    x, w = _t(2, size, size, 6), _t(kernel, kernel, 5, 6)
    out = size * stride + (max(kernel - stride, 0) if padding == "valid" else 0)
    seed = RNG.bit_generator.state
    want = _grads(lambda x, w: tf.nn.conv2d_transpose(x, w, [2, out, out, 5], stride, padding.upper()), x, w)
    RNG.bit_generator.state = seed
    got = _grads(lambda x, w: matmul_conv2d_transpose(x, w, (stride, stride), padding), x, w)
    _close(got, want, 1e-5)


def test_choose_rules(monkeypatch):
    monkeypatch.delenv("TFI2I_CONV", raising=False)
    if tf.config.list_logical_devices("GPU"):
        pytest.skip("the shape rules are for CPUs; with a GPU every layer is native")
    b = (1,)
    assert C.choose("conv", b + (4, 4, 512), (4, 4, 512, 512), (2, 2)) == "matmul"  # 2x2 output (U-Net down7)
    assert C.choose("conv", b + (8, 8, 512), (4, 4, 512, 512), (2, 2)) == "native"  # 4x4 output
    assert C.choose("conv", b + (33, 33, 512), (4, 4, 512, 1), (1, 1)) == "shift_add"  # PatchGAN's last layer
    assert C.choose("conv", b + (None, None, 512), (4, 4, 512, 1), (1, 1)) == "native"  # unknown size: native
    assert C.choose("transposed", b + (8, 8, 1024), (4, 4), (2, 2)) == "matmul"
    assert C.choose("transposed", b + (16, 16, 1024), (4, 4), (2, 2)) == "native"
    assert C.choose("transposed", b + (2, 2, 1024), (3, 3), (2, 2)) == "native"  # 3x3 / 2: not a multiple
    assert C.choose("conv", b + (4, 4, 8), (4, 4, 8, 8), (2, 2), "native") == "native"
    assert C.choose("conv", b + (4, 4, 128), (4, 4, 128, 128), (2, 2)) == "native"  # narrow: the extra ops cost more
    assert C.choose("conv", b + (33, 33, 64), (4, 4, 64, 1), (1, 1)) == "native"  # patch 1024 numbers
    assert C.choose("conv", b + (33, 33, 128), (4, 4, 128, 1), (1, 1)) == "shift_add"  # patch 2048
    assert C.choose("conv", b + (518, 1030, 64), (7, 7, 64, 3), (1, 1)) == "shift_add"  # pix2pixHD G's last layer
    assert C.choose("conv", b + (518, 1030, 64), (7, 7, 64, 5), (1, 1)) == "native"  # 5 filters
    monkeypatch.setenv("TFI2I_CONV", "native")
    assert C.choose("conv", b + (33, 33, 512), (4, 4, 512, 1), (1, 1)) == "native"
    monkeypatch.setenv("TFI2I_CONV", "fast")
    with pytest.raises(ValueError, match="TFI2I_CONV"):
        C.choose("conv", b + (4, 4, 512), (4, 4, 512, 512), (2, 2))
    with pytest.raises(ValueError, match="valid: auto, native, matmul, taps"):
        C.Conv2D(4, 4, implementation="fast")


def test_layers_pick_their_forms_in_the_graph_and_keep_weights(monkeypatch):
    """A 2x2-output conv, a 1-filter conv (shift-add) and a 2x2-input decoder run MatMul and no convolution kernel."""
    monkeypatch.delenv("TFI2I_CONV", raising=False)
    monkeypatch.delenv("TFI2I_TRANSPOSED_CONV", raising=False)
    if tf.config.list_logical_devices("GPU"):
        pytest.skip("the shape rules are for CPUs")
    c = C.MIN_INPUT_CHANNELS
    layers = {"down": C.Conv2D(c, 4, strides=2, padding="same"), "logit": C.Conv2D(1, 4, padding="valid"),
              "up": Conv2DTranspose(3, 4, strides=2, padding="same")}
    x = _t(2, 4, 4, c)
    for layer in layers.values():
        layer.build((None, 4, 4, c) if layer is not layers["up"] else (None, 2, 2, c))
    native = {"down": C.Conv2D(c, 4, strides=2, padding="same", implementation="native"),
              "up": Conv2DTranspose(3, 4, strides=2, padding="same", implementation="native")}
    native["down"].build((None, 4, 4, c))
    native["up"].build((None, 2, 2, c))
    native["down"].set_weights(layers["down"].get_weights())
    native["up"].set_weights(layers["up"].get_weights())
    assert [w.path for w in layers["down"].weights] == [w.path.replace(native["down"].name, layers["down"].name)
                                                        for w in native["down"].weights]

    def graph_ops(fn, spec):
        return {op.type for op in tf.function(fn).get_concrete_function(spec).graph.get_operations()}

    assert "MatMul" in graph_ops(layers["down"], tf.TensorSpec((None, 4, 4, c))) - {"Conv2D"}
    logit_ops = graph_ops(layers["logit"], tf.TensorSpec((None, 4, 4, c)))
    assert "MatMul" in logit_ops and "Conv2D" not in logit_ops
    up_ops = graph_ops(layers["up"], tf.TensorSpec((None, 2, 2, c)))
    assert "MatMul" in up_ops and "Conv2DBackpropInput" not in up_ops
    assert "Conv2DBackpropInput" in graph_ops(layers["up"], tf.TensorSpec((None, None, None, c)))  # size unknown
    narrow = C.Conv2D(8, 4, strides=2, padding="same")
    assert "MatMul" not in graph_ops(narrow, tf.TensorSpec((None, 4, 4, 8)))  # under MIN_INPUT_CHANNELS: native
    h = layers["down"](x)
    np.testing.assert_allclose(h.numpy(), native["down"](x).numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(layers["up"](h).numpy(), native["up"](h).numpy(), rtol=0, atol=1e-5)
