"""MSG U-Net (Laxman, Dubey, Kalyan, Kojjarapu): the model, its config section and its run builder.

The generator is `tfi2i.networks.msg_unet` (Sec. 2.1); the recipe
``recipes/msg_unet_cityscapes.py`` holds the paper <-> code map and every
deviation. The paper is the only source (the authors' notebooks are no longer
public).

Objective (Eq. 1), over the judged scales ``k`` (every output scale, or only
the top one with ``msg.judged=top``, the Fig. 2 ablation), each term one entry
of ``loss.weights``:

* ``g_gan``: pix2pixHD's least-squares loss ``sum_k mean((D_k(x_k, z_k) - 1)^2)``;
  ``d_real`` / ``d_fake``: ``sum_k mean((D_k(x_k, y_k) - 1)^2)`` and
  ``sum_k mean(D_k(x_k, sg(z_k))^2)``, weights 0.5 each (pix2pixHD's
  ``loss_D = 0.5 (fake + real)``);
* ``g_feat`` (alpha = 10): ``sum_k sum_i (1/E_i) ||D_k^i(x_k, y_k) - D_k^i(x_k, z_k)||_1``
  over every intermediate layer ``i`` of every ``D_k`` (the LeakyReLU
  activations the PatchGAN returns; the logits are the adversarial term's),
  real side detached: `tfi2i.losses.feature_matching_loss` with weight 1 per
  layer (per-example means are the ``1/E_i``);
* ``g_vgg`` (beta = 0.25): ``sum_k sum_i (1/V_i) ||F^i(y_k) - F^i(z_k)||_1``
  over all sixteen convolutions of a frozen VGG-19 (``msg.vgg_layers=all``;
  ``relu`` included, Keras' conv layers carry it), the same L1 mean per layer.

``x_k`` is the source at scale ``k`` (the generator's input ``x_{2^k}``), ``y_k``
the target downscaled by ``2^k`` and ``z_k`` the generator's output ``y_{2^k}``;
the pyramids come from tf.data (``data.pyramid_levels``: batch keys
``x_levels`` / ``y_levels``, `tfi2i.data.augment.pyramid_levels`) and, where a
caller gives only ``x`` (translate, export), from the contract's resized
inputs, with the same `tfi2i.data.augment.downscale`.

Update order: `tfi2i.gan.OneForwardGAN` (one forward pass, then G's and D's
updates from the same numbers: pix2pixHD's order, which the paper builds on,
and TensorFlow's pix2pix tutorial's two-tape step).
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from tfi2i import config as config_lib
from tfi2i import losses
from tfi2i.contract import Contract, InputSpec, OutputSpec
from tfi2i.data.augment import downscale
from tfi2i.gan import OneForwardGAN, VGGLossMixin, outputs_of
from tfi2i.networks import msg_unet as nets
from tfi2i.networks.vgg import vgg_l1_loss

JUDGED = ("all", "top")
VGG_LAYERS = ("all", "pix2pixhd")


@dataclasses.dataclass(frozen=True)
class MSGSection:
    """MSG U-Net's network and loss options (the paper gives no widths: `tfi2i.networks.msg_unet`)."""

    ngf: int = 32  # widths[l] = min(ngf * 2**(l + first_level), width_cap): calibrated to the paper's 1.28 TFLOPs
    width_cap: int = 512
    widths: tuple = ()  # explicit channels per level (overrides ngf / width_cap)
    scales: int = 5  # levels with an input and an output (2048x1024 .. 128x64)
    depth: int = 4  # plain U-Net levels below the last input scale (64x32 .. 8x4)
    first_level: int = 0  # 1: the 512x512 variant (Sec. 3.1), whose top is the full model's 1024x512 level
    encoder_blocks: int = 2  # 4x4 stride-1 blocks at every input level ("two convolutional blocks")
    top_blocks_only: bool = False  # the other reading: those two blocks at the top level only
    decoder_kernel: int = 4  # kernel of the decoder's stride-1 block after each skip addition
    norm: str = "batch"  # Conv-BatchNorm-LeakyReLU
    recompute: bool = False  # recompute G's and VGG-19's blocks in the backward pass (memory; same results)
    ndf: int = 64  # each D_k: pix2pix's 70x70 PatchGAN
    n_layers_d: int = 3
    judged: str = "all"  # all: one D per output scale (the paper) | top: only y is judged (Fig. 2 ablation)
    vgg_layers: str = "all"  # all: the 16 convolutions (Eq. 1's U layers) | pix2pixhd: relu1_1..relu5_1, 1/32..1
    vgg_weights: str = "imagenet"  # imagenet | a local .h5 path | random (tests only)
    vgg_input_mapping: str = "pix2pixhd"  # tfi2i.networks.vgg: pix2pixhd | caffe | none

    def __post_init__(self):
        if isinstance(self.widths, list):
            object.__setattr__(self, "widths", tuple(self.widths))
        if self.scales < 1 or self.depth < 1 or self.first_level < 0:
            raise config_lib.ConfigError(f"msg.scales and msg.depth must be >= 1 and msg.first_level >= 0, got "
                                         f"{self.scales}, {self.depth}, {self.first_level}")
        if self.widths and len(self.widths) != self.scales + self.depth:
            raise config_lib.ConfigError(f"msg.widths: one per level (msg.scales + msg.depth = "
                                         f"{self.scales + self.depth}), got {len(self.widths)}")
        if self.judged not in JUDGED:
            raise config_lib.ConfigError(f"msg.judged must be one of {', '.join(JUDGED)}, got {self.judged!r}")
        if self.vgg_layers not in VGG_LAYERS:
            raise config_lib.ConfigError(f"msg.vgg_layers must be one of {', '.join(VGG_LAYERS)}, "
                                         f"got {self.vgg_layers!r}")
        if self.encoder_blocks < 0 or self.decoder_kernel < 1 or self.ngf < 1 or self.ndf < 1:
            raise config_lib.ConfigError("msg.encoder_blocks must be >= 0 and msg.decoder_kernel, msg.ngf, msg.ndf "
                                         ">= 1")

    @property
    def level_widths(self):
        """Channels per level (``widths`` or the doubling rule)."""
        if self.widths:
            return tuple(int(w) for w in self.widths)
        return nets.default_widths(self.ngf, self.scales, self.depth, self.width_cap, self.first_level)

    @property
    def multiple(self):
        """Input H and W must be multiples of ``2**(scales + depth - 1)`` (the bottleneck's factor)."""
        return 2 ** (self.scales + self.depth - 1)


