"""Modified Pix2Pix (Mrudula Y): pix2pix + a reconstruction loss, day -> night and facades labels -> photo.

Mrudula Y, "Modified Pix2Pix Conditional Adversarial Networks for
Image-to-Image Translation" (University at Buffalo). Text:
``shared/papers/modified_pix2pix.md``. No reference code is public; the paper
trained in Google Colab, and ``notebooks/modified_pix2pix_day2night.ipynb``
reproduces this recipe there.

Usage::

    python recipes/modified_pix2pix_day2night.py                         # demo data, a few minutes on 2 CPU cores
    tfi2i download night2day --root datasets
    python recipes/modified_pix2pix_day2night.py --data datasets/night2day                 # the paper's model
    python recipes/modified_pix2pix_day2night.py --data datasets/night2day --variant pix2pix
    python recipes/modified_pix2pix_day2night.py --task facades --data datasets/facades    # Sec. 4, Fig. 3
    python recipes/modified_pix2pix_day2night.py --data datasets/night2day --set data.num_train=0   # all ~18k pairs
    python recipes/modified_pix2pix_day2night.py --variant rec_only --summary

Options of this recipe, next to the common ones (``--data``, ``--workdir``,
``--steps``, ``--set``, ``--resume``, ...; see the README and ``--help``):

* ``--task day2night|facades`` (default ``day2night``): the two experiments of
  Sec. 4. ``day2night``: the pix2pix ``night2day`` release (Transient
  Attributes, Laffont et al. 2014), which stores night left (A) and day right
  (B), so day -> night is ``BtoA``; 600 training images, 100 epochs, batch 3.
  ``facades``: CMP Facades labels -> photo (photo left (A), labels right (B):
  ``BtoA``), 400 images, 200 epochs, batch 1.
* ``--variant NAME`` (default ``modified``), the objectives of the Fig. 2
  ablation (`tfi2i.modified_pix2pix.VARIANT_WEIGHTS`); the variant is part
  of the run name (``runs/modified_pix2pix_<task>[_<variant>]``) and fully
  expressed in the saved loss weights, so ``--resume`` needs no ``--variant``:

  - ``modified``: Eq. 6, lambda_L1 = 1, lambda_rec = 10 (Fig. 2 (c)).
  - ``pix2pix``: original pix2pix objective (adversarial + L1) with this
    paper's lambda_L1 = 1 (Fig. 2 (a), Table 1 "Original Pix2Pix").
  - ``pix2pix_l1_100``: original pix2pix with Isola et al.'s lambda = 100.
  - ``rec_only``: adversarial + reconstruction, no L1 (Fig. 2 (b)).

Config fields this recipe sets (change them with ``--set``):

* ``data.num_train`` (600 for day2night, the paper's count; 400 for facades,
  the whole split): train on that many pairs of the training split, drawn
  once uniformly without replacement with seed 0 over the split's file order
  (`tfi2i.data.sources.Subset`; the count is saved in ``config.json``, so
  ``--resume`` keeps it).
  ``--set data.num_train=N`` picks another count, ``0`` = all pairs.
* ``data.eval_split=test``: the evaluation (``eval.json``, Table 1 metrics)
  runs on the data set's ``test/`` split when it has one, else on ``val/``
  (``--set data.eval_path=DIR`` chooses another folder). The demo run has no
  ``test/`` and evaluates on its ``val/`` pairs.

Table 1 (day -> night; mean over test images; MSE on the [0, 1] scale):

=========================  ===========  ===========  =======
model                      MSE ("per-   PSNR (dB)    SSIM
                           pixel acc.")
=========================  ===========  ===========  =======
Original pix2pix           0.00214      26.77        0.980
Modified pix2pix           0.00269      25.86        0.976
=========================  ===========  ===========  =======

(`PAPER_TABLES` holds the full-precision values the paper prints;
``tfi2i evaluate --workdir ... --paper modified_pix2pix_day2night`` prints
them beside ours.) The numbers are consistent with images on the [0, 1] scale: 10 log10(1 /
0.00214) = 26.7 dB, matching the PSNR column (PSNR with peak 1.0). Our
``eval.json`` reports ``mse``, ``psnr`` and ``ssim`` exactly so
(`tfi2i.metrics`: images mapped from [-1, 1] to [0, 1], PSNR with
``max_val = 1``, SSIM with an 11x11 Gaussian window, per image, then averaged).

Paper <-> code map
------------------
* Eq. 1, ``L_adv = E log D(x, y) + E log(1 - D(x, G(x, z)))``, G side ->
  ``tfi2i.losses.g_adversarial_loss`` (term ``g_gan``, weight 1 in Eq. 6).
* Eq. 2, ``L_L1 = E ||y - G(x, z)||_1`` -> ``tfi2i.losses.l1_loss`` (term
  ``l1``).
* Eq. 3, ``L_rec = E ||x - G(G(x, z), z')||_1``, "the same generator is used
  twice" -> ``ModifiedPix2Pix.generator_terms``: ``self.generator({"x": y_fake},
  training=True)`` on the tape, no stop-gradient (both applications get the
  gradient), its own dropout mask (z') -> ``reconstruction_loss`` (term
  ``rec``).
* Eq. 5, ``L_D = -L_adv`` -> ``tfi2i.losses.d_real_loss`` + ``d_fake_loss``
  (terms ``d_real``, ``d_fake``, weight 1 each: not halved).
* Eq. 6, ``L_G = L_adv + lambda_L1 L_L1 + lambda_rec L_rec``, lambda_L1 = 1,
  lambda_rec = 10 (Sec. 3.1) -> ``loss.weights`` = `tfi2i.modified_pix2pix.PAPER_WEIGHTS`;
  the sum is ``PairedGAN.weighted_sum``.
* Sec. 3.1 noise z "taking noise z as input" -> dropout 0.5 in the U-Net (as
  pix2pix): ``generator.dropout = 0.5``.
* Sec. 3.2.1 U-Net with skips, Sec. 3.2.2 PatchGAN ("same as ... Pix2Pix")
  -> ``unet_256`` (batch norm, ngf 64) and the 70x70 PatchGAN (``n_layers=3``,
  batch norm, ndf 64), weights N(0, 0.02).
* Sec. 4 Training Details, day -> night: "600 images, 100 epochs and batch size
  of 3" -> ``data.num_train = 600``, ``optim.n_epochs +
  n_epochs_decay = 50 + 50``, ``data.batch_size = 3``.
* Sec. 4, labels -> photo on CMP Facades: "400 images, 200 epochs and batch size
  of 1" -> ``--task facades``: ``data.num_train = 400`` (the whole split),
  100 + 100 epochs, batch 1.
* Sec. 4.1 metrics: "per pixel accuracy" = MSE of pixel values, PSNR, SSIM,
  each averaged over the generated test images -> ``data.eval_split = test``;
  ``eval.json`` keys ``mse``, ``psnr``, ``ssim`` (`tfi2i.model_eval.evaluate_model`).
* Sec. 4.2 / Fig. 2 ablation -> ``--variant``.

Deviations and choices
----------------------
* Adversarial G term: Eq. 6 writes the minimax ``log(1 - D(x, G(x, z)))``; we
  use the non-saturating ``-log D(x, G(x, z))`` of pix2pix's reference code
  and the TensorFlow pix2pix tutorial the paper's Colab setting suggests.
* D objective weights 1 + 1 (Eq. 5 literally); the pix2pix reference halves
  it. With Adam a constant factor on D's loss barely changes the updates.
  Every variant uses the same D objective, so the ablation isolates G's terms.
* ``rec`` with weight 0 is not computed (no second G pass, so batch-norm
  statistics move once per step as in pix2pix); ``l1`` is always computed
  and logged, also in ``rec_only`` where its weight is 0.
* The second pass's dropout mask z' is independent of the first (Keras'
  ``SeedGenerator`` advances on every call); batch norm in the second pass uses
  the statistics of ``G(x)`` and updates the running averages a second time.
* Learning-rate schedule: not given; pix2pix's (constant for half the epochs,
  linear decay to 0 over the other half): day2night 50 + 50, facades 100 + 100.
  Adam lr 2e-4, beta1 0.5, beta2 0.999 (pix2pix; not in the paper).
* Data jitter not given: pix2pix's resize to 286 (bicubic), random 256 crop,
  horizontal flip, for both tasks.
* Which 600 of the night2day training pairs (about 18k): not given; 600 drawn
  uniformly without replacement with seed 0 (``data.num_train``), spread over
  the release's webcams rather than its first files (which come from few
  scenes). The whole split is listed at start-up; only the drawn pairs are
  decoded by ``data.validate`` (once per process: an unchanged folder is not
  decoded again, e.g. by the notebook's second run) and trained on.
* Evaluation split: the paper says "test images"; we use the release's
  ``test/`` split (``data.eval_split = test``; night2day: about 2.3k pairs;
  facades: 106). Evaluation runs
  G in inference mode by default (``eval.mode = deterministic``: no dropout,
  batch-norm running statistics), as every recipe here. The paper does not
  say; the TensorFlow pix2pix tutorial, a common Colab starting point, runs G
  with ``training=True`` at test time, which changes the numbers:
  ``--set eval.mode=reference`` gives that (dropout on, test-batch
  statistics, seeded by ``eval.seed``).
* Metric details the paper omits (colour vs grey SSIM, window): SSIM on RGB,
  11x11 Gaussian (sigma 1.5), as scikit-image with ``gaussian_weights=True``;
  MSE and PSNR on [0, 1] RGB (see Table 1 above for why that scale).
* Demo run (no ``--data``): the embedded demo pairs (labels -> photo,
  ``AtoB``), all of them (``data.num_train = 0``), batch 1, 60 steps, so it
  finishes in minutes on CPU.
* Batch-norm layers are Keras ``synchronized`` (identical to plain BN on one device).
"""

