"""Typed, frozen experiment configuration and `--set key=value` overrides.

A recipe's `config()` returns a `Config`; every hyperparameter literal lives
there with a tag naming where it comes from in the paper. `override(cfg,
["optim.lr=1e-4", "loss.weights.l1=10"])` returns a new config: unknown keys
are errors that list the valid ones, values are coerced to the field's type.
The resolved config is written into the run directory as `config.json` and
read back with `from_dict`.

Numbers that make no sense are refused up front: each section checks its
numeric fields against their `Range` (``data.batch_size >= 1``, ``optim.lr >
0``, ``optim.beta1`` in [0, 1), loss weights >= 0...) whenever it is built,
and `validate` checks the rules between fields of a resolved config (the
training crop fits in the resized image; the sizes the generator sees are
multiples of its `size_multiple`) once every override is applied.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import typing
from typing import Any


class ConfigError(ValueError):
    """A bad `--set` override or config file."""


#: Valid `DataConfig.eval_split` values.
EVAL_SPLITS = ("auto", "test", "val")


# ------------------------------------------------------------------ bounds of numeric fields
@dataclasses.dataclass(frozen=True)
class Range:
    """The valid values of one numeric config field: ``low`` / ``high`` bounds (None: unbounded), each
    inclusive unless ``low_open`` / ``high_open``; ``integer`` asks for an int (a float field takes ints
    too); ``hint`` says what the value means, appended to the error."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    hint: str = ""

    def describe(self) -> str:
        """``an integer >= 1``, ``a number > 0``, ``a number in [0, 1)``..."""
        kind = "an integer" if self.integer else "a number"
        low, high = _number_text(self.low), _number_text(self.high)
        if self.low is not None and self.high is not None:
            return f"{kind} in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {low}"
        if self.high is not None:
            return f"{kind} {'<' if self.high_open else '<='} {high}"
        return kind

    def contains(self, value) -> bool:
        """Whether `value` has the right type and lies in the range (never for bools, NaN or infinities)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True

    def check(self, key: str, value) -> None:
        """Raises `ConfigError` naming `key`, the valid range and `value` when `value` is outside it."""
        if not self.contains(value):
            hint = f" ({self.hint})" if self.hint else ""
            raise ConfigError(f"{key} must be {self.describe()}{hint}, got {value!r}")


def _number_text(value) -> str:
    """A bound as written: ``0``, ``4294967295``, ``0.5``."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def at_least(low, hint: str = "", integer: bool = True) -> Range:
    """`Range` of the values >= `low` (integers unless ``integer=False``)."""
    return Range(low=low, integer=integer, hint=hint)


def _check_fields(section: str, obj, bounds: dict) -> None:
    """Checks every field of dataclass `obj` named in `bounds` (name -> `Range`); keys read ``section.name``."""
    for name, allowed in bounds.items():
        allowed.check(f"{section}.{name}", getattr(obj, name))


