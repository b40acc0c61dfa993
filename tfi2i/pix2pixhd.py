"""pix2pixHD (Wang et al. 2018): the model, its config section and its run builder, as NVIDIA's code.

NVIDIA/pix2pixHD ``models/pix2pixHD_model.py`` (commit 14b3b3c) on top of
`tfi2i.gan.PairedGAN`; the networks are `tfi2i.networks.pix2pixhd`; the recipe
``recipes/pix2pixhd_cityscapes.py`` holds the paper <-> code map and every
deviation.

Objective (``Pix2PixHDModel.forward``), each term one entry of ``loss.weights``:

* ``g_gan``: LSGAN ``sum_k mean((D_k(x, G(x)) - 1)^2)`` over the ``num_D``
  scales (``GANLoss(use_lsgan=True)`` on ``pred[-1]`` of every scale);
* ``g_feat``: discriminator feature matching,
  ``sum_k sum_j (1/num_D) (4/(n_layers_D+1)) L1(D_k^j(x, G(x)), sg(D_k^j(x, y)))``
  (`tfi2i.losses.multiscale_feature_matching_loss`), weight ``lambda_feat`` 10;
* ``g_vgg``: ``sum_l w_l L1(VGG_l(G(x)), sg(VGG_l(y)))``, ``w = [1/32, 1/16,
  1/8, 1/4, 1]`` (`tfi2i.losses.vgg_loss`), weight ``lambda_feat`` 10;
* ``d_real``, ``d_fake``: LSGAN on the real pair and the detached fake pair,
  weights 0.5 each (``loss_D = (loss_D_fake + loss_D_real) * 0.5``).

Update order (``train.py``): one forward pass computes G's output, the three
D passes (fake detached, real, fake) and every loss with the weights as they
are; then G's update and D's update, both from those numbers (D's real pass
feeds both ``d_real`` and the feature-matching targets). This differs from
pix2pix, where G is judged by the just-updated D.

``niter_fix_global`` (``--niter_fix_global``, the 1024p recipe): for the
first that many epochs only the outermost local enhancer (layers
``model{n_local_enhancers}_*``) is trained; then all of G, with a fresh Adam
(``update_fixed_params`` builds a new ``torch.optim.Adam``):
`tfi2i.optimizers.TorchAdam.restart`, inside the training step at the first
step of epoch ``niter_fix_global + 1``, so a killed run resumes into the
right phase with the right optimizer state (both are in the checkpoint).
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from tfi2i import config as config_lib
from tfi2i import losses
from tfi2i.contract import Contract, InputSpec, OutputSpec
from tfi2i.gan import PairedGAN, _scale, outputs_of
from tfi2i.networks import pix2pixhd as nets

NET_G = ("global", "local")


@dataclasses.dataclass(frozen=True)
class HDSection:
    """pix2pixHD's network and phase options (``options/base_options.py``, ``train_options.py`` names)."""

    netG: str = "global"  # --netG: global (512p) | local (global + local enhancer, 1024p)
    ngf: int = 64  # --ngf (the 1024p script: 32, the local enhancer's width; its global part has ngf * 2)
    n_downsample_global: int = 4  # --n_downsample_global
    n_blocks_global: int = 9  # --n_blocks_global
    n_local_enhancers: int = 1  # --n_local_enhancers
    n_blocks_local: int = 3  # --n_blocks_local
    ndf: int = 64  # --ndf
    n_layers_d: int = 3  # --n_layers_D
    num_d: int = 2  # --num_D (the 1024p script: 3)
    norm: str = "instance"  # --norm (instance: non-affine InstanceNorm2d)
    niter_fix_global: int = 0  # --niter_fix_global: epochs training only the outermost local enhancer
    vgg_weights: str = "imagenet"  # VGG-19 of the g_vgg term: imagenet | a local .h5 path | random (tests only)
    vgg_input_mapping: str = "pix2pixhd"  # tfi2i.networks.vgg: pix2pixhd | caffe | none

    def __post_init__(self):
        if self.netG not in NET_G:
            raise config_lib.ConfigError(f"hd.netG must be one of {', '.join(NET_G)}, got {self.netG!r}")
        if self.num_d < 1 or self.n_layers_d < 1:
            raise config_lib.ConfigError(f"hd.num_d and hd.n_layers_d must be >= 1, got {self.num_d}, {self.n_layers_d}")
        if self.niter_fix_global < 0:
            raise config_lib.ConfigError(f"hd.niter_fix_global must be >= 0, got {self.niter_fix_global}")
        if self.niter_fix_global and self.netG != "local":
            raise config_lib.ConfigError("hd.niter_fix_global trains the local enhancer alone: it needs hd.netG=local")


