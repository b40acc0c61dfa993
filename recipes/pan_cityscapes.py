"""PAN with a feature pyramid on Cityscapes, labels -> photo, and the Table 1 variants.

Z. Li, M. Wu, J. Zheng, H. Yu, "Perceptual Adversarial Networks With a
Feature Pyramid for Image Translation", IEEE Computer Graphics and
Applications, 2019 (NOT verified: neither text names the venue, our searches
found no record to check it against, and ``shared/papers/README.md`` says
IEEE MultiMedia; the one citation used throughout until a record settles it).
Text: ``shared/papers/pan_feature_pyramid.md`` (journal version:
``pan_feature_pyramid_journal_version.txt``). No reference code is public.

Usage::

    python recipes/pan_cityscapes.py                                   # demo data, a few minutes on 2 CPU cores
    python recipes/pan_cityscapes.py --data datasets/cityscapes --workdir runs/pan_cityscapes
    python recipes/pan_cityscapes.py --variant no_low --data datasets/cityscapes   # Table 1 ablations
    python recipes/pan_cityscapes.py --task superres4x --data coco/train2017 --set5 sr_set5   # Table 2 (Set5: our choice)
    python recipes/pan_cityscapes.py --task inpainting --data tfds:celeb_a --variant context_encoder  # Fig. 4
    python recipes/pan_cityscapes.py --variant cnn --summary

``--task`` picks the experiment and ``--variant`` the objective (default
``complete``); both are part of the run's name (default work directory
``runs/pan_<task>[_<variant>]``) and fully expressed in the saved config
(data task, loss weights, ``discriminator.conditional``), so ``--resume``
needs neither.

Tasks (one model definition, `build`):

* ``cityscapes`` (default): labels -> photo on the pix2pix 256x256 release
  (``BtoA``), 100 + 100 epochs (pix2pix's Cityscapes schedule).
* ``superres4x``: a folder of high-resolution photos (the paper: MS-COCO);
  ``y`` = a random 256x256 crop at the photo's own resolution, ``x`` = ``y``
  bicubic-downsampled x4 and bicubic-upsampled back
  (`tfi2i.data.degrade.superres_input`). After training, ``--set5 DIR``
  runs our Table 2 protocol (`tfi2i.metrics.superres`): PSNR / SSIM of the
  model and of bicubic upsampling on the full-size images, written to
  ``<workdir>/superres_set5.json``. Table 2 (PSNR / SSIM): complete
  23.85 dB / 0.8563, without high 20.34 / 0.8279, without low 19.82 / 0.8097.
  The paper does not name its test images (neither text does); Set5 is our
  choice, the usual x4 benchmark.
* ``inpainting``: aligned faces (CelebA: ``--data tfds:celeb_a`` or a folder),
  256x256 with a centred 128x128 hole filled with 0 (mid-grey), 5 epochs
  ("trained on the aligned faces training set for 5 epochs").

Variants:

* ``complete``: Eqs. 6-10, alpha = (1, 5, 1, 100).
* ``no_conditioning``: Eq. 6 without ``P_k(x)`` (``discriminator.conditional=false``).
* ``no_low``: alpha_2 = 0 (``g_low``, ``d_low_*`` = 0): "without Eq. 7", the
  "high-frequency pyramid only" model of Table 2 / Fig. 4 (e).
* ``no_high``: alpha_1 = 0 and alpha_3 = 0 (``g_high``, ``d_high_*``,
  ``perceptual`` = 0): "without Eq. 6", Fig. 4 (d). The perceptual term is
  defined on the features of the high-frequency discriminators, so without
  them it is switched off too (see "Deviations and choices").
* ``cnn``: perceptual and both adversarial weights 0: L1 only (the paper's "CNN" baseline).
* ``pix2pix``: the plain pix2pix objective (cGAN on (x, y) + 100 L1) with the
  same generator and one conditional 70x70 PatchGAN, both with instance norm.
* ``context_encoder`` (inpainting only): Pathak et al.'s objective with the
  same networks ("implements objectives of all the baselines with the same
  networks architecture"): 0.999 x L2 on the hole + 0.001 x adversarial,
  one unconditional PatchGAN (`tfi2i.context_encoder`).

Table 1 (FCN scores, Cityscapes labels -> photo; per-pixel acc. / per-class
acc. / class IoU): without conditional adversarial loss (``no_conditioning``)
0.42 / 0.10 / 0.07; without Eq. 7 (low) 0.71 / 0.25 / 0.18; without Eq. 6
(high) 0.45 / 0.15 / 0.11; complete 0.74 / 0.26 / 0.19 (both texts print all
four rows). Measure ours with ``tfi2i evaluate --segmenter MODEL --paper
pan_cityscapes``: `PAPER_TABLES` (Tables 1 and 2 as data) is printed beside
our rows in ``report.md``, in the paper's layout.

Paper <-> code map
------------------
* Eq. 2, ``h_k = p_k - u(p_{k+1})``; ``d``: blur + nearest halving, ``u``:
  bicubic doubling ("Nearest neighbor interpolation and the bicubic
  interpolation are adopted for downsampling and upsampling") ->
  ``tfi2i.pyramid`` (`smooth_pyramid`, `high_frequency`); three levels
  ("three levels for each are enough") -> ``PAN.levels = 3``.
* Eq. 6, high-frequency conditional adversarial loss, one ``D_k`` per level,
  "identical network architecture" -> ``PAN.d_high[k]`` on
  ``concat(p_k(x), h_k(.))`` (6 channels), terms ``g_high`` / ``d_high_real``
  / ``d_high_fake`` (sums over k).
* Eq. 7, low-frequency unconditional adversarial loss -> ``PAN.d_low[k]`` on
  ``p_{k+1}(y)`` vs ``p_{k+1}(G(x))`` (3 channels), terms ``g_low`` /
  ``d_low_real`` / ``d_low_fake``.
* Eq. 8, perceptual loss over "all the ReLU activation layers of the
  conditional discriminator", each divided by ``C_l H_l W_l``, weighted by
  ``beta_l`` -> ``tfi2i.pan.perceptual_loss`` (the shared
  ``tfi2i.losses.feature_matching_loss`` with squared distance) on the
  LeakyReLU outputs of every ``D_high[k]`` (the ``features`` each D returns
  beside its logits), ``loss.feature_weights`` (one beta per layer), term
  ``perceptual``.
* Eq. 9, ``L_pix = E ||G(x) - y||_1`` -> ``losses.l1_loss`` (term ``l1``).
* Eq. 10, alpha_1..4 = 1, 5, 1, 100 -> ``loss.weights`` ``g_high = 1``,
  ``g_low = 5``, ``perceptual = 1``, ``l1 = 100``.
* Implementation details: pix2pix networks -> U-Net-256 generator (dropout
  0.5 as the noise, "dropout is used as noise"), 70x70 PatchGAN
  (``n_layers = 3``); "instance normalization for generators" ->
  ``generator.norm = "instance"``.
* pix2pix training (the paper follows pix2pix for training details): Adam
  lr 2e-4, beta1 0.5, batch 1, 286 -> 256 jitter + mirroring, 100 + 100
  epochs with linear decay, weights N(0, 0.02); D objective halved (0.5 per
  real/fake term).

Deviations and choices
----------------------
* Eq. 6: the fake term judges the generated image, ``D_k(P_k(x),
  h_k(G(x)))``, as the journal text prints it; the other extraction
  (``pan_feature_pyramid.md``) shows ``h_k(y)`` in both expectations, an
  extraction error.
* ``P_k(x)`` ("downsampled image of 1/k scale") is taken from the same smooth
  pyramid of x (``p_k(x)``, ``p_0(x) = x``), so it has the size of ``h_k``.
* Eq. 7 levels: ``p_1 .. p_3``, the blurred low-pass images that pair with
  ``h_0 .. h_2`` (``p_k = h_k + u(p_{k+1})``). ``p_0`` would be the full image,
  whose adversarial loss would duplicate what the high-frequency term judges.
* ``beta_l``: not given in the paper; default 1.0 for each of the four
  LeakyReLU layers (``loss.feature_weights``). With several ``D_high[k]`` the
  perceptual loss is summed over k. The real pair's features are constants
  (stop-gradient); the term only updates G.
* Discriminator normalization: the paper names instance norm only for the
  generator; we also use instance norm in the PatchGANs (pix2pix's
  ``--norm instance`` applies to both), documented choice. The pix2pix
  variant uses the same (instance-norm) networks.
* Blur: 5x5 binomial ``[1,4,6,4,1]/16`` with reflect padding (the paper names
  no kernel; Burt-Adelson, its ref. 15). Upsampling equals
  ``tf.image.resize(bicubic)``.
* Adversarial loss: vanilla (non-saturating for G) as pix2pix; each
  adversarial term sums the three levels (Eqs. 6, 7 sum over k).
* ``no_high`` also sets the perceptual weight to 0. Eq. 8's features are
  the LeakyReLU activations of the conditional (high-frequency)
  discriminators; without Eq. 6 those are never trained, and a perceptual term
  on their random features would still steer G through the high-frequency
  pyramid (``h_k(G(x))`` vs ``h_k(y)``), which is what the ablation removes.
  The paper does not say how it handled this; without those discriminators
  the term has no meaning, so this row is Eq. 7 + Eq. 9 only.
* Evaluation and demo settings as in ``recipes/pix2pix_facades.py``
  (``eval.mode = deterministic``, no test-time dropout: the paper does not
  say, ``--set eval.mode=reference`` gives pix2pix's test mode with instance
  norm unaffected; demo data AtoB, 60 steps; the single-image tasks use the demo
  set's photos). Sample grids show x | G(x) | y | h_k(G(x)) | h_k(y) for
  k = 0, 1, 2 (``4 h_k``, mid-grey = 0): what each ``D_high[k]`` judges.
* The pyramids of x, y and G(x) are built once per training step
  (`PAN.prepare`) and shared by the D and G objectives, inside the step (not
  in tf.data) because G(x)'s pyramid must be and x's / y's cost ~1% of it.
* Super-resolution: the paper trains on MS-COCO without giving crop size,
  epochs or the evaluation convention. Ours: 256x256 crops at the photo's own
  resolution (``data.load_size=0``: no resizing, which would change what
  "high resolution" means), 1 + 1 epochs (our choice), the same U-Net-256
  (the "same networks" rule); the generator sees the bicubic-upsampled image
  (the issue's "brought back to full size before the generator"). The test
  set is ours: neither text names one; we use Set5 (the usual x4
  benchmark), evaluated at full size (mod-crop 4), in RGB and on the Y
  channel with a 4-pixel shave, both beside bicubic, because the paper does
  not say which.
* Inpainting: the paper gives neither image nor hole size. Ours: 256x256
  (the U-Net-256 of every other task), the 178x218 aligned faces resized to
  a square (aspect 0.82 -> 1, the same for every model), a centred 128x128
  hole (a quarter of the image, Context Encoder's ratio of 64 in 128) filled
  with 0; losses on the whole image (PAN is an image-to-image model; the
  Context Encoder baseline's L2 is on the hole only, as theirs); no
  compositing of the known pixels into the output. 5 epochs at constant lr.
* Context Encoder baseline: weights 0.999 / 0.001 and an unconditional D as
  in Pathak et al.; D terms 1.0 each (their code sums real and fake).
"""

