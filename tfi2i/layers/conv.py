"""`Conv2D`: Keras' layer (same weights, same checkpoint) with faster forms for the shapes TF's CPU kernels handle badly.

`benchmarks/bench_conv_layers.py` times every convolution kernel of the
pix2pix training step on its own, beside PyTorch's. TensorFlow 2.21 runs one
of two kernel libraries on a CPU: Eigen's on AVX2 CPUs (its oneDNN kernels
stay off there unless ``TF_ENABLE_ONEDNN_OPTS=1``), oneDNN's on CPUs with
AVX-512 VNNI / BF16 or AMX. With Eigen its convolutions are 1.3-2.5x slower
than torch's for most shapes; with oneDNN they are level with torch's (the
same library). Both are far slower for the shapes below, and the forms that
replace them win with both libraries (measured on each: README "Speed").

* **A convolution with very few output channels**: PatchGAN's last layer
  (512 -> 1, 31x31, stride 1): its filter gradient took 57-62 ms at batch 1
  on Eigen (torch: 1.4 ms), its forward 52.9 ms on oneDNN (torch: 2.2 ms).
  `shift_add_conv2d` computes it as one matrix product of the input with the
  kernel as ``[in, 16 taps x filters]`` (16 channels for one filter) and a sum
  of 16 shifted slices of that narrow result; its gradients are matrix
  products of the same shapes. Forward and both gradients together
  (`benchmarks/bench_conv_layers.py`, ``train_*_ms``, AVX-512 EPYC): Eigen
  41.6 -> 4.1 ms at batch 1, 117 -> 9.8 ms at batch 4; oneDNN 3.7 -> 2.7 ms,
  9.1 -> 5.7 ms. (`taps_filter_gradient`, the earlier form, sums only the
  filter gradient tap by tap: 11.5 / 31.4 ms on Eigen; kept as
  ``implementation="taps"``.)
* **Tiny spatial sizes with many channels** (the U-Net's innermost layers:
  2x2 and 1x1 outputs): the whole layer as a matrix product of the im2col
  patches with the kernel reshaped (`matmul_conv2d`) runs in a third to a
  half of the time (down7 + down8: 67 -> 42 ms at batch 1, 134 -> 43 ms at
  batch 4, forward and both gradients, Eigen on AVX2; oneDNN on AVX-512:
  24.8 -> 16.0 ms and 32.0 -> 19.9 ms).

The kernel is the layer's own ``(k, k, in, filters)`` variable in every form
(reshaped; `shift_add_conv2d` also transposes it, ``kh * kw * in`` times at
most 4 numbers), so gradients reach it and checkpoints do not change; outputs
and gradients equal TensorFlow's kernels' to float rounding (tested). The
matmul form of a transposed convolution (inputs of 8x8 and less) is
`tfi2i.layers.transposed.matmul_conv2d_transpose`; its rule is here (`choose`).
A whole pix2pix step gained 8 % at batch 1 and 10 % at batch 4 on the AVX2 EPYC (Eigen), 8-13 % and 6-9 % on
the AVX-512 one (oneDNN; README, Speed).

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

IMPLEMENTATIONS = ("auto", "native", "matmul", "taps", "shift_add")

#: `choose`'s rules (measured with `benchmarks/bench_conv_layers.py`, batch 1 and 4: AVX2 EPYC with Eigen, AVX-512
#: EPYC with oneDNN and with Eigen; the same rules win on each):
MATMUL_MAX_OUTPUT_PIXELS = 4  # Conv2D: outputs of at most 2x2 per example -> `matmul_conv2d`
SHIFT_ADD_MAX_FILTERS = 4  # Conv2D with at most 4 output channels -> `shift_add_conv2d` ...
SHIFT_ADD_MIN_PATCH = 2048  # ... whose patch (kh * kw * in) has at least this many numbers (PatchGAN's last layer:
# 16 x 512; pix2pixHD G's last: 49 x 64), at any channel count: where native kernels build the largest im2col buffers
TRANSPOSED_MATMUL_MAX_INPUT_PIXELS = 64  # Conv2DTranspose: inputs of at most 8x8 -> `matmul_conv2d_transpose`
# The other forms only for layers with at least this many input channels: the gains were measured at 256-1024 channels;
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


def _shifted_sum(z, kh, kw, cout, strides, out_h, out_w):
    """``y[p] = sum_ij z[p * stride + (i, j), tap ij]``, with a gradient that writes each tap's slot once.

    Autodiff of the slices would make one zero-filled copy of ``z`` per tap and
    add them (``kh * kw`` copies: 15 GB for pix2pixHD's last layer at
    1024x512); here ``dz`` is built once, tap by tap, from ``dy`` spread to the
    stride and padded to its offset.
    """
    sh, sw = strides
    hp, wp = z.shape[1], z.shape[2]

    @tf.custom_gradient
    def shifted_sum(z):
        y = tf.add_n([z[:, i:i + sh * (out_h - 1) + 1:sh, j:j + sw * (out_w - 1) + 1:sw,
                        (i * kw + j) * cout:(i * kw + j + 1) * cout] for i in range(kh) for j in range(kw)])

        def grad(dy):
            if (sh, sw) != (1, 1):  # dy at every stride-th pixel, zeros between: [B, oh * sh, ow * sw, c]
                spread = tf.pad(dy[:, :, None, :, None, :], [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]])
                dy = tf.reshape(spread, [-1, out_h * sh, out_w * sw, cout])[:, :sh * (out_h - 1) + 1,
                                                                              :sw * (out_w - 1) + 1]
            h, w = dy.shape[1], dy.shape[2]
            return tf.concat([tf.pad(dy, [[0, 0], [i, hp - h - i], [j, wp - w - j], [0, 0]])
                              for i in range(kh) for j in range(kw)], axis=-1)

        return y, grad

    return shifted_sum(z)


def shift_add_conv2d(x, kernel, strides, padding):
    """``tf.nn.conv2d`` as one matrix product onto every tap's output channels, then a shifted sum.

    ``Z = X @ W'`` with ``W'`` the kernel as ``[in, kh * kw * filters]`` gives,
    at every input pixel, what each tap would add to each output; the output is
    ``y[p] = sum_ij Z[p * stride + (i, j), tap ij]`` (`_shifted_sum`). For few
    filters ``Z`` is narrow (16 channels for a 4x4 kernel and one filter), so
    the forward, input gradient (``dZ @ W'^T``) and filter gradient
    (``X^T dZ``) are each one well-shaped matrix product instead of a
    convolution kernel with a one-channel side, and no im2col buffer is made.
    """
    kh, kw, cin, cout = kernel.shape
    x = _pad_same(x, (kh, kw), strides, padding)
    hp, wp = x.shape[1], x.shape[2]
    out_h, out_w = (hp - kh) // strides[0] + 1, (wp - kw) // strides[1] + 1
    w2 = tf.reshape(tf.transpose(kernel, [2, 0, 1, 3]), [cin, kh * kw * cout])
    z = tf.reshape(tf.matmul(tf.reshape(x, [-1, cin]), w2), [-1, hp, wp, kh * kw * cout])
    return _shifted_sum(z, kh, kw, cout, strides, out_h, out_w)


def choose(kind, inputs_shape, kernel_shape, strides, implementation="auto"):
    """``"native"``, ``"matmul"`` or ``"shift_add"`` for one call (``kind``: ``"conv"`` or ``"transposed"``).

    Shape-specific forms need static spatial sizes (a serving signature with
    unknown sizes runs native).
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"convolution implementation '{implementation}'; valid: {', '.join(IMPLEMENTATIONS)}")
    if implementation != "auto":
        return implementation
    h, w, cin = inputs_shape[1], inputs_shape[2], inputs_shape[-1] or 0
    if h is None or w is None or not shape_forms_on():
        return "native"
    if (kind == "conv" and kernel_shape[-1] <= SHIFT_ADD_MAX_FILTERS
            and kernel_shape[0] * kernel_shape[1] * cin >= SHIFT_ADD_MIN_PATCH):
        return "shift_add"
    if cin < MIN_INPUT_CHANNELS:
        return "native"
    if kind == "transposed":
        k_ok = all(k % s == 0 for k, s in zip(kernel_shape[:2], strides))
        return "matmul" if k_ok and h * w <= TRANSPOSED_MATMUL_MAX_INPUT_PIXELS else "native"
    out_pixels = -(-h // strides[0]) * -(-w // strides[1])
    return "matmul" if out_pixels <= MATMUL_MAX_OUTPUT_PIXELS else "native"


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
            if form == "shift_add":
                return shift_add_conv2d(inputs, kernel, self.strides, self.padding)
        return super().convolution_op(inputs, kernel)

    def get_config(self):
        return {**super().get_config(), "implementation": self.implementation}
