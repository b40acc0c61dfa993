"""GRIT's generator (Suri, Meshry, Davis, Shrivastava, Sec. 3, Fig. 5): content encoder, style encoder, decoder.

The paper gives the structure and defers every size to a supplementary that is
not available; each choice below is a field of `tfi2i.grit.GritSection` and is
listed in ``recipes/grit_celebamask.py``'s "Deviations and choices".

* **Content encoder** E^C (a U-Net encoder, Sec. 3.1): the one-hot label map
  ``x`` through ``n_downsample`` blocks ``Conv 4x4/2 -> norm -> LeakyReLU(0.2)``
  (pix2pix's encoder, no norm on the first), widths ``ngf * min(2**i, 8)``;
  every block's output is a skip.
* **Style encoder** E^S (Sec. 3.1, "following the literature"): MUNIT's
  ``StyleEncoder`` (Huang et al. 2018): ``Conv 7x7 -> ReLU``, four ``Conv
  4x4/2 -> ReLU`` (widths ``nsf * min(2**i, 4)``), global average pooling,
  ``Dense(style_dim)``: the style image ``style`` -> ``z^s``. No normalisation
  (it would wash out the style statistics).
* **Decoder** D: one upsampling block per encoder level (Fig. 5 right):
  ``TransposedConv 4x4/2`` -> concatenated with the encoder skip of that size ->
  ``Conv 3x3`` -> `NoiseInjection` (a 1-channel N(0, 1) map ``noise_<k>`` at
  the block's resolution times a learned per-channel weight, init 0; StyleGAN)
  -> ``LeakyReLU(0.2)`` -> `AdaIN` from ``z^s`` (StyleGAN's order: noise
  before the activation, AdaIN after).
* **Heads** (Sec. 3.1, Eq. 1): from the last block, ``residual`` True gives
  two heads ``Conv 3x3 -> tanh``, ``y_rec`` and ``y_res``, and ``y = y_rec +
  y_res`` (the composition C is addition); False gives one head, ``y``. With
  ``split_blocks`` > 0 the last that many upsampling blocks are duplicated,
  one copy per head (where exactly the heads split is not in the paper).

Inputs ``x`` (``[B, H, W, num_classes]``), ``style`` (``[B, H', W', 3]``, any
size), ``noise_1`` .. ``noise_n`` (``[B, H/f, W/f, 1]``, block ``k`` at factor
``f = 2**(n_downsample - k)``; absent with ``noise=False``). H and W multiples
of ``2**n_downsample``.
"""

from __future__ import annotations

import keras

from tfi2i.layers import conv_init, make_norm
from tfi2i.layers.transposed import Conv2DTranspose
from tfi2i.layers.style import AdaIN, NoiseInjection, StylePrior

__all__ = ["grit_generator", "sampled_style_generator", "style_encoder", "noise_factors", "noise_name",
           "STYLE_NOISE"]

#: The N(0, I) vector a sampled style code is made from (`sampled_style_generator`).
STYLE_NOISE = "style_noise"


def noise_name(block: int) -> str:
    """The noise input of decoder block ``block`` (1 = the coarsest)."""
    return f"noise_{block}"


def noise_factors(n_downsample: int) -> tuple:
    """Downscale factor of each decoder block's noise map, coarsest block first."""
    return tuple(2 ** (n_downsample - k) for k in range(1, n_downsample + 1))


def _widths(base, n, cap):
    return [int(base) * min(2**i, cap) for i in range(n)]


def style_encoder(nsf=64, style_dim=256, n_downsample=4, name="E_S"):
    """MUNIT's style encoder: image -> ``z^s`` ``[B, style_dim]``."""
    inp = keras.Input((None, None, 3), name="style")
    h = keras.layers.Conv2D(nsf, 7, padding="same", kernel_initializer=conv_init(), name="es_conv0")(inp)
    h = keras.layers.ReLU(name="es_relu0")(h)
    for i in range(1, n_downsample + 1):
        h = keras.layers.Conv2D(nsf * min(2**i, 4), 4, strides=2, padding="same", kernel_initializer=conv_init(),
                                name=f"es_conv{i}")(h)
        h = keras.layers.ReLU(name=f"es_relu{i}")(h)
    h = keras.layers.GlobalAveragePooling2D(name="es_pool")(h)
    z = keras.layers.Dense(style_dim, name="es_code")(h)
    return keras.Model(inp, z, name=name)


