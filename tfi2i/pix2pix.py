"""pix2pix (Isola et al. 2017): the U-Net + PatchGAN model every paper starts from, built from a config.

`build` is the run builder of the pix2pix family (``Config.builder =
"tfi2i.pix2pix:build"``, also what a run directory without a recorded builder
is rebuilt with): a U-Net generator on one named input ``x`` (an RGB image, or
a one-hot label map when ``data.x_kind = "labels"``), one 70x70 PatchGAN that
judges ``concat([x, y])`` (``discriminator.conditional = true``) or ``y``
alone, and the pix2pix objective of `tfi2i.gan.PairedGAN`. The recipe
``recipes/pix2pix_facades.py`` holds the paper <-> code map.
"""

from tfi2i.contract import image_contract
from tfi2i.gan import PairedGAN
from tfi2i.networks import build_discriminator, build_generator
from tfi2i.networks.unet import unet_depth


def input_channels(cfg):
    """Channels of G's input ``x``: ``data.num_classes`` for a label map, else ``generator.input_channels``."""
    if cfg.data.x_batch_kind == "labels":
        return int(cfg.data.num_classes)
    return int(cfg.generator.input_channels)


def unet_contract(cfg):
    """The inference contract of a U-Net run: ``x`` (rgb or labels) -> ``y``, sizes a multiple of ``2**depth``."""
    kind = cfg.data.x_batch_kind
    return image_contract(input_channels(cfg), cfg.generator.output_channels, multiple=2 ** unet_depth(cfg.generator.name),
                          kind=kind, num_classes=int(getattr(cfg.data, "num_classes", 0)) if kind == "labels" else 0)


def unet(cfg):
    """The U-Net generator of a config (input channels from `input_channels`)."""
    import dataclasses

    return build_generator(dataclasses.replace(cfg.generator, input_channels=input_channels(cfg)))


def check_single_input(cfg):
    """The U-Net takes one input: refuse instance maps rather than train without them."""
    if getattr(cfg.data, "instances", ""):
        raise ValueError(f"data.instances={cfg.data.instances!r}: the pix2pix U-Net takes one input (x) and would "
                         "ignore the instance maps; leave data.instances empty (instance maps are pix2pixHD's input)")


def discriminator_channels(cfg):
    """What the PatchGAN judges: ``x`` and ``y`` stacked (conditional) or ``y`` alone."""
    out = cfg.generator.output_channels
    return input_channels(cfg) + out if cfg.discriminator.conditional else out


def build(cfg) -> PairedGAN:
    """G, D and the pix2pix objective from a config (honours ``discriminator.conditional``)."""
    check_single_input(cfg)
    discriminator = build_discriminator(cfg.discriminator, discriminator_channels(cfg))
    return PairedGAN(unet(cfg), discriminator, cfg.loss.weights, gan_mode=cfg.loss.gan_mode,
                     conditional=cfg.discriminator.conditional, contract=unet_contract(cfg),
                     noise_seed=cfg.train.seed, name=cfg.name)


__all__ = ["build", "discriminator_channels", "input_channels", "unet", "unet_contract"]
