"""GRIT on CelebAMask-HQ: face label map (+ a style image, + spatial noise) -> face, at 256x256 and 512x512.

S. Suri, M. Meshry, L. S. Davis, A. Shrivastava, "GRIT: GAN Residuals for
Image-to-Image Translation" (``../shared/papers/grit.md``). No code and no
supplementary material are public: the paper's text is the whole
specification, and every size and hyperparameter below is our choice, taken
from the works GRIT builds on (pix2pix, pix2pixHD, MUNIT, StyleGAN, SPADE) and
listed under "Deviations and choices". The model is `tfi2i.grit` (generator:
`tfi2i.networks.grit`); this file is its command line.

Usage::

    python recipes/grit_celebamask.py                           # synthetic face label maps, a few minutes on CPU
    python recipes/grit_celebamask.py --data datasets/CelebAMask-HQ --workdir runs/grit_256
    python recipes/grit_celebamask.py --task 512 --data datasets/CelebAMask-HQ --workdir runs/grit_512
    python recipes/grit_celebamask.py --variant unet --data datasets/CelebAMask-HQ --workdir runs/grit_256_unet
    python recipes/grit_celebamask.py --baseline pix2pixhd --data datasets/CelebAMask-HQ --workdir runs/hd_256
    tfi2i evaluate --workdir runs/grit_256 --metrics l1_255,psnr,ssim,lpips,fid --paper grit_celebamask \\
        --diversity 20 --spectrum --outputs all --out runs/grit_eval
    tfi2i translate --model runs/grit_256 --input labels/ --style faces/ --output out/ --samples 4 --seed 0
    tfi2i translate --model runs/grit_256 --input labels/ --style sampled --output out/ --samples 4 --seed 0

``--data``: the CelebAMask-HQ release (``CelebA-HQ-img/``,
``CelebAMask-HQ-mask-anno/``, the mapping files; `tfi2i.data` merges the part
masks into 19-class label maps and splits train / test by CelebA's partition).

Variants (Table 3): ``full`` (default: spatial noise + GAN residuals),
``noise`` (U-Net + spatial noise, one output, L1 and adversarial on it),
``unet`` (plain U-Net with the style encoder, no noise, one output).
``--baseline pix2pixhd``: Tables 1-2's pix2pixHD row, NVIDIA's model with its
semantic-specific (per-label, ``--label_feat``) feature encoder on the same data
(`tfi2i.pix2pixhd`).

Paper <-> code
--------------
=================================================  ==============================================================
GRIT                                                tfi2i
=================================================  ==============================================================
Eq. 1 ``I^B = C(I_rec, I_res)``, C = addition        outputs ``y_rec``, ``y_res``, ``y = y_rec + y_res`` (`networks.grit`)
U-Net G = content encoder E^C + decoder D            ``ec_conv*`` / ``dec*`` blocks with skips (``grit.ngf``, ``n_downsample``)
style encoder E^S -> z^s, AdaIN in every up block     ``E_S`` (MUNIT's), ``dec{k}_adain`` (`layers.style.AdaIN`)
spatial noise x learnable weights W (Fig. 5, 3.3)     ``noise_k`` inputs (`contract.NoiseSpec`), ``dec{k}_noise``
Eq. 2 ``L_adv(I^B) + lambda_rec L_rec(I_rec)``         ``g_gan`` on ``y``; ``rec`` = L1 on ``y_rec`` alone (`tfi2i.grit`)
L_rec does not reach I_res                           tested: d rec / d (residual head) = 0
Table 3: U-Net / + spatial noise / + GAN residuals    ``--variant unet`` / ``noise`` / ``full``
Table 1-2 baseline: pix2pixHD + per-label encoder     ``--baseline pix2pixhd`` (``hd.label_feat``)
Tables 1-3 metrics: L1, PSNR, SSIM, LPIPS, FID        ``tfi2i evaluate --metrics l1_255,psnr,ssim,lpips,fid``
Fig. 7: per-pixel std over 20 samples                ``tfi2i evaluate --diversity 20`` (heat maps)
Fig. 8: label map, I_rec, I_res, output, truth       the sample grids (``W/samples/*.png``)
Fig. 9: spectra of I_rec, I_res, output, truth       ``tfi2i evaluate --spectrum --outputs all``
CelebAMask-HQ, 19 labels, 512x512; Liu et al.'s split  `tfi2i.data` layout ``celebamask``
256x256 (Table 1) and 512x512 (Table 2)               ``--task 256`` / ``512``
=================================================  ==============================================================

Deviations and choices
----------------------
* **Sizes** (supplementary unavailable): E^C as pix2pix's encoder (``ngf``
  64, widths ``64 * min(2**i, 8)``, 6 levels at 256: a 4x4 bottleneck; 7 at 512),
  instance norm; decoder blocks TransposedConv 4x4/2 -> concat skip -> Conv 3x3
  -> noise -> LeakyReLU(0.2) -> AdaIN (StyleGAN's order); E^S MUNIT's style
  encoder (``nsf`` 64, four stride-2 convs, global pooling) with a 256-d code
  (SPADE's latent size); the heads split after the last decoder block
  (``grit.split_blocks`` 0), each a Conv 3x3 + tanh.
* **Output** ``y = y_rec + y_res`` is not clipped (it can leave [-1, 1]); D
  sees it as is, saved images are clipped.
* **Discriminator and loss form** (not in the text): pix2pixHD's multi-scale
  PatchGAN (2 scales, ``n_layers_D`` 3, instance norm) on (one-hot labels,
  image), LSGAN; no feature matching or VGG term on the output (either would
  constrain the residual to the ground truth, which Eq. 2 avoids);
  ``lambda_rec`` = 10 (pix2pixHD's weight of its pixel-correspondence terms);
  D halved (0.5 real + 0.5 fake).
* **Optimiser and schedule**: pix2pixHD's: Adam 2e-4, beta1 0.5, beta2 0.999,
  batch 1, 100 + 100 epochs with NVIDIA's linear decay.
* **Style**: in training and evaluation the style image is the ground truth
  (the paper evaluates reconstruction metrics that way); translate / export
  take a style image (``--style DIR``). **Sampled styles** (the paper shows
  them but does not say from what distribution; Eq. 2 has no KL term, so no
  N(0, I) prior exists): after training the recipe encodes every training
  target with E^S and fits ``N(mean, cov)``, covariance shrunk towards its
  mean variance by ``d / (n + d)`` (`tfi2i.style_prior`, ``W/style_prior.npz``,
  again with ``tfi2i style-prior --workdir W``); ``tfi2i translate --style
  sampled`` and ``tfi2i export --style sampled`` draw ``z^s = mean + L eps``
  with ``eps`` from each sample's seed.
* **Split**: training on CelebA's train partition, evaluation on its test
  partition (``data.eval_split=test``; the release's mapping file links the
  two), the standard split of Liu et al. the paper names.
* **Resizing**: the 512x512 masks to 256 by nearest neighbour, the 1024x1024
  photos to the mask size with INTER_AREA before any size check, then to the
  task's size (bicubic).
* **No horizontal flip**: CelebAMask-HQ labels left and right eyes, brows and
  ears apart; a flip would swap their meaning.
* **Noise**: one 1-channel N(0, 1) map per decoder block (StyleGAN), weights
  init 0; drawn from the step's seed in training (bit-exact resume) and from
  the caller's seed at inference (the SavedModel's ``*_seeded`` signatures).
"""