def grit_generator(num_classes, output_channels=3, ngf=64, n_downsample=6, nsf=64, style_dim=256, noise=True,
                   residual=True, split_blocks=0, norm="instance", name="G_grit") -> keras.Model:
    """Builds G (module docstring); returns a ``keras.Model`` on named inputs -> named outputs."""
    n = int(n_downsample)
    if n < 1 or not 0 <= int(split_blocks) <= n:
        raise ValueError(f"GRIT needs n_downsample >= 1 and 0 <= split_blocks <= n_downsample, got {n}, {split_blocks}")
    if split_blocks and not residual:
        raise ValueError("split_blocks duplicates decoder blocks per head: it needs the residual head")
    widths = _widths(ngf, n, 8)
    x = keras.Input((None, None, num_classes), name="x")
    style = keras.Input((None, None, 3), name="style")
    inputs = {"x": x, "style": style}
    noises = {}
    if noise:
        noises = {noise_name(k): keras.Input((None, None, 1), name=noise_name(k)) for k in range(1, n + 1)}
        inputs.update(noises)

    z = style_encoder(nsf, style_dim)(style)

    skips, h = [], x
    for i, w in enumerate(widths):
        h = keras.layers.Conv2D(w, 4, strides=2, padding="same", kernel_initializer=conv_init(),
                                name=f"ec_conv{i + 1}")(h)
        if i:
            h = make_norm(norm, f"ec_norm{i + 1}")(h)
        h = keras.layers.LeakyReLU(0.2, name=f"ec_lrelu{i + 1}")(h)
        skips.append(h)

    def up_block(h, k, tag):
        """Decoder block k (1 = coarsest): up to the size of skip n-k-1 (or the input), concat, conv, noise, AdaIN."""
        out_w = widths[n - k - 1] if k < n else ngf
        h = Conv2DTranspose(out_w, 4, strides=2, padding="same", kernel_initializer=conv_init(),
                                         name=f"{tag}{k}_up")(h)
        if k < n:
            h = keras.layers.Concatenate(name=f"{tag}{k}_skip")([h, skips[n - k - 1]])
        h = keras.layers.Conv2D(out_w, 3, padding="same", kernel_initializer=conv_init(), name=f"{tag}{k}_conv")(h)
        if noise:
            h = NoiseInjection(name=f"{tag}{k}_noise")([h, noises[noise_name(k)]])
        h = keras.layers.LeakyReLU(0.2, name=f"{tag}{k}_lrelu")(h)
        return AdaIN(name=f"{tag}{k}_adain")([h, z])

    h = skips[-1]
    shared = n - int(split_blocks)
    for k in range(1, shared + 1):
        h = up_block(h, k, "dec")

    def head(h, out, tag):
        for k in range(shared + 1, n + 1):
            h = up_block(h, k, f"{tag}_dec")
        y = keras.layers.Conv2D(output_channels, 3, padding="same", kernel_initializer=conv_init(),
                                name=f"{tag}_head")(h)
        return keras.layers.Activation("tanh", dtype="float32", name=f"out_{out}")(y)

    if not residual:
        return keras.Model(inputs, {"y": head(h, "y", "y")}, name=name)
    y_rec, y_res = head(h, "y_rec", "rec"), head(h, "y_res", "res")
    y = keras.layers.Add(name="out_y", dtype="float32")([y_rec, y_res])  # C = addition (Sec. 3.1)
    return keras.Model(inputs, {"y": y, "y_rec": y_rec, "y_res": y_res}, name=name)


def sampled_style_generator(generator, prior_mean, prior_scale, name=None) -> keras.Model:
    """``generator`` with its style encoder replaced by a Gaussian style prior (sampled styles, no style image).

    Takes the generator's inputs without ``style`` plus `STYLE_NOISE`
    (``[B, style_dim]``, N(0, I)); ``z^s = mean + scale @ eps``
    (`tfi2i.layers.style.StylePrior`), then the trained content encoder and
    decoder, whose layers (and weights) it shares with ``generator``.
    """
    import numpy as np

    encoder = generator.get_layer("E_S")
    code = encoder._inbound_nodes[0].outputs[0]  # z^s inside G: the sub-graph below it is the decoder
    style_dim = int(code.shape[-1])
    names = [n for n in generator.input if n != "style"]
    decoder = keras.Model([generator.input[n] for n in names] + [code], generator.output,
                          name=f"{generator.name}_from_code")
    inputs = {n: keras.Input(generator.input[n].shape[1:], name=n) for n in names}
    inputs[STYLE_NOISE] = keras.Input((style_dim,), name=STYLE_NOISE)
    prior = StylePrior(style_dim, name="style_prior")
    z = prior(inputs[STYLE_NOISE])
    prior.mean.assign(np.asarray(prior_mean, np.float32).reshape(style_dim))
    prior.scale.assign(np.asarray(prior_scale, np.float32).reshape(style_dim, style_dim))
    outputs = decoder([inputs[n] for n in names] + [z])
    return keras.Model(inputs, outputs, name=name or f"{generator.name}_sampled_style")
