"""`PAN`: Perceptual Adversarial Network with a feature pyramid (Li et al.).

The objective (Eqs. 6-10) on top of `PairedGAN`'s train step; the recipe
``recipes/pan_cityscapes.py`` holds the paper <-> code map and every choice.

Per level ``k = 0 .. L-1`` of the pyramids (`tfi2i.pyramid`, Eq. 2):

* ``D_high[k]`` (Eq. 6): conditional PatchGAN on
  ``concat(p_k(x), h_k(y))`` (real) vs ``concat(p_k(x), h_k(G(x)))`` (fake);
  with ``conditional=False`` it judges ``h_k`` alone.
* ``D_low[k]`` (Eq. 7): unconditional PatchGAN on ``p_{k+1}(y)`` vs
  ``p_{k+1}(G(x))`` (the low-pass level that pairs with ``h_k``).
* perceptual (Eq. 8): ``sum_k sum_l beta_l * mean_{C,H,W} (phi_l(fake pair) -
  phi_l(real pair))^2`` over the LeakyReLU activations ``phi_l`` of
  ``D_high[k]``; the real pair's features are constants (stop-gradient) and
  only G's optimizer sees this term.
* ``l1`` (Eq. 9).

Terms (``loss.weights``): G: ``g_high``, ``g_low``, ``perceptual``, ``l1``;
D: ``d_high_real``, ``d_high_fake``, ``d_low_real``, ``d_low_fake``. Each
adversarial term is the sum over the levels. A weight of 0 skips the term's
computation, and a discriminator whose terms are all off gets no update.

The pyramids of x, y and G(x) are computed once per step (`PAN.prepare`) and
shared by the D and G objectives; the D step sees them detached.
"""

import tensorflow as tf

from tfi2i import losses
from tfi2i.gan import PairedGAN, outputs_of
from tfi2i.pyramid import high_frequency, smooth_pyramid


def perceptual_loss(fake_features, real_features, betas):
    """Eq. 8 for one discriminator: ``sum_l beta_l * mean_{C,H,W}((phi_l(fake) - phi_l(real))^2)``, `[B]`.

    ``mean`` over C, H, W is the paper's division by ``C_l H_l W_l``;
    `real_features` are treated as constants; a beta of 0 skips its layer.
    The package's one feature-matching loss, `losses.feature_matching_loss`,
    with the squared L2 distance.
    """
    return losses.feature_matching_loss(fake_features, real_features, betas, distance="l2")


