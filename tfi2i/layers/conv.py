"""`Conv2D`: Keras' layer (same weights, same checkpoint) with faster forms for the shapes TF's CPU kernels handle badly.

`benchmarks/bench_conv_layers.py` times every convolution kernel of the
pix2pix training step on its own, beside PyTorch's. On the AVX2 CPUs this
project runs on, TensorFlow's convolution kernels (NHWC) are 1.3-2.5x slower
than torch's for most shapes, and far slower for two kinds. (Those are Eigen's:
TensorFlow 2.21 leaves its oneDNN kernels off on these CPUs unless
``TF_ENABLE_ONEDNN_OPTS=1``; the rules below were measured without them, see
README "Speed" for what turning them on changes.)

* **A convolution with very few output channels**: PatchGAN's last layer
  (512 -> 1, 31x31, stride 1) takes 57-62 ms for its filter gradient at batch 1
  (torch: 1.4 ms), 200+ ms at batch 4, twice per step. Summed tap by tap
  (``dW[i, j] = X_ij^T dY``, one matrix product per kernel tap of the
  shifted input) it takes 4.4 ms (`taps_filter_gradient`; the forward and
  input gradient stay TensorFlow's).
* **Tiny spatial sizes with many channels** (the U-Net's innermost layers:
  2x2 and 1x1 outputs): the whole layer as a matrix product of the im2col
  patches with the kernel reshaped (`matmul_conv2d`) runs in a third to a
  half of the time (down7 + down8: 67 -> 42 ms at batch 1, 134 -> 43 ms at
  batch 4, forward and both gradients).

The kernel is the layer's own ``(k, k, in, filters)`` variable in both forms
(reshaped, never transposed), so gradients reach it and checkpoints do not
change; outputs and gradients equal TensorFlow's kernels' to float rounding (tested). The
matmul form of a transposed convolution (inputs of 8x8 and less) is
`tfi2i.layers.transposed.matmul_conv2d_transpose`; its rule is here (`choose`).
A whole pix2pix step gained 8 % at batch 1 and 10 % at batch 4 (README, Speed).

``implementation="auto"`` (default) picks by the static shapes at trace time
(`choose`), on a CPU only: with a GPU visible every layer keeps cuDNN's
kernels (not measured: no GPU has been lent to this project).
``TFI2I_CONV=native`` turns the faster forms off everywhere (also those of
`tfi2i.layers.transposed`'s ``Conv2DTranspose`` in training), to compare or
to rule them out.
"""

import os

import keras
import tensorflow as tf

IMPLEMENTATIONS = ("auto", "native", "matmul", "taps")

#: `choose`'s rules (measured with `benchmarks/bench_conv_layers.py`, AVX2 EPYC, batch 1 and 4):
MATMUL_MAX_OUTPUT_PIXELS = 4  # Conv2D: outputs of at most 2x2 per example -> `matmul_conv2d`
TAPS_MAX_FILTERS = 4  # Conv2D with at most 4 output channels -> `taps_filter_gradient`
TRANSPOSED_MATMUL_MAX_INPUT_PIXELS = 64  # Conv2DTranspose: inputs of at most 8x8 -> `matmul_conv2d_transpose`
# ... and only for layers with at least this many input channels: the gains were measured at 256-1024 channels;
# for narrow layers the extra ops (slices, concats, pads) cost more than they save (the test suite, full of
# 4-64-channel networks, took 26.6 min with the rules unrestricted, 20.4 min with this limit).
MIN_INPUT_CHANNELS = 256


def shape_forms_on():
    """Whether ``"auto"`` may pick a shape-specific form: not with ``TFI2I_CONV=native``, not with a GPU visible."""
    value = os.environ.get("TFI2I_CONV", "").strip().lower() or "auto"
    if value not in ("auto", "native"):
        raise ValueError(f"TFI2I_CONV={value!r}; valid: auto, native")
    return value == "auto" and not tf.config.list_logical_devices("GPU")