import logging
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tfi2i import train  # noqa: E402
from tfi2i.config import DataConfig, LossConfig, OptimConfig, TrainConfig, replace  # noqa: E402
from tfi2i.grit import GritConfig, GritSection  # noqa: E402

TASKS = ("256", "512")
VARIANTS = ("full", "noise", "unet")
BASELINES = ("", "pix2pixhd")
log = logging.getLogger("tfi2i.grit")
NUM_CLASSES = 19  # CelebAMask-HQ: background + 18 parts

_METRICS = {"l1_255": "L1 ↓", "psnr": "PSNR ↑", "ssim": "SSIM ↑", "lpips": "LPIPS ↓", "fid": "FID ↓"}

#: GRIT's Tables 1-3 in the paper's layout, rows keyed by our run names.
PAPER_TABLES = {
    "GRIT Table 1: baselines at 256x256": {
        "corner": "Method", "columns": _METRICS, "decimals": (2, 2, 3, 3, 2),
        "rows": {"pix2pixhd_celebamask_256": ("Pix2PixHD", (24.78, 17.53, 0.515, 0.256, 45.97)),
                 "spade_celebamask_256": ("SPADE", (28.69, 16.21, 0.485, 0.283, 26.06)),
                 "dino_celebamask_256": ("DINO", (51.84, 12.13, 0.401, 0.369, 37.24)),
                 "monce_celebamask_256": ("MoNCE", (64.26, 10.32, 0.357, 0.380, 34.27)),
                 "grit_celebamask_256": ("Ours", (18.34, 19.54, 0.531, 0.245, 17.04))},
    },
    "GRIT Table 2: baselines at 512x512": {
        "corner": "Method", "columns": _METRICS, "decimals": (2, 2, 3, 3, 2),
        "rows": {"pix2pixhd_celebamask_512": ("Pix2PixHD", (24.80, 17.40, 0.534, 0.354, 24.79)),
                 "spade_celebamask_512": ("SPADE", (31.44, 15.53, 0.490, 0.389, 20.80)),
                 "grit_celebamask_512": ("Ours", (19.02, 19.36, 0.555, 0.333, 16.91))},
    },
    "GRIT Table 3: ablation (256x256)": {
        "corner": "Method", "columns": _METRICS, "decimals": (2, 2, 3, 3, 2),
        "rows": {"grit_celebamask_256_unet": ("U-Net", (21.68, 18.25, 0.504, 0.222, 20.24)),
                 "grit_celebamask_256_noise": ("+ spatial noise", (20.93, 18.55, 0.520, 0.219, 21.41)),
                 "grit_celebamask_256": ("+ GAN residuals (ours)", (18.34, 19.54, 0.531, 0.245, 17.04))},
    },
}