import json
import logging
import os

from tfi2i import train
from tfi2i.config import (
    Config, DataConfig, DiscriminatorConfig, GeneratorConfig, LossConfig, OptimConfig, TrainConfig, replace,
)
from tfi2i.context_encoder import CONTEXT_ENCODER_WEIGHTS
from tfi2i.pan import LEVELS, build  # noqa: F401  (build: the run builder, recorded in config.json)

log = logging.getLogger("tfi2i")

#: Eq. 10 alpha = (1, 5, 1, 100) and pix2pix's halved D objective.
PAN_WEIGHTS = {
    "g_high": 1.0, "g_low": 5.0, "perceptual": 1.0, "l1": 100.0,
    "d_high_real": 0.5, "d_high_fake": 0.5, "d_low_real": 0.5, "d_low_fake": 0.5,
}
PIX2PIX_WEIGHTS = {"g_gan": 1.0, "l1": 100.0, "d_real": 0.5, "d_fake": 0.5}

TASKS = ("cityscapes", "superres4x", "inpainting")
VARIANTS = ("complete", "no_conditioning", "no_low", "no_high", "cnn", "pix2pix", "context_encoder")

#: The paper's tables as data, in its layout: ``tfi2i evaluate ... --paper pan_cityscapes`` prints each beside
#: our rows in report.md (`tfi2i.evaluate.format_paper_tables`). ``columns``: our metric key -> the paper's
#: header; ``rows``: the config name of our run (``config(variant, task).name``) -> (the paper's row, values);
#: ``transpose``: the paper prints one column per model.
PAPER_TABLES = {
    "Table 1: FCN scores, Cityscapes labels -> photo": {
        "corner": "Loss",
        "columns": {"fcn_pixel_acc": "Per-pixel acc.", "fcn_class_acc": "Per-class acc.", "fcn_class_iou": "Class IOU"},
        "rows": {
            "pan_cityscapes_no_conditioning": ("without conditional adversarial loss", (0.42, 0.10, 0.07)),
            "pan_cityscapes_no_low": ("without adversarial loss on low-frequency feature maps", (0.71, 0.25, 0.18)),
            "pan_cityscapes_no_high": ("without adversarial loss on high-frequency feature maps", (0.45, 0.15, 0.11)),
            "pan_cityscapes": ("completed model", (0.74, 0.26, 0.19)),
        },
        "decimals": 2,
    },
    "Table 2: ablation of the feature pyramids, x4 super-resolution": {
        "corner": "",
        "columns": {"psnr": "PSNR (dB)", "ssim": "SSIM"},
        "rows": {
            "pan_superres4x_no_high": ("without high-frequency pyramid", (20.34, 0.8279)),
            "pan_superres4x_no_low": ("without low-frequency pyramid", (19.82, 0.8097)),
            "pan_superres4x": ("Completed model", (23.85, 0.8563)),
        },
        "decimals": (2, 4),
        "transpose": True,
        "note": "The paper names no test set; ours is Set5 (`--set5`, `<workdir>/superres_set5.json`). A "
                "`--workdir` row here is scored on the run's evaluation split, not on Set5.",
    },
}


