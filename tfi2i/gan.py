"""`PairedGAN`: the conditional GAN training step every recipe shares.

One `train_step` (pix2pix order, junyanz `Pix2PixModel.optimize_parameters`):

1. the batch's raw inputs are encoded as the model's contract says
   (`tfi2i.contract`: label ids one-hot, a style image, noise drawn from the
   step's seed), and ``fake = G(inputs)`` is the dict of named outputs
   (dropout on: pix2pix's noise z);
2. ``prepare(batch, fake)``: tensors both objectives share (PAN's
   pyramids), computed once per step; by default nothing;
3. D update on ``discriminator_terms`` with the fake side detached;
4. G update on ``generator_terms``, judged by the just-updated D.

Papers change the objective by overriding the two hooks, which return a dict
``{term_name: per-example loss [B]}``; `weighted_sum` multiplies each term by
its weight from the config (``loss.weights``; 0 switches a term off) and is
the only place where terms are combined. Every term is a Keras metric and a
TensorBoard tag under the same name.

The model contract: the generator takes a dict of named inputs and returns a
dict of named images (``"y"`` is the translation); ``self.discriminators`` is
always a list and each D returns ``(features, logits)``; ``self.contract``
declares inputs, outputs, size multiple, noise and tiling for every tool that
runs the model after training (`tfi2i.runs.load_model`).

Distribution: per-example losses are averaged over the global batch
(`tf.nn.compute_average_loss`), so under `MirroredStrategy` the summed
replica gradients equal the single-device gradient. Mixed precision: both
optimizers are wrapped in `keras.optimizers.LossScaleOptimizer` when the
global dtype policy is ``mixed_float16``.
"""

import contextlib

import keras
import tensorflow as tf

from tfi2i import losses


