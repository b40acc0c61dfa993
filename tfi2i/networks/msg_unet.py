"""MSG U-Net's generator (Laxman, Dubey, Kalyan, Kojjarapu, Sec. 2.1, Fig. 1), block for block.

Levels are numbered by their downscale exponent: level ``l`` is at
``H / 2**l x W / 2**l`` (at 2048x1024: level 0 is 2048x1024, level 4 is
128x64, level 8 the 8x4 bottleneck). ``scales`` levels take an input
(``x`` at level 0, ``x_2``, ``x_4``, ... at 1/2, 1/4, ...: the source resized,
`tfi2i.contract` ``resized_from``) and emit an output (``y``, ``y_2``, ...);
``depth`` plain U-Net levels follow below the last input level.

Encoder (``CBL(k, s)`` = Conv ``k x k`` stride ``s`` -> BatchNorm -> LeakyReLU):

* level 0: ``CBL(4, 1)`` twice on ``x`` ("two convolutional blocks of kernel
  size 4x4 and stride 1") -> skip ``e_0``;
* level ``l = 1 .. scales-1``: ``CBL(4, 2)`` halves the size, the output is
  concatenated with ``x_{2^l}`` and passed through ``CBL(1, 1)`` -> ``e_l``;
* level ``l = scales .. scales+depth-1``: ``CBL(4, 2)`` (the "normal U-Net"
  encoder) -> ``e_l``; the last one is the bottleneck.

Decoder, from the bottleneck up to level 0: ``TBL`` (TransposedConv 4x4
stride 2 -> BatchNorm -> LeakyReLU) to level ``l``, **added** to ``e_l`` (the
paper's skip connections add, they do not concatenate), then
``CBL(decoder_kernel, 1)``; at every input level an output branch
``Conv 1x1 -> tanh`` (MSG-GAN's ``toRGB``) emits that scale's image.

Widths: ``widths[l]`` channels at level ``l`` (encoder and decoder share them:
the skips add). The paper gives none; `default_widths` is pix2pix's doubling
rule ``min(ngf * 2**l, cap)`` with ``ngf`` and ``cap`` calibrated against the
paper's FLOP count (`tfi2i.msg_unet`, recipe docstring).

Framework details (the authors' notebooks are gone; TF/Keras conventions):
``padding="same"`` everywhere (a 4x4 stride-1 conv pads 1 before and 2 after,
as Keras does; stride-2 convs and the transposed convs pad symmetrically, as
PyTorch's ``padding=1``), no conv bias before a batch norm, kernels
``N(0, 0.02)``, LeakyReLU slope 0.2, batch norm as `tfi2i.layers.make_norm`
(PyTorch's momentum 0.1, eps 1e-5, unbiased running variance).
"""

from __future__ import annotations

import keras

from tfi2i.layers import conv_init, make_norm, use_bias_for
from tfi2i.layers.transposed import Conv2DTranspose
from tfi2i.layers.recompute import recompute_block

__all__ = ["default_widths", "msg_unet_generator", "input_name", "output_name", "levels"]


def input_name(level: int) -> str:
    """``x`` at level 0, ``x_2``, ``x_4`` ... below (the contract's names)."""
    return "x" if level == 0 else f"x_{2 ** level}"


def output_name(level: int) -> str:
    """``y`` at level 0, ``y_2``, ``y_4`` ... below."""
    return "y" if level == 0 else f"y_{2 ** level}"


def levels(scales: int, depth: int) -> int:
    """Number of levels: ``scales + depth`` (0 .. bottleneck)."""
    return int(scales) + int(depth)


def default_widths(ngf: int, scales: int, depth: int, cap: int = 512, skip_top: int = 0) -> tuple:
    """``min(ngf * 2**(l + skip_top), cap)`` for every level (pix2pix's U-Net doubling rule).

    ``skip_top=1`` gives the widths of the 512x512 variant (Sec. 3.1), whose top
    level is the 2048x1024 model's 1024x512 level.
    """
    return tuple(min(int(ngf) * 2 ** (level + skip_top), int(cap)) for level in range(levels(scales, depth)))