def cli_int(low: int, hint: str = ""):
    """An argparse ``type=`` reading an integer >= `low`; anything else is a usage error stating the range.

    >>> cli_int(1)("3")
    3
    """
    allowed = at_least(low, hint)

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {allowed.describe()}, got {text!r}") from None
        if not allowed.contains(value):
            hint_text = f" ({hint})" if hint else ""
            raise argparse.ArgumentTypeError(f"must be {allowed.describe()}{hint_text}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


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

    Sizes: `load_size` and `crop_size` are an int (square) or a (height,
    width) pair (`crop_hw`, `load_hw` give the pair); `validate` refuses a
    crop larger than `load_size` and sizes that are not multiples of the
    generator's `size_multiple`. `resize_or_crop`
    follows pix2pixHD's `--resize_or_crop` (`tfi2i.data.augment`):
    `resize_and_crop` (pix2pix, the default) resizes to `load_size` and
    randomly crops `crop_size` (evaluation: resized to `crop_size`);
    `scale_width` resizes to the width of `load_size` keeping the aspect
    ratio (no crop); `scale_width_and_crop` then randomly crops `crop_size`
    (evaluation: the centre crop); `none` rounds height and width to the
    nearest multiple of `size_multiple`; `crop` (pix2pixHD's ``crop``,
    ``fineSize``) randomly crops `crop_size` at the image's own resolution
    (evaluation: the centre crop). All modes flip at training time when
    `flip`.

    Kinds: `x_kind` / `y_kind` are `rgb` (float32 `[H, W, 3]` in [-1, 1],
    bicubic) or `labels` (1-channel 8/16-bit id PNGs read exactly, nearest
    neighbour only, int32 `[H, W, 1]` ids in `[0, num_classes)`; the model
    one-hot encodes them). `instances` names a sub-folder of the two-folder
    layout holding instance-id maps (nearest only; other layouts: below);
    the batch then holds `instances`, pix2pixHD's boundary map, float32
    `[H, W, 1]` in {0, 1}.
    `instance_ids` (needs `instances`) also puts the raw instance-id map in
    the batch, key `instance_ids`, int32 `[H, W, 1]`, resized (nearest),
    cropped and flipped exactly like the label map (pix2pixHD's feature
    encoder).
    `label_colors` (needs `x_kind=labels`): `cityscapes` renders the label
    map as "segmented RGB" (MSG U-Net's Cityscapes input, what the
    `gtFine_color.png` files hold): the ids are read, checked, resized
    (nearest), cropped and flipped as above, then `x` becomes float32
    `[H, W, 3]` in [-1, 1], the official colour of each labelId
    (`tfi2i.metrics.cityscapes.LABEL_COLORS`; ids outside 0..33 black, like
    `unlabeled`), and its pyramid levels are block means like any rgb side
    (`tfi2i.data.labels.colorize`). The source still gives ids; the kind of
    the batch's `x` is `x_batch_kind` (`rgb`). Empty (the default): ids.

    Layouts (`tfi2i.data.sources.open_source`): `auto` detects them;
    `side_by_side` (pix2pix release), `two_folders` (`A/`, `B/`[, `inst/`],
    matched by stem), `pix2pixhd` (a root of `<split>_label/`, `<split>_img/`,
    `<split>_inst/`, as NVIDIA pix2pixHD's `datasets/cityscapes`) and
    `cityscapes` (the official `leftImg8bit/` + `gtFine/` release). In the
    last two, files match by their name without the Cityscapes suffix
    (`_gtFine_labelIds`, `_leftImg8bit`, `_gtFine_instanceIds`), the label
    maps are always x and the photos y: use `direction=AtoB`,
    `x_kind=labels`, `num_classes=35` (Cityscapes labelIds); any non-empty
    `instances` (e.g. `inst`) reads the layout's instance maps. A split with
    label maps but no photos (pix2pixHD's `test_label/`) is not evaluated:
    `eval_split=auto` skips it with a log line, `eval_split=test` / `val`
    naming it is an error. `celebamask` (`tfi2i.data.celebamask`): the
    CelebAMask-HQ release (`CelebA-HQ-img/`, `CelebAMask-HQ-mask-anno/` part
    masks merged into 19-class label maps, or merged `CelebAMask-HQ-mask/`),
    split into train / val / test by CelebA's partition through the
    release's mapping file; label maps are x: `direction=AtoB`,
    `x_kind=labels`, `num_classes=19`.
    """

    #: The fields holding an int or a (height, width) pair (`--set` parses "H,W").
    SIZE_FIELDS = ("load_size", "crop_size")
    #: Valid `resize_or_crop` values.
    RESIZE_OR_CROP = ("resize_and_crop", "scale_width", "scale_width_and_crop", "none", "crop")
    #: Valid `x_kind` / `y_kind` values.
    KINDS = ("rgb", "labels")
    #: Valid `label_colors` values (empty: the label map stays ids).
    LABEL_PALETTES = ("", "cityscapes")
    #: The valid range of each plain numeric field (the sizes are checked on their own, below).
    BOUNDS = {
        "batch_size": at_least(1, "examples per training step"),
        "pyramid_levels": at_least(0, "0: no pyramid levels"),
        "num_samples": at_least(1, "evaluation pairs in the sample grids"),
        "sr_factor": at_least(1, "superres4x: the down/up scale"),
        "hole_size": at_least(0, "0: crop_size // 2"),
    }

    @property
    def x_batch_kind(self) -> str:
        """The kind of the batch's `x`: `rgb` when `label_colors` renders the label map in colour, else `x_kind`.

        `x_kind` is what the source gives (and `check_source` checks); this is
        what the pipeline hands the model.
        """
        return "rgb" if self.label_colors else self.x_kind

    @property
    def crop_hw(self) -> tuple[int, int]:
        """`crop_size` as (height, width)."""
        return _hw(self.crop_size)

    @property
    def load_hw(self) -> tuple[int, int]:
        """`load_size` as (height, width) (`(0, 0)` for `load_size=0`)."""
        return _hw(self.load_size)

    path: str = ""
    layout: str = "auto"  # auto | side_by_side | two_folders | pix2pixhd | cityscapes | celebamask
    direction: str = "AtoB"
    eval_path: str = ""  # empty: the split eval_split names (<path>/val, <path>/test), else the training pairs
    eval_split: str = "auto"  # auto: val/ else test/ | test: test/ else val/ | val: val/ only (when eval_path is empty)
    num_train: int = 0  # 0: every training example; N > 0: N of them, drawn once with seed 0 (see above)
    load_size: int | tuple[int, int] = 286  # int: square; (height, width); `--set data.load_size=286,572`
    crop_size: int | tuple[int, int] = 256  # int: square; (height, width); `--set data.crop_size=512,1024`
    resize_or_crop: str = "resize_and_crop"  # resize_and_crop | scale_width | scale_width_and_crop | none | crop
    size_multiple: int = 16  # resize_or_crop=none: sizes rounded to a multiple of this (pix2pixHD 2**n_downsample)
    x_kind: str = "rgb"  # rgb | labels (class ids in [0, num_classes), int32 [H, W, 1] in the batch)
    y_kind: str = "rgb"  # rgb | labels
    num_classes: int = 0  # classes of a labels side; ids outside [0, num_classes) stop the run
    label_colors: str = ""  # "" | cityscapes: x_kind=labels batched as its colour map, float32 [H, W, 3] (see above)
    instances: str = ""  # two_folders: sub-folder of instance-id PNGs (e.g. inst); pix2pixhd/cityscapes: non-empty = on
    instance_ids: bool = False  # with instances: also batch key `instance_ids`, the raw int32 instance ids
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
        for name in self.SIZE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, list):  # from JSON
                value = tuple(value)
                object.__setattr__(self, name, value)
            ok = (isinstance(value, int) and not isinstance(value, bool) and value >= 0) or (
                isinstance(value, tuple) and len(value) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value))
            if ok and name == "crop_size" and value == 0:
                ok = False  # load_size=0 means "not resized"; a crop of 0 pixels means nothing
            if not ok:
                low = 1 if name == "crop_size" else 0
                raise ConfigError(f"data.{name} must be an int >= {low} (square) or a (height, width) pair of ints "
                                  f">= 1, e.g. --set data.{name}=512,1024; got {value!r}")
        if self.resize_or_crop not in self.RESIZE_OR_CROP:
            raise ConfigError(f"data.resize_or_crop must be one of {', '.join(self.RESIZE_OR_CROP)}, "
                              f"got {self.resize_or_crop!r}")
        if isinstance(self.size_multiple, bool) or not isinstance(self.size_multiple, int) or self.size_multiple < 1:
            raise ConfigError(f"data.size_multiple must be an integer >= 1, got {self.size_multiple!r}")
        for name in ("x_kind", "y_kind"):
            if getattr(self, name) not in self.KINDS:
                raise ConfigError(f"data.{name} must be one of {', '.join(self.KINDS)}, got {getattr(self, name)!r}")
        # cross-field rules (a labels side needs num_classes, load_size=0 needs resize_and_crop) are checked
        # where the data is opened (tfi2i.data.pipeline.check_config), so that `--set` order does not matter
        if self.label_colors not in self.LABEL_PALETTES:
            raise ConfigError(f"data.label_colors must be one of {', '.join(repr(v) for v in self.LABEL_PALETTES)} "
                              f"(empty: label ids; cityscapes: the official Cityscapes colours), "
                              f"got {self.label_colors!r}")
        if not isinstance(self.instance_ids, bool):
            raise ConfigError(f"data.instance_ids must be true or false, got {self.instance_ids!r}")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 0:
            raise ConfigError(f"data.num_classes must be an integer >= 0, got {self.num_classes!r}")
        _check_fields("data", self, self.BOUNDS)


def _hw(size) -> tuple[int, int]:
    """An int (square) or a (height, width) pair -> (height, width)."""
    if isinstance(size, (tuple, list)):
        return int(size[0]), int(size[1])
    return int(size), int(size)


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    #: The valid range of each numeric field.
    BOUNDS = {
        "ngf": at_least(1, "filters of the first layer"),
        "dropout": Range(0, 1, high_open=True, hint="the rate of dropped units; 0: no dropout"),
        "input_channels": at_least(1),
        "output_channels": at_least(1),
    }

    name: str = "unet_256"  # unet_128 (7 downsamplings) | unet_256 (8) | unet_<d>
    ngf: int = 64
    norm: str = "batch"  # batch | instance | none
    dropout: float = 0.5
    input_channels: int = 3
    output_channels: int = 3

    def __post_init__(self):
        _check_fields("generator", self, self.BOUNDS)


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig:
    #: The valid range of each numeric field.
    BOUNDS = {"ndf": at_least(1, "filters of the first layer"), "n_layers": at_least(0, "3: the 70x70 PatchGAN")}

    name: str = "patchgan"
    ndf: int = 64
    n_layers: int = 3  # 3 -> 70x70 receptive field
    norm: str = "batch"
    conditional: bool = True  # D sees the input x too (pix2pix); false: D judges the output alone (PAN ablation)

    def __post_init__(self):
        _check_fields("discriminator", self, self.BOUNDS)


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Adversarial mode and the weight of every named loss term.

    A weight of 0 turns a term off. Generator terms and discriminator terms
    share one dictionary; each key is also the metric and TensorBoard tag.
    """

    gan_mode: str = "vanilla"  # vanilla | lsgan | hinge
    weights: dict = dataclasses.field(default_factory=dict)
    feature_weights: list = dataclasses.field(default_factory=list)  # per-D-layer beta_l of a feature loss (PAN Eq. 8)

    def __post_init__(self):
        weight = Range(0, hint="a loss weight; 0 turns the term off")
        for name, value in dict(self.weights).items():
            weight.check(f"loss.weights.{name}", value)
        for i, value in enumerate(self.feature_weights):
            weight.check(f"loss.feature_weights[{i}]", value)


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    n_epochs: int = 100  # constant learning rate
    n_epochs_decay: int = 100  # then linear decay towards 0
    # true: a run whose length (train.steps) differs from (n_epochs + n_epochs_decay) epochs gets the schedule
    # scaled onto its length (same proportions; it still decays to 0 at the end); false: per-epoch as the reference
    fit_to_run: bool = False
    adam: str = "torch"  # torch: torch.optim.Adam's update (eps 1e-8 after bias correction) | keras: keras Adam
    # pix2pix: junyanz's linear rule (LR set at the start of each epoch, last epoch at 0) | pix2pixhd: NVIDIA's
    # (lowered by lr / n_epochs_decay after each epoch past n_epochs, last epoch at lr / n_epochs_decay)
    decay_rule: str = "pix2pix"

    #: The valid range of each numeric field.
    BOUNDS = {
        "lr": Range(0, low_open=True, hint="the initial learning rate, e.g. 2e-4"),
        "beta1": Range(0, 1, high_open=True, hint="Adam's first-moment decay, e.g. 0.5"),
        "beta2": Range(0, 1, high_open=True, hint="Adam's second-moment decay, e.g. 0.999"),
        "n_epochs": at_least(0, "epochs at the initial learning rate"),
        "n_epochs_decay": at_least(0, "epochs of linear decay to 0"),
    }

    def __post_init__(self):
        _check_fields("optim", self, self.BOUNDS)
        if self.adam not in ("torch", "keras"):
            raise ConfigError(f"optim.adam must be torch or keras, got {self.adam!r} (torch: the PyTorch references' "
                              "Adam, eps 1e-8 added after bias correction; keras: keras.optimizers.Adam, eps 1e-7)")
        if self.decay_rule not in ("pix2pix", "pix2pixhd"):
            raise ConfigError(f"optim.decay_rule must be pix2pix or pix2pixhd, got {self.decay_rule!r}")


#: Valid `EvalConfig.mode` values.
EVAL_MODES = ("deterministic", "reference")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """How the trained generator runs at test time (evaluation, ``tfi2i translate``, export).

    ``deterministic``: dropout off, batch norm on its moving statistics: one
    answer per input, what a served model gives. ``reference``: the pix2pix
    paper's and reference test script's mode, "we apply dropout at test time,
    and we apply batch normalization using the statistics of the test batch",
    with the dropout masks drawn from ``seed`` so the numbers are reproducible
    (and the model's own statistics and RNG state untouched).
    """

    mode: str = "deterministic"  # deterministic | reference
    seed: int = 0  # reference mode's dropout seed (and a stochastic model's noise seed)

    def __post_init__(self):
        if self.mode not in EVAL_MODES:
            raise ConfigError(f"eval.mode must be one of {', '.join(EVAL_MODES)}, got {self.mode!r} (deterministic: "
                              "dropout off, moving batch-norm statistics; reference: the pix2pix test script's "
                              "dropout on and test-batch statistics)")


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
    # warm start: a run directory of ours whose latest weights initialise this run's layers of the same name and
    # shape before step 1 (pix2pixHD --load_pretrain); ignored once the run has a checkpoint of its own
    init_from: str = ""

    #: The valid range of each numeric field.
    BOUNDS = {
        "steps": at_least(0, "0: epochs x steps per epoch"),
        "epochs": at_least(0, "0: optim.n_epochs + optim.n_epochs_decay"),
        "seed": Range(0, 2**32 - 1, integer=True),
        "log_every": at_least(1, "steps between logged metrics"),
        "sample_every": at_least(1, "steps between sample grids"),
        "checkpoint_every": at_least(1, "steps between checkpoints"),
        "keep_checkpoints": at_least(1, "recent checkpoints kept"),
    }

    def __post_init__(self):
        _check_fields("train", self, self.BOUNDS)


#: The run builder of a config that names none (and of run directories written before builders were recorded).
DEFAULT_BUILDER = "tfi2i.pix2pix:build"
#: config.json's key for the config's own type (a recipe may extend `Config` with sections of its own).
CONFIG_TYPE_KEY = "config_type"


@dataclasses.dataclass(frozen=True)
class Config:
    """A run's whole configuration.

    ``builder`` names the function that builds the run's model from it,
    ``"module:function"`` inside the ``tfi2i`` package (each paper's model
    module, e.g. ``tfi2i.pan:build``), so any run directory can be rebuilt
    from its ``config.json`` alone (`tfi2i.runs.load_model`). A paper that
    needs settings of its own subclasses `Config` (in its model module) with
    extra sections; ``config.json`` records that type too.
    """

    name: str = "pix2pix"
    builder: str = DEFAULT_BUILDER
    data: DataConfig = DataConfig()
    generator: GeneratorConfig = GeneratorConfig()
    discriminator: DiscriminatorConfig = DiscriminatorConfig()
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()


# ------------------------------------------------------------------ cross-field checks of a resolved config
#: The function giving the inference contract (`tfi2i.contract.Contract`) of a builder's model from its config,
#: for builders whose module has no ``contract(cfg)`` of its own (the U-Net models). Any other builder:
#: ``<its module>:contract`` when that exists; none: the size multiple is not checked up front.
CONTRACT_FUNCTIONS = {
    "tfi2i.pix2pix:build": "tfi2i.pix2pix:unet_contract",
    "tfi2i.pan:build": "tfi2i.pix2pix:unet_contract",
    "tfi2i.modified_pix2pix:build": "tfi2i.pix2pix:unet_contract",
}


def size_multiple(cfg) -> tuple[int, str] | None:
    """``(multiple, who)``: the generator's input height and width must be multiples of `multiple`; None: unknown.

    The one place that asks a config what size multiple its model needs: the
    ``multiple`` of the model's contract (``2**depth`` for a U-Net, the
    downsampling factor of pix2pixHD's, MSG U-Net's and GRIT's generators),
    computed from the config without building the model (`CONTRACT_FUNCTIONS`).
    `who` names the network for error messages. None when the builder has no
    contract function or the contract cannot be made from this config (its own
    checks report that when the model is built).
    """
    builder = str(cfg.builder)
    module = builder.partition(":")[0]
    name = CONTRACT_FUNCTIONS.get(builder, f"{module}:contract")
    try:
        contract_fn = import_name(name, "contract function")
        multiple = int(contract_fn(cfg).multiple)
    except (ConfigError, ValueError, TypeError, AttributeError, KeyError):
        return None
    if CONTRACT_FUNCTIONS.get(builder) == "tfi2i.pix2pix:unet_contract":
        depth = multiple.bit_length() - 1
        who = f"{cfg.name}'s {depth}-level U-Net (generator.name={cfg.generator.name})"
    else:
        who = f"{cfg.name}'s generator ({builder})"
    return multiple, who


def _multiples_near(value: int, multiple: int) -> list[int]:
    """The valid sizes nearest to `value`: the multiples of `multiple` just below (if >= 1) and just above it."""
    below = value // multiple * multiple
    return [v for v in (below, below + multiple) if v >= multiple]


def _size_text(hw: tuple[int, int], square: bool) -> str:
    """``256`` or ``256,512`` (the `--set` spelling of a size)."""
    return str(hw[0]) if square else f"{hw[0]},{hw[1]}"


def _check_multiple(key: str, value, multiple: int, who: str, what: str = "") -> None:
    """Raises `ConfigError` when a size (int or (h, w)) is not a multiple of `multiple`, naming the nearest valid."""
    square = not isinstance(value, (tuple, list))
    hw = _hw(value)
    if all(v % multiple == 0 for v in hw):
        return
    if square:
        use = " or ".join(str(v) for v in _multiples_near(hw[0], multiple))
    else:
        nearest = tuple(min(_multiples_near(v, multiple), key=lambda c, v=v: (abs(c - v), -c)) for v in hw)
        use = f"{_size_text(nearest, False)} (height,width)"
    shown = _size_text(hw, square)
    raise ConfigError(f"{key}={shown} must be a multiple of {multiple}{what} for {who}: use {key}={use}, "
                      "or a generator with fewer downsamplings")


def _largest_fit(crop: int, load: int, multiple: int) -> int:
    """The crop side to suggest when `crop` > `load`: the largest multiple of `multiple` <= `load` (else `load`)."""
    if crop <= load:
        return crop
    return load // multiple * multiple if load >= multiple else load


def _check_crop_fits(data, multiple: int = 1) -> None:
    """The training crop must fit in the image it is cut from: ``crop_size <= load_size`` (resize_and_crop), and
    the crop's width <= the load width (scale_width_and_crop, where the height follows each image). The
    suggested crop is a multiple of `multiple` (the generator's size multiple) where one fits."""
    (ch, cw), (lh, lw) = data.crop_hw, data.load_hw
    square = not isinstance(data.crop_size, (tuple, list)) and not isinstance(data.load_size, (tuple, list))
    if data.resize_or_crop == "resize_and_crop" and data.load_size != 0 and (ch > lh or cw > lw):
        fit = (_largest_fit(ch, lh, multiple), _largest_fit(cw, lw, multiple))
        grow = (max(ch, lh), max(cw, lw))
        raise ConfigError(
            f"data.crop_size={_size_text((ch, cw), square)} is larger than data.load_size="
            f"{_size_text((lh, lw), square)}: the random training crop is cut from the image resized to load_size; "
            f"use data.crop_size={_size_text(fit, square)} or smaller, or data.load_size={_size_text(grow, square)} "
            "or larger (pix2pix: load 286, crop 256)")
    if data.resize_or_crop == "scale_width_and_crop" and cw > lw:
        raise ConfigError(
            f"data.crop_size width {cw} is larger than the data.load_size width {lw}: resize_or_crop="
            f"scale_width_and_crop scales every image to that width before cropping; use a crop width of "
            f"{_largest_fit(cw, lw, multiple)} or less, or a data.load_size width >= {cw}")


def _check_size_multiples(cfg, need: tuple[int, str] | None) -> None:
    """The sizes the generator sees must be multiples of its `size_multiple` ``need`` (a U-Net's ``2**depth``)."""
    if need is None or need[0] <= 1:
        return
    multiple, who = need
    data = cfg.data
    if data.resize_or_crop in ("resize_and_crop", "scale_width_and_crop", "crop"):
        _check_multiple("data.crop_size", data.crop_size, multiple, who)
    elif data.resize_or_crop == "scale_width":
        width = data.load_hw[1]
        if width % multiple:
            use = " or ".join(str(v) for v in _multiples_near(width, multiple))
            raise ConfigError(f"data.load_size width {width} must be a multiple of {multiple} for {who} "
                              f"(resize_or_crop=scale_width feeds it images that wide): use a width of {use}")
    elif data.resize_or_crop == "none" and data.size_multiple % multiple:
        use = " or ".join(str(v) for v in _multiples_near(data.size_multiple, multiple))
        raise ConfigError(f"data.size_multiple={data.size_multiple} must be a multiple of {multiple} for {who} "
                          f"(resize_or_crop=none rounds every image to multiples of it): use data.size_multiple={use}")


def _check_run_length(cfg) -> None:
    """A run whose length comes from the epochs of its schedule must have at least one epoch."""
    if cfg.train.steps == 0 and cfg.train.epochs == 0 and cfg.optim.n_epochs + cfg.optim.n_epochs_decay < 1:
        raise ConfigError("optim.n_epochs + optim.n_epochs_decay = 0 with train.steps = train.epochs = 0: the run "
                          "would train 0 steps; set one of them >= 1 (e.g. --steps 1000)")


def validate(cfg):
    """The cross-field checks of a resolved config (each field alone is checked by its section); returns `cfg`.

    Run once every override is applied (`tfi2i.train.resolve_config`), so that
    the order of ``--set`` options does not matter: the training crop fits in
    the resized image, the sizes the generator sees are multiples of its
    `size_multiple`, and the run trains at least one step. The data's own
    cross-field rules are checked when it is opened
    (`tfi2i.data.pipeline.check_config`).

    Raises:
        ConfigError: the first violated rule, with the nearest valid values.
    """
    _check_run_length(cfg)
    need = size_multiple(cfg)
    _check_crop_fits(cfg.data, need[0] if need else 1)
    _check_size_multiples(cfg, need)
    return cfg


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def to_json(cfg) -> str:
    """The config as JSON, with its type under ``config_type`` (read back by `load`)."""
    return json.dumps({**to_dict(cfg), CONFIG_TYPE_KEY: qualified_name(type(cfg))}, indent=2, sort_keys=True)


def qualified_name(obj) -> str:
    """``"module:qualname"`` of a class or function."""
    return f"{obj.__module__}:{obj.__qualname__}"


def import_name(name: str, what: str = "name"):
    """The object ``"module:attr"`` names; only modules inside the ``tfi2i`` package are imported.

    A run's ``config.json`` names its builder and config type this way; the
    restriction keeps a config file from importing arbitrary code.
    """
    import importlib

    module, _, attr = str(name).partition(":")
    if not attr or not (module == "tfi2i" or module.startswith("tfi2i.")):
        raise ConfigError(f"{what} {name!r} must be 'module:name' inside the tfi2i package, e.g. {DEFAULT_BUILDER!r}")
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{what} {name!r} cannot be imported: {exc}") from None
    return obj


def load(values: dict):
    """A config from a parsed ``config.json``: its recorded type (default `Config`), unknown keys are errors."""
    values = dict(values)
    type_name = values.pop(CONFIG_TYPE_KEY, qualified_name(Config))
    cls = import_name(type_name, "config type")
    if not (isinstance(cls, type) and issubclass(cls, Config)):
        raise ConfigError(f"config type {type_name!r} is not a subclass of tfi2i.config.Config")
    return from_dict(cls, values)


def from_dict(cls, values: dict):
    """Builds dataclass `cls` from a (possibly partial) nested dict; unknown keys are errors."""
    kwargs = {}
    if isinstance(cls, type) and issubclass(cls, Config):
        values = {k: v for k, v in values.items() if k != CONFIG_TYPE_KEY}  # `load` reads it to choose `cls`
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


def _coerce_size(text: str, key: str):
    """`--set` value of a size field: "256" -> 256 (square), "512,1024" (or "(512, 1024)") -> (512, 1024), (H, W)."""
    items = [t.strip() for t in text.strip().strip("()[] ").split(",") if t.strip()]
    try:
        values = [int(t) for t in items]
    except ValueError:
        values = []
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return tuple(values)
    raise ConfigError(f"--set {key}={text}: expected an int (a square size) or HEIGHT,WIDTH (e.g. {key}=512,1024)")


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
        if head in getattr(type(node), "SIZE_FIELDS", ()):
            return dataclasses.replace(node, **{head: _coerce_size(text, full_key)})
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
    "Range", "at_least", "cli_int", "size_multiple", "validate", "CONTRACT_FUNCTIONS",
    "Config", "ConfigError", "EvalConfig", "EVAL_MODES", "CONFIG_TYPE_KEY", "DEFAULT_BUILDER", "import_name", "load", "qualified_name", "DataConfig", "EVAL_SPLITS", "GeneratorConfig", "DiscriminatorConfig", "LossConfig",
    "OptimConfig", "TrainConfig", "override", "replace", "to_dict", "to_json", "from_dict",
]