def _by_variant(table, base):
    rows = PAPER_TABLES[table]["rows"]
    return {name[len(base) + 1:] or "complete": values for name, (_, values) in rows.items()}


#: The same numbers by variant: Table 1 (per-pixel acc., per-class acc., class IoU) and Table 2 (PSNR, SSIM).
PAPER_TABLE1 = _by_variant("Table 1: FCN scores, Cityscapes labels -> photo", "pan_cityscapes")
PAPER_TABLE2 = _by_variant("Table 2: ablation of the feature pyramids, x4 super-resolution", "pan_superres4x")


def variant_overrides(variant, task="cityscapes"):
    """(loss weights, discriminator.conditional) of a variant."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant '{variant}'; valid: {', '.join(VARIANTS)}")
    if variant == "pix2pix":
        return dict(PIX2PIX_WEIGHTS), True
    if variant == "context_encoder":
        if task != "inpainting":
            raise ValueError("variant 'context_encoder' is an inpainting baseline: use it with --task inpainting")
        return dict(CONTEXT_ENCODER_WEIGHTS), False
    weights = dict(PAN_WEIGHTS)
    if variant == "no_low":
        weights.update(g_low=0.0, d_low_real=0.0, d_low_fake=0.0)
    elif variant == "no_high":  # Eq. 8's features are those of the D_high: without Eq. 6 the term goes too
        weights.update(g_high=0.0, d_high_real=0.0, d_high_fake=0.0, perceptual=0.0)
    elif variant == "cnn":
        weights = {k: (100.0 if k == "l1" else 0.0) for k in weights}
    return weights, variant != "no_conditioning"


def config(variant="complete", task="cityscapes") -> Config:
    """PAN on one of the paper's tasks (default: Cityscapes labels -> photo), the paper's settings."""
    if task not in TASKS:
        raise ValueError(f"unknown task '{task}'; valid: {', '.join(TASKS)}")
    weights, conditional = variant_overrides(variant, task)
    base = {"cityscapes": "pan_cityscapes", "superres4x": "pan_superres4x", "inpainting": "pan_inpainting"}[task]
    data = {
        # cityscapes release: photo (A) left, labels (B) right; pix2pix jitter 286 -> 256 + mirroring
        "cityscapes": DataConfig(direction="BtoA", load_size=286, crop_size=256, flip=True, batch_size=1),
        # single HR photos (the paper: MS-COCO); random 256 crops at the photo's own resolution, x = bicubic x4 down/up
        "superres4x": DataConfig(task="superres4x", sr_factor=4, load_size=0, crop_size=256, flip=True, batch_size=1),
        # aligned faces (CelebA 178x218; tfds:celeb_a) resized to 256x256, a centred 128x128 hole
        "inpainting": DataConfig(task="inpainting", hole_size=128, load_size=256, crop_size=256, flip=True,
                                 batch_size=1),
    }[task]
    epochs = {"cityscapes": (100, 100), "superres4x": (1, 1), "inpainting": (5, 0)}[task]
    return Config(
        name=base + ("" if variant == "complete" else f"_{variant}"),
        builder="tfi2i.pan:build",  # the model module (tfi2i/pan.py)
        data=data,
        generator=GeneratorConfig(name="unet_256", ngf=64, norm="instance", dropout=0.5),  # "instance normalization for generators"
        discriminator=DiscriminatorConfig(ndf=64, n_layers=3, norm="instance", conditional=conditional),  # 70x70 PatchGAN
        loss=LossConfig(gan_mode="vanilla", weights=weights, feature_weights=[1.0] * 4),  # Eq. 10; beta_l = 1 (our choice)
        optim=OptimConfig(lr=2e-4, beta1=0.5, beta2=0.999, n_epochs=epochs[0], n_epochs_decay=epochs[1]),
        train=TrainConfig(log_every=50, sample_every=2000, checkpoint_every=2000),
    )


def demo_config(cfg: Config) -> Config:
    """No --data: the embedded demo set (labels left, photo right; its photos for the single-image tasks), a short run."""
    return replace(
        cfg,
        name=cfg.name + "_demo",
        data={"direction": "AtoB"} if cfg.data.task == "paired" else {},
        train={"steps": 60, "log_every": 5, "sample_every": 20, "checkpoint_every": 20},
    )


def smoke_config(variant="complete", task="cityscapes") -> Config:
    """Tiny networks on 64x64 crops for tests.

    Pyramid 64 -> 32 -> 16 -> 8; the coarsest D (``D_low`` on ``p_3``, 8x8)
    needs ``n_layers = 1`` to keep a patch map (8 -> 4 -> 3 -> 2x2; with
    ``n_layers = 2`` it would be 0x0), so two LeakyReLU layers, two betas.
    """
    cfg = demo_config(config(variant, task))
    return replace(
        cfg,
        data={"load_size": 72 if task == "cityscapes" else 64, "crop_size": 64, "num_samples": 2,
              "hole_size": 32 if task == "inpainting" else 0},
        generator={"name": "unet_6", "ngf": 4},
        discriminator={"ndf": 4, "n_layers": 1},
        loss={"feature_weights": [1.0, 1.0]},
        train={"steps": 4, "log_every": 1, "sample_every": 2, "checkpoint_every": 2,
               "export_at_end": False},
    )


# ---------------------------------------------------------------- command line
def add_arguments(parser):
    parser.add_argument("--task", choices=TASKS, default="cityscapes",
                        help="cityscapes (labels -> photo, Table 1), superres4x (Table 2), inpainting (Fig. 4)")
    parser.add_argument("--variant", choices=VARIANTS, default="complete",
                        help="the objective: the complete model, an ablation row or a baseline (see above)")
    parser.add_argument("--set5", default=None, metavar="DIR",
                        help="superres4x: after training, PSNR/SSIM on these HR images vs bicubic (Table 2); "
                             "default ../shared/data/sr_set5 when it exists")


def superres_report(run_dir, folder, variant="complete", factor=4):
    """Table 2 protocol on `folder` (Set5) for the run's generator; writes ``superres_set5.json``, returns it."""
    from tfi2i.metrics.superres import evaluate_superres
    from tfi2i.translate import load_translator
    from tfi2i.visualize import atomic_write_bytes

    result = evaluate_superres(load_translator(run_dir), folder, factor=factor)
    result["paper"] = dict(zip(("psnr", "ssim"), PAPER_TABLE2[variant])) if variant in PAPER_TABLE2 else None
    atomic_write_bytes(os.path.join(run_dir, "superres_set5.json"), json.dumps(result, indent=2).encode())
    m, b = result["model"], result["bicubic"]
    log.info("x%d on %s (%d images): model PSNR %.2f dB / SSIM %.4f (RGB), %.2f / %.4f (Y); "
             "bicubic %.2f / %.4f (RGB), %.2f / %.4f (Y); paper (%s): %s", factor, folder, result["num_images"],
             m["psnr_rgb"], m["ssim_rgb"], m["psnr_y"], m["ssim_y"], b["psnr_rgb"], b["ssim_rgb"], b["psnr_y"],
             b["ssim_y"], variant, PAPER_TABLE2.get(variant, "no row"))
    return result


def _after_fit(cfg, run_dir, args):
    if cfg.data.task != "superres4x":
        return
    folder = args.set5 or _default_set5()
    if folder is None:
        log.info("superres4x: no --set5 folder given (and no ../shared/data/sr_set5): skipping the Table 2 protocol")
        return
    superres_report(run_dir, folder, args.variant, cfg.data.sr_factor)


def _default_set5():
    here = os.path.dirname(os.path.abspath(__file__))
    for root in (os.environ.get("TFI2I_SHARED_DATA"), os.path.join(here, "..", "..", "shared", "data")):
        if root and os.path.isdir(os.path.join(root, "sr_set5")):
            return os.path.join(root, "sr_set5")
    return None


def main(argv=None):
    """``train.main`` with ``--task`` and ``--variant``."""
    return train.main(lambda args: config(args.variant, args.task), argv=argv, description=__doc__,
                      demo_config_fn=demo_config, add_arguments=add_arguments, after_fit=_after_fit)


if __name__ == "__main__":
    raise SystemExit(main())
