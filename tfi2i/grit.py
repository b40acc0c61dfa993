"""GRIT (Suri, Meshry, Davis, Shrivastava): GAN residuals, the model, its config section and its run builder.

The generator is `tfi2i.networks.grit`; the recipe ``recipes/grit_celebamask.py``
holds the paper <-> code map and every choice where the paper is silent (its
supplementary, with all sizes and hyperparameters, is not available).

Objective (Eq. 2), each term one entry of ``loss.weights``:

* ``g_gan``: the adversarial loss on the output ``y = y_rec + y_res`` (Eq. 1's
  composition C is addition), summed over the ``num_d`` scales of a
  pix2pixHD multi-scale PatchGAN conditioned on the one-hot label map
  (`tfi2i.networks.pix2pixhd.multiscale_discriminator`); ``loss.gan_mode``
  (``lsgan``, pix2pixHD's, by default);
* ``rec`` (``lambda_rec``): ``L1(y_rec, y_target)`` on the reconstruction
  component **alone**: no gradient of it reaches the residual head (tested);
  without GAN residuals (the ablation rows of Table 3) it is L1 on ``y``;
* ``d_real`` / ``d_fake``: D's loss on real and detached generated pairs,
  summed over the scales, 0.5 each.

No feature-matching or perceptual term on the output: either would pull the
residual towards the ground truth pixel by pixel, which is what the paper's
decoupling removes.

Noise: one N(0, 1) map per decoder block (`tfi2i.contract.NoiseSpec`), drawn
from the step's seed in training (`tfi2i.gan.PairedGAN.training_seeds`: a
resumed run draws the same noise) and from an explicit seed at inference.
The style input defaults to the target photo (training and evaluation: the
reference is the ground truth, as the paper evaluates); translate and export
take a style image, or sample the style (`GRIT.with_sampled_style`, from the
Gaussian `tfi2i.style_prior` fits to the training codes).
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from tfi2i import config as config_lib
from tfi2i import losses
from tfi2i.contract import Contract, InputSpec, NoiseSpec, OutputSpec
from tfi2i.gan import PairedGAN, outputs_of
from tfi2i.networks import grit as nets
from tfi2i.networks import pix2pixhd as hd_nets


@dataclasses.dataclass(frozen=True)
class GritSection:
    """GRIT's network options (none of them is given in the paper: recipe "Deviations and choices")."""

    ngf: int = 64  # E^C / decoder width (pix2pix: ngf * min(2**i, 8))
    n_downsample: int = 6  # E^C levels (256 -> 4x4; 512 -> 8x8)
    nsf: int = 64  # E^S width (MUNIT's StyleEncoder)
    style_dim: int = 256  # z^s (SPADE's latent size)
    noise: bool = True  # spatial noise maps in every decoder block (Sec. 3.3)
    residual: bool = True  # two heads, y = y_rec + y_res (Sec. 3.1); false: one head y (Table 3's first rows)
    split_blocks: int = 0  # decoder blocks duplicated per head (0: the heads split after the last block)
    norm: str = "instance"  # E^C normalisation
    ndf: int = 64  # multi-scale PatchGAN (pix2pixHD)
    n_layers_d: int = 3
    num_d: int = 2

    def __post_init__(self):
        for name in ("noise", "residual"):
            if not isinstance(getattr(self, name), bool):
                raise config_lib.ConfigError(f"grit.{name} must be true or false, got {getattr(self, name)!r}")
        if self.n_downsample < 1 or not 0 <= self.split_blocks <= self.n_downsample:
            raise config_lib.ConfigError(f"grit.n_downsample must be >= 1 and 0 <= grit.split_blocks <= "
                                         f"n_downsample, got {self.n_downsample}, {self.split_blocks}")
        if self.split_blocks and not self.residual:
            raise config_lib.ConfigError("grit.split_blocks duplicates decoder blocks per head: it needs "
                                         "grit.residual=true")
        if min(self.ngf, self.nsf, self.style_dim, self.ndf, self.num_d, self.n_layers_d) < 1:
            raise config_lib.ConfigError("grit.ngf, nsf, style_dim, ndf, num_d, n_layers_d must be >= 1")


@dataclasses.dataclass(frozen=True)
class GritConfig(config_lib.Config):
    """`Config` plus GRIT's ``grit`` section (the ``generator`` / ``discriminator`` sections are not used)."""

    grit: GritSection = GritSection()

    def __post_init__(self):
        if self.data.x_batch_kind != "labels" or self.data.num_classes < 2:
            raise config_lib.ConfigError("GRIT translates label maps: data.x_kind=labels and data.num_classes "
                                         f">= 2 (CelebAMask-HQ: 19), got {self.data.x_batch_kind}, "
                                         f"{self.data.num_classes}")
        if "rec" not in self.loss.weights:
            raise config_lib.ConfigError("GRIT's loss.weights needs 'rec' (lambda_rec, Eq. 2)")