from __future__ import annotations

from tfi2i import train
from tfi2i.config import Config, DataConfig, DiscriminatorConfig, GeneratorConfig, LossConfig, OptimConfig, TrainConfig, replace
from tfi2i.modified_pix2pix import VARIANTS, build, variant_weights  # noqa: F401  (build: the run builder)

TASKS = ("day2night", "facades")
#: Sec. 4 Training Details: training images per task (facades: the whole release split) -> data.num_train.
TRAIN_IMAGES = {"day2night": 600, "facades": 400}
EVAL_SPLIT = "test"  # Sec. 4.1: metrics over the test images -> data.eval_split

#: Table 1 as data, in the paper's layout (one column per model, one row per metric; values as printed):
#: ``tfi2i evaluate ... --paper modified_pix2pix_day2night`` prints it beside our runs in report.md
#: (`tfi2i.evaluate.format_paper_tables`). ``rows``: the config name of our run -> (the paper's column, values).
PAPER_TABLES = {
    "Table 1: day -> night, mean over the test images ([0, 1] scale)": {
        "corner": "cGAN Models → Metrics ↓",
        "columns": {"mse": "Per-Pixel Accuracy", "psnr": "PSNR", "ssim": "SSIM index"},
        "rows": {
            "modified_pix2pix_day2night_pix2pix": ("Original Pix2Pix cGAN", (0.002144413411081063, 26.766485, 0.97995055)),
            "modified_pix2pix_day2night": ("Modified Pix2Pix cGAN", (0.0026935997096859295, 25.862993, 0.9762408)),
        },
        "transpose": True,
        "note": "The paper's \"per-pixel accuracy\" is the MSE on the [0, 1] scale (see the recipe's docstring).",
    },
}


