"""Toy models of the shapes the coming papers have, for the model-contract tests.

Small enough to train two steps in seconds, and shaped like the real models
so that every tool downstream of training (``load_model``, export, translate,
evaluate, sample grids) is proven on them before the papers land:

* ``multiscale`` (MSG U-Net's shape): an RGB image in, five named images out,
  ``y`` at full size and ``y_2``, ``y_4``, ``y_8``, ``y_16`` at 1/2 .. 1/16,
  one conditional discriminator per scale; rectangular 2:1 crops. Not
  tileable (multi-scale outputs).
* ``grit`` (GRIT's shape): a one-hot label map ``x`` and a ``style`` image
  in; a style code modulates the features (AdaIN-like scale), per-pixel noise
  with learnable per-channel weights is added (drawn from a seed), and two
  heads emit ``y_rec`` and ``y_res``; ``y = y_rec + y_res``. Objective: the
  adversarial loss on ``y`` plus ``lambda_rec * L1(y_rec, target)`` (Eq. 2's
  structure), which cannot reach the residual head. Its config is a
  `Config` subclass with a section of its own (``toy.lambda_rec``). Not
  tileable (noise and style).
* ``pix2pixhd`` (pix2pixHD's shape): a one-hot label map ``x`` and an
  instance boundary map ``instances`` in at 2:1, ``y`` out; two
  discriminators, the second on a 2x average-pooled input (the multi-scale
  D), LSGAN plus feature matching. Tileable.

The builders are named in the configs (``tfi2i.toys:build_multiscale`` ...),
as every run builder is, so ``load_model`` rebuilds these runs too.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from tfi2i import config as config_lib
from tfi2i import losses
from tfi2i.contract import Contract, InputSpec, NoiseSpec, OutputSpec
from tfi2i.gan import PairedGAN, outputs_of
from tfi2i.layers.style import NoiseInjection

SCALES = (1, 2, 4, 8, 16)


# ----------------------------------------------------------------- pieces
def _conv(h, filters, name, kernel=3):
    return keras.layers.Conv2D(filters, kernel, padding="same", name=name)(h)


def toy_discriminator(input_channels, width=8, name="D"):
    """A size-agnostic discriminator: two 3x3 convs with LeakyReLU (the features), a 1x1 logit map."""
    inp = keras.Input((None, None, input_channels), name="pair")
    f1 = keras.layers.LeakyReLU(0.2, name="f1")(_conv(inp, width, "conv1"))
    f2 = keras.layers.LeakyReLU(0.2, name="f2")(_conv(f1, width, "conv2"))
    logits = keras.layers.Conv2D(1, 1, name="logits")(f2)
    return keras.Model(inp, ([f1, f2], logits), name=name)


def _pool(image, factor):
    return image if factor == 1 else tf.nn.avg_pool2d(image, factor, factor, "VALID")


# ----------------------------------------------------------------- multiscale (MSG U-Net's shape)
def multiscale_generator(width=8):
    x = keras.Input((None, None, 3), name="x")
    h = keras.layers.ReLU()(_conv(x, width, "enc"))
    outputs = {}
    for f in SCALES:
        hs = h if f == 1 else keras.layers.AveragePooling2D(f, name=f"pool{f}")(h)
        name = "y" if f == 1 else f"y_{f}"
        outputs[name] = keras.layers.Activation("tanh", dtype="float32", name=f"out_{name}")(_conv(hs, 3, f"head{f}"))
    return keras.Model({"x": x}, outputs, name="G_toy_multiscale")


class MultiScaleGAN(PairedGAN):
    """One conditional D per output scale; adversarial and L1 terms summed over the scales."""

    def _pairs(self, batch, fake):
        fake = outputs_of(fake)
        for k, spec in enumerate(self.contract.outputs):
            yield k, _pool(self.condition(batch), spec.factor), _pool(batch["y"], spec.factor), fake[spec.name]

    def _judge(self, k, cond, image, training):
        return self.discriminators[k](tf.concat([cond, image], -1), training=training)[1]

    def generator_terms(self, batch, fake, training=True):
        adv, l1 = [], []
        for k, cond, real, out in self._pairs(batch, fake):
            adv.append(losses.g_adversarial_loss(self._judge(k, cond, out, training), self.gan_mode))
            l1.append(losses.l1_loss(real, out))
        return {"g_gan": tf.add_n(adv), "l1": tf.add_n(l1)}

    def discriminator_terms(self, batch, fake, training=True):
        real_t, fake_t = [], []
        for k, cond, real, out in self._pairs(batch, fake):
            real_t.append(losses.d_real_loss(self._judge(k, cond, real, training), self.gan_mode))
            fake_t.append(losses.d_fake_loss(self._judge(k, cond, out, training), self.gan_mode))
        return {"d_real": tf.add_n(real_t), "d_fake": tf.add_n(fake_t)}


def build_multiscale(cfg):
    """The MSG-shaped toy (builder ``tfi2i.toys:build_multiscale``)."""
    contract = Contract(
        inputs=(InputSpec("x", "rgb", 3),),
        outputs=tuple(OutputSpec("y" if f == 1 else f"y_{f}", 3, f) for f in SCALES),
        multiple=SCALES[-1], tileable=False, why_not_tileable="its outputs come at five scales")
    discs = [toy_discriminator(6, name=f"D_scale{f}") for f in SCALES]
    return MultiScaleGAN(multiscale_generator(), discs, cfg.loss.weights, gan_mode=cfg.loss.gan_mode,
                         contract=contract, noise_seed=cfg.train.seed, name=cfg.name)


# ----------------------------------------------------------------- grit (GRIT's shape)
@dataclasses.dataclass(frozen=True)
class ToySection:
    lambda_rec: float = 10.0  # weight of the reconstruction term on y_rec (GRIT's lambda_rec; a toy value)
    style_dim: int = 8


@dataclasses.dataclass(frozen=True)
class GritToyConfig(config_lib.Config):
    """`Config` plus a section of the toy's own: exercises ``config_type`` in ``config.json``."""

    toy: ToySection = ToySection()


