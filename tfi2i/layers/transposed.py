"""`Conv2DTranspose`: Keras' layer (same weights, same checkpoint) computed in sub-pixel form where that is faster.

A stride-``s`` transposed convolution with a ``k x k`` kernel is ``s**2``
ordinary convolutions with ``T x T`` kernels, ``T = ceil(k / s)``, whose
outputs interleave (the sub-pixel form; Shi et al., "Real-Time Single Image
and Video Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural
Network", CVPR 2016). In one dimension, with TF's VALID transposed
convolution ``out[s j + i] += w[i] x[j]``::

    out[s m + r] = sum_u  w[r + s (T - 1 - u)] * P[m + u],   P = x zero-padded by T - 1 on both sides

so one VALID ``T x T`` convolution of ``P`` with ``s**2 * filters`` output
channels, ``tf.nn.depth_to_space(., s)`` and a crop give the transposed
convolution exactly (the same multiply-adds in another order: equal to float
rounding). ``padding="same"`` crops ``(k - s) // 2`` more at the start, as
``tf.nn.conv2d_transpose`` does. The kernel is rearranged from the layer's own
``(k, k, filters, in)`` variable inside the graph, so gradients reach the
same variable and checkpoints do not change.

Why: on a CPU TensorFlow runs a transposed convolution as a
backward-data convolution. With the rearranged kernel computed once, the
sub-pixel form of pix2pix's decoder runs in about half its native time at
256x256, batch 1 (``benchmarks/bench_pix2pix.py --tasks infer --transposed
native,subpixel``). Rearranging the kernel costs a transpose of the whole
kernel, as much as the convolution itself for the small, wide inner layers,
so it pays only when it is done once: for inference, not for training.

Two uses:

* `freeze_for_inference` (``tfi2i translate``, ``tfi2i export``, the
  benchmarks): every layer of a model keeps its rearranged kernel in a
  variable of its own and runs the sub-pixel form; `unfreeze` drops them.
  ``"auto"`` freezes where no GPU is visible (cuDNN's transposed convolution
  is not the slow path there).
* ``implementation`` of each call without a frozen kernel: ``"native"``
  (``tf.nn.conv2d_transpose``), ``"subpixel"`` (rearranged every call,
  gradients reach the layer's own kernel), ``"matmul"``
  (`matmul_conv2d_transpose`: one matrix product with the kernel as it is
  stored, then an overlap-add; no rearrangement) or ``"auto"`` (default):
  native, except inputs of 8x8 pixels and less on a CPU, which take the
  matmul form (`tfi2i.layers.conv.choose`: the U-Net's four innermost
  decoders train in a third to a half of the native time there).

``TFI2I_TRANSPOSED_CONV=native|subpixel|matmul`` overrides both choices
(``native`` also turns freezing off), to compare them in one process;
``TFI2I_CONV=native`` turns the shape rules off.
"""

import math
import os

import keras
import tensorflow as tf

from tfi2i.layers.conv import choose

IMPLEMENTATIONS = ("auto", "native", "subpixel", "matmul")


def _override():
    value = os.environ.get("TFI2I_TRANSPOSED_CONV", "").strip().lower() or "auto"
    if value not in IMPLEMENTATIONS:
        raise ValueError(f"TFI2I_TRANSPOSED_CONV={value!r}; valid: {', '.join(IMPLEMENTATIONS)}")
    return value


