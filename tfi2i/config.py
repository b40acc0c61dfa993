"""Typed, frozen experiment configuration and `--set key=value` overrides.

A recipe's `config()` returns a `Config`; every hyperparameter literal lives
there with a tag naming where it comes from in the paper. `override(cfg,
["optim.lr=1e-4", "loss.weights.l1=10"])` returns a new config: unknown keys
are errors that list the valid ones, values are coerced to the field's type.
The resolved config is written into the run directory as `config.json` and
read back with `from_dict`.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any


class ConfigError(ValueError):
    """A bad `--set` override or config file."""


#: Valid `DataConfig.eval_split` values.
EVAL_SPLITS = ("auto", "test", "val")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where pairs come from and how they are augmented.

    `path` empty means: the embedded demo data set. `direction` AtoB maps the
    left/A image to the right/B image. `load_size` -> random crop `crop_size`
    + random horizontal flip at training time (pix2pix "resize_and_crop");
    evaluation resizes straight to `crop_size` with no jitter.

    `task`: `paired` reads (x, y) pairs; `superres4x` and `inpainting` read
    single images (`path` is a folder of images, with or without
    train/val/test sub-folders) and make x from each augmented image
    (`tfi2i.data.degrade`). `path` (and `eval_path`) may also name a
    TensorFlow Datasets builder: `tfds:NAME[/CONFIG][:VERSION][:SPLIT]`, e.g.
    `tfds:celeb_a`, `tfds:celeb_a_hq/128:train`, `tfds:cityscapes`
    (`tfi2i.data.tfds_sources`).

    `num_train`: 0 trains on every training example; N > 0 on N of them,
    drawn once uniformly without replacement with `numpy.random.default_rng(0)`
    over the source's order and kept in that order (`tfi2i.data.sources.Subset`);
    N at or above the split's size means all of them. `eval_split` chooses the
    default evaluation split when `eval_path` is empty: `auto` the `val/`
    folder (TFDS: `validation`), else `test/`; `test` the `test/` folder, else
    `val/`; `val` the `val/` folder only (an error when there is none).
    Without either split the training examples are evaluated, with a warning.
    """

    path: str = ""
    layout: str = "auto"  # auto | side_by_side | two_folders
    direction: str = "AtoB"
    eval_path: str = ""  # empty: the split eval_split names (<path>/val, <path>/test), else the training pairs
    eval_split: str = "auto"  # auto: val/ else test/ | test: test/ else val/ | val: val/ only (when eval_path is empty)
    num_train: int = 0  # 0: every training example; N > 0: N of them, drawn once with seed 0 (see above)
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    batch_size: int = 1
    pyramid_levels: int = 0  # > 0 adds per-level resized x/y (PAN, MSG U-Net)
    num_samples: int = 4  # fixed evaluation pairs shown in the sample grids
    validate: bool = True
    task: str = "paired"  # paired | superres4x | inpainting (pairs made from single images)
    sr_factor: int = 4  # superres4x: bicubic down/up scale; crop_size must be divisible by it
    hole_size: int = 0  # inpainting: side of the centred square hole; 0 -> crop_size // 2
    tfds_data_dir: str = ""  # tfds: paths: where prepared data sets live; empty: TFDS' default
    tfds_manual_dir: str = ""  # tfds: paths: manually downloaded files (cityscapes zips); prepared on first use

    def __post_init__(self):
        if self.eval_split not in EVAL_SPLITS:
            raise ConfigError(f"data.eval_split must be one of {', '.join(EVAL_SPLITS)}, got {self.eval_split!r} "
                              "(auto: val/ else test/; test: test/ else val/; val: val/ only)")
        if isinstance(self.num_train, bool) or not isinstance(self.num_train, int) or self.num_train < 0:
            raise ConfigError(f"data.num_train must be an integer >= 0 (0: every training example), "
                              f"got {self.num_train!r}")


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    name: str = "unet_256"  # unet_128 (7 downsamplings) | unet_256 (8) | unet_<d>
    ngf: int = 64
    norm: str = "batch"  # batch | instance | none
    dropout: float = 0.5
    input_channels: int = 3
    output_channels: int = 3


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig:
    name: str = "patchgan"
    ndf: int = 64
    n_layers: int = 3  # 3 -> 70x70 receptive field
    norm: str = "batch"
    conditional: bool = True  # D sees the input x too (pix2pix); false: D judges the output alone (PAN ablation)


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Adversarial mode and the weight of every named loss term.

    A weight of 0 turns a term off. Generator terms and discriminator terms
    share one dictionary; each key is also the metric and TensorBoard tag.
    """

    gan_mode: str = "vanilla"  # vanilla | lsgan | hinge
    weights: dict = dataclasses.field(default_factory=dict)
    feature_weights: list = dataclasses.field(default_factory=list)  # per-D-layer beta_l of a feature loss (PAN Eq. 8)


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    n_epochs: int = 100  # constant learning rate
    n_epochs_decay: int = 100  # then linear decay towards 0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    steps: int = 0  # total steps; 0 -> epochs * steps_per_epoch
    epochs: int = 0  # total epochs; 0 -> optim.n_epochs + optim.n_epochs_decay
    seed: int = 0
    deterministic: bool = False  # tf.config.experimental.enable_op_determinism
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    jit: str = "auto"  # auto | on | off (XLA for the train step)
    mixed_precision: bool = False
    strategy: str = "default"  # default | mirrored | multiworker
    eval_at_end: bool = True
    export_at_end: bool = True  # SavedModel for TF Serving in <workdir>/export/<version>


@dataclasses.dataclass(frozen=True)
class Config:
    name: str = "pix2pix"
    data: DataConfig = DataConfig()
    generator: GeneratorConfig = GeneratorConfig()
    discriminator: DiscriminatorConfig = DiscriminatorConfig()
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def to_json(cfg) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=True)


def from_dict(cls, values: dict):
    """Builds dataclass `cls` from a (possibly partial) nested dict; unknown keys are errors."""
    kwargs = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"unknown config key '{key}' for {cls.__name__}; valid: {sorted(fields)}")
        ftype = hints[key]
        if dataclasses.is_dataclass(ftype):
            kwargs[key] = from_dict(ftype, value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def _coerce(text: str, current: Any, key: str) -> Any:
    kind = type(current)
    try:
        if kind is bool:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is str:
            return text
        if kind in (tuple, list):
            items = [t for t in text.strip("()[] ").split(",") if t.strip()]
            proto = current[0] if current else ""
            return kind(_coerce(t.strip(), proto, key) for t in items)
    except ValueError:
        raise ConfigError(f"--set {key}={text}: expected a value of type {kind.__name__}") from None
    raise ConfigError(f"--set {key}: fields of type {kind.__name__} cannot be set from the command line")


def override(cfg, assignments) -> Any:
    """Applies `a.b.c=value` assignments to a frozen dataclass tree, returning a new one."""
    for item in assignments:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        key, text = item.split("=", 1)
        cfg = _set(cfg, key.strip().split("."), text.strip(), key.strip())
    return cfg


def _set(node, parts, text, full_key):
    head, rest = parts[0], parts[1:]
    if dataclasses.is_dataclass(node):
        names = [f.name for f in dataclasses.fields(node)]
        if head not in names:
            raise ConfigError(f"unknown config key '{full_key}': '{head}' is not one of {names}")
        current = getattr(node, head)
        if rest:
            return dataclasses.replace(node, **{head: _set(current, rest, text, full_key)})
        if dataclasses.is_dataclass(current) or isinstance(current, dict):
            raise ConfigError(f"'{full_key}' is a group; set one of its fields, e.g. {full_key}.<field>=...")
        return dataclasses.replace(node, **{head: _coerce(text, current, full_key)})
    if isinstance(node, dict):
        if head not in node:
            raise ConfigError(f"unknown config key '{full_key}': '{head}' is not one of {sorted(node)}")
        if rest:
            raise ConfigError(f"unknown config key '{full_key}'")
        current = node[head]
        if isinstance(current, int) and not isinstance(current, bool):
            current = float(current)  # loss weights are real numbers
        out = dict(node)
        out[head] = _coerce(text, current, full_key)
        return out
    raise ConfigError(f"unknown config key '{full_key}'")


def replace(cfg, **sections):
    """`replace(cfg, data=dict(batch_size=4))`: shallow per-section update for recipes' variants."""
    updates = {}
    for name, values in sections.items():
        current = getattr(cfg, name)
        if isinstance(values, dict) and dataclasses.is_dataclass(current):
            updates[name] = dataclasses.replace(current, **values)
        else:
            updates[name] = values
    return dataclasses.replace(cfg, **updates)


__all__ = [
    "Config", "ConfigError", "DataConfig", "EVAL_SPLITS", "GeneratorConfig", "DiscriminatorConfig", "LossConfig",
    "OptimConfig", "TrainConfig", "override", "replace", "to_dict", "to_json", "from_dict",
]
