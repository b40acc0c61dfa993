"""pix2pixHD networks (Wang et al. 2018), layer for layer as NVIDIA/pix2pixHD ``models/networks.py``.

* `global_generator` (``GlobalGenerator``, ``--netG global``): ReflectionPad 3
  + 7x7 conv ``ngf`` + norm + ReLU; ``n_downsample`` x (3x3 stride-2 conv,
  zero padding 1, + norm + ReLU); ``n_blocks`` residual blocks (``ResnetBlock``:
  ReflectionPad 1, 3x3 conv, norm, ReLU, ReflectionPad 1, 3x3 conv, norm, plus
  the identity); ``n_downsample`` x (ConvTranspose 3x3 stride 2, padding 1,
  output_padding 1, + norm + ReLU); ReflectionPad 3 + 7x7 conv + tanh.
* `local_enhancer` (``LocalEnhancer``, ``--netG local``): the global generator
  with ``ngf * 2**n_local_enhancers`` filters minus its last three layers runs
  on the input average-pooled ``n_local_enhancers`` times (`downsample`); each
  enhancer ``n`` adds its downsampling branch (``model{n}_1``: ReflectionPad 3,
  7x7 conv, norm, ReLU, 3x3 stride-2 conv, norm, ReLU) to the coarser output and
  runs ``model{n}_2`` (``n_blocks_local`` residual blocks, ConvTranspose, norm,
  ReLU; the last enhancer ends in ReflectionPad 3 + 7x7 conv + tanh).
* `multiscale_discriminator` (``MultiscaleDiscriminator`` with
  ``getIntermFeat``): ``num_D`` PatchGANs (``NLayerDiscriminator``: kernel 4,
  padding ``ceil(3 / 2) = 2``, LeakyReLU 0.2, ``min(2 nf, 512)`` filters, the
  first layer without norm, the logits layer without norm or activation), the
  ``k``-th on the input average-pooled ``k`` times. Returned as a list (index
  ``k`` = the ``k``-th scale), each model giving ``(features, logits)`` with the
  ``n_layers + 1`` intermediate outputs as ``features`` (what feature matching
  reads).
* `downsample`: ``nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)``.

Names follow NVIDIA's state-dict keys (``model.4.weight`` -> layer
``model_4``; ``model.13.conv_block.5`` -> ``model_13_conv_block_5``;
``scale1_layer2.0`` -> ``scale1_layer2_0``), so a reference checkpoint maps onto
our layers by name (`tfi2i.convert`) and a warm start (``--load_pretrain``,
`tfi2i.warm_start`) copies a global generator into a local enhancer's global
part by name, as NVIDIA's ``load_network`` does. NVIDIA's scale naming is kept
too: the discriminator on the full-size input is ``scale{num_D-1}``.

Framework details that change numbers: PyTorch's symmetric padding 1 of a
stride-2 3x3 conv is an explicit `ZeroPadding2D` (Keras ``"same"`` pads
bottom/right only); ``ConvTranspose2d(3, 2, padding=1, output_padding=1)`` is
Keras' ``"valid"`` transposed conv minus its first row and column; kernels are
N(0, 0.02) (``weights_init``) and biases keep PyTorch's default
U(+-1/sqrt(fan_in)) (`tfi2i.layers.torch_bias_init`); instance norm is
non-affine with eps 1e-5 (``InstanceNorm2d``).

Reference parameter counts (golden-tested): global generator, 36 input
channels, ngf 64, 4 downsamplings, 9 blocks: 182,546,755; multi-scale D with 39
input channels: 5,603,202 (num_D 2), 8,404,803 (num_D 3). With instance features
(``--instance_feat``, 39 G inputs = 36 + ``feat_num`` 3) the global generator
has 182,556,163 (the first 7x7 conv's 3 * 64 * 49 more weights).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfi2i.layers import ReflectionPad2D, conv_init, make_norm, torch_bias_init
from tfi2i.layers.conv import Conv2D
from tfi2i.layers.transposed import Conv2DTranspose


# ----------------------------------------------------------------- building blocks
def _conv(h, filters, kernel, stride, name, pad=0):
    """``nn.Conv2d(in, filters, kernel, stride, padding=pad)`` (zero padding, NVIDIA's init)."""
    fan_in = int(h.shape[-1]) * kernel * kernel
    if pad:
        h = keras.layers.ZeroPadding2D(pad, name=f"{name}_pad")(h)
    # tfi2i's Conv2D: Keras' layer and weights; on a CPU the last 7x7 layer (64 -> 3) runs `shift_add_conv2d`
    # (TF's Eigen kernels build two 6.3 GB im2col buffers for its gradients at 1024x512: README "Speed")
    return Conv2D(filters, kernel, strides=stride, padding="valid", kernel_initializer=conv_init(),
                  bias_initializer=torch_bias_init(fan_in), name=name)(h)


def _deconv(h, filters, name):
    """``nn.ConvTranspose2d(in, filters, 3, stride=2, padding=1, output_padding=1)``: exactly 2x the size."""
    h = Conv2DTranspose(filters, 3, strides=2, padding="valid", kernel_initializer=conv_init(),
                                     bias_initializer=torch_bias_init(filters * 9), name=name)(h)
    return keras.layers.Cropping2D(((1, 0), (1, 0)), name=f"{name}_crop")(h)


def _norm_relu(h, norm, norm_name, relu_name):
    h = make_norm(norm, norm_name)(h)
    return keras.layers.ReLU(name=relu_name)(h)


def _resnet_block(h, norm, prefix):
    """``ResnetBlock`` (reflection padding, no dropout): ``x + conv_block(x)``; conv_block indices as NVIDIA's."""
    dim = int(h.shape[-1])
    r = ReflectionPad2D(1, name=f"{prefix}_conv_block_0")(h)
    r = _conv(r, dim, 3, 1, f"{prefix}_conv_block_1")
    r = _norm_relu(r, norm, f"{prefix}_conv_block_2", f"{prefix}_conv_block_3")
    r = ReflectionPad2D(1, name=f"{prefix}_conv_block_4")(r)
    r = _conv(r, dim, 3, 1, f"{prefix}_conv_block_5")
    r = make_norm(norm, f"{prefix}_conv_block_6")(r)
    return keras.layers.Add(name=f"{prefix}_add")([h, r])


def _head(h, output_channels, prefix, start):
    """ReflectionPad 3, 7x7 conv, tanh at indices ``start .. start + 2`` (kept float32 under mixed precision)."""
    h = ReflectionPad2D(3, name=f"{prefix}_{start}")(h)
    h = _conv(h, output_channels, 7, 1, f"{prefix}_{start + 1}")
    return keras.layers.Activation("tanh", dtype="float32", name=f"{prefix}_{start + 2}")(h)


def _global_trunk(h, ngf, n_downsample, n_blocks, norm, prefix="model"):
    """``GlobalGenerator.model`` up to (not including) the final ReflectionPad/conv/tanh; returns (h, next index)."""
    h = ReflectionPad2D(3, name=f"{prefix}_0")(h)
    h = _conv(h, ngf, 7, 1, f"{prefix}_1")
    h = _norm_relu(h, norm, f"{prefix}_2", f"{prefix}_3")
    i = 4
    for d in range(n_downsample):
        h = _conv(h, ngf * 2 ** (d + 1), 3, 2, f"{prefix}_{i}", pad=1)
        h = _norm_relu(h, norm, f"{prefix}_{i + 1}", f"{prefix}_{i + 2}")
        i += 3
    for _ in range(n_blocks):
        h = _resnet_block(h, norm, f"{prefix}_{i}")
        i += 1
    for u in range(n_downsample):
        h = _deconv(h, ngf * 2 ** (n_downsample - u - 1), f"{prefix}_{i}")
        h = _norm_relu(h, norm, f"{prefix}_{i + 1}", f"{prefix}_{i + 2}")
        i += 3
    return h, i


def _inputs(input_channels):
    """Named Keras inputs in order and their concatenation (NVIDIA's ``input_concat``: labels, edges, features)."""
    inputs = {name: keras.Input((None, None, int(c)), name=name) for name, c in input_channels.items()}
    tensors = list(inputs.values())
    h = tensors[0] if len(tensors) == 1 else keras.layers.Concatenate(name="input_concat")(tensors)
    return inputs, h


@keras.saving.register_keras_serializable(package="tfi2i")
class AvgPoolExcludePad(keras.layers.Layer):
    """``nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)`` on NHWC tensors.

    Each output is the mean of the input pixels its 3x3 window covers (the
    zero padding is not counted). Keras' ``"same"`` pooling does not match
    it: for even sizes it pads bottom/right only, shifting every window.
    """

    def call(self, inputs):
        return downsample(inputs)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        half = (lambda v: None if v is None else (v - 1) // 2 + 1)
        return (b, half(h), half(w), c)


def downsample(x):
    """``AvgPool2d(3, 2, 1, count_include_pad=False)`` on a tensor (the op behind `AvgPoolExcludePad`)."""
    paddings = [[0, 0], [1, 1], [1, 1], [0, 0]]
    total = tf.nn.avg_pool2d(tf.pad(x, paddings), 3, 2, "VALID")
    count = tf.nn.avg_pool2d(tf.pad(tf.ones_like(x[..., :1]), paddings), 3, 2, "VALID")
    return total / count


# ----------------------------------------------------------------- generators
def global_generator(input_channels, output_channels=3, ngf=64, n_downsample=4, n_blocks=9, norm="instance",
                     name="G_global"):
    """``GlobalGenerator`` (``--netG global``).

    Args:
      input_channels: ``{input name: channels}`` in NVIDIA's concatenation
        order, e.g. ``{"x": 35, "instances": 1}`` (one-hot labels, boundary
        map) or ``{"x": 3}`` (an RGB input, ``label_nc 0``); a ``"feat"``
        input (the encoder's features) goes last.
      output_channels, ngf, n_downsample, n_blocks, norm: ``--output_nc``,
        ``--ngf``, ``--n_downsample_global``, ``--n_blocks_global``, ``--norm``.

    Returns:
      ``keras.Model`` on the named inputs -> ``{"y": [B, H, W, output_channels]}``
      (tanh); H and W must be multiples of ``2**n_downsample``.
    """
    inputs, h = _inputs(input_channels)
    h, i = _global_trunk(h, ngf, n_downsample, n_blocks, norm)
    y = _head(h, output_channels, "model", i)
    return keras.Model(inputs, {"y": y}, name=name)


def local_enhancer(input_channels, output_channels=3, ngf=32, n_downsample_global=4, n_blocks_global=9,
                   n_local_enhancers=1, n_blocks_local=3, norm="instance", name="G_local"):
    """``LocalEnhancer`` (``--netG local``); arguments as `global_generator` plus NVIDIA's local options.

    The global part (layers ``model_*``, ``ngf * 2**n_local_enhancers``
    filters) is a `global_generator` without its last three layers, so a
    trained global generator's weights load into it by name. H and W must
    be multiples of ``2**(n_downsample_global + n_local_enhancers)``.
    """
    inputs, h = _inputs(input_channels)
    pyramid = [h]
    for k in range(n_local_enhancers):
        pyramid.append(AvgPoolExcludePad(name=f"downsample_{k + 1}")(pyramid[-1]))
    out, _ = _global_trunk(pyramid[-1], ngf * 2 ** n_local_enhancers, n_downsample_global, n_blocks_global, norm)
    for n in range(1, n_local_enhancers + 1):
        width = ngf * 2 ** (n_local_enhancers - n)
        p1, p2 = f"model{n}_1", f"model{n}_2"
        d = ReflectionPad2D(3, name=f"{p1}_0")(pyramid[n_local_enhancers - n])
        d = _conv(d, width, 7, 1, f"{p1}_1")
        d = _norm_relu(d, norm, f"{p1}_2", f"{p1}_3")
        d = _conv(d, width * 2, 3, 2, f"{p1}_4", pad=1)
        d = _norm_relu(d, norm, f"{p1}_5", f"{p1}_6")
        u = keras.layers.Add(name=f"model{n}_sum")([d, out])
        for b in range(n_blocks_local):
            u = _resnet_block(u, norm, f"{p2}_{b}")
        i = n_blocks_local
        u = _deconv(u, width, f"{p2}_{i}")
        u = _norm_relu(u, norm, f"{p2}_{i + 1}", f"{p2}_{i + 2}")
        if n == n_local_enhancers:
            u = _head(u, output_channels, p2, i + 3)
        out = u
    return keras.Model(inputs, {"y": out}, name=name)


#: Prefix of the local-enhancer layers of enhancer ``n`` (what ``--niter_fix_global`` trains alone).
def local_prefix(n_local_enhancers=1):
    return f"model{n_local_enhancers}_"


# ----------------------------------------------------------------- discriminators
def nlayer_discriminator(input_channels, ndf=64, n_layers=3, norm="instance", scale=0, name=None):
    """One ``NLayerDiscriminator`` with ``getIntermFeat``: ``(features, logits)``; layers ``scale{s}_layer{j}_{m}``."""
    inp = keras.Input((None, None, input_channels), name="pair")
    prefix = f"scale{scale}_layer"
    h = _conv(inp, ndf, 4, 2, f"{prefix}0_0", pad=2)
    h = keras.layers.LeakyReLU(0.2, name=f"{prefix}0_1")(h)
    features = [h]
    nf = ndf
    for j in range(1, n_layers + 1):
        nf = min(nf * 2, 512)
        h = _conv(h, nf, 4, 2 if j < n_layers else 1, f"{prefix}{j}_0", pad=2)
        h = make_norm(norm, f"{prefix}{j}_1")(h)
        h = keras.layers.LeakyReLU(0.2, name=f"{prefix}{j}_2")(h)
        features.append(h)
    logits = _conv(h, 1, 4, 1, f"{prefix}{n_layers + 1}_0", pad=2)
    logits = keras.layers.Activation("linear", dtype="float32", name=f"{prefix}{n_layers + 1}_logits")(logits)
    return keras.Model(inp, (features, logits), name=name or f"D_scale{scale}")


def multiscale_discriminator(input_channels, ndf=64, n_layers=3, num_d=2, norm="instance"):
    """``MultiscaleDiscriminator``: a list of ``num_d`` PatchGANs; entry ``k`` judges the input pooled ``k`` times.

    Entry ``k`` is NVIDIA's ``scale{num_d - 1 - k}`` (its layer names say so).
    """
    return [nlayer_discriminator(input_channels, ndf, n_layers, norm, scale=num_d - 1 - k) for k in range(num_d)]


def judge_scales(discriminators, pair, training=True):
    """``MultiscaleDiscriminator.forward``: ``[(features, logits)]`` per scale, pooling the pair between scales."""
    outs = []
    for k, d in enumerate(discriminators):
        outs.append(d(pair, training=training))
        if k != len(discriminators) - 1:
            pair = downsample(pair)
    return outs


__all__ = ["AvgPoolExcludePad", "downsample", "global_generator", "judge_scales", "local_enhancer", "local_prefix",
           "multiscale_discriminator", "nlayer_discriminator"]