def same_padding(size, kernel, stride):
    """``(before, after)`` zero padding of TF's ``"same"`` for one static dimension."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x, kernel_size, strides, padding):
    if padding == "valid":
        return x
    (kh, kw), (sh, sw) = kernel_size, strides
    return tf.pad(x, [[0, 0], same_padding(x.shape[1], kh, sh), same_padding(x.shape[2], kw, sw), [0, 0]])


def _tap(x, i, j, strides, out_h, out_w):
    """The input pixels kernel tap ``(i, j)`` multiplies, ``[B, out_h, out_w, C]`` (VALID, padded input)."""
    sh, sw = strides
    return x[:, i:i + sh * (out_h - 1) + 1:sh, j:j + sw * (out_w - 1) + 1:sw, :]


def matmul_conv2d(x, kernel, strides, padding):
    """``tf.nn.conv2d`` (NHWC, no dilation, static spatial shape) as im2col and one matrix product."""
    kh, kw, cin, cout = kernel.shape
    x = _pad_same(x, (kh, kw), strides, padding)
    out_h, out_w = (x.shape[1] - kh) // strides[0] + 1, (x.shape[2] - kw) // strides[1] + 1
    cols = tf.concat([_tap(x, i, j, strides, out_h, out_w) for i in range(kh) for j in range(kw)], axis=-1)
    y = tf.matmul(tf.reshape(cols, [-1, kh * kw * cin]), tf.reshape(kernel, [kh * kw * cin, cout]))
    return tf.reshape(y, [-1, out_h, out_w, cout])


def taps_filter_gradient(x, kernel, strides, padding):
    """``tf.nn.conv2d`` whose filter gradient is summed tap by tap (forward and input gradient: TensorFlow's)."""
    kh, kw, cin, cout = kernel.shape
    x = _pad_same(x, (kh, kw), strides, padding)
    sh, sw = strides

    @tf.custom_gradient
    def conv(x, kernel):
        y = tf.nn.conv2d(x, kernel, [1, sh, sw, 1], "VALID")

        def grad(dy):
            dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=kernel, out_backprop=dy,
                                                strides=[1, sh, sw, 1], padding="VALID")
            out_h, out_w = dy.shape[1], dy.shape[2]
            flat_dy = tf.reshape(dy, [-1, cout])
            taps = [tf.matmul(tf.reshape(_tap(x, i, j, strides, out_h, out_w), [-1, cin]), flat_dy, transpose_a=True)
                    for i in range(kh) for j in range(kw)]
            return dx, tf.reshape(tf.stack(taps), [kh, kw, cin, cout])

        return y, grad

    return conv(x, tf.convert_to_tensor(kernel))  # a tensor: the gradient reaches the variable it was read from


def choose(kind, inputs_shape, kernel_shape, strides, implementation="auto"):
    """``"native"``, ``"matmul"`` or ``"taps"`` for one call (``kind``: ``"conv"`` or ``"transposed"``).

    Shape-specific forms need static spatial sizes (a serving signature with
    unknown sizes runs native).
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"convolution implementation '{implementation}'; valid: {', '.join(IMPLEMENTATIONS)}")
    if implementation != "auto":
        return implementation
    h, w = inputs_shape[1], inputs_shape[2]
    if h is None or w is None or (inputs_shape[-1] or 0) < MIN_INPUT_CHANNELS or not shape_forms_on():
        return "native"
    if kind == "transposed":
        k_ok = all(k % s == 0 for k, s in zip(kernel_shape[:2], strides))
        return "matmul" if k_ok and h * w <= TRANSPOSED_MATMUL_MAX_INPUT_PIXELS else "native"
    out_pixels = -(-h // strides[0]) * -(-w // strides[1])
    if out_pixels <= MATMUL_MAX_OUTPUT_PIXELS:
        return "matmul"
    return "taps" if kernel_shape[-1] <= TAPS_MAX_FILTERS else "native"


@keras.saving.register_keras_serializable(package="tfi2i")
class Conv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` (its arguments, weights and checkpoint) with ``implementation`` (see `choose`).

    The shape-specific forms apply to channels-last inputs without dilation or
    groups; anything else runs Keras' own convolution.
    """

    def __init__(self, *args, implementation="auto", **kwargs):
        super().__init__(*args, **kwargs)
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation '{implementation}'; valid: {', '.join(IMPLEMENTATIONS)}")
        self.implementation = implementation

    def convolution_op(self, inputs, kernel):
        if self.data_format == "channels_last" and tuple(self.dilation_rate) == (1, 1) and self.groups == 1:
            form = choose("conv", inputs.shape, kernel.shape, self.strides, self.implementation)
            if form == "matmul":
                return matmul_conv2d(inputs, kernel, self.strides, self.padding)
            if form == "taps":
                return taps_filter_gradient(inputs, kernel, self.strides, self.padding)
        return super().convolution_op(inputs, kernel)

    def get_config(self):
        return {**super().get_config(), "implementation": self.implementation}
