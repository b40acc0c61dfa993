"""The model contract: what a trained generator takes and gives, declared in one place.

Every model of every paper fits it, so the tools downstream of training
(evaluation, export, ``tfi2i translate``, sample grids) never assume a U-Net
with one RGB input and one output:

* **inputs**, each with a name and a kind:
  ``rgb`` (an image in [-1, 1]), ``labels`` (class ids; the network sees them
  one-hot encoded, ``num_classes`` channels), ``instances`` (instance ids; the
  network sees pix2pixHD's boundary map, 1 channel), ``style`` (a style
  image, e.g. GRIT's E^S input) and ``features`` (pix2pixHD's instance-wise
  feature map, ``channels`` = ``feat_num``: the model fills it itself, from a
  reference photo through its encoder or from its feature clusters, so
  callers never supply it; :attr:`Contract.supplied`). The generator's Keras
  inputs carry the same names. An ``instances`` input with ``ids=True``
  takes the raw instance ids (float32 or int ``[B, H, W, 1]``) from callers
  instead of the boundary map: a model with instance features needs the ids
  and computes the boundary map itself. Training batches hold the *raw*
  form (ids as int32 ``[B, H, W, 1]``, boundary maps as float; see
  `tfi2i.data.labels`), :meth:`Contract.encode` turns them into what the
  network takes.
* **outputs**: named images; ``"y"`` is the translation, others (per-scale
  images, GRIT's I_rec and I_res) are named too, each with its channels and
  its downscale ``factor`` relative to the input (an output at half size has
  factor 2).
* **noise**: a stochastic model's generator takes per-pixel noise maps as named
  inputs (StyleGAN's noise inputs). They are drawn by :meth:`Contract.draw_noise`
  from an integer seed per example, so the K samples of an evaluation are
  reproducible, a resumed run draws the same noise, and an exported model
  returns the same image for the same seed.
* **multiple**: input H and W must be multiples of it (tools pad to it);
  **tileable**: whether large images may be processed in overlapping tiles
  (not for models with noise, style codes or multi-scale outputs: tiles would
  blend independent draws); ``why_not_tileable`` says why.

The contract is JSON (``to_dict`` / ``from_dict``): exports record it in
``tfi2i_export.json``.
"""

from __future__ import annotations

import dataclasses

KINDS = ("rgb", "labels", "instances", "style", "features")