class PairedGAN(keras.Model):
    """Conditional GAN on pairs (x, y): G maps x to y, D judges (x, y) pairs.

    Args:
      generator: ``keras.Model`` on named inputs -> named outputs (dicts; the
        contract's names), images in [-1, 1].
      discriminator: a ``keras.Model`` or a list of them, each on
        ``concat([condition, image], -1)`` (``image`` alone when not
        conditional), returning ``(features, logits)``.
      loss_weights: every term's weight, generator and discriminator terms
        alike (e.g. ``{"g_gan": 1, "l1": 100, "d_real": 0.5, "d_fake": 0.5}``;
        the 0.5 is pix2pix's halving of the D objective).
      gan_mode: ``vanilla`` | ``lsgan`` | ``hinge``.
      conditional: D judges ``concat([condition, y])`` (pix2pix); False: ``y``
        alone (an unconditional D, e.g. the Context Encoder baseline).
      contract: the `tfi2i.contract.Contract` (default: one ``rgb`` input per
        generator input, its outputs, multiple 1).
      noise_seed: seed of the training noise of a stochastic model (the run's
        ``train.seed``); step ``s`` draws the same noise on every rerun.

    Reference: Isola et al., "Image-to-Image Translation with Conditional
    Adversarial Networks", CVPR 2017.
    """

    #: Names of the discriminator's terms; every other weight is a G term.
    D_TERMS = ("d_real", "d_fake")

    def __init__(self, generator, discriminator, loss_weights, gan_mode="vanilla", conditional=True, contract=None,
                 noise_seed=0, **kwargs):
        super().__init__(**kwargs)
        self.conditional = conditional
        self.generator = generator
        self.discriminators = list(discriminator) if isinstance(discriminator, (list, tuple)) else [discriminator]
        self.contract = contract if contract is not None else default_contract(generator)
        self.contract.check_generator(generator)
        self.noise_seed = int(noise_seed)
        self.loss_weights = {k: float(v) for k, v in loss_weights.items()}
        self.gan_mode = gan_mode
        losses._check(gan_mode)
        names = list(self.loss_weights) + ["g_total", "d_total"]
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}

    @property
    def discriminator(self):
        """The discriminator, or the list of them when there are several (how checkpoints name them)."""
        return self.discriminators[0] if len(self.discriminators) == 1 else list(self.discriminators)

    # ------------------------------------------------------------- contract
    def encode(self, batch):
        """The network's inputs from a batch's raw ones (`Contract.encode`; a style input defaults to the target)."""
        return self.contract.encode(batch, fallback_style=batch.get("y"))

    def generate(self, batch, training=False, seeds=None, mode="deterministic", seed=0):
        """``G`` on a batch (raw or encoded inputs) -> ``{output name: [B, h, w, C]}``.

        A stochastic model draws its noise from ``seeds`` (int ``[B]``, one per
        example; default 0 for every example): the same seed, the same image.
        ``mode="reference"`` (inference only) runs G as the pix2pix reference
        test script does: dropout on, batch norm on the statistics of this
        batch; the dropout masks come from ``seed`` (an int or a scalar tensor)
        and the model's moving statistics and RNG states are left unchanged.
        """
        inputs = batch["inputs"] if "inputs" in batch else self.encode(batch)
        inputs = self._with_noise(inputs, seeds)
        if mode == "deterministic" or training:
            return self.generator(inputs, training=training)
        if mode != "reference":
            raise ValueError(f"unknown mode {mode!r}; valid: deterministic, reference")
        with self._seeded_dropout(seed), _frozen_batch_statistics(self.generator):
            return self.generator(inputs, training=True)

    @contextlib.contextmanager
    def _seeded_dropout(self, seed):
        """Dropout layers draw their masks from `seed` inside the block; their RNG states are put back after."""
        layers = [layer for layer in self.generator._flatten_layers() if isinstance(layer, keras.layers.Dropout)]
        saved = [tf.identity(layer.seed_generator.state) for layer in layers]
        for k, layer in enumerate(layers):
            layer.seed_generator.state.assign(
                tf.stack([tf.cast(seed, tf.int64) * 1_000_003 + k, tf.constant(0, tf.int64)]))
        try:
            yield
        finally:
            for layer, state in zip(layers, saved):
                layer.seed_generator.state.assign(state)

    def call(self, batch, training=False):
        return self.generate(batch, training=training)

    def _with_noise(self, inputs, seeds):
        if not self.contract.stochastic:
            return inputs
        first = inputs[self.contract.inputs[0].name]
        shape = tf.shape(first)
        if seeds is None:
            seeds = tf.zeros([shape[0]], tf.int64)
        return {**inputs, **self.contract.draw_noise(shape[1], shape[2], seeds)}

    def sample(self, batch, seed):
        """One random sample of the outputs for `batch`, reproducible from the integer `seed`.

        A stochastic model (its contract has noise) draws its noise with seeds
        ``seed * 65536 + example``. A deterministic model with dropout gets
        pix2pix's noise z instead: dropout on, batch norm on its moving
        statistics, the dropout RNGs set from `seed` for this call (and put
        back afterwards, so a run's own RNG stream is untouched).
        """
        if self.contract.stochastic:
            n = tf.shape(batch["y"] if "y" in batch else next(iter(batch.values())))[0]
            return self.generate(batch, training=False, seeds=seed * 65_536 + tf.range(tf.cast(n, tf.int64)))
        self.generator.trainable = False  # Keras: BN in inference mode even with training=True; dropout stays on
        try:
            with self._seeded_dropout(seed):
                return self.generate(batch, training=True)
        finally:
            self.generator.trainable = True

    def training_seeds(self, batch_size):
        """Noise seeds of this training step: a function of (noise_seed, step, replica, example)."""
        step = tf.cast(self.g_optimizer.iterations, tf.int64)
        ctx = tf.distribute.get_replica_context()
        replica = tf.cast(ctx.replica_id_in_sync_group if ctx is not None else 0, tf.int64)
        base = ((tf.constant(self.noise_seed, tf.int64) * 1_000_003 + step) * 64 + replica) * 65_536
        return base + tf.range(tf.cast(batch_size, tf.int64))

    def condition(self, batch):
        """What a conditional D sees beside the judged image (`Contract.condition`); a tensor passes through."""
        if not isinstance(batch, dict):
            return batch
        if "condition" in batch:
            return batch["condition"]
        return self.contract.condition(batch["inputs"] if "inputs" in batch else self.encode(batch))

    # ----------------------------------------------------------------- hooks
    def judge(self, batch, image, training=True, index=0):
        """``(features, logits)`` of discriminator `index` on ``(condition(batch), image)`` (``image`` alone when not conditional)."""
        d_in = tf.concat([self.condition(batch), image], axis=-1) if self.conditional else image
        return self.discriminators[index](d_in, training=training)

    def discriminate(self, batch, image, training=True, index=0):
        """D's logits for the pair (condition, image); `batch` is a batch dict or the condition tensor."""
        return self.judge(batch, image, training, index)[1]

    def prepare(self, batch, fake):
        """``(batch, fake)`` handed to both hooks; computed once per step.

        Subclasses add what both objectives read (PAN: the pyramids of x, y
        and G(x)) so it is not computed twice. The default passes the
        generator's outputs through; the D step receives ``fake`` with every
        tensor detached.
        """
        return batch, fake

    def sample_panels(self, batch, y=None):
        """Columns of the sample grid, ``[(title, [B, H, W, 3] in [-1, 1])]``.

        The inputs as pictures (label maps in a fixed palette, boundary maps
        in grey), every named output (resized to the input's size) and the
        target. ``sample_panels(x, y)`` works for one-input models.
        """
        if y is not None:
            batch = {"x": batch, "y": y}
        from tfi2i.visualize import show_input

        fake = self.generate(batch, training=False)
        size = tf.shape(batch["y"])[1:3]
        panels = [(spec.name, show_input(spec, batch.get(spec.name, batch["y"]))) for spec in self.contract.inputs
                  if not spec.resized_from]  # a resized copy of an input is not a column of its own
        for spec in self.contract.outputs:
            image = fake[spec.name]
            if spec.factor != 1:
                image = tf.image.resize(image, size, method="nearest")
            panels.append(("G(x)" if spec.name == "y" else spec.name, _as_rgb(image)))
        panels.append(("y", _as_rgb(batch["y"])))
        return panels

    def active(self, name):
        """True when term `name` has a non-zero weight (hooks may skip inactive work)."""
        return self.loss_weights.get(name, 0.0) != 0.0

    def generator_terms(self, batch, fake, training=True):
        """pix2pix G objective terms: ``g_gan`` (Eq. 1, G side) and ``l1`` (Eq. 3) on the translation ``y``."""
        y_fake = outputs_of(fake)["y"]
        terms = {"g_gan": losses.g_adversarial_loss(self.discriminate(batch, y_fake, training), self.gan_mode)}
        terms["l1"] = losses.l1_loss(batch["y"], y_fake)
        return terms

    def discriminator_terms(self, batch, fake, training=True):
        """pix2pix D objective terms on real and (detached) generated pairs."""
        y_fake = outputs_of(fake)["y"]
        # the reference's order (Pix2PixModel.backward_D: fake pair first), which decides D's batch-norm statistics
        d_fake = losses.d_fake_loss(self.discriminate(batch, y_fake, training), self.gan_mode)
        d_real = losses.d_real_loss(self.discriminate(batch, batch["y"], training), self.gan_mode)
        return {"d_real": d_real, "d_fake": d_fake}

    # ----------------------------------------------------------- mechanics
    def compile(self, g_optimizer, d_optimizer, **kwargs):
        """Stores and builds both optimizers (see keras3-notes: build before a distributed step)."""
        super().compile(optimizer=None, **kwargs)
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            g_optimizer = _loss_scaled(g_optimizer)
            d_optimizer = _loss_scaled(d_optimizer)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        g_optimizer.build(self.generator_variables)
        d_optimizer.build(self.discriminator_variables)

    @property
    def generator_variables(self):
        """What G's optimizer trains: the generator's trainable variables.

        The one hook for networks trained with G (pix2pixHD's feature encoder
        E, in G's optimizer as NVIDIA's ``optimizer_G``): a subclass appends
        their variables; `compile` and the training steps read this.
        """
        return self.generator.trainable_variables

    @property
    def extra_networks(self):
        """``{name: network}`` a checkpoint stores beside G and D (`tfi2i.checkpoint.model_objects`); none here."""
        return {}

    @property
    def discriminator_variables(self):
        """Trainable variables of every discriminator."""
        return [v for d in self.discriminators for v in d.trainable_variables]

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

    def with_inputs(self, batch, seeds=None, training=False):
        """The batch plus ``inputs`` (the encoded network inputs, noise included) and ``condition`` (D's view).

        ``training``: True inside a training step (a model whose encoding has
        trainable parts, pix2pixHD's feature encoder, runs them in training mode).
        """
        inputs = self.encode(batch)
        return {**batch, "inputs": self._with_noise(inputs, seeds), "condition": self.contract.condition(inputs)}

    def train_step(self, batch):
        """One D update then one G update on `batch` (raw inputs and ``"y"``, images in [-1, 1]).

        Returns each term's global-batch average (this replica's share), plus
        ``g_total`` and ``d_total``; `tfi2i.train` sums them over replicas.
        """
        generator = self.generator
        seeds = self.training_seeds(tf.shape(batch["y"])[0]) if self.contract.stochastic else None
        batch = self.with_inputs(batch, seeds)
        with tf.GradientTape() as g_tape:
            fake = generator(batch["inputs"], training=True)
            batch, fake = self.prepare(batch, fake)
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    d_total, d_logs = self.weighted_sum(
                        self.discriminator_terms(batch, tf.nest.map_structure(tf.stop_gradient, fake), training=True)
                    )
                    d_scaled = _scale(self.d_optimizer, d_total)
                self._update(d_tape, self.d_optimizer, d_scaled, self.discriminator_variables)
            g_total, g_logs = self.weighted_sum(self.generator_terms(batch, fake, training=True))
            g_scaled = _scale(self.g_optimizer, g_total)
        self._update(g_tape, self.g_optimizer, g_scaled, self.generator_variables)
        return self._log({**d_logs, **g_logs, "g_total": g_total, "d_total": d_total})

    def test_step(self, batch):
        """The generator's terms on evaluation pairs (dropout and batch norm in inference mode; noise seed 0)."""
        batch = self.with_inputs(batch)
        batch, fake = self.prepare(batch, self.generator(batch["inputs"], training=False))
        g_total, g_logs = self.weighted_sum(self.generator_terms(batch, fake, training=False))
        return self._log({**g_logs, "g_total": g_total})

    def _log(self, logs):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        for name, value in logs.items():
            self.trackers[name].update_state(value * replicas)  # this replica's own mean
        return logs