@dataclasses.dataclass(frozen=True)
class Pix2PixHDConfig(config_lib.Config):
    """`Config` plus pix2pixHD's ``hd`` section (the ``generator`` / ``discriminator`` sections are not used)."""

    hd: HDSection = HDSection()


# ----------------------------------------------------------------- model
class Pix2PixHD(PairedGAN):
    """pix2pixHD's objective and update order (module docstring).

    Args:
      generator: `tfi2i.networks.pix2pixhd.global_generator` or `local_enhancer`.
      discriminators: `multiscale_discriminator`'s list (entry k on the
        k-times pooled pair).
      loss_weights: ``g_gan``, ``g_feat``, ``g_vgg``, ``d_real``, ``d_fake``.
      n_layers_d: the discriminators' ``n_layers`` (feature-matching weight).
      vgg_factory: ``() -> keras.Model`` giving the five VGG-19 features; called
        in `compile` (training only) when ``g_vgg`` is on, so rebuilding a
        run for inference never needs the VGG weights.
      fix_global_epochs: ``niter_fix_global``; the layers whose name starts
        with `local_prefix` are the ones trained during those epochs.
    """

    def __init__(self, generator, discriminators, loss_weights, n_layers_d=3, vgg_factory=None, fix_global_epochs=0,
                 local_prefix="model1_", **kwargs):
        super().__init__(generator, discriminators, loss_weights, gan_mode="lsgan", **kwargs)
        self.n_layers_d = int(n_layers_d)
        self.vgg_factory = vgg_factory
        self.vgg = None
        self.fix_global_epochs = int(fix_global_epochs)
        self.local_prefix = local_prefix
        local = {id(v) for layer in generator._flatten_layers(include_self=False)
                 if layer.name.startswith(local_prefix) for v in layer.trainable_weights}
        self._fixed = [id(v) not in local for v in generator.trainable_variables]
        if self.fix_global_epochs and all(self._fixed):
            raise ValueError(f"niter_fix_global: the generator has no layer named {local_prefix}* to train alone")

    @property
    def restarts_g_optimizer(self):
        """G's optimizer restarts when the fixed-global phase ends (`tfi2i.train.make_optimizers` reads this)."""
        return self.fix_global_epochs > 0

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        super().compile(g_optimizer, d_optimizer, **kwargs)
        if self.active("g_vgg"):
            if self.vgg_factory is None:
                raise ValueError("loss.weights.g_vgg is on but the model has no VGG-19 (vgg_factory)")
            self.vgg = self.vgg_factory()

    # ------------------------------------------------------------- objective
    def _scales(self, condition, image, training):
        return nets.judge_scales(self.discriminators, tf.concat([condition, image], -1), training)

    def objective(self, batch, fake, training=True):
        """``(generator terms, discriminator terms)`` from one forward pass, as ``Pix2PixHDModel.forward``."""
        condition = self.condition(batch)
        y, y_fake = batch["y"], outputs_of(fake)["y"]
        d_fake = self._scales(condition, tf.stop_gradient(y_fake), training)
        d_real = self._scales(condition, y, training)
        g_fake = self._scales(condition, y_fake, training)
        d_terms = {"d_fake": tf.add_n([losses.d_fake_loss(o[1], "lsgan") for o in d_fake]),
                   "d_real": tf.add_n([losses.d_real_loss(o[1], "lsgan") for o in d_real])}
        g_terms = {"g_gan": tf.add_n([losses.g_adversarial_loss(o[1], "lsgan") for o in g_fake])}
        if self.active("g_feat"):
            g_terms["g_feat"] = losses.multiscale_feature_matching_loss(g_fake, d_real, n_layers_d=self.n_layers_d)
        if self.active("g_vgg") and self.vgg is not None:
            g_terms["g_vgg"] = losses.vgg_loss(self.vgg(y_fake, training=False), self.vgg(y, training=False))
        return g_terms, d_terms

    def generator_terms(self, batch, fake, training=True):
        return self.objective(batch, fake, training)[0]

    def discriminator_terms(self, batch, fake, training=True):
        return self.objective(batch, fake, training)[1]

    # ------------------------------------------------------------- training step
    def _phase(self, grads):
        """``niter_fix_global``: no update of the global part in the first epochs; a fresh Adam when they end."""
        if not self.fix_global_epochs:
            return grads
        opt = getattr(self.g_optimizer, "inner_optimizer", self.g_optimizer)
        epoch = opt._learning_rate.epoch(opt.iterations)  # 1-based epoch of this step (the schedule's mapping)
        fixed = epoch <= self.fix_global_epochs
        grads = [tf.where(fixed, tf.zeros_like(g), g) if is_fixed and g is not None else g
                 for g, is_fixed in zip(grads, self._fixed)]

        def restart():
            opt.restart()
            return tf.constant(True)

        tf.cond(tf.logical_and(tf.logical_not(fixed), tf.equal(opt.restart_iteration, 0)), restart,
                lambda: tf.constant(False))
        return grads

    def train_step(self, batch):
        """NVIDIA's step: one forward pass, both objectives, then G's and D's updates (see the module docstring)."""
        batch = self.with_inputs(batch)
        g_vars, d_vars = self.generator.trainable_variables, self.discriminator_variables
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(batch["inputs"], training=True)
            g_terms, d_terms = self.objective(batch, fake, training=True)
            g_total, g_logs = self.weighted_sum(g_terms)
            d_total, d_logs = self.weighted_sum(d_terms)
            g_scaled, d_scaled = _scale(self.g_optimizer, g_total), _scale(self.d_optimizer, d_total)
        g_grads = self._phase(g_tape.gradient(g_scaled, g_vars))
        d_grads = d_tape.gradient(d_scaled, d_vars)
        for optimizer, grads, variables in ((self.g_optimizer, g_grads, g_vars), (self.d_optimizer, d_grads, d_vars)):
            pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
            if pairs:
                optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return self._log({**d_logs, **g_logs, "g_total": g_total, "d_total": d_total})


