"""`ModifiedPix2Pix`: pix2pix plus a reconstruction (cycle) term through the same generator.

Mrudula Y, "Modified Pix2Pix Conditional Adversarial Networks for
Image-to-Image Translation" (University at Buffalo). Text:
``shared/papers/modified_pix2pix.md``.

Generator objective (Eq. 6)::

    L_G = L_adv + lambda_L1 * ||y - G(x, z)||_1 + lambda_rec * ||x - G(G(x, z), z')||_1

The second application of G takes the translated image ``G(x, z)`` back to
the input domain with fresh dropout noise ``z'`` (Eq. 3). No gradient is
stopped: the reconstruction term reaches G's weights through both
applications. The discriminator objective (Eq. 5, ``L_D = -L_adv``) is
pix2pix's, inherited from `PairedGAN`.

Loss terms (keys of ``loss.weights``): ``g_gan`` (Eq. 1, G side), ``l1``
(Eq. 2), ``rec`` (Eq. 3), ``d_real`` / ``d_fake`` (Eq. 5).
"""

from __future__ import annotations

from tfi2i import losses
from tfi2i.gan import PairedGAN, outputs_of

#: Eq. 6: lambda_L1 = 1, lambda_rec = 10 (Sec. 3.1); Eq. 5: L_D = -L_adv, real and fake terms unhalved.
PAPER_WEIGHTS = {"g_gan": 1.0, "l1": 1.0, "rec": 10.0, "d_real": 1.0, "d_fake": 1.0}

#: The objectives of the paper's Fig. 2 ablation (and pix2pix's own lambda_L1 = 100), as loss weights.
VARIANT_WEIGHTS = {
    "modified": dict(PAPER_WEIGHTS),  # Fig. 2 (c): L1 + reconstruction, the paper's model
    "pix2pix": {**PAPER_WEIGHTS, "rec": 0.0},  # Fig. 2 (a): original pix2pix objective with this paper's lambda_L1 = 1
    "pix2pix_l1_100": {**PAPER_WEIGHTS, "l1": 100.0, "rec": 0.0},  # original pix2pix with Isola et al.'s lambda = 100
    "rec_only": {**PAPER_WEIGHTS, "l1": 0.0},  # Fig. 2 (b): reconstruction (and adversarial) only
}
VARIANTS = tuple(VARIANT_WEIGHTS)


def variant_weights(variant: str) -> dict:
    """The loss weights of an ablation variant (a fresh dict)."""
    if variant not in VARIANT_WEIGHTS:
        raise ValueError(f"unknown variant '{variant}'; valid: {', '.join(VARIANTS)}")
    return dict(VARIANT_WEIGHTS[variant])


def reconstruction_loss(x, x_rec):
    """Eq. 3 per example: ``mean |x - G(G(x, z), z')|`` over pixels and channels -> ``[B]``.

    Args:
      x: float32 ``[B, H, W, C]`` in [-1, 1], the conditioning image.
      x_rec: ``G(G(x, z), z')``, same shape.
    """
    return losses.l1_loss(x, x_rec)


class ModifiedPix2Pix(PairedGAN):
    """pix2pix with the reconstruction term ``lambda_rec * ||x - G(G(x, z), z')||_1`` on G.

    Same constructor as `PairedGAN`; ``loss_weights`` holds ``g_gan``, ``l1``,
    ``rec``, ``d_real``, ``d_fake``. G must map the output domain back to the
    input domain's shape (``input_channels == output_channels``).

    Reference: Mrudula Y, "Modified Pix2Pix Conditional Adversarial Networks
    for Image-to-Image Translation", Sec. 3.1.
    """

    def generator_terms(self, batch, y_fake, training=True):
        """``g_gan`` (Eq. 1, non-saturating G side), ``l1`` (Eq. 2) and, when its weight is non-zero, ``rec`` (Eq. 3).

        ``l1`` is always computed (it is cheap and the run's readout of how close
        G(x) is to y, also in the ``rec_only`` ablation where its weight is 0).
        ``rec`` costs a second generator pass (which also moves batch-norm
        statistics), so it is skipped when ``loss.weights.rec`` is 0.

        Args:
          batch: ``{"x": [B, H, W, C], "y": [B, H, W, C]}`` in [-1, 1].
          y_fake: ``G(x, z)`` (computed on the tape, so gradients reach G).
          training: dropout (the noise z') and batch norm in training mode.

        Returns:
          ``{term: [B]}``.
        """
        x = batch["x"]
        terms = super().generator_terms(batch, y_fake, training)  # g_gan, l1
        if self.active("rec"):
            # G(G(x, z), z'): a fresh dropout mask
            x_rec = self.generator({"x": outputs_of(y_fake)["y"]}, training=training)["y"]
            terms["rec"] = reconstruction_loss(x, x_rec)
        return terms

    def sample_panels(self, batch, y=None):
        """``x | G(x) | G(G(x)) | y`` (the reconstruction shows what the ``rec`` term asks of G)."""
        if y is not None:
            batch = {"x": batch, "y": y}
        x, y = batch["x"], batch["y"]
        y_fake = self.generator({"x": x}, training=False)["y"]
        return [("x", x), ("G(x)", y_fake), ("G(G(x))", self.generator({"x": y_fake}, training=False)["y"]), ("y", y)]


def build(cfg) -> ModifiedPix2Pix:
    """G, D and the Modified Pix2Pix objective (pix2pix's when ``loss.weights.rec`` is 0); builder ``tfi2i.modified_pix2pix:build``."""
    from tfi2i import pix2pix
    from tfi2i.networks import build_discriminator

    pix2pix.check_single_input(cfg)
    if pix2pix.input_channels(cfg) != cfg.generator.output_channels or cfg.data.x_batch_kind != "rgb":
        raise ValueError("the reconstruction G(G(x)) needs an RGB input with generator.input_channels == "
                         "generator.output_channels")
    discriminator = build_discriminator(cfg.discriminator, pix2pix.discriminator_channels(cfg))
    return ModifiedPix2Pix(pix2pix.unet(cfg), discriminator, cfg.loss.weights, gan_mode=cfg.loss.gan_mode,
                           conditional=cfg.discriminator.conditional, contract=pix2pix.unet_contract(cfg),
                           noise_seed=cfg.train.seed, name=cfg.name)


__all__ = ["build", "ModifiedPix2Pix", "PAPER_WEIGHTS", "VARIANTS", "VARIANT_WEIGHTS", "reconstruction_loss", "variant_weights"]