class ContractError(ValueError):
    """A contract is inconsistent, or a model / request does not fit it."""


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One named generator input.

    ``channels`` is what the network sees: 3 (or 1) for ``rgb`` / ``style``,
    ``num_classes`` for ``labels`` (one-hot), 1 for ``instances`` (boundary map),
    any number for ``features``. ``ids`` (``instances`` only): callers supply
    raw instance ids, the model computes the boundary map. ``resized_from``
    (an ``rgb`` input): this input is the full-size input of that name
    downscaled by ``factor`` (>= 2) when the caller does not supply it.
    """

    name: str
    kind: str = "rgb"
    channels: int = 3
    num_classes: int = 0
    ids: bool = False
    factor: int = 1
    resized_from: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ContractError(f"input '{self.name}': kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.kind == "labels":
            if self.num_classes < 2:
                raise ContractError(f"input '{self.name}': a label map needs num_classes >= 2, got {self.num_classes}")
            object.__setattr__(self, "channels", int(self.num_classes))
        elif self.kind == "instances":
            object.__setattr__(self, "channels", 1)
        elif self.kind == "features":
            if self.channels < 1:
                raise ContractError(f"input '{self.name}': a feature map needs channels >= 1, got {self.channels}")
        elif self.channels not in (1, 3):
            raise ContractError(f"input '{self.name}': an image has 1 or 3 channels, got {self.channels}")

        if self.ids and self.kind != "instances":
            raise ContractError(f"input '{self.name}': ids=True is for an instances input, not {self.kind}")
        if int(self.factor) < 1 or (self.resized_from and (int(self.factor) < 2 or self.kind != "rgb")) or (
                int(self.factor) != 1 and not self.resized_from):
            raise ContractError(f"input '{self.name}': a resized input is an rgb input with resized_from set and "
                                f"factor >= 2 (got kind {self.kind}, factor {self.factor}, resized_from "
                                f"{self.resized_from!r})")

    @property
    def conditions(self):
        """True when D sees this input beside the image it judges (not a style image, a feature map or a
        resized copy of another input)."""
        return self.kind not in ("style", "features") and not self.resized_from

    @property
    def supplied(self):
        """True when callers supply this input (all but ``features``, which the model fills, and resized copies)."""
        return self.kind != "features" and not self.resized_from


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    """One named generator output: an image with ``channels`` at ``1 / factor`` of the input size."""

    name: str
    channels: int = 3
    factor: int = 1


@dataclasses.dataclass(frozen=True)
class NoiseSpec:
    """Noise the generator takes: N(0, 1), ``channels`` at ``1 / factor`` of the input size.

    ``factor=0``: a vector ``[B, channels]`` instead of a map (e.g. the N(0, I)
    draw a sampled style code is made from, `tfi2i.style_prior`).
    """

    name: str
    channels: int = 1
    factor: int = 1


@dataclasses.dataclass(frozen=True)
class Contract:
    """A model's inference contract (see the module docstring)."""

    inputs: tuple = (InputSpec("x"),)
    outputs: tuple = (OutputSpec("y"),)
    noise: tuple = ()
    multiple: int = 1
    tileable: bool = True
    why_not_tileable: str = ""

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "noise", tuple(self.noise))
        names = [s.name for s in (*self.inputs, *self.noise)]
        if len(set(names)) != len(names):
            raise ContractError(f"input names must be unique, got {names}")
        if not self.inputs:
            raise ContractError("a model needs at least one input")
        for spec in self.inputs:
            if spec.resized_from and spec.resized_from not in [i.name for i in self.inputs if not i.resized_from]:
                raise ContractError(f"input '{spec.name}' is resized from '{spec.resized_from}', which is not a "
                                    f"full-size input of the contract ({', '.join(names)})")
        outs = [o.name for o in self.outputs]
        if not outs or outs[0] != "y" or len(set(outs)) != len(outs):
            raise ContractError(f"outputs must be unique and start with the translation 'y', got {outs}")
        if int(self.multiple) < 1:
            raise ContractError(f"multiple must be >= 1, got {self.multiple}")
        if self.tileable and (self.noise or any(i.kind == "style" for i in self.inputs)
                              or any(o.factor != 1 for o in self.outputs)):
            raise ContractError("a model with noise, a style input or multi-scale outputs cannot be tiled "
                                "(tiles would blend independent draws): set tileable=False and why_not_tileable")

    # ------------------------------------------------------------------ lookups
    @property
    def stochastic(self):
        """True when the generator takes noise (inference then takes a seed)."""
        return bool(self.noise)

    @property
    def seeded(self):
        """True when an output depends on a seed: noise inputs, or a feature map sampled from clusters."""
        return self.stochastic or any(i.kind == "features" for i in self.inputs)

    @property
    def supplied(self):
        """The inputs callers supply (tools, signatures): all but ``features`` maps, which the model fills."""
        return tuple(i for i in self.inputs if i.supplied)

    @property
    def output_names(self):
        return tuple(o.name for o in self.outputs)

    @property
    def input_names(self):
        return tuple(i.name for i in self.inputs)

    def input(self, name):
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise ContractError(f"no input named '{name}'; inputs: {', '.join(self.input_names)}")

    def output(self, name):
        for spec in self.outputs:
            if spec.name == name:
                return spec
        raise ContractError(f"no output named '{name}'; outputs: {', '.join(self.output_names)}")

    @property
    def main_input(self):
        """The input a plain image-to-image tool feeds: the first one that is not a style image or a feature map."""
        return next(i for i in self.inputs if i.kind not in ("style", "features") and not i.resized_from)

    # ------------------------------------------------------------------ tensors
    def encode(self, raw, fallback_style=None):
        """Raw inputs (a batch) -> what the network takes, ``{name: float32 [B, H, W, C]}``.

        ``labels``: int ids ``[B, H, W, 1]`` are one-hot encoded (a float
        tensor that already has ``num_classes`` channels passes through);
        ``instances``: the boundary map passes through (float), or, with
        ``ids=True``, is computed from the raw ids; ``features``: must be
        there (the model fills it before calling this); ``rgb`` /
        ``style``: cast to float32. A missing style input takes
        ``fallback_style`` (GRIT trains its style encoder on the target); a
        missing resized input is its ``resized_from`` input downscaled
        (`tfi2i.data.augment.downscale`).
        """
        import tensorflow as tf

        from tfi2i.data.labels import one_hot

        from tfi2i.data.augment import downscale

        out = {}
        for spec in sorted(self.inputs, key=lambda s: bool(s.resized_from)):  # full-size inputs first
            value = raw.get(spec.name)
            if value is None and spec.resized_from:
                value = downscale(out[spec.resized_from], spec.factor)
            if value is None and spec.kind == "style":
                value = fallback_style
            if value is None and spec.kind == "features":
                raise ContractError(f"missing input '{spec.name}' (features): the model fills it (e.g. "
                                    "`Pix2PixHD.encode`); a bare Contract cannot")
            if value is None:
                raise ContractError(f"missing input '{spec.name}' ({spec.kind}); the model takes "
                                    f"{', '.join(self.input_names)}")
            if spec.kind == "labels" and (value.dtype.is_integer or value.shape[-1] == 1):
                value = one_hot(tf.cast(value, tf.int32), spec.num_classes)
            if spec.kind == "instances" and spec.ids:
                from tfi2i.data.labels import instance_edges

                value = instance_edges(value)  # raw ids in; the network takes the boundary map
            out[spec.name] = tf.cast(value, tf.float32)
        return {spec.name: out[spec.name] for spec in self.inputs}

    def condition(self, encoded):
        """What a conditional D sees beside the judged image: the encoded non-style inputs, concatenated."""
        import tensorflow as tf

        parts = [encoded[s.name] for s in self.inputs if s.conditions]
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)

    def draw_noise(self, height, width, seeds):
        """``{name: float32 [B, H/f, W/f, C]}`` N(0, 1) maps (``[B, C]`` for ``f = 0``); example b's depend only on ``seeds[b]``.

        Args:
          height, width: input size (int or scalar tensors).
          seeds: int ``[B]`` (one seed per example): the same seed gives the
            same noise whatever the batch it is in.
        """
        import tensorflow as tf

        seeds = tf.cast(tf.reshape(seeds, [-1]), tf.int64)
        out = {}
        for k, spec in enumerate(self.noise):
            shape = [spec.channels] if spec.factor == 0 else [height // spec.factor, width // spec.factor,
                                                              spec.channels]

            def one(seed, shape=shape, k=k):
                return tf.random.stateless_normal(tf.stack(shape), tf.stack([seed, k]))

            out[spec.name] = tf.map_fn(one, seeds, fn_output_signature=tf.float32)
        return out

    # ------------------------------------------------------------------ checks
    def check_generator(self, generator):
        """Raises `ContractError` when a Keras generator's named inputs / outputs do not match."""
        inputs = getattr(generator, "input", None)
        outputs = getattr(generator, "output", None)
        if not isinstance(inputs, dict) or not isinstance(outputs, dict):
            raise ContractError(f"generator {generator.name} must take a dict of named inputs and return a dict "
                                "of named images")
        want_in = set(self.input_names) | {n.name for n in self.noise}
        if set(inputs) != want_in:
            raise ContractError(f"generator {generator.name} takes {sorted(inputs)}, the contract declares "
                                f"{sorted(want_in)}")
        if set(outputs) != set(self.output_names):
            raise ContractError(f"generator {generator.name} returns {sorted(outputs)}, the contract declares "
                                f"{sorted(self.output_names)}")
        for spec in self.inputs:
            got = inputs[spec.name].shape[-1]
            if got is not None and int(got) != spec.channels:
                raise ContractError(f"generator input '{spec.name}' has {got} channels, the contract says "
                                    f"{spec.channels} ({spec.kind})")

    # ------------------------------------------------------------------ JSON
    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        values = dict(values)
        return cls(
            inputs=tuple(InputSpec(**i) for i in values.pop("inputs")),
            outputs=tuple(OutputSpec(**o) for o in values.pop("outputs")),
            noise=tuple(NoiseSpec(**n) for n in values.pop("noise", ())),
            **values,
        )


def image_contract(input_channels=3, output_channels=3, multiple=1, kind="rgb", num_classes=0):
    """The pix2pix family's contract: one input ``x`` (an image or a label map), one output ``y``."""
    return Contract(inputs=(InputSpec("x", kind, input_channels, num_classes),),
                    outputs=(OutputSpec("y", output_channels),), multiple=multiple)


__all__ = ["KINDS", "Contract", "ContractError", "InputSpec", "NoiseSpec", "OutputSpec", "image_contract"]