# ----------------------------------------------------------------- model
class GRIT(PairedGAN):
    """Eq. 2: the adversarial loss on ``y``, L1 on ``y_rec`` alone, over a multi-scale D (module docstring)."""

    def _scales(self, batch, image, training):
        return hd_nets.judge_scales(self.discriminators, tf.concat([self.condition(batch), image], -1), training)

    @property
    def residual(self):
        return "y_rec" in self.contract.output_names

    def generator_terms(self, batch, fake, training=True):
        fake = outputs_of(fake)
        g_gan = tf.add_n([losses.g_adversarial_loss(o[1], self.gan_mode)
                          for o in self._scales(batch, fake["y"], training)])
        rec = fake["y_rec"] if self.residual else fake["y"]
        return {"g_gan": g_gan, "rec": losses.l1_loss(batch["y"], rec)}

    def discriminator_terms(self, batch, fake, training=True):
        y_fake = outputs_of(fake)["y"]
        d_fake = tf.add_n([losses.d_fake_loss(o[1], self.gan_mode) for o in self._scales(batch, y_fake, training)])
        d_real = tf.add_n([losses.d_real_loss(o[1], self.gan_mode)
                           for o in self._scales(batch, batch["y"], training)])
        return {"d_real": d_real, "d_fake": d_fake}

    def with_sampled_style(self, prior) -> "GRIT":
        """This model (weights shared) with its style drawn from ``prior`` (`tfi2i.style_prior`), not from an image.

        The contract loses the ``style`` input and gains the noise vector
        ``style_noise`` (`networks.grit.STYLE_NOISE`, drawn from each example's
        seed after the decoder's noise maps, which stay those of the same seed).
        """
        if not any(s.kind == "style" for s in self.contract.inputs):
            raise ValueError(f"{self.name} already samples its style")
        generator = nets.sampled_style_generator(self.generator, prior["mean"], prior["scale"])
        dim = int(generator.input[nets.STYLE_NOISE].shape[-1])
        contract = dataclasses.replace(
            self.contract, inputs=tuple(s for s in self.contract.inputs if s.kind != "style"),
            noise=(*self.contract.noise, NoiseSpec(nets.STYLE_NOISE, dim, 0)))
        return GRIT(generator, self.discriminators, self.loss_weights, gan_mode=self.gan_mode, contract=contract,
                    noise_seed=self.noise_seed, name=f"{self.name}_sampled_style")


# ----------------------------------------------------------------- builder
def contract(cfg):
    """``x`` (labels) + ``style`` [+ noise per decoder block] -> ``y`` [, ``y_rec``, ``y_res``]."""
    g = cfg.grit
    noise = tuple(NoiseSpec(nets.noise_name(k), 1, f) for k, f in enumerate(nets.noise_factors(g.n_downsample), 1)
                  ) if g.noise else ()
    outputs = (OutputSpec("y"), OutputSpec("y_rec"), OutputSpec("y_res")) if g.residual else (OutputSpec("y"),)
    return Contract(inputs=(InputSpec("x", "labels", num_classes=int(cfg.data.num_classes)),
                            InputSpec("style", "style", 3)),
                    outputs=outputs, noise=noise, multiple=2 ** g.n_downsample, tileable=False,
                    why_not_tileable="the style code is pooled over the whole image and each tile would draw its "
                                     "own noise: tiles would differ in style and show seams")


def build(cfg) -> GRIT:
    """The GRIT model of a `GritConfig` (builder ``tfi2i.grit:build``)."""
    if not isinstance(cfg, GritConfig):
        raise config_lib.ConfigError(f"tfi2i.grit:build needs a GritConfig, got {type(cfg).__name__}")
    g, n = cfg.grit, int(cfg.data.num_classes)
    generator = nets.grit_generator(n, 3, g.ngf, g.n_downsample, g.nsf, g.style_dim, g.noise, g.residual,
                                    g.split_blocks, g.norm)
    discriminators = hd_nets.multiscale_discriminator(n + 3, g.ndf, g.n_layers_d, g.num_d, "instance")
    return GRIT(generator, discriminators, cfg.loss.weights, gan_mode=cfg.loss.gan_mode, contract=contract(cfg),
                noise_seed=cfg.train.seed, name=cfg.name)


__all__ = ["GRIT", "GritConfig", "GritSection", "build", "contract"]
