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
from tfi2i.gan import PairedGAN
from tfi2i.pyramid import high_frequency, smooth_pyramid


def perceptual_loss(fake_features, real_features, betas):
    """Eq. 8 for one discriminator: ``sum_l beta_l * mean_{C,H,W}((phi_l(fake) - phi_l(real))^2)``, `[B]`.

    ``mean`` over C, H, W is the paper's division by ``C_l H_l W_l``;
    `real_features` are treated as constants.
    """
    if len(betas) != len(fake_features) or len(fake_features) != len(real_features):
        raise ValueError(
            f"perceptual loss: {len(fake_features)} feature layers, {len(real_features)} real, {len(betas)} betas"
        )
    total = 0.0
    for beta, f, r in zip(betas, fake_features, real_features):
        if beta:
            diff = tf.cast(f, tf.float32) - tf.stop_gradient(tf.cast(r, tf.float32))
            total = total + float(beta) * losses.per_example_mean(tf.square(diff))
    return total


class PAN(PairedGAN):
    """PAN objective; ``self.discriminator`` is ``[*d_high, *d_low]`` (checkpointed as a list).

    Args:
      generator: G ``[B, H, W, 3] -> [B, H, W, 3]``.
      d_high: ``levels`` PatchGANs built with ``return_features=True`` on
        6 (conditional) or 3 channels.
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
        return list(self.discriminator[: self.levels])

    @property
    def d_low(self):
        return list(self.discriminator[self.levels:])

    # --------------------------------------------------------------- helpers
    def _high_input(self, px_k, h_k):
        return tf.concat([px_k, h_k], axis=-1) if self.conditional else h_k

    def _uses_pyramids(self):
        return any(self.active(t) for t in ("g_high", "g_low", "perceptual", *self.D_TERMS))

    def pyramids(self, image):
        """``{"p": [p_0 .. p_L], "h": [h_0 .. h_{L-1}]}`` of ``image`` (Eq. 2)."""
        p = smooth_pyramid(image, self.levels)
        return {"p": p, "h": high_frequency(image, self.levels, pyramid=p)}

    def prepare(self, batch, y_fake):
        """The pyramids of x, y and G(x), once per step for both objectives.

        ``batch`` gains ``pyr_x`` and ``pyr_y``; ``fake`` is ``{"image": G(x),
        "p": [...], "h": [...]}`` (detached for the D step by `PairedGAN`).
        """
        if isinstance(y_fake, dict):
            return batch, y_fake
        fake = {"image": y_fake}
        if self._uses_pyramids():
            batch = {**batch, "pyr_x": self.pyramids(batch["x"]), "pyr_y": self.pyramids(batch["y"])}
            fake.update(self.pyramids(y_fake))
        return batch, fake

    def sample_panels(self, x, y):
        """``x | G(x) | y`` then ``h_k(G(x)) | h_k(y)`` per level: what each ``D_high[k]`` judges.

        The maps are shown at full size (nearest-neighbour) with ``4 * h_k``
        clipped to [-1, 1], so mid-grey is 0.
        """
        y_fake = self.generator(x, training=False)
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
                    perceptual.append(perceptual_loss(fake_out[:-1], real_out[:-1], self.feature_weights))
            if self.active("g_high"):
                terms["g_high"] = tf.add_n(g_high)
            if perceptual:
                terms["perceptual"] = tf.add_n(perceptual)
        if self.active("g_low"):
            terms["g_low"] = tf.add_n(
                [losses.g_adversarial_loss(_logits(d(fake["p"][k + 1], training=training)), self.gan_mode)
                 for k, d in enumerate(self.d_low)]
            )
        terms["l1"] = losses.l1_loss(batch["y"], fake["image"])
        return terms


def _logits(out):
    return out[-1] if isinstance(out, (list, tuple)) else out