def msg_unet_generator(input_channels=3, output_channels=3, widths=None, scales=5, depth=4, decoder_kernel=4,
                       encoder_blocks=2, top_blocks_only=False, norm="batch", synchronized_bn=True, recompute=False,
                       name="G_msg_unet") -> keras.Model:
    """Builds G.

    Args:
      input_channels: channels of every input scale (3: the segmented RGB label map).
      output_channels: channels of every output scale.
      widths: channels per level, ``scales + depth`` of them (default `default_widths(64, ...)`).
      scales: levels with an input and an output (5 at 2048x1024: 2048x1024 .. 128x64).
      depth: U-Net levels below the last input level (4: 64x32 .. 8x4).
      decoder_kernel: kernel of the decoder's stride-1 block after each addition (the paper: "a
        convolutional block with stride 1"; 4 as the encoder's).
      norm: ``batch`` (the paper) | ``instance`` | ``none``.
      recompute: every Conv-norm-LeakyReLU block a `tfi2i.layers.recompute.RecomputedBlock`
        (named as the block, e.g. ``enc0_conv1``, its layers inside): training keeps one
        tensor per block for the backward pass and recomputes the rest; same weights and
        results, different checkpoint layout.

    Returns:
      ``keras.Model`` ``{x, x_2, ..., x_{2^(scales-1)}}`` (float32 ``[B, H/f, W/f, input_channels]``)
      -> ``{y, y_2, ...}`` (float32 in [-1, 1]); H, W multiples of ``2**(scales + depth - 1)``.
    """
    scales, depth = int(scales), int(depth)
    if scales < 1 or depth < 1:
        raise ValueError(f"MSG U-Net needs scales >= 1 and depth >= 1 (a bottleneck below the last input level), "
                         f"got {scales}, {depth}")
    widths = tuple(widths) if widths is not None else default_widths(64, scales, depth)
    if len(widths) != scales + depth:
        raise ValueError(f"widths: one per level ({scales + depth}), got {len(widths)}")
    bias = use_bias_for(norm)

    def block(h, filters, kernel, stride, tag, transposed=False):
        layer = Conv2DTranspose if transposed else keras.layers.Conv2D
        layers = [layer(filters, kernel, strides=stride, padding="same", use_bias=bias, kernel_initializer=conv_init(),
                        name=f"{tag}_conv"),
                  make_norm(norm, f"{tag}_norm", synchronized_bn), keras.layers.LeakyReLU(0.2, name=f"{tag}_lrelu")]
        if recompute:
            return recompute_block(layers, int(h.shape[-1]), tag)(h)
        for each in layers:
            h = each(h)
        return h

    inputs = {input_name(l): keras.Input((None, None, input_channels), name=input_name(l)) for l in range(scales)}
    skips = []
    h = inputs["x"]
    for level in range(scales + depth):
        if level:
            h = block(h, widths[level], 4, 2, f"enc{level}_down")
        if level and level < scales:
            h = keras.layers.Concatenate(name=f"enc{level}_concat")([h, inputs[input_name(level)]])
            h = block(h, widths[level], 1, 1, f"enc{level}_fuse")
        if level < scales and (level == 0 or not top_blocks_only):
            for k in range(encoder_blocks):
                h = block(h, widths[level], 4, 1, f"enc{level}_conv{k + 1}")
        skips.append(h)

    outputs = {}
    d = skips[-1]
    for level in range(scales + depth - 2, -1, -1):
        d = block(d, widths[level], 4, 2, f"dec{level}_up", transposed=True)
        d = keras.layers.Add(name=f"dec{level}_skip")([d, skips[level]])
        d = block(d, widths[level], decoder_kernel, 1, f"dec{level}_conv")
        if level < scales:
            y = keras.layers.Conv2D(output_channels, 1, kernel_initializer=conv_init(), name=f"out{level}_conv")(d)
            outputs[output_name(level)] = keras.layers.Activation("tanh", dtype="float32",
                                                                  name=f"out_{output_name(level)}")(y)
    outputs = {output_name(l): outputs[output_name(l)] for l in range(scales)}
    return keras.Model(inputs, outputs, name=name)