def _data(task):
    size = int(task)
    return DataConfig(direction="AtoB", x_kind="labels", num_classes=NUM_CLASSES, load_size=size, crop_size=size,
                      eval_split="test", flip=False, batch_size=1, num_samples=2)  # Liu et al.'s train / test


def _optim():
    return OptimConfig(lr=2e-4, beta1=0.5, beta2=0.999, n_epochs=100, n_epochs_decay=100, decay_rule="pix2pixhd",
                       adam="torch")


def config(task="256", variant="full"):
    """GRIT's run for `task` (256 | 512) and `variant` (full | noise | unet)."""
    if task not in TASKS:
        raise ValueError(f"unknown task '{task}'; valid: {', '.join(TASKS)}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant '{variant}'; valid: {', '.join(VARIANTS)}")
    grit = GritSection(n_downsample=6 if task == "256" else 7, noise=variant != "unet", residual=variant == "full")
    return GritConfig(
        name=f"grit_celebamask_{task}" + ("" if variant == "full" else f"_{variant}"), builder="tfi2i.grit:build",
        data=_data(task), grit=grit,
        loss=LossConfig(gan_mode="lsgan", weights={"g_gan": 1.0, "rec": 10.0, "d_real": 0.5, "d_fake": 0.5}),
        optim=_optim(), train=TrainConfig(log_every=100, sample_every=1000, checkpoint_every=1000))


def pix2pixhd_config(task="256"):
    """Tables 1-2's baseline: pix2pixHD's global G with the per-label feature encoder (``--label_feat``)."""
    from tfi2i.pix2pixhd import HDSection, Pix2PixHDConfig

    return Pix2PixHDConfig(
        name=f"pix2pixhd_celebamask_{task}", builder="tfi2i.pix2pixhd:build", data=_data(task),
        hd=HDSection(netG="global", ngf=64, num_d=2, label_feat=True),
        loss=LossConfig(gan_mode="lsgan", weights={"g_gan": 1.0, "g_feat": 10.0, "g_vgg": 10.0, "d_real": 0.5,
                                                   "d_fake": 0.5}),
        optim=_optim(), train=TrainConfig(log_every=100, sample_every=1000, checkpoint_every=1000))


def demo_config(cfg):
    """No --data: synthetic face label maps and faces (`tfi2i.data.demo.ensure_face_demo`) at 64x64, small widths."""
    from tfi2i.data.demo import ensure_face_demo

    path = str(ensure_face_demo(size=(64, 64)))
    small = {"grit": {"ngf": 16, "n_downsample": 4, "nsf": 16, "style_dim": 32, "ndf": 16}} if hasattr(cfg, "grit") \
        else {"hd": {"ngf": 16, "n_blocks_global": 3, "ndf": 16, "vgg_weights": "random"}}
    return replace(cfg, name=cfg.name + "_demo", data={"path": path, "load_size": 64, "crop_size": 64},
                   optim={"fit_to_run": True}, train={"steps": 60, "log_every": 5, "sample_every": 20,
                                                      "checkpoint_every": 20}, **small)


def smoke_config(data_path="", variant="full", task="256"):
    """Tiny widths at 64x64 on `data_path` (a CelebAMask-HQ-layout folder) for tests; 2 steps."""
    cfg = config(task, variant)
    return replace(cfg, data={"path": data_path, "load_size": 64, "crop_size": 64, "num_samples": 1},
                   grit={"ngf": 4, "n_downsample": 3, "nsf": 4, "style_dim": 8, "ndf": 4, "n_layers_d": 2},
                   optim={"n_epochs": 1, "n_epochs_decay": 1},
                   train={"steps": 2, "log_every": 1, "sample_every": 2, "checkpoint_every": 1, "deterministic": True,
                          "export_at_end": False})


def add_arguments(parser):
    parser.add_argument("--task", choices=TASKS, default="256", help="256 (Table 1, default) or 512 (Table 2)")
    parser.add_argument("--variant", choices=VARIANTS, default="full",
                        help="Table 3: full (noise + GAN residuals), noise (U-Net + spatial noise), unet")
    parser.add_argument("--baseline", choices=BASELINES, default="",
                        help="pix2pixhd: Tables 1-2's pix2pixHD row with the per-label feature encoder")


def _config(args):
    if args.baseline == "pix2pixhd":
        return pix2pixhd_config(args.task)
    return config(args.task, args.variant)


def _after_fit(cfg, run_dir, args):
    """GRIT runs: fit the sampled-style prior on the training codes (``W/style_prior.npz``, `tfi2i.style_prior`)."""
    if isinstance(cfg, GritConfig):
        from tfi2i import style_prior

        prior = style_prior.fit_run(run_dir)
        log.info("style prior (sampled styles) fitted on %d training codes: %s/%s", int(prior["count"]), run_dir,
                 style_prior.STYLE_PRIOR_FILE)


def main(argv=None):
    """``train.main`` with ``--task``, ``--variant`` and ``--baseline``; GRIT runs end with their style prior."""
    return train.main(_config, argv=argv, description=__doc__, demo_config_fn=demo_config,
                      add_arguments=add_arguments, after_fit=_after_fit)


if __name__ == "__main__":
    raise SystemExit(main())