@dataclasses.dataclass(frozen=True)
class MSGUNetConfig(config_lib.Config):
    """`Config` plus MSG U-Net's ``msg`` section (the ``generator`` / ``discriminator`` sections are not used)."""

    msg: MSGSection = MSGSection()

    def __post_init__(self):
        if self.data.pyramid_levels not in (0, self.msg.scales):
            raise config_lib.ConfigError(f"data.pyramid_levels={self.data.pyramid_levels}: MSG U-Net's tf.data "
                                         f"pyramid has msg.scales={self.msg.scales} levels (or 0: made in the model)")
        if self.data.x_batch_kind != "rgb" or self.data.y_kind != "rgb":
            raise config_lib.ConfigError("MSG U-Net translates images: data.x_kind and data.y_kind must be rgb "
                                         "(a Cityscapes label map enters as the segmented RGB map: "
                                         "data.label_colors=cityscapes)")


# ----------------------------------------------------------------- model
class MSGUNet(VGGLossMixin, OneForwardGAN):
    """Eq. 1 over the judged scales (module docstring).

    Args:
      generator: `tfi2i.networks.msg_unet.msg_unet_generator`.
      discriminators: one PatchGAN per output scale, entry ``k`` for scale ``2**k``.
      loss_weights: ``g_gan``, ``g_feat``, ``g_vgg``, ``d_real``, ``d_fake``.
      judged: ``all`` or ``top`` (only ``y``; `discriminators` then has one entry).
      vgg_factory: ``() -> keras.Model`` returning the VGG-19 features; called
        in `compile` (training only) when ``g_vgg`` is on.
      vgg_weights: per-layer weights of the VGG term (None: 1 each).
      recompute: the VGG term recomputes VGG-19's blocks in its backward pass (`vgg_term`; G's blocks are
        recomputed by the generator, built with ``recompute``).
    """

    def __init__(self, generator, discriminators, loss_weights, judged="all", vgg_factory=None, vgg_weights=None,
                 recompute=False, **kwargs):
        super().__init__(generator, discriminators, loss_weights, gan_mode="lsgan", **kwargs)
        if judged not in JUDGED:
            raise ValueError(f"judged must be one of {JUDGED}, got {judged!r}")
        self.judged = judged
        self.scales = len(self.contract.outputs)
        want = self.scales if judged == "all" else 1
        if len(self.discriminators) != want:
            raise ValueError(f"judged={judged}: {want} discriminator(s) needed, got {len(self.discriminators)}")
        self.vgg_factory = vgg_factory
        self.vgg_weights = vgg_weights
        self.vgg = None
        self.recompute = recompute

    # ------------------------------------------------------------- the pyramids
    def encode(self, batch):
        """`PairedGAN.encode`, with tf.data's input pyramid (``x_levels``) as the resized inputs when present."""
        levels = batch.get("x_levels")
        if levels is not None:
            batch = {**batch, **{nets.input_name(k): levels[k] for k in range(1, self.scales)}}
        return super().encode(batch)

    def target(self, batch, level):
        """``y_k``: tf.data's ``y_levels[k]`` when present, else ``downscale(y, 2**k)`` (the same function)."""
        levels = batch.get("y_levels")
        if levels is not None:
            return tf.cast(levels[level], tf.float32)
        return downscale(tf.cast(batch["y"], tf.float32), 2 ** level)

    def judged_levels(self):
        return range(self.scales) if self.judged == "all" else range(1)

    # ------------------------------------------------------------- objective
    def objective(self, batch, fake, training=True):
        """``(generator terms, discriminator terms)`` of Eq. 1 from one forward pass."""
        fake = outputs_of(fake)
        inputs = batch["inputs"] if "inputs" in batch else self.encode(batch)
        g_gan, g_feat, g_vgg, d_real, d_fake = [], [], [], [], []
        for k in self.judged_levels():
            d = self.discriminators[k]
            cond = inputs[nets.input_name(k)]
            real, out = self.target(batch, k), fake[nets.output_name(k)]
            p_fake_d = d(tf.concat([cond, tf.stop_gradient(out)], -1), training=training)
            p_real = d(tf.concat([cond, real], -1), training=training)
            p_fake = d(tf.concat([cond, out], -1), training=training)
            d_fake.append(losses.d_fake_loss(p_fake_d[1], "lsgan"))
            d_real.append(losses.d_real_loss(p_real[1], "lsgan"))
            g_gan.append(losses.g_adversarial_loss(p_fake[1], "lsgan"))
            if self.active("g_feat"):
                g_feat.append(losses.feature_matching_loss(p_fake[0], p_real[0]))
            if self.active("g_vgg") and self.vgg is not None and _vgg_fits(out):
                g_vgg.append(self.vgg_term(out, real))
        g_terms = {"g_gan": tf.add_n(g_gan)}
        if g_feat:
            g_terms["g_feat"] = tf.add_n(g_feat)
        if g_vgg:
            g_terms["g_vgg"] = tf.add_n(g_vgg)
        return g_terms, {"d_real": tf.add_n(d_real), "d_fake": tf.add_n(d_fake)}

    def vgg_term(self, out, real):
        """``sum_i w_i L1(F^i(out), sg(F^i(real)))``, `[B]`: `losses.feature_matching_loss` over VGG-19's features.

        Computed by `vgg_l1_loss`: the same value and gradient as autodiff's, with a backward pass that makes each
        layer's gradient when it reaches it; with ``recompute`` it recomputes VGG's blocks as well.
        """
        return vgg_l1_loss(self.vgg, out, real, self.vgg_weights, recompute=self.recompute)