def grit_generator(num_classes, style_dim=8, width=8):
    x = keras.Input((None, None, num_classes), name="x")
    style = keras.Input((None, None, 3), name="style")
    noise = keras.Input((None, None, width), name="noise")
    code = keras.layers.GlobalAveragePooling2D(name="style_pool")(_conv(style, style_dim, "style_enc"))
    scale = keras.layers.Dense(width, name="style_scale")(code)
    h = keras.layers.ReLU()(_conv(x, width, "content_enc"))
    h = keras.layers.Lambda(lambda t: t[0] * (1.0 + t[1][:, None, None, :]), name="adain")([h, scale])
    h = NoiseInjection(name="noise_injection")([h, noise])
    y_rec = keras.layers.Activation("tanh", dtype="float32", name="out_y_rec")(_conv(h, 3, "head_rec"))
    y_res = keras.layers.Activation("tanh", dtype="float32", name="out_y_res")(_conv(h, 3, "head_res"))
    y = keras.layers.Add(name="out_y", dtype="float32")([y_rec, y_res])
    return keras.Model({"x": x, "style": style, "noise": noise}, {"y": y, "y_rec": y_rec, "y_res": y_res},
                       name="G_toy_grit")


class GritToyGAN(PairedGAN):
    """Adversarial loss on ``y = y_rec + y_res``; L1 reconstruction on ``y_rec`` alone (term ``rec``)."""

    def generator_terms(self, batch, fake, training=True):
        fake = outputs_of(fake)
        return {"g_gan": losses.g_adversarial_loss(self.discriminate(batch, fake["y"], training), self.gan_mode),
                "rec": losses.l1_loss(batch["y"], fake["y_rec"])}


def build_grit(cfg):
    """The GRIT-shaped toy (builder ``tfi2i.toys:build_grit``); the style input defaults to the target in training."""
    n = cfg.data.num_classes
    contract = Contract(
        inputs=(InputSpec("x", "labels", num_classes=n), InputSpec("style", "style", 3)),
        outputs=(OutputSpec("y"), OutputSpec("y_rec"), OutputSpec("y_res")),
        noise=(NoiseSpec("noise", 8, 1),), multiple=1, tileable=False,
        why_not_tileable="each tile would draw its own noise and style statistics, and tiles would blend them")
    weights = {**cfg.loss.weights, "rec": cfg.toy.lambda_rec}
    return GritToyGAN(grit_generator(n, cfg.toy.style_dim), toy_discriminator(n + 3), weights,
                      gan_mode=cfg.loss.gan_mode, contract=contract, noise_seed=cfg.train.seed, name=cfg.name)


# ----------------------------------------------------------------- pix2pixHD's shape
def pix2pixhd_generator(num_classes, width=8):
    x = keras.Input((None, None, num_classes), name="x")
    inst = keras.Input((None, None, 1), name="instances")
    h = keras.layers.Concatenate()([x, inst])
    h = keras.layers.ReLU()(keras.layers.Conv2D(width, 3, strides=2, padding="same", name="down")(h))
    h = keras.layers.ReLU()(keras.layers.Conv2DTranspose(width, 3, strides=2, padding="same", name="up")(h))
    y = keras.layers.Activation("tanh", dtype="float32", name="out_y")(_conv(h, 3, "head"))
    return keras.Model({"x": x, "instances": inst}, {"y": y}, name="G_toy_pix2pixhd")