class VGGLossMixin:
    """For a model with a ``g_vgg`` term: ``self.vgg_factory()`` builds the frozen VGG-19 in `compile`.

    Training only (a rebuilt run used for inference never needs the VGG
    weights); the model sets ``vgg_factory`` (``() -> keras.Model``) and reads
    ``self.vgg`` in its objective. Mixed in before the `PairedGAN` subclass.
    """

    vgg_factory = None
    vgg = None

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        super().compile(g_optimizer, d_optimizer, **kwargs)
        if self.active("g_vgg"):
            if self.vgg_factory is None:
                raise ValueError("loss.weights.g_vgg is on but the model has no VGG-19 (vgg_factory)")
            self.vgg = self.vgg_factory()


class OneForwardGAN(PairedGAN):
    """pix2pixHD's update order (NVIDIA ``train.py``; also TensorFlow's pix2pix tutorial's two-tape step).

    One forward pass computes G's outputs, the D passes and every loss term
    with the weights as they are (`objective`); then G's update and D's update,
    both from those numbers. In `PairedGAN`'s pix2pix order G is judged by the
    just-updated D instead. Subclasses implement `objective` (one method for
    both sides, so the D passes on the real pair feed both ``d_real`` and G's
    feature matching) and may override `generator_gradients` (pix2pixHD's
    fixed-global phase).
    """

    def objective(self, batch, fake, training=True):
        """``(generator terms, discriminator terms)``, each ``{name: [B]}``; D's side on detached fakes."""
        raise NotImplementedError

    def generator_terms(self, batch, fake, training=True):
        return self.objective(batch, fake, training)[0]

    def discriminator_terms(self, batch, fake, training=True):
        return self.objective(batch, fake, training)[1]

    def generator_gradients(self, grads):
        """G's gradients (aligned with `generator_variables`) before they are applied; unchanged here."""
        return grads

    def train_step(self, batch):
        """One forward pass, both objectives, then G's and D's updates (see the class docstring)."""
        g_vars, d_vars = self.generator_variables, self.discriminator_variables
        seeds = self.training_seeds(tf.shape(batch["y"])[0]) if self.contract.stochastic else None
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            batch = self.with_inputs(batch, seeds, training=True)  # inside the tapes: trainable encodings train
            fake = self.generator(batch["inputs"], training=True)
            g_terms, d_terms = self.objective(batch, fake, training=True)
            g_total, g_logs = self.weighted_sum(g_terms)
            d_total, d_logs = self.weighted_sum(d_terms)
            g_scaled, d_scaled = _scale(self.g_optimizer, g_total), _scale(self.d_optimizer, d_total)
        g_grads = self.generator_gradients(g_tape.gradient(g_scaled, g_vars))
        d_grads = d_tape.gradient(d_scaled, d_vars)
        # the updates wait for the losses, so every forward pass has read the weights before they change: TF's
        # automatic control dependencies did not order it for a D pass whose only consumers are a loss and G's
        # gradient (a scale-by-scale variant of MSG U-Net's step, tried and removed, read D's updated weights in
        # about one run in three)
        with tf.control_dependencies([g_total, d_total]):
            for optimizer, grads, variables in ((self.g_optimizer, g_grads, g_vars),
                                                (self.d_optimizer, d_grads, d_vars)):
                pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
                if pairs:
                    optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return self._log({**d_logs, **g_logs, "g_total": g_total, "d_total": d_total})