class PAN(PairedGAN):
    """PAN objective; ``self.discriminator`` is ``[*d_high, *d_low]`` (checkpointed as a list).

    Args:
      generator: G ``[B, H, W, 3] -> [B, H, W, 3]``.
      d_high: ``levels`` PatchGANs on 6 (conditional) or 3 channels
        (their ``features`` feed the perceptual loss).
      d_low: ``levels`` PatchGANs (logits) on 3 channels.
      loss_weights: the eight terms' weights (see module docstring).
      feature_weights: ``beta_l``, one per LeakyReLU layer of a ``D_high``.
      conditional: ``D_high`` sees ``p_k(x)`` too (Eq. 6); False: the
        "without conditioning" ablation.
    """

    D_TERMS = ("d_high_real", "d_high_fake", "d_low_real", "d_low_fake")

    def __init__(self, generator, d_high, d_low, loss_weights, feature_weights, conditional=True, gan_mode="vanilla",
                 **kwargs):
        if len(d_high) != len(d_low):
            raise ValueError(f"PAN: {len(d_high)} high-frequency and {len(d_low)} low-frequency discriminators")
        super().__init__(generator, [*d_high, *d_low], loss_weights, gan_mode=gan_mode, conditional=conditional,
                         **kwargs)
        self.levels = len(d_high)
        self.feature_weights = [float(b) for b in feature_weights]

    @property
    def d_high(self):
        return list(self.discriminators[: self.levels])

    @property
    def d_low(self):
        return list(self.discriminators[self.levels:])

    # --------------------------------------------------------------- helpers
    def _high_input(self, px_k, h_k):
        return tf.concat([px_k, h_k], axis=-1) if self.conditional else h_k

    def _uses_pyramids(self):
        return any(self.active(t) for t in ("g_high", "g_low", "perceptual", *self.D_TERMS))

    def pyramids(self, image):
        """``{"p": [p_0 .. p_L], "h": [h_0 .. h_{L-1}]}`` of ``image`` (Eq. 2)."""
        p = smooth_pyramid(image, self.levels)
        return {"p": p, "h": high_frequency(image, self.levels, pyramid=p)}

    def prepare(self, batch, fake):
        """The pyramids of x, y and G(x), once per step for both objectives.

        ``batch`` gains ``pyr_x`` and ``pyr_y``; ``fake`` is the generator's
        outputs plus ``"p": [...], "h": [...]`` of ``fake["y"]`` (detached for
        the D step by `PairedGAN`).
        """
        fake = dict(outputs_of(fake))
        if "p" in fake or not self._uses_pyramids():
            return batch, fake
        batch = {**batch, "pyr_x": self.pyramids(batch["x"]), "pyr_y": self.pyramids(batch["y"])}
        fake.update(self.pyramids(fake["y"]))
        return batch, fake

    def sample_panels(self, batch, y=None):
        """``x | G(x) | y`` then ``h_k(G(x)) | h_k(y)`` per level: what each ``D_high[k]`` judges.

        The maps are shown at full size (nearest-neighbour) with ``4 * h_k``
        clipped to [-1, 1], so mid-grey is 0.
        """
        if y is not None:
            batch = {"x": batch, "y": y}
        x, y = batch["x"], batch["y"]
        y_fake = self.generate(batch, training=False)["y"]
        panels = [("x", x), ("G(x)", y_fake), ("y", y)]
        hf, hy = self.pyramids(y_fake)["h"], self.pyramids(y)["h"]
        size = tf.shape(x)[1:3]
        show = lambda h: tf.clip_by_value(4.0 * tf.image.resize(h, size, method="nearest"), -1.0, 1.0)  # noqa: E731
        for k in range(self.levels):
            panels += [(f"h{k}(G(x))", show(hf[k])), (f"h{k}(y)", show(hy[k]))]
        return panels

    # ------------------------------------------------------------------ hooks
    def discriminator_terms(self, batch, fake, training=True):
        """Eq. 6 and Eq. 7, D side (each summed over the levels); `fake` from `prepare` or a tensor."""
        batch, fake = self.prepare(batch, fake)
        terms = {}
        if not any(self.active(t) for t in self.D_TERMS):
            return terms
        px, py, hy = batch["pyr_x"]["p"], batch["pyr_y"]["p"], batch["pyr_y"]["h"]
        pf, hf = fake["p"], fake["h"]
        levels = range(self.levels)
        for name, nets, real, fake_in in (
            ("d_high", self.d_high, [self._high_input(px[k], hy[k]) for k in levels],
             [self._high_input(px[k], hf[k]) for k in levels]),
            ("d_low", self.d_low, py[1:], pf[1:]),
        ):
            if self.active(f"{name}_real"):
                terms[f"{name}_real"] = tf.add_n(
                    [losses.d_real_loss(_logits(d(r, training=training)), self.gan_mode) for d, r in zip(nets, real)]
                )
            if self.active(f"{name}_fake"):
                terms[f"{name}_fake"] = tf.add_n(
                    [losses.d_fake_loss(_logits(d(f, training=training)), self.gan_mode) for d, f in zip(nets, fake_in)]
                )
        return terms

    def generator_terms(self, batch, fake, training=True):
        """Eq. 6 / 7 (G side), Eq. 8 and Eq. 9; `fake` from `prepare` or a tensor."""
        batch, fake = self.prepare(batch, fake)
        terms = {}
        if self.active("g_high") or self.active("perceptual"):
            px, hy, hf = batch["pyr_x"]["p"], batch["pyr_y"]["h"], fake["h"]
            g_high, perceptual = [], []
            for k, d in enumerate(self.d_high):
                fake_out = d(self._high_input(px[k], hf[k]), training=training)
                g_high.append(losses.g_adversarial_loss(_logits(fake_out), self.gan_mode))
                if self.active("perceptual"):
                    real_out = d(self._high_input(px[k], hy[k]), training=training)
                    perceptual.append(perceptual_loss(fake_out[0], real_out[0], self.feature_weights))
            if self.active("g_high"):
                terms["g_high"] = tf.add_n(g_high)
            if perceptual:
                terms["perceptual"] = tf.add_n(perceptual)
        if self.active("g_low"):
            terms["g_low"] = tf.add_n(
                [losses.g_adversarial_loss(_logits(d(fake["p"][k + 1], training=training)), self.gan_mode)
                 for k, d in enumerate(self.d_low)]
            )
        terms["l1"] = losses.l1_loss(batch["y"], fake["y"])
        return terms


