"""pix2pixHD on Cityscapes, labels (+ instance boundaries) -> photo, at 1024x512 and 2048x1024.

T.-C. Wang, M.-Y. Liu, J.-Y. Zhu, A. Tao, J. Kautz, B. Catanzaro,
"High-Resolution Image Synthesis and Semantic Manipulation with Conditional
GANs", CVPR 2018. Reference code: NVIDIA/pix2pixHD (commit 14b3b3c;
``models/networks.py``, ``models/pix2pixHD_model.py``, ``options/*.py``,
``data/aligned_dataset.py``, ``train.py``, ``scripts/train_*.sh``). The
baseline of MSG U-Net (its Table 1: Cityscapes 2048x1024, PSNR 22.18 / SSIM
0.66 / VIF 0.14) and of GRIT. The model is `tfi2i.pix2pixhd` (networks:
`tfi2i.networks.pix2pixhd`); this file is its command line.

Usage::

    python recipes/pix2pixhd_cityscapes.py                      # demo label maps, a few minutes on 2 CPU cores
    python recipes/pix2pixhd_cityscapes.py --data datasets/cityscapes --workdir runs/label2city_512p
    python recipes/pix2pixhd_cityscapes.py --task 1024p --init-from runs/label2city_512p \\
        --data datasets/cityscapes --workdir runs/label2city_1024p
    python recipes/pix2pixhd_cityscapes.py --variant no_vgg --summary
    python recipes/pix2pixhd_cityscapes.py --features --data datasets/cityscapes --workdir runs/label2city_512p_feat
    tfi2i translate --model runs/label2city_512p_feat --input labels/ --instances inst/ --output out/ --samples 3
    tfi2i evaluate --workdir runs/label2city_1024p --paper pix2pixhd_cityscapes

``--data``: a folder in pix2pixHD's layout (``train_label/``, ``train_inst/``,
``train_img/``; ``../shared/data/cityscapes_fullres`` has 8 real triples) or
the official Cityscapes one (``leftImg8bit/``, ``gtFine/``); label maps are the
``*_labelIds.png`` (35 ids), instance maps ``*_instanceIds.png``.

Tasks:

* ``512p`` (default; ``scripts/train_512p.sh``): global generator, 1024x512
  (``resize_or_crop scale_width``, ``loadSize 1024``), ``num_D 2``, 100 + 100 epochs.
* ``1024p`` (``scripts/train_1024p_24G.sh``): ``--netG local --ngf 32
  --num_D 3 --load_pretrain <512p run> --niter 50 --niter_decay 50
  --niter_fix_global 10 --resize_or_crop none`` (2048x1024): ``--init-from W``
  names a finished 512p run of ours (`tfi2i.warm_start`: layers copied by
  name, as NVIDIA's ``load_network``); the first 10 epochs train the local
  enhancer alone, then all of G with a fresh Adam (`tfi2i.pix2pixhd`).

Variants (``--variant``): ``full`` (default), ``no_feat`` (``--no_ganFeat_loss``:
``g_feat`` = 0), ``no_vgg`` (``--no_vgg_loss``: ``g_vgg`` = 0), ``no_feat_vgg``
(both off).

``--features`` (``scripts/train_512p_feat.sh``: ``--instance_feat``; 512p
only): G also takes a 3-channel feature map, E(photo) averaged over each
instance (Sec. 3.4); E (``nef 16``, ``n_downsample_E 4``) trains in G's
optimizer. At the end of training the run encodes its training split with E
and k-means clusters each label's instance features
(``scripts/test_512p_feat.sh``'s ``encode_features.py``: ``W/features.npz``,
``W/features_clustered_010.npz``; ``tfi2i encode-features --workdir W``
recomputes them); evaluate / translate / export then draw one cluster centre
per instance from a seed (NVIDIA's ``test.py --instance_feat``), or encode the
evaluation photo with ``hd.use_encoded_image=true`` (``--use_encoded_image``).

Paper / reference <-> code
--------------------------
=====================================================  ==============================================================
pix2pixHD                                                tfi2i
=====================================================  ==============================================================
Eq. 3 ``min_G max_{D1,D2,D3} sum_k L_GAN(G, D_k)``        ``g_gan`` / ``d_real`` / ``d_fake``, LSGAN (``no_lsgan`` false),
                                                         summed over ``hd.num_d`` scales (`Pix2PixHD.objective`)
Eq. 4 feature matching ``L_FM(G, D_k)``, ``lambda = 10``  ``g_feat`` weight 10: ``(1/num_D)(4/(n_layers_D+1))`` per layer,
                                                         L1, real features detached (`losses.multiscale_feature_matching_loss`)
VGG perceptual loss, ``lambda = 10``                      ``g_vgg`` weight 10, relu1_1..relu5_1 weights 1/32 .. 1, L1
``loss_D = 0.5 (D_fake + D_real)``                         ``d_real``, ``d_fake`` weights 0.5
G^1 global (Sec. 3.2), ``ngf 64``, 4 downsamplings, 9 blocks  ``hd.netG=global``, `networks.pix2pixhd.global_generator`
G^2 local enhancer, ``ngf 32``, 3 blocks                  ``hd.netG=local``, `local_enhancer`
multi-scale D, ``n_layers_D 3``, ``ndf 64``, AvgPool(3,2,1)  `multiscale_discriminator`, `judge_scales`
instance boundary map (Sec. 3.3)                          ``data.instances``: batch ``instances`` (`tfi2i.data.labels`)
instance-level features E (Sec. 3.4), ``--instance_feat``  ``hd.instance_feat`` (``--features``), ``data.instance_ids``;
                                                         `networks.feature_encoder`, `Pix2PixHD.encoded_features`
``--label_feat``, ``--feat_num 3``, ``--nef 16``          ``hd.label_feat``, ``hd.feat_num``, ``hd.nef``,
``--n_downsample_E 4``                                   ``hd.n_downsample_e``
E in ``optimizer_G`` (and ``update_fixed_params``)        `Pix2PixHD.generator_variables` (E is never fixed)
``encode_features.py``, ``--n_clusters 10``               `pix2pixhd.encode_clusters`, ``tfi2i encode-features``,
                                                         ``hd.n_clusters``; `tfi2i.features`
``sample_features``                                      `Pix2PixHD.sampled_features` (seeded)
``--use_encoded_image``                                  ``hd.use_encoded_image``
``resize_or_crop scale_width``, ``loadSize 1024``, flip    ``data.resize_or_crop``, ``data.load_size=(512, 1024)``, ``flip``
``resize_or_crop crop --fineSize 1024`` (train_1024p_12G)  ``data.resize_or_crop=crop``, ``data.crop_size``
Adam lr 2e-4, beta1 0.5, beta2 0.999, batch 1             ``optim`` (``adam=torch``: torch.optim.Adam's update), ``data.batch_size``
``niter 100`` + ``niter_decay 100`` (1024p: 50 + 50)      ``optim.n_epochs`` / ``n_epochs_decay``, ``decay_rule=pix2pixhd``
``niter_fix_global 10``, ``--load_pretrain``              ``hd.niter_fix_global`` (`TorchAdam.restart`), ``train.init_from``
train.py: one forward, then G's step, then D's step      `Pix2PixHD.train_step` (both from the same forward pass)
``label_nc 35``, instance edges (``get_edges``)           ``data.num_classes``, `tfi2i.data.labels.instance_edges`
=====================================================  ==============================================================

Deviations and choices
----------------------
* **VGG-19 weights**: Keras' ImageNet VGG-19 (Caffe weights), not
  torchvision's; the input mapping gives it the picture the reference gives
  torchvision's (`tfi2i.networks.vgg`). Offline, ``--vgg-weights PATH`` names
  the ``.h5``.
* **Instance features** (``--features``): cluster sampling is seeded
  (``--seed`` / the signatures' ``seed``; per instance id a stateless uniform
  draw, `tfi2i.features.sample_cluster_features`) where NVIDIA draws from the
  unseeded ``np.random``; pixels of labels without clusters get 0 (NVIDIA:
  uninitialised memory). The clusters are written at the end of training (NVIDIA:
  a separate ``encode_features.py`` run), over the training split with the
  evaluation transform and batch 1; with ``label_feat`` over the label map
  (NVIDIA passes the instance map). Translate and export sample clusters only
  (no reference-photo input for ``--use_encoded_image``; ``tfi2i evaluate``
  has it). The 1024p feature scripts (``precompute_feature_maps.py``,
  ``--load_features``) are not reproduced: ``--features`` is for ``512p``.
* **Learning-rate schedule**: NVIDIA's rule (`tfi2i.schedules.Pix2PixHDLinearDecay`:
  the last epoch runs at ``lr / niter_decay``, not 0), not junyanz's.
* **``resize_or_crop crop``** (NVIDIA's 12 GB 1024p script): an image smaller
  than the crop is an error (NVIDIA's ``__crop`` returns it uncropped), and
  evaluation takes the centre crop (NVIDIA's test would crop at random).
* **Image pool**: ``pool_size`` 0 in the reference's defaults; not implemented.
* **Mixed precision** (NVIDIA ``--fp16`` with apex AMP) is ``--mixed-precision``.
* **Evaluation** is at the training resolution of the task (1024x512 for
  ``512p``, 2048x1024 for ``1024p``): PSNR, SSIM, VIF (MSG U-Net's Table 1),
  LPIPS, FID, L1 on 0-255 (GRIT's) with ``tfi2i evaluate``.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tfi2i import train  # noqa: E402
from tfi2i.config import DataConfig, LossConfig, OptimConfig, TrainConfig, replace  # noqa: E402
from tfi2i.pix2pixhd import HDSection, Pix2PixHDConfig  # noqa: E402

TASKS = ("512p", "1024p")
VARIANTS = ("full", "no_feat", "no_vgg", "no_feat_vgg")

#: MSG U-Net's Table 1, the pix2pixHD rows (its baseline numbers for this model), in the paper's layout.
PAPER_TABLES = {
    "MSG U-Net Table 1: pix2pixHD rows (Cityscapes 2048x1024)": {
        "corner": "Model",
        "columns": {"psnr": "PSNR", "ssim": "SSIM", "vif": "VIF"},
        "rows": {"pix2pixhd_cityscapes_1024p": ("Pix2Pix-HD (2048 × 1024)", (22.18, 0.66, 0.14))},
    },
}


def variant_weights(variant="full"):
    """``loss.weights`` of a variant: lambda_feat = 10 for both feature terms, 0.5 for D's."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant '{variant}'; valid: {', '.join(VARIANTS)}")
    return {"g_gan": 1.0, "g_feat": 0.0 if variant in ("no_feat", "no_feat_vgg") else 10.0,
            "g_vgg": 0.0 if variant in ("no_vgg", "no_feat_vgg") else 10.0, "d_real": 0.5, "d_fake": 0.5}