def config(task: str = "day2night", variant: str = "modified") -> Config:
    """The paper's settings for `task` (Sec. 4) with the objective of `variant` (Fig. 2)."""
    if task not in TASKS:
        raise ValueError(f"unknown task '{task}'; valid: {', '.join(TASKS)}")
    day2night = task == "day2night"
    return Config(
        name=f"modified_pix2pix_{task}" + ("" if variant == "modified" else f"_{variant}"),
        builder="tfi2i.modified_pix2pix:build",  # the model module (tfi2i/modified_pix2pix.py)
        data=DataConfig(
            # night2day release: night (A) left, day (B) right; facades: photo (A) left, labels (B) right
            direction="BtoA",
            load_size=286, crop_size=256, flip=True,  # pix2pix jitter (the paper does not say)
            batch_size=3 if day2night else 1,  # Sec. 4: "batch size of 3" (day -> night), "batch size of 1" (facades)
            num_train=TRAIN_IMAGES[task],  # Sec. 4: "600 images" / "400 images", drawn with seed 0 (our choice)
            eval_split=EVAL_SPLIT,  # Sec. 4.1: the test images
        ),
        generator=GeneratorConfig(name="unet_256", ngf=64, norm="batch", dropout=0.5),  # Sec. 3.2.1; z = dropout
        discriminator=DiscriminatorConfig(ndf=64, n_layers=3, norm="batch"),  # Sec. 3.2.2: 70x70 PatchGAN
        loss=LossConfig(gan_mode="vanilla", weights=variant_weights(variant)),  # Eqs. 5-6: lambda_L1 = 1, lambda_rec = 10
        optim=OptimConfig(
            lr=2e-4, beta1=0.5, beta2=0.999,  # pix2pix (the paper does not say)
            # Sec. 4: 100 epochs (day -> night), 200 epochs (facades); half constant, half linear decay (pix2pix)
            n_epochs=50 if day2night else 100, n_epochs_decay=50 if day2night else 100,
        ),
        train=TrainConfig(log_every=50, sample_every=2000, checkpoint_every=2000),
    )


