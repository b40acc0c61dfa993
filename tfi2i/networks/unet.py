"""pix2pix U-Net generator (Isola et al. 2017; junyanz `UnetGenerator`).

Layer for layer as the reference `UnetSkipConnectionBlock` stack:

* encoder level i (1..depth) has ``ngf * min(2**(i-1), 8)`` channels; each down
  step is ``LeakyReLU(0.2) -> Conv 4x4/2 -> norm``; the outermost has neither
  activation nor norm, the innermost (1x1 at 256 px) no norm;
* decoder: ``ReLU -> ConvTranspose 4x4/2 -> norm`` (+ ``Dropout(0.5)`` in the
  ``depth - 5`` blocks next to the innermost: three for ``unet_256``); each
  block's output is ``concat([block_input, up])``; the outermost ends in
  ``ReLU -> ConvTranspose(output_channels, bias) -> tanh``;
* convs have a bias only when no batch norm follows (reference rule);
* weights ~ N(0, 0.02).

Fully convolutional: any H, W that are multiples of ``2**depth`` work.
Reference parameter counts (``unet_256``, ngf 64, 3->3): 54,413,955 with batch
norm, 54,409,603 with non-affine instance norm (tested).
"""

import re

import keras

from tfi2i.layers import conv_init, make_norm, use_bias_for
from tfi2i.layers.conv import Conv2D
from tfi2i.layers.transposed import Conv2DTranspose


def unet_depth(name: str) -> int:
    """``unet_128`` -> 7 and ``unet_256`` -> 8 as in the reference; ``unet_<d>`` with d < 32 is a depth."""
    if name == "unet_128":
        return 7
    if name == "unet_256":
        return 8
    match = re.fullmatch(r"unet_(\d+)", name)
    if match and int(match.group(1)) < 32:
        return int(match.group(1))
    raise ValueError(f"unknown U-Net '{name}'; use unet_128, unet_256 or unet_<depth>")


def unet_generator(
    name="unet_256",
    ngf=64,
    norm="batch",
    dropout=0.5,
    input_channels=3,
    output_channels=3,
    synchronized_bn=True,
) -> keras.Model:
    """Builds the U-Net generator G.

    Args:
      name: ``unet_128``, ``unet_256`` or ``unet_<depth>``.
      ngf: filters of the outermost encoder level.
      norm: ``batch`` | ``instance`` | ``none``.
      dropout: rate in the blocks next to the innermost (pix2pix's noise z).

    Returns:
      A ``keras.Model`` on named inputs and outputs (`tfi2i.contract`):
      ``{"x": float32 [B, H, W, input_channels]}`` in [-1, 1] (an image, or a
      one-hot label map) -> ``{"y": float32 [B, H, W, output_channels]}`` in
      [-1, 1] (tanh, kept float32 under mixed precision).
    """
    depth = unet_depth(name)
    if depth < 2:
        raise ValueError("a U-Net needs depth >= 2")
    bias = use_bias_for(norm)
    channels = [ngf * min(2**i, 8) for i in range(depth)]  # channels of e_1 .. e_depth

    def conv(filters, layer_name, use_bias=bias):
        return Conv2D(
            filters, 4, strides=2, padding="same", use_bias=use_bias, kernel_initializer=conv_init(), name=layer_name
        )

    def deconv(filters, layer_name, use_bias=bias):
        return Conv2DTranspose(
            filters, 4, strides=2, padding="same", use_bias=use_bias, kernel_initializer=conv_init(), name=layer_name
        )

    x = keras.Input(shape=(None, None, input_channels), name="x")
    skips = [x]  # block inputs: x, e_1, ..., e_{depth-1}
    h = conv(channels[0], "down1")(x)  # outermost: no activation, no norm
    for i in range(2, depth + 1):
        skips.append(h)
        h = keras.layers.LeakyReLU(0.2, name=f"down{i}_lrelu")(h)
        h = conv(channels[i - 1], f"down{i}")(h)
        if i < depth:  # the innermost (bottleneck) block has no norm
            h = make_norm(norm, f"down{i}_norm", synchronized_bn)(h)

    for i in range(depth, 0, -1):  # block i: input skips[i-1], produced e_i
        h = keras.layers.ReLU(name=f"up{i}_relu")(h)
        if i == 1:
            h = deconv(output_channels, "up1", use_bias=True)(h)
            y = keras.layers.Activation("tanh", dtype="float32", name="y_fake")(h)
            break
        h = deconv(channels[i - 2], f"up{i}")(h)
        h = make_norm(norm, f"up{i}_norm", synchronized_bn)(h)
        if dropout and 5 <= i < depth:
            h = keras.layers.Dropout(dropout, name=f"up{i}_dropout")(h)
        h = keras.layers.Concatenate(name=f"skip{i}")([skips[i - 1], h])
    return keras.Model({"x": x}, {"y": y}, name=f"G_{name}")