def config(task="512p", variant="full", init_from="", features=False) -> Pix2PixHDConfig:
    """The reference's settings for `task` (``scripts/train_512p.sh`` / ``train_1024p_24G.sh``) and `variant`.

    ``features``: ``scripts/train_512p_feat.sh`` (``--instance_feat``; 512p only).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task '{task}'; valid: {', '.join(TASKS)}")
    hd512 = task == "512p"
    if features and not hd512:
        raise ValueError("--features is scripts/train_512p_feat.sh (512p); NVIDIA's 1024p feature scripts "
                         "(precompute_feature_maps.py, --load_features) are not reproduced")
    cfg = Pix2PixHDConfig(
        name=(f"pix2pixhd_cityscapes_{task}" + ("_feat" if features else "")
              + ("" if variant == "full" else f"_{variant}")),
        builder="tfi2i.pix2pixhd:build",
        data=DataConfig(
            direction="AtoB",  # x = label map, y = photo (pix2pixHD's layouts; tfi2i.data.sources)
            x_kind="labels", num_classes=35,  # --label_nc 35 (Cityscapes labelIds)
            instances="inst",  # not --no_instance: the boundary map is an input
            # 512p: --resize_or_crop scale_width --loadSize 1024 (-> 1024x512); 1024p: none (2048x1024, rounded to 32)
            resize_or_crop="scale_width" if hd512 else "none",
            load_size=(512, 1024) if hd512 else (1024, 2048), crop_size=(512, 1024) if hd512 else (1024, 2048),
            size_multiple=16 if hd512 else 32,  # __make_power_2: 2**n_downsample_global (* 2**n_local_enhancers)
            flip=True, batch_size=1,  # not --no_flip; --batchSize 1
            num_samples=2,
        ),
        loss=LossConfig(gan_mode="lsgan", weights=variant_weights(variant)),
        optim=OptimConfig(lr=2e-4, beta1=0.5, beta2=0.999, n_epochs=100 if hd512 else 50,
                          n_epochs_decay=100 if hd512 else 50, decay_rule="pix2pixhd", adam="torch"),
        hd=HDSection(netG="global", ngf=64, num_d=2) if hd512 else HDSection(netG="local", ngf=32, num_d=3,
                                                                                niter_fix_global=10),
        train=TrainConfig(log_every=100, sample_every=1000, checkpoint_every=1000, init_from=init_from),
    )
    if features:  # --instance_feat (feat_num 3, nef 16, n_downsample_E 4, n_clusters 10: the defaults)
        cfg = replace(cfg, data={"instance_ids": True}, hd={"instance_feat": True})
    return cfg


def demo_config(cfg):
    """No --data: the synthetic label-map demo (35 classes, instances, 64x128), small widths, a short run."""
    from tfi2i.data.demo import ensure_label_demo

    h = 64
    path = str(ensure_label_demo(size=(h, 2 * h), num_classes=35))
    return replace(
        cfg, name=cfg.name + "_demo",
        data={"path": path, "direction": "BtoA", "resize_or_crop": "scale_width", "load_size": (h, 2 * h),
              "crop_size": (h, 2 * h)},
        hd={"ngf": 16 if cfg.hd.netG == "global" else 8, "n_blocks_global": 3, "ndf": 16,
            "niter_fix_global": min(cfg.hd.niter_fix_global, 1)},
        optim={"fit_to_run": True},
        train={"steps": 60, "log_every": 5, "sample_every": 20, "checkpoint_every": 20},
    )


def smoke_config(task="512p", data_path="", variant="full", init_from="", features=False):
    """Tiny widths at 128x256 (scale_width) on `data_path` (pix2pixHD layout) for tests; 4 steps, random VGG."""
    cfg = config(task, variant, init_from, features)
    return replace(
        cfg,
        data={"path": data_path, "resize_or_crop": "scale_width", "load_size": (128, 256), "crop_size": (128, 256),
              "num_samples": 1, "num_train": 2},
        hd={"ngf": 4 if task == "512p" else 2, "n_downsample_global": 2, "n_blocks_global": 1, "n_blocks_local": 1,
            "ndf": 4, "vgg_weights": "random", "niter_fix_global": 0 if task == "512p" else 1},
        optim={"n_epochs": 1, "n_epochs_decay": 1},
        train={"steps": 4, "log_every": 1, "sample_every": 4, "checkpoint_every": 1, "deterministic": True,
               "export_at_end": False},
    )


def add_arguments(parser):
    parser.add_argument("--task", choices=TASKS, default="512p",
                        help="512p: global G at 1024x512 (default); 1024p: local enhancer at 2048x1024")
    parser.add_argument("--variant", choices=VARIANTS, default="full",
                        help="full, or with the feature-matching / VGG terms off")
    parser.add_argument("--init-from", default="", metavar="W",
                        help="1024p: a finished 512p run directory to start from (NVIDIA --load_pretrain)")
    parser.add_argument("--features", action="store_true",
                        help="512p with instance-wise features (NVIDIA --instance_feat, scripts/train_512p_feat.sh)")
    parser.add_argument("--vgg-weights", default=None, metavar="PATH",
                        help="the Keras VGG-19 no-top .h5 (default: Keras' ImageNet weights from ~/.keras/models)")


def _config(args):
    cfg = config(args.task, args.variant, args.init_from, getattr(args, "features", False))
    if args.vgg_weights:
        cfg = replace(cfg, hd={"vgg_weights": args.vgg_weights})
    if args.task == "1024p" and not args.init_from:
        print("warning: --task 1024p without --init-from trains the global part from scratch "
              "(NVIDIA starts it from a finished 512p run)", file=sys.stderr)
    return cfg


def main(argv=None):
    """``train.main`` with ``--task``, ``--variant``, ``--init-from``, ``--features`` and ``--vgg-weights``."""
    return train.main(_config, argv=argv, description=__doc__, demo_config_fn=demo_config,
                      add_arguments=add_arguments)


if __name__ == "__main__":
    raise SystemExit(main())