# ----------------------------------------------------------------- builder
def input_channels(cfg):
    """G's named inputs in NVIDIA's concatenation order: ``x`` (one-hot labels or RGB), then ``instances``."""
    data = cfg.data
    channels = {"x": int(data.num_classes) if data.x_kind == "labels" else int(cfg.generator.input_channels)}
    if data.instances:
        channels["instances"] = 1
    return channels


def contract(cfg):
    """``x`` (labels or rgb) [+ ``instances``] -> ``y``; sizes a multiple of ``2**(downsamplings)``."""
    hd, data = cfg.hd, cfg.data
    x = (InputSpec("x", "labels", num_classes=int(data.num_classes)) if data.x_kind == "labels"
         else InputSpec("x", "rgb", int(cfg.generator.input_channels)))
    inputs = (x, InputSpec("instances", "instances")) if data.instances else (x,)
    depth = hd.n_downsample_global + (hd.n_local_enhancers if hd.netG == "local" else 0)
    return Contract(inputs=inputs, outputs=(OutputSpec("y", cfg.generator.output_channels),), multiple=2 ** depth,
                    tileable=False, why_not_tileable="instance normalisation uses whole-image statistics: tiles "
                                                     "would be normalised differently and show seams")


def generator(cfg):
    hd = cfg.hd
    channels = input_channels(cfg)
    out = cfg.generator.output_channels
    if hd.netG == "global":
        return nets.global_generator(channels, out, hd.ngf, hd.n_downsample_global, hd.n_blocks_global, hd.norm)
    return nets.local_enhancer(channels, out, hd.ngf, hd.n_downsample_global, hd.n_blocks_global,
                               hd.n_local_enhancers, hd.n_blocks_local, hd.norm)


def vgg_factory(cfg):
    """``() -> VGG-19 features`` for the ``g_vgg`` term (``hd.vgg_weights``: imagenet, a path, or random)."""
    from tfi2i.networks.vgg import vgg19_features

    weights = None if cfg.hd.vgg_weights == "random" else cfg.hd.vgg_weights
    return lambda: vgg19_features(weights, cfg.hd.vgg_input_mapping, how_to_pass="--vgg-weights PATH")


def build(cfg) -> Pix2PixHD:
    """The pix2pixHD model of a `Pix2PixHDConfig` (builder ``tfi2i.pix2pixhd:build``)."""
    if not isinstance(cfg, Pix2PixHDConfig):
        raise config_lib.ConfigError(f"tfi2i.pix2pixhd:build needs a Pix2PixHDConfig, got {type(cfg).__name__}")
    hd = cfg.hd
    d_channels = sum(input_channels(cfg).values()) + cfg.generator.output_channels
    discriminators = nets.multiscale_discriminator(d_channels, hd.ndf, hd.n_layers_d, hd.num_d, hd.norm)
    return Pix2PixHD(generator(cfg), discriminators, cfg.loss.weights, n_layers_d=hd.n_layers_d,
                     vgg_factory=vgg_factory(cfg), fix_global_epochs=hd.niter_fix_global,
                     local_prefix=nets.local_prefix(hd.n_local_enhancers), contract=contract(cfg),
                     noise_seed=cfg.train.seed, name=cfg.name)


__all__ = ["HDSection", "Pix2PixHD", "Pix2PixHDConfig", "build", "contract", "input_channels"]