def demo_config(cfg: Config) -> Config:
    """No --data: the embedded demo pairs (labels left, photo right), a short run at batch 1."""
    return replace(
        cfg,
        name=cfg.name + "_demo",
        data={"direction": "AtoB", "batch_size": 1, "num_train": 0},
        train={"steps": 60, "log_every": 5, "sample_every": 20, "checkpoint_every": 20},
    )


def smoke_config(task: str = "day2night", variant: str = "modified") -> Config:
    """A tiny network on 64x64 crops for tests (one dropout block): the same code path, seconds per run; no
    SavedModel at the end (the tests that need one export explicitly)."""
    cfg = demo_config(config(task, variant))
    return replace(
        cfg,
        data={"load_size": 72, "crop_size": 64, "num_samples": 2},
        generator={"name": "unet_6", "ngf": 4},
        discriminator={"ndf": 4, "n_layers": 2},
        train={"steps": 4, "log_every": 1, "sample_every": 2, "checkpoint_every": 2,
               "export_at_end": False},
    )


# ------------------------------------------------------------------ command line
def add_arguments(parser):
    """The recipe's flags: ``--task`` and ``--variant``."""
    parser.add_argument("--task", choices=TASKS, default="day2night",
                        help="day2night (night2day release, BtoA, 600 pairs) or facades (labels -> photo, 400 pairs)")
    parser.add_argument("--variant", choices=VARIANTS, default="modified",
                        help="the objective of the Fig. 2 ablation (see above); part of the run name")


def main(argv=None):
    """``train.main`` with ``--task`` and ``--variant``."""
    return train.main(lambda args: config(args.task, args.variant), argv=argv, description=__doc__,
                      demo_config_fn=demo_config, add_arguments=add_arguments)


if __name__ == "__main__":
    raise SystemExit(main())