#: "three levels for each are enough" (Sec. 3.2)
LEVELS = 3


def build(cfg) -> PairedGAN:
    """G, the discriminators and the objective from a config (the run builder ``tfi2i.pan:build``).

    The loss weights pick the objective: PAN's terms -> `PAN`; ``l2_hole``
    -> the Context Encoder baseline (same networks, unconditional D on the
    output); ``g_gan`` -> the pix2pix variant (same networks, plain objective).
    """
    from tfi2i import pix2pix
    from tfi2i.context_encoder import ContextEncoder
    from tfi2i.networks import build_discriminator

    pix2pix.check_single_input(cfg)
    generator, contract = pix2pix.unet(cfg), pix2pix.unet_contract(cfg)
    common = dict(gan_mode=cfg.loss.gan_mode, contract=contract, noise_seed=cfg.train.seed, name=cfg.name)
    cy = cfg.generator.output_channels
    if "l2_hole" in cfg.loss.weights:
        if cfg.discriminator.conditional:
            raise ValueError("the Context Encoder baseline judges the output alone: it needs "
                             "discriminator.conditional=false")
        return ContextEncoder(generator, build_discriminator(cfg.discriminator, cy), cfg.loss.weights, **common)
    if "g_gan" in cfg.loss.weights:
        return PairedGAN(generator, build_discriminator(cfg.discriminator, pix2pix.discriminator_channels(cfg)),
                         cfg.loss.weights, conditional=cfg.discriminator.conditional, **common)
    betas = list(cfg.loss.feature_weights) or [1.0] * (cfg.discriminator.n_layers + 1)
    if len(betas) != cfg.discriminator.n_layers + 1:
        raise ValueError(
            f"loss.feature_weights has {len(betas)} betas; the PatchGAN with n_layers={cfg.discriminator.n_layers} "
            f"has {cfg.discriminator.n_layers + 1} LeakyReLU layers"
        )
    crop = cfg.data.crop_size
    crop = min(crop) if isinstance(crop, (list, tuple)) else crop
    coarsest, smallest = crop // 2**LEVELS, 3 * 2**cfg.discriminator.n_layers
    if coarsest < smallest:
        raise ValueError(
            f"data.crop_size={cfg.data.crop_size} is too small for PAN: the coarsest pyramid level p_{LEVELS} is "
            f"{coarsest}x{coarsest}, and a PatchGAN with discriminator.n_layers={cfg.discriminator.n_layers} needs "
            f">= {smallest}x{smallest}; use data.crop_size >= {smallest * 2**LEVELS} or fewer discriminator layers"
        )
    high_in = pix2pix.discriminator_channels(cfg)
    d_high = [build_discriminator(cfg.discriminator, high_in, name=f"D_high_{k}") for k in range(LEVELS)]
    d_low = [build_discriminator(cfg.discriminator, cy, name=f"D_low_{k}") for k in range(LEVELS)]
    return PAN(generator, d_high, d_low, cfg.loss.weights, betas, conditional=cfg.discriminator.conditional, **common)


def _logits(out):
    return out[-1] if isinstance(out, (list, tuple)) else out