def _loss_scaled(optimizer):
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer)


def _scale(optimizer, loss):
    return optimizer.scale_loss(loss) if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) else loss


@contextlib.contextmanager
def _frozen_batch_statistics(model):
    """Batch norm in training mode normalises with the batch's statistics; momentum 1 keeps its moving ones."""
    layers = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 1.0  # moving = moving * 1 + batch * 0: unchanged
    try:
        yield
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum


def outputs_of(fake):
    """The generator's outputs as a dict: a bare tensor (a test's ``G(x)["y"]``) becomes ``{"y": tensor}``."""
    return fake if isinstance(fake, dict) else {"y": fake}


def _as_rgb(image):
    """A 1-channel image repeated to 3 channels for the grid; 3 channels unchanged."""
    return tf.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def default_contract(generator):
    """One ``rgb`` input per named generator input, its named outputs, multiple 1."""
    from tfi2i.contract import Contract, InputSpec, OutputSpec

    inputs = generator.input if isinstance(generator.input, dict) else {"x": generator.input}
    outputs = generator.output if isinstance(generator.output, dict) else {"y": generator.output}
    return Contract(inputs=tuple(InputSpec(n, "rgb", int(t.shape[-1])) for n, t in inputs.items()),
                    outputs=tuple(OutputSpec(n, int(t.shape[-1])) for n, t in outputs.items()))