class MultiScaleDGAN(PairedGAN):
    """pix2pixHD's objective shape: ``num_D`` LSGAN discriminators on 1x, 1/2x inputs, plus feature matching."""

    def _scales(self, batch, image, training):
        d_in = tf.concat([self.condition(batch), image], -1)
        outs = []
        for k, d in enumerate(self.discriminators):
            outs.append(d(d_in, training=training))
            d_in = tf.nn.avg_pool2d(d_in, 3, 2, "SAME")
        return outs

    def generator_terms(self, batch, fake, training=True):
        y_fake = outputs_of(fake)["y"]
        fake_outs = self._scales(batch, y_fake, training)
        real_outs = self._scales(batch, batch["y"], training)
        gan = tf.add_n([losses.g_adversarial_loss(o[1], self.gan_mode) for o in fake_outs])
        # the toy D has two feature layers: n_layers_d = 1 gives pix2pixHD's 4 / (n_layers_D + 1) = 2 per layer
        return {"g_gan": gan, "g_feat": losses.multiscale_feature_matching_loss(fake_outs, real_outs, n_layers_d=1)}

    def discriminator_terms(self, batch, fake, training=True):
        y_fake = outputs_of(fake)["y"]
        return {"d_real": tf.add_n([losses.d_real_loss(o[1], self.gan_mode)
                                    for o in self._scales(batch, batch["y"], training)]),
                "d_fake": tf.add_n([losses.d_fake_loss(o[1], self.gan_mode)
                                    for o in self._scales(batch, y_fake, training)])}


def build_pix2pixhd(cfg):
    """The pix2pixHD-shaped toy (builder ``tfi2i.toys:build_pix2pixhd``)."""
    n = cfg.data.num_classes
    contract = Contract(inputs=(InputSpec("x", "labels", num_classes=n), InputSpec("instances", "instances")),
                        outputs=(OutputSpec("y"),), multiple=2)
    discs = [toy_discriminator(n + 1 + 3, name=f"D{k}") for k in range(2)]
    return MultiScaleDGAN(pix2pixhd_generator(n), discs, cfg.loss.weights, gan_mode="lsgan", contract=contract,
                          noise_seed=cfg.train.seed, name=cfg.name)


# ----------------------------------------------------------------- smoke configs
def smoke_config(kind, data_path=""):
    """A two-step config of toy `kind` (``multiscale`` | ``grit`` | ``pix2pixhd``); label toys need `data_path`
    (a `tfi2i.data.demo.make_label_demo` folder with 5 classes and ``inst/``)."""
    train = config_lib.TrainConfig(steps=2, log_every=1, sample_every=2, checkpoint_every=2, deterministic=True)
    if kind == "multiscale":
        return config_lib.Config(
            name="toy_multiscale", builder="tfi2i.toys:build_multiscale",
            data=config_lib.DataConfig(path=data_path, load_size=(36, 72), crop_size=(32, 64), num_samples=2),
            loss=config_lib.LossConfig(weights={"g_gan": 1.0, "l1": 10.0, "d_real": 0.5, "d_fake": 0.5}),
            train=train)
    labels = config_lib.DataConfig(path=data_path, direction="BtoA", x_kind="labels", num_classes=5,
                                   load_size=(32, 64), crop_size=(32, 64), num_samples=2)
    if kind == "grit":
        return GritToyConfig(
            name="toy_grit", builder="tfi2i.toys:build_grit", data=labels,
            loss=config_lib.LossConfig(weights={"g_gan": 1.0, "d_real": 0.5, "d_fake": 0.5}), train=train)
    if kind == "pix2pixhd":
        return config_lib.Config(
            name="toy_pix2pixhd", builder="tfi2i.toys:build_pix2pixhd",
            data=dataclasses.replace(labels, instances="inst"),
            loss=config_lib.LossConfig(gan_mode="lsgan",
                                       weights={"g_gan": 1.0, "g_feat": 10.0, "d_real": 0.5, "d_fake": 0.5}),
            train=train)
    raise ValueError(f"unknown toy '{kind}'; valid: multiscale, grit, pix2pixhd")


__all__ = ["GritToyConfig", "build_grit", "build_multiscale", "build_pix2pixhd", "smoke_config", "toy_discriminator"]