def resolve_implementation(implementation="auto"):
    """The form of a call without a frozen kernel: ``implementation``, or for ``"auto"`` the environment's.

    ``"auto"`` (nothing forced): native, except the small inputs where
    `tfi2i.layers.conv.choose` picks `matmul_conv2d_transpose`.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"transposed convolution implementation '{implementation}'; valid: {', '.join(IMPLEMENTATIONS)}")
    return _override() if implementation == "auto" else implementation


def freezing_pays():
    """Whether `freeze_for_inference` rearranges kernels: ``TFI2I_TRANSPOSED_CONV``, else when no GPU is visible."""
    override = _override()
    if override != "auto":
        return override == "subpixel"
    return not tf.config.list_logical_devices("GPU")


def _layers(model):
    """The layers `freeze_for_inference` rearranges: sub-pixel applies and the kernel is a multiple of the stride.

    A kernel that is not (pix2pixHD's 3x3, stride 2) pads every phase to
    ``T x T`` taps with zeros, 16 multiply-adds for 9: measured 1.45-1.71x
    slower than native at pix2pixHD's decoder sizes, so it stays native.
    """
    return [layer for layer in model._flatten_layers(include_self=True, recursive=True)
            if isinstance(layer, Conv2DTranspose) and layer._subpixel_applies()
            and all(k % s == 0 for k, s in zip(layer.kernel_size, layer.strides))]


def freeze_for_inference(model, force=None):
    """Rearranges the kernel of every `Conv2DTranspose` in ``model`` once; they then run the sub-pixel form.

    For a model used only for inference from here on: a frozen kernel does
    not follow later changes of the layer's weights (call `unfreeze` before
    training or loading other weights). ``force``: True/False overrides
    `freezing_pays`. Returns the new variables (empty when nothing was frozen),
    for an exporter to track.
    """
    if not (freezing_pays() if force is None else force):
        return []
    frozen = []
    for layer in _layers(model):
        kernel = tf.Variable(subpixel_kernel(tf.convert_to_tensor(layer.kernel), layer.strides), trainable=False,
                             name=f"{layer.name}_subpixel_kernel")
        object.__setattr__(layer, "_frozen_kernel", kernel)  # not a weight of the layer: no checkpoint change
        frozen.append(kernel)
    return frozen


def unfreeze(model):
    """Undoes `freeze_for_inference`: every layer computes from its own kernel again."""
    for layer in _layers(model):
        object.__setattr__(layer, "_frozen_kernel", None)


def subpixel_kernel(kernel, strides):
    """``(k_h, k_w, filters, in)`` transposed kernel -> ``(T_h, T_w, in, s_h * s_w * filters)`` forward kernel.

    Output channel ``(r_h * s_w + r_w) * filters + c`` holds phase ``(r_h,
    r_w)``, the order `tf.nn.depth_to_space` reads. Tap ``u`` of phase ``r``
    is ``w[r + s (T - 1 - u)]`` (zero past the kernel's end).
    """
    k_h, k_w, filters, channels = kernel.shape
    (s_h, s_w) = strides
    t_h, t_w = math.ceil(k_h / s_h), math.ceil(k_w / s_w)
    w = tf.pad(kernel, [[0, s_h * t_h - k_h], [0, s_w * t_w - k_w], [0, 0], [0, 0]])
    w = tf.reshape(w, [t_h, s_h, t_w, s_w, filters, channels])  # index k = v s + r
    w = tf.reverse(w, axis=[0, 2])  # v -> u = T - 1 - v
    w = tf.transpose(w, [0, 2, 5, 1, 3, 4])  # (u_h, u_w, in, r_h, r_w, c)
    return tf.reshape(w, [t_h, t_w, channels, s_h * s_w * filters])


def subpixel_conv2d_transpose(x, kernel, strides, padding, rearranged=None):
    """``tf.nn.conv2d_transpose(x, kernel, strides, padding)`` (NHWC, no dilation) as one convolution and a shuffle.

    ``rearranged``: `subpixel_kernel` of ``kernel``, computed before (then
    only ``kernel``'s shape is read).
    """
    k_h, k_w, filters, _ = kernel.shape
    (s_h, s_w) = strides
    if s_h != s_w:
        raise ValueError("the sub-pixel form needs equal strides (tf.nn.depth_to_space has one block size)")
    t_h, t_w = math.ceil(k_h / s_h), math.ceil(k_w / s_w)
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    p = tf.pad(x, [[0, 0], [t_h - 1, t_h - 1], [t_w - 1, t_w - 1], [0, 0]])
    if rearranged is None:
        rearranged = subpixel_kernel(kernel, strides)
    q = tf.nn.conv2d(p, tf.cast(rearranged, x.dtype), 1, "VALID")
    full = tf.nn.depth_to_space(q, s_h)  # (s (H + T - 1)) x (s (W + T - 1)), VALID output and a margin
    if padding == "same":  # tf.nn.conv2d_transpose: pad_before = (k - s) // 2, out = s H
        top, left = max(k_h - s_h, 0) // 2, max(k_w - s_w, 0) // 2
        out_h, out_w = h * s_h, w * s_w
    else:  # VALID (Keras' deconv_output_length): out = s H + max(k - s, 0)
        top, left = 0, 0
        out_h, out_w = h * s_h + max(k_h - s_h, 0), w * s_w + max(k_w - s_w, 0)
    return full[:, top:top + out_h, left:left + out_w, :]


def matmul_conv2d_transpose(x, kernel, strides, padding):
    """``tf.nn.conv2d_transpose`` (NHWC, static spatial shape, kernel a multiple of the stride) as one matrix product.

    Every input pixel times the kernel reshaped to ``(k_h k_w filters, in)``
    (no transpose: the product's ``transpose_b``) gives its ``k x k`` output
    patch; the patches overlap-add by shifted sums, one per tap block ``(v_h,
    v_w)`` of ``T x T``, and interleave as in the sub-pixel form. For the
    U-Net's innermost layers (inputs of 8x8 and less, 512-1024 channels) the
    layer trains in a third to a half of the native time (`tfi2i.layers.conv`).
    """
    k_h, k_w, filters, channels = kernel.shape
    (s_h, s_w) = strides
    t_h, t_w = k_h // s_h, k_w // s_w
    h, w = x.shape[1], x.shape[2]
    cols = tf.matmul(tf.reshape(x, [-1, channels]), tf.reshape(tf.cast(kernel, x.dtype), [-1, channels]),
                     transpose_b=True)  # (B h w, k_h k_w filters): tap (v s + r) of each pixel
    cols = tf.reshape(cols, [-1, h, w, t_h, s_h, t_w, s_w, filters])
    acc = None  # (B, h + T_h - 1, w + T_w - 1, s_h, s_w, filters): out[s (m) + r] = sum_v cols[m - v, v, r]
    for v_h in range(t_h):
        for v_w in range(t_w):
            part = tf.pad(cols[:, :, :, v_h, :, v_w, :, :],
                          [[0, 0], [v_h, t_h - 1 - v_h], [v_w, t_w - 1 - v_w], [0, 0], [0, 0], [0, 0]])
            acc = part if acc is None else acc + part
    full_h, full_w = s_h * (h + t_h - 1), s_w * (w + t_w - 1)
    full = tf.reshape(tf.transpose(acc, [0, 1, 3, 2, 4, 5]), [-1, full_h, full_w, filters])
    if padding == "same":
        top, left = max(k_h - s_h, 0) // 2, max(k_w - s_w, 0) // 2
        return full[:, top:top + h * s_h, left:left + w * s_w, :]
    return full


@keras.saving.register_keras_serializable(package="tfi2i")
class Conv2DTranspose(keras.layers.Conv2DTranspose):
    """``keras.layers.Conv2DTranspose`` (its arguments, weights and checkpoint) with ``implementation``.

    The sub-pixel form is used for channels-last inputs without dilation or
    ``output_padding``; anything else runs Keras' own call.
    """

    def __init__(self, *args, implementation="auto", **kwargs):
        super().__init__(*args, **kwargs)
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation '{implementation}'; valid: {', '.join(IMPLEMENTATIONS)}")
        self.implementation = implementation

    _frozen_kernel = None  # set by `freeze_for_inference`

    def _subpixel_applies(self):
        return (self.data_format == "channels_last" and tuple(self.dilation_rate) == (1, 1)
                and self.output_padding is None and self.strides[0] == self.strides[1] and self.strides[0] > 1)

    def call(self, inputs):
        frozen = self._frozen_kernel
        implementation = resolve_implementation(self.implementation)
        if frozen is not None:
            outputs = subpixel_conv2d_transpose(inputs, self.kernel, self.strides, self.padding, frozen)
        elif self._subpixel_applies() and implementation == "subpixel":
            outputs = subpixel_conv2d_transpose(inputs, self.kernel, self.strides, self.padding)
        elif self._subpixel_applies() and self._matmul_applies(inputs, implementation):
            outputs = matmul_conv2d_transpose(inputs, self.kernel, self.strides, self.padding)
        else:
            return super().call(inputs)
        if self.use_bias:
            outputs = outputs + tf.cast(self.bias, outputs.dtype)
        return self.activation(outputs) if self.activation is not None else outputs

    def _matmul_applies(self, inputs, implementation):
        """`matmul_conv2d_transpose` for ``"matmul"``, or for ``"auto"`` where `tfi2i.layers.conv.choose` picks it."""
        if not all(k % s == 0 for k, s in zip(self.kernel_size, self.strides)):
            return False
        if implementation == "matmul":
            return inputs.shape[1] is not None and inputs.shape[2] is not None
        return implementation == "auto" and choose("transposed", inputs.shape, self.kernel_size, self.strides) == "matmul"

    def get_config(self):
        return {**super().get_config(), "implementation": self.implementation}
