"""Generators and discriminators."""

from tfi2i.networks.patchgan import patchgan_discriminator
from tfi2i.networks.unet import unet_depth, unet_generator
from tfi2i.networks.vgg import VGG19_FEATURE_LAYERS, VGGInputMapping, vgg19_features

__all__ = ["patchgan_discriminator", "unet_depth", "unet_generator"]
__all__ += ["VGG19_FEATURE_LAYERS", "VGGInputMapping", "vgg19_features"]


def build_generator(gen_cfg, synchronized_bn=True):
    """Generator from a `tfi2i.config.GeneratorConfig` (U-Net family)."""
    return unet_generator(
        gen_cfg.name, gen_cfg.ngf, gen_cfg.norm, gen_cfg.dropout, gen_cfg.input_channels, gen_cfg.output_channels,
        synchronized_bn=synchronized_bn,
    )


def build_discriminator(disc_cfg, input_channels, name="D"):
    """PatchGAN from a `tfi2i.config.DiscriminatorConfig`; returns ``(features, logits)``."""
    if disc_cfg.name != "patchgan":
        raise ValueError(f"unknown discriminator '{disc_cfg.name}'; valid: patchgan")
    return patchgan_discriminator(
        input_channels, disc_cfg.ndf, disc_cfg.n_layers, disc_cfg.norm, name=name
    )


__all__ += ["build_generator", "build_discriminator"]
