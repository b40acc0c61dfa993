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
  1/8, 1/4, 1]`` (`tfi2i.losses.vgg_loss`; computed by
  `tfi2i.networks.vgg.vgg_l1_loss`, the same value and gradient with less
  memory), weight ``lambda_feat`` 10;
* ``d_real``, ``d_fake``: LSGAN on the real pair and the detached fake pair,
  weights 0.5 each (``loss_D = (loss_D_fake + loss_D_real) * 0.5``).

Update order (``train.py``; `tfi2i.gan.OneForwardGAN`): one forward pass
computes G's output, the three D passes (fake detached, real, fake) and every
loss with the weights as they are; then G's update and D's update, both from
those numbers (D's real pass feeds both ``d_real`` and the feature-matching
targets). This differs from pix2pix, where G is judged by the just-updated D.

``niter_fix_global`` (``--niter_fix_global``, the 1024p recipe): for the
first that many epochs only the outermost local enhancer (layers
``model{n_local_enhancers}_*``) is trained; then all of G, with a fresh Adam
(``update_fixed_params`` builds a new ``torch.optim.Adam``):
`tfi2i.optimizers.TorchAdam.restart`, inside the training step at the first
step of epoch ``niter_fix_global + 1``, so a killed run resumes into the
right phase with the right optimizer state (both are in the checkpoint).