def _vgg_fits(image):
    """VGG-19's fifth block needs 16 pixels per side; a smaller scale (tiny test sizes only) is left out of g_vgg."""
    h, w = image.shape[1], image.shape[2]
    return h is None or w is None or min(int(h), int(w)) >= 16


# ----------------------------------------------------------------- builder
def contract(cfg):
    """``x`` (+ ``x_2`` .. resized from it) -> ``y``, ``y_2``, ...; sizes a multiple of the bottleneck's factor."""
    msg, c_in, c_out = cfg.msg, int(cfg.generator.input_channels), int(cfg.generator.output_channels)
    inputs = (InputSpec("x", "rgb", c_in),) + tuple(
        InputSpec(nets.input_name(k), "rgb", c_in, factor=2**k, resized_from="x") for k in range(1, msg.scales))
    outputs = tuple(OutputSpec(nets.output_name(k), c_out, 2**k) for k in range(msg.scales))
    return Contract(inputs=inputs, outputs=outputs, multiple=msg.multiple, tileable=False,
                    why_not_tileable="its outputs come at several scales and its inputs are resized copies of the "
                                     "whole image")


def generator(cfg):
    msg = cfg.msg
    return nets.msg_unet_generator(cfg.generator.input_channels, cfg.generator.output_channels, msg.level_widths,
                                   msg.scales, msg.depth, msg.decoder_kernel, msg.encoder_blocks,
                                   msg.top_blocks_only, msg.norm, recompute=msg.recompute)


