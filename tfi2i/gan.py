"""`PairedGAN`: the conditional GAN training step every recipe shares.

One `train_step` (pix2pix order, junyanz `Pix2PixModel.optimize_parameters`):

1. ``y_fake = G(x)`` (dropout on: pix2pix's noise z);
2. ``prepare(batch, y_fake)``: tensors both objectives share (PAN's
   pyramids), computed once per step; by default nothing;
3. D update on ``discriminator_terms`` with the fake side detached;
4. G update on ``generator_terms``, judged by the just-updated D.

Papers change the objective by overriding the two hooks, which return a dict
``{term_name: per-example loss [B]}``; `weighted_sum` multiplies each term by
its weight from the config (``loss.weights``; 0 switches a term off) and is
the only place where terms are combined. Every term is a Keras metric and a
TensorBoard tag under the same name.

Distribution: per-example losses are averaged over the global batch
(`tf.nn.compute_average_loss`), so under `MirroredStrategy` the summed
replica gradients equal the single-device gradient. Mixed precision: both
optimizers are wrapped in `keras.optimizers.LossScaleOptimizer` when the
global dtype policy is ``mixed_float16``.
"""

import keras
import tensorflow as tf

from tfi2i import losses


class PairedGAN(keras.Model):
    """Conditional GAN on pairs (x, y): G maps x to y, D judges (x, y) pairs.

    Args:
      generator: ``keras.Model`` ``[B, H, W, Cx] -> [B, H, W, Cy]`` in [-1, 1].
      discriminator: ``keras.Model`` on ``concat([x, y], -1)``, returning
        logits (or ``[features..., logits]``).
      loss_weights: every term's weight, generator and discriminator terms
        alike (e.g. ``{"g_gan": 1, "l1": 100, "d_real": 0.5, "d_fake": 0.5}``;
        the 0.5 is pix2pix's halving of the D objective).
      gan_mode: ``vanilla`` | ``lsgan`` | ``hinge``.
      conditional: D judges ``concat([x, y])`` (pix2pix); False: ``y`` alone
        (an unconditional D, e.g. the Context Encoder baseline).

    Reference: Isola et al., "Image-to-Image Translation with Conditional
    Adversarial Networks", CVPR 2017.
    """

    #: Names of the discriminator's terms; every other weight is a G term.
    D_TERMS = ("d_real", "d_fake")

    def __init__(self, generator, discriminator, loss_weights, gan_mode="vanilla", conditional=True, **kwargs):
        super().__init__(**kwargs)
        self.conditional = conditional
        self.generator = generator
        self.discriminator = discriminator
        self.loss_weights = {k: float(v) for k, v in loss_weights.items()}
        self.gan_mode = gan_mode
        losses._check(gan_mode)
        names = list(self.loss_weights) + ["g_total", "d_total"]
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}

    # ----------------------------------------------------------------- hooks
    def call(self, x, training=False):
        return self.generator(x, training=training)

    def discriminate(self, x, y, training=True):
        """D's logits for the pair (x, y): ``D(concat([x, y], -1))`` (``D(y)`` when not conditional)."""
        out = self.discriminator(tf.concat([x, y], axis=-1) if self.conditional else y, training=training)
        return out[-1] if isinstance(out, (list, tuple)) else out

    def prepare(self, batch, y_fake):
        """``(batch, fake)`` handed to both hooks; computed once per step.

        Subclasses add what both objectives read (PAN: the pyramids of x, y
        and G(x)) so it is not computed twice. The default passes ``y_fake``
        through; the D step receives ``fake`` with every tensor detached.
        """
        return batch, y_fake

    def sample_panels(self, x, y):
        """Columns of the sample grid for inputs `x` and targets `y` (numpy-able ``[B, H, W, C]`` in [-1, 1])."""
        return [("x", x), ("G(x)", self.generator(x, training=False)), ("y", y)]

    def active(self, name):
        """True when term `name` has a non-zero weight (hooks may skip inactive work)."""
        return self.loss_weights.get(name, 0.0) != 0.0

    def generator_terms(self, batch, y_fake, training=True):
        """pix2pix G objective terms: ``g_gan`` (Eq. 1, G side) and ``l1`` (Eq. 3)."""
        terms = {"g_gan": losses.g_adversarial_loss(self.discriminate(batch["x"], y_fake, training), self.gan_mode)}
        terms["l1"] = losses.l1_loss(batch["y"], y_fake)
        return terms

    def discriminator_terms(self, batch, y_fake, training=True):
        """pix2pix D objective terms on real and (detached) generated pairs."""
        x = batch["x"]
        return {
            "d_real": losses.d_real_loss(self.discriminate(x, batch["y"], training), self.gan_mode),
            "d_fake": losses.d_fake_loss(self.discriminate(x, y_fake, training), self.gan_mode),
        }

    # ----------------------------------------------------------- mechanics
    def compile(self, g_optimizer, d_optimizer, **kwargs):
        """Stores and builds both optimizers (see keras3-notes: build before a distributed step)."""
        super().compile(optimizer=None, **kwargs)
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            g_optimizer = _loss_scaled(g_optimizer)
            d_optimizer = _loss_scaled(d_optimizer)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        g_optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator_variables)

    @property
    def discriminator_variables(self):
        """Trainable variables of D, or of every D when ``discriminator`` is a list (PAN, multi-scale)."""
        discs = self.discriminator if isinstance(self.discriminator, (list, tuple)) else [self.discriminator]
        return [v for d in discs for v in d.trainable_variables]

    @property
    def metrics(self):
        return list(self.trackers.values())

    def weighted_sum(self, terms):
        """``sum_k w_k * mean_over_global_batch(term_k)``: the one place terms are combined.

        Returns:
          (total, averaged): the scalar objective and each term's global-batch
          average contribution from this replica (sum over replicas = mean).
        """
        averaged = {name: tf.nn.compute_average_loss(value) for name, value in terms.items()}
        total = tf.constant(0.0)
        for name, value in averaged.items():
            if name not in self.loss_weights:
                raise KeyError(f"loss term '{name}' has no weight in loss.weights {sorted(self.loss_weights)}")
            weight = self.loss_weights[name]
            if weight:
                total = total + weight * value
        return total, averaged

    def _update(self, tape, optimizer, loss, variables):
        """Applies the gradients that exist: a network whose terms are all switched off (weight 0) is not touched."""
        grads = tape.gradient(loss, variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        if pairs:
            optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])

    def train_step(self, batch):
        """One D update then one G update on `batch` (``{"x": [B,H,W,C], "y": ...}`` in [-1, 1]).

        Returns each term's global-batch average (this replica's share), plus
        ``g_total`` and ``d_total``; `tfi2i.train` sums them over replicas.
        """
        generator = self.generator
        with tf.GradientTape() as g_tape:
            y_fake = generator(batch["x"], training=True)
            batch, fake = self.prepare(batch, y_fake)
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    d_total, d_logs = self.weighted_sum(
                        self.discriminator_terms(batch, tf.nest.map_structure(tf.stop_gradient, fake), training=True)
                    )
                    d_scaled = _scale(self.d_optimizer, d_total)
                self._update(d_tape, self.d_optimizer, d_scaled, self.discriminator_variables)
            g_total, g_logs = self.weighted_sum(self.generator_terms(batch, fake, training=True))
            g_scaled = _scale(self.g_optimizer, g_total)
        self._update(g_tape, self.g_optimizer, g_scaled, generator.trainable_variables)
        return self._log({**d_logs, **g_logs, "g_total": g_total, "d_total": d_total})

    def test_step(self, batch):
        """The generator's terms on evaluation pairs (dropout and batch norm in inference mode)."""
        batch, fake = self.prepare(batch, self.generator(batch["x"], training=False))
        g_total, g_logs = self.weighted_sum(self.generator_terms(batch, fake, training=False))
        return self._log({**g_logs, "g_total": g_total})

    def _log(self, logs):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        for name, value in logs.items():
            self.trackers[name].update_state(value * replicas)  # this replica's own mean
        return logs


def _loss_scaled(optimizer):
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer)


def _scale(optimizer, loss):
    return optimizer.scale_loss(loss) if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) else loss