Instance features (``hd.instance_feat`` / ``hd.label_feat``, Sec. 3.4): G takes
a third input ``feat`` (``feat_num`` channels, last in the concatenation after
the labels and the edges; D never sees it). In the training and test steps it
is ``E(y)`` averaged over each instance (or label) id
(`tfi2i.features.encoded_features`, E = `tfi2i.networks.feature_encoder`),
computed inside G's tape: E's variables are in G's optimizer
(`Pix2PixHD.generator_variables`; never fixed by ``niter_fix_global``, as
NVIDIA's ``update_fixed_params``) and in the checkpoint as ``encoder``
(`Pix2PixHD.extra_networks`). After training, `encode_clusters` (NVIDIA's
``encode_features.py``; run by `tfi2i.train.fit` at its end and by ``tfi2i
encode-features``) writes ``W/features_clustered_%03d.npz``, which
`tfi2i.runs.load_model` hands to the model (`Pix2PixHD.attach_run`). At
inference (`Pix2PixHD.encode` when the batch has no ``feat``), every id draws
one cluster centre of its label from the call's seed
(`Pix2PixHD.sampled_features`, NVIDIA's ``sample_features``), or, with
``hd.use_encoded_image`` and a photo ``y`` in the batch (evaluation), E
encodes it. The contract declares ``feat`` as a ``features`` input that
callers never supply, and with ``instance_feat`` its ``instances`` input takes
the raw instance ids (``ids=True``), from which the model computes the
boundary map: so ``tfi2i translate --instances`` and the export's
``instances`` / ``instances_images`` inputs carry the ids (PNG of ids), and
the ``*_seeded`` signatures take the sampling seed.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from tfi2i import config as config_lib
from tfi2i import losses
from tfi2i.contract import Contract, ContractError, InputSpec, OutputSpec
from tfi2i.features import FeatureFileError
from tfi2i.gan import OneForwardGAN, VGGLossMixin, outputs_of
from tfi2i.networks import pix2pixhd as nets
from tfi2i.networks.vgg import vgg_l1_loss

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
    instance_feat: bool = False  # --instance_feat: G also takes E(photo) averaged per instance (needs instance ids)
    label_feat: bool = False  # --label_feat: the same, averaged per label
    feat_num: int = 3  # --feat_num: channels of the feature map
    nef: int = 16  # --nef: E's first-layer filters
    n_downsample_e: int = 4  # --n_downsample_E
    n_clusters: int = 10  # --n_clusters: k-means centres per label (encode-features)
    use_encoded_image: bool = False  # test time (--use_encoded_image): E on the batch's photo, not cluster sampling

    def __post_init__(self):
        if self.netG not in NET_G:
            raise config_lib.ConfigError(f"hd.netG must be one of {', '.join(NET_G)}, got {self.netG!r}")
        if self.num_d < 1 or self.n_layers_d < 1:
            raise config_lib.ConfigError(f"hd.num_d and hd.n_layers_d must be >= 1, got {self.num_d}, {self.n_layers_d}")
        if self.niter_fix_global < 0:
            raise config_lib.ConfigError(f"hd.niter_fix_global must be >= 0, got {self.niter_fix_global}")
        if self.niter_fix_global and self.netG != "local":
            raise config_lib.ConfigError("hd.niter_fix_global trains the local enhancer alone: it needs hd.netG=local")
        for name in ("instance_feat", "label_feat", "use_encoded_image"):
            if not isinstance(getattr(self, name), bool):
                raise config_lib.ConfigError(f"hd.{name} must be true or false, got {getattr(self, name)!r}")
        if self.instance_feat and self.label_feat:
            raise config_lib.ConfigError("hd.instance_feat and hd.label_feat are exclusive: the features are averaged "
                                         "per instance or per label")
        if self.feat_num < 1 or self.nef < 1 or self.n_downsample_e < 0 or self.n_clusters < 1:
            raise config_lib.ConfigError(f"hd.feat_num, hd.nef, hd.n_clusters must be >= 1 and hd.n_downsample_e >= 0,"
                                         f" got {self.feat_num}, {self.nef}, {self.n_clusters}, {self.n_downsample_e}")

    @property
    def features(self):
        """True when G takes the instance-feature map (``instance_feat`` or ``label_feat``)."""
        return self.instance_feat or self.label_feat


@dataclasses.dataclass(frozen=True)
class Pix2PixHDConfig(config_lib.Config):
    """`Config` plus pix2pixHD's ``hd`` section (the ``generator`` / ``discriminator`` sections are not used)."""

    hd: HDSection = HDSection()

    def __post_init__(self):
        hd, data = self.hd, self.data
        if hd.instance_feat and not (data.instances and data.instance_ids):
            raise config_lib.ConfigError("hd.instance_feat averages E's features per instance: it needs "
                                         "data.instances (the instance maps) and data.instance_ids=true "
                                         "(their raw ids)")
        if hd.label_feat and data.x_batch_kind != "labels":
            raise config_lib.ConfigError("hd.label_feat averages E's features per label: it needs data.x_kind=labels")
        if hd.features and self.generator.output_channels != 3:
            raise config_lib.ConfigError("hd.instance_feat / label_feat: E encodes the photo, "
                                         f"generator.output_channels must be 3, got {self.generator.output_channels}")


# ----------------------------------------------------------------- model
class Pix2PixHD(VGGLossMixin, OneForwardGAN):
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
      encoder: the feature encoder E (with a ``features`` contract input), or None.
      feature_ids: ``instances`` (``instance_feat``) or ``labels`` (``label_feat``):
        what E's output is averaged over.
      use_encoded_image: inference encodes the batch's photo instead of sampling clusters.
      n_clusters: ``hd.n_clusters`` (names the clusters file).
    """

    def __init__(self, generator, discriminators, loss_weights, n_layers_d=3, vgg_factory=None, fix_global_epochs=0,
                 local_prefix="model1_", encoder=None, feature_ids="instances", use_encoded_image=False,
                 n_clusters=10, **kwargs):
        super().__init__(generator, discriminators, loss_weights, gan_mode="lsgan", **kwargs)
        self.n_layers_d = int(n_layers_d)
        self.vgg_factory = vgg_factory
        self.vgg = None
        self.fix_global_epochs = int(fix_global_epochs)
        self.local_prefix = local_prefix
        self.encoder = encoder
        if feature_ids not in ("instances", "labels"):
            raise ValueError(f"feature_ids must be instances or labels, got {feature_ids!r}")
        self.feature_ids = feature_ids
        self.use_encoded_image = bool(use_encoded_image)
        self.n_clusters = int(n_clusters)
        self.clusters = None  # {label: centres [k, F]}: `set_clusters` / `attach_run`
        self.clusters_source = ""
        self._table = None
        feat = [spec for spec in self.contract.inputs if spec.kind == "features"]
        if (encoder is None) != (not feat):
            raise ValueError("a feature encoder and a 'features' contract input go together")
        self.feat_spec = feat[0] if feat else None
        local = {id(v) for layer in generator._flatten_layers(include_self=False)
                 if layer.name.startswith(local_prefix) for v in layer.trainable_weights}
        # E is trained in both phases (NVIDIA: in optimizer_G from the start and in update_fixed_params)
        self._fixed = ([id(v) not in local for v in generator.trainable_variables]
                       + [False] * len(encoder.trainable_variables if encoder is not None else []))
        if self.fix_global_epochs and not any(not f for f in self._fixed[:len(generator.trainable_variables)]):
            raise ValueError(f"niter_fix_global: the generator has no layer named {local_prefix}* to train alone")

    # ------------------------------------------------------------- the feature encoder
    @property
    def generator_variables(self):
        """G's and, with features, E's trainable variables (NVIDIA: ``params += list(self.netE.parameters())``)."""
        extra = self.encoder.trainable_variables if self.encoder is not None else []
        return list(self.generator.trainable_variables) + list(extra)

    @property
    def extra_networks(self):
        """``{"encoder": E}`` with features (checkpointed beside G and D), else nothing (the old layout)."""
        return {"encoder": self.encoder} if self.encoder is not None else {}

    def feature_ids_of(self, batch):
        """The ids E's output is averaged over: raw instance ids, or the label ids with ``label_feat``.

        Instance ids come from the batch key ``instance_ids`` (the data
        pipeline's) or, failing that, from the ``instances`` input, which then
        holds raw ids (tools: the contract's ``ids=True``). Label ids are the
        ``x`` ids, or the argmax of a one-hot ``x``.
        """
        if self.feature_ids == "labels":
            x = batch[self.contract.main_input.name]
            x = tf.convert_to_tensor(x)
            if x.dtype.is_integer or x.shape[-1] == 1:
                return tf.cast(x, tf.int32)
            return tf.argmax(x, axis=-1, output_type=tf.int32)[..., None]
        ids = batch.get("instance_ids")
        if ids is None:
            ids = batch.get("instances")
        if ids is None:
            raise ContractError("a model with instance features needs the raw instance ids (batch key "
                                "'instance_ids' or the 'instances' input)")
        ids = tf.convert_to_tensor(ids)
        return ids if ids.dtype.is_integer else tf.cast(tf.round(ids), tf.int32)

    def encoded_features(self, batch, image=None, training=False):
        """NVIDIA ``netE.forward(real_image, inst_map)``: E on ``image`` (default ``batch["y"]``), averaged per id."""
        from tfi2i.features import encoded_features

        image = batch["y"] if image is None else image
        return encoded_features(self.encoder, image, self.feature_ids_of(batch), training=training)

    def set_clusters(self, clusters, source=""):
        """Uses ``{label: centres [k, feat_num]}`` (`tfi2i.features.cluster_features`) for cluster sampling."""
        from tfi2i.features import cluster_table

        num_classes = int(self.contract.main_input.num_classes) or 1
        table, counts = cluster_table(clusters, max(num_classes, max([int(k) + 1 for k in clusters] + [1])),
                                      self.feat_spec.channels)
        self.clusters, self.clusters_source = dict(clusters), str(source)
        self._table = (tf.constant(table), tf.constant(counts))

    def attach_run(self, workdir):
        """Loads the run's clusters (``W/features_clustered_%03d.npz``) when present (`tfi2i.runs.load_model`)."""
        import os

        from tfi2i.features import clusters_filename, load_clusters

        self.workdir = str(workdir)
        if self.encoder is None:
            return
        path = os.path.join(str(workdir), clusters_filename(self.n_clusters))
        if os.path.isfile(path):
            self.set_clusters(load_clusters(path), path)

    def check_inference(self, for_export=False):
        """Raises `FeatureFileError` when a features model cannot sample (no clusters); tools call it first."""
        if self.encoder is not None and self._table is None:
            self.sampled_features({}, 0)

    def sampled_features(self, batch, seed=0):
        """NVIDIA ``sample_features``: per instance a random cluster centre of its label, drawn from ``seed``."""
        from tfi2i.features import clusters_filename, sample_cluster_features

        if self._table is None:
            where = getattr(self, "workdir", None)
            name = clusters_filename(self.n_clusters)
            raise FeatureFileError(
                f"this instance-feature model has no feature clusters ({where + '/' + name if where else name} not "
                f"found): run `tfi2i encode-features --workdir {where or 'W'}` (NVIDIA's encode_features.py) first, "
                "or set hd.use_encoded_image=true to encode the batch's photo instead")
        return sample_cluster_features(self.feature_ids_of(batch), *self._table, seed)

    def encode(self, batch, training=False, seed=0, source=None):
        """The network's inputs; with features, ``feat`` is filled when the batch does not carry it.

        ``source``: ``encoded`` (E on ``batch["y"]``, NVIDIA's training
        forward and ``--use_encoded_image``) or ``clusters`` (cluster sampling
        from ``seed``, NVIDIA's default test); default: ``encoded`` when
        ``hd.use_encoded_image`` and the batch has its photo ``y``
        (evaluation), else ``clusters`` (translate and export, which take no
        photo).
        """
        if self.encoder is None:
            return super().encode(batch)
        batch = dict(batch)
        name = self.feat_spec.name
        inst = [s for s in self.contract.inputs if s.kind == "instances" and s.ids]
        if inst and "instance_ids" in batch:
            batch[inst[0].name] = batch["instance_ids"]  # the contract's ids=True input takes the raw ids
        if batch.get(name) is None:
            source = source or ("encoded" if self.use_encoded_image and "y" in batch else "clusters")
            if source == "encoded":
                if "y" not in batch:
                    raise ContractError("hd.use_encoded_image: the batch has no photo 'y' to encode")
                batch[name] = self.encoded_features(batch, training=training)
            elif source == "clusters":
                batch[name] = self.sampled_features(batch, seed)
            else:
                raise ValueError(f"unknown feature source {source!r}; valid: encoded, clusters")
        return self.contract.encode(batch)

    def with_inputs(self, batch, seeds=None, training=False):
        """Training and test steps: ``feat`` from E on the real photo (NVIDIA's ``forward``)."""
        if self.encoder is None:
            return super().with_inputs(batch, seeds)
        inputs = self._with_noise(self.encode(batch, training=training, source="encoded"), seeds)
        return {**batch, "inputs": inputs, "condition": self.contract.condition(inputs)}

    def generate(self, batch, training=False, seeds=None, mode="deterministic", seed=0):
        """`PairedGAN.generate`; a features model samples its clusters from ``seed`` (the call's seed)."""
        if self.encoder is not None and "inputs" not in batch:
            batch = {**batch, "inputs": self.encode(batch, seed=seed)}
        return super().generate(batch, training=training, seeds=seeds, mode=mode, seed=seed)

    def sample_panels(self, batch, y=None):
        """The grid's columns; with features and no clusters yet (training) G gets E's features of the photo."""
        if y is not None:
            batch = {"x": batch, "y": y}
        if self.encoder is not None and self.feat_spec.name not in batch and (self._table is None
                                                                              or self.use_encoded_image):
            batch = {**batch, self.feat_spec.name: self.encoded_features(batch)}
        return super().sample_panels(batch)

    @property
    def restarts_g_optimizer(self):
        """G's optimizer restarts when the fixed-global phase ends (`tfi2i.train.make_optimizers` reads this)."""
        return self.fix_global_epochs > 0

    def after_training(self, workdir, train_source, data_cfg):
        """`tfi2i.train.fit`'s end (chief): a features model writes its clusters (`encode_clusters`)."""
        if self.encoder is not None:
            encode_clusters(self, train_source, data_cfg, workdir)

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
            # = losses.vgg_loss(self.vgg(y_fake), self.vgg(y)), value and gradient; a backward pass that waits
            g_terms["g_vgg"] = vgg_l1_loss(self.vgg, y_fake, y, losses.VGG_LOSS_WEIGHTS)
        return g_terms, d_terms

    # ------------------------------------------------------------- training step (`OneForwardGAN.train_step`)
    def generator_gradients(self, grads):
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


# ----------------------------------------------------------------- builder
def input_channels(cfg):
    """G's named inputs in NVIDIA's concatenation order: ``x`` (one-hot labels or RGB), ``instances``, ``feat``."""
    data = cfg.data
    channels = {"x": int(data.num_classes) if data.x_batch_kind == "labels" else int(cfg.generator.input_channels)}
    if data.instances:
        channels["instances"] = 1
    if cfg.hd.features:
        channels["feat"] = int(cfg.hd.feat_num)
    return channels


def contract(cfg):
    """``x`` (labels or rgb) [+ ``instances``] [+ ``feat``] -> ``y``; sizes a multiple of ``2**(downsamplings)``.

    With ``instance_feat`` the ``instances`` input takes raw ids (``ids=True``:
    the model needs them for the features and computes the boundary map
    itself) and ``feat`` is a ``features`` input the model fills (E or the
    clusters); E's ``2**n_downsample_e`` joins the size multiple.
    """
    hd, data = cfg.hd, cfg.data
    x = (InputSpec("x", "labels", num_classes=int(data.num_classes)) if data.x_batch_kind == "labels"
         else InputSpec("x", "rgb", int(cfg.generator.input_channels)))
    inputs = (x, InputSpec("instances", "instances", ids=bool(hd.instance_feat))) if data.instances else (x,)
    if hd.features:
        inputs += (InputSpec("feat", "features", int(hd.feat_num)),)
    depth = hd.n_downsample_global + (hd.n_local_enhancers if hd.netG == "local" else 0)
    if hd.features:
        depth = max(depth, hd.n_downsample_e)
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


def encode_clusters(model, source, data_cfg, workdir, log=None):
    """NVIDIA's ``encode_features.py``: E over the training split, per-instance rows, k-means per label.

    Runs E (``training=False``) over `source` with batch 1 and the evaluation
    transform (no flip, no random crop: ``serial_batches``, ``no_flip``),
    collects one row per instance (`tfi2i.features.instance_features`),
    clusters them (`cluster_features`, ``hd.n_clusters``) and writes
    ``W/features.npz`` (the rows, NVIDIA ``features.npy``) and
    ``W/features_clustered_%03d.npz`` atomically; the model then samples
    from them. Returns the clusters' path.

    Deviation: with ``label_feat`` the rows are taken over the label map (what
    E's output was averaged over in training); NVIDIA's script passes the
    instance map there.
    """
    import os

    from tfi2i import features
    from tfi2i.data import pipeline

    if model.encoder is None:
        raise ValueError("encode_clusters: the model has no feature encoder (hd.instance_feat / hd.label_feat)")
    num_classes = int(model.contract.main_input.num_classes)
    if num_classes < 1:
        raise ValueError("encode_clusters: the model's main input is not a label map (no num_classes)")

    def batches():
        for k, batch in enumerate(pipeline.eval_dataset(source, data_cfg, batch_size=1)):
            if log is not None and (k + 1) % 100 == 0:
                log(f"encode-features: {k + 1} / {len(source)} images")
            yield {"y": batch["y"], "instance_ids": model.feature_ids_of(batch)}

    rows = features.encode_dataset(model.encoder, batches(), num_classes)
    features.save_rows(os.path.join(str(workdir), "features.npz"), rows)
    clusters = features.cluster_features(rows, model.n_clusters)
    path = os.path.join(str(workdir), features.clusters_filename(model.n_clusters))
    features.save_clusters(path, clusters)
    model.set_clusters(clusters, path)
    return path


def encode_run(workdir, log=print):
    """``tfi2i encode-features --workdir W``: loads run W (latest checkpoint) and runs `encode_clusters`."""
    from tfi2i.data.open import open_data
    from tfi2i.runs import RunError, load_model

    cfg, model, ckpt = load_model(workdir)
    if getattr(model, "encoder", None) is None:
        raise RunError(f"{workdir}: the run has no instance features (hd.instance_feat / hd.label_feat are off)")
    train_src, _, data_cfg = open_data(cfg)
    log(f"encode-features: {len(train_src)} training images through E of {ckpt}")
    path = encode_clusters(model, train_src, data_cfg, workdir, log=log)
    log(f"encode-features: saved {path} ({len(model.clusters)} labels with clusters)")
    return path


def add_parser(subparsers):
    """Registers ``tfi2i encode-features`` (NVIDIA ``encode_features.py``)."""
    p = subparsers.add_parser(
        "encode-features",
        help="pix2pixHD: encode the training set with E and k-means its instance features (encode_features.py)",
        description="Run the feature encoder E of pix2pixHD run W (trained with hd.instance_feat or "
        "hd.label_feat) over its training split, cluster each label's instance features (hd.n_clusters) and "
        "save W/features.npz and W/features_clustered_NNN.npz, which evaluate / translate / export sample from. "
        "Training writes them at its end; this recomputes them (e.g. for a run stopped early).",
    )
    p.add_argument("--workdir", required=True, metavar="W", help="training run directory")
    p.set_defaults(func=_run_cli)
    return p


def _run_cli(args):
    import sys

    from tfi2i.runs import RunError

    try:
        encode_run(args.workdir, log=lambda m: print(m, file=sys.stderr))
    except (RunError, FeatureFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


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
    # D sees labels + edges + image, never the features (NVIDIA's netD_input_nc)
    d_channels = sum(c for n, c in input_channels(cfg).items() if n != "feat") + cfg.generator.output_channels
    discriminators = nets.multiscale_discriminator(d_channels, hd.ndf, hd.n_layers_d, hd.num_d, hd.norm)
    encoder = None
    if hd.features:
        from tfi2i.networks.feature_encoder import feature_encoder

        encoder = feature_encoder(hd.feat_num, hd.nef, hd.n_downsample_e, hd.norm, name="E",
                                  input_channels=cfg.generator.output_channels)
    return Pix2PixHD(generator(cfg), discriminators, cfg.loss.weights, n_layers_d=hd.n_layers_d,
                     vgg_factory=vgg_factory(cfg), fix_global_epochs=hd.niter_fix_global,
                     local_prefix=nets.local_prefix(hd.n_local_enhancers), contract=contract(cfg),
                     encoder=encoder, feature_ids="labels" if hd.label_feat else "instances",
                     use_encoded_image=hd.use_encoded_image, n_clusters=hd.n_clusters,
                     noise_seed=cfg.train.seed, name=cfg.name)


__all__ = ["HDSection", "Pix2PixHD", "Pix2PixHDConfig", "add_parser", "build", "contract", "encode_clusters",
           "encode_run", "input_channels"]