def vgg_factory(cfg):
    """``() -> VGG-19 features`` for ``g_vgg``: all 16 convolutions, or pix2pixHD's five."""
    from tfi2i.networks.vgg import VGG19_CONV_LAYERS, VGG19_FEATURE_LAYERS, vgg19_features

    weights = None if cfg.msg.vgg_weights == "random" else cfg.msg.vgg_weights
    layers = VGG19_CONV_LAYERS if cfg.msg.vgg_layers == "all" else VGG19_FEATURE_LAYERS
    return lambda: vgg19_features(weights, cfg.msg.vgg_input_mapping, how_to_pass="--vgg-weights PATH",
                                  layers=layers)


def build(cfg) -> MSGUNet:
    """The MSG U-Net model of an `MSGUNetConfig` (builder ``tfi2i.msg_unet:build``)."""
    from tfi2i.networks.patchgan import patchgan_discriminator

    if not isinstance(cfg, MSGUNetConfig):
        raise config_lib.ConfigError(f"tfi2i.msg_unet:build needs an MSGUNetConfig, got {type(cfg).__name__}")
    msg = cfg.msg
    d_channels = cfg.generator.input_channels + cfg.generator.output_channels
    judged = range(msg.scales) if msg.judged == "all" else range(1)
    discriminators = [patchgan_discriminator(d_channels, msg.ndf, msg.n_layers_d, msg.norm,
                                             name=f"D_{nets.output_name(k)}") for k in judged]
    vgg_weights = None if msg.vgg_layers == "all" else losses.VGG_LOSS_WEIGHTS
    return MSGUNet(generator(cfg), discriminators, cfg.loss.weights, judged=msg.judged,
                   vgg_factory=vgg_factory(cfg), vgg_weights=vgg_weights, recompute=msg.recompute,
                   contract=contract(cfg), noise_seed=cfg.train.seed, name=cfg.name)


__all__ = ["MSGSection", "MSGUNet", "MSGUNetConfig", "build", "contract", "generator"]
