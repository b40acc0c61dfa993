"""MSG U-Net on Cityscapes, segmented RGB -> photo at 2048x1024 (and the 512x512 variant for maps / NYU).

K. Laxman, S. R. Dubey, B. Kalyan, S. R. V. Kojjarapu, "Efficient
High-Resolution Image-to-Image Translation using Multi-Scale Gradient U-Net"
(``../shared/papers/msg_unet.md``). The authors' notebooks are no longer in
their repository (github.com/laxmaniron/MSG-U-Net), so the paper is the only
source; where it is silent we take pix2pixHD's setting (its Table 1 baseline,
``recipes/pix2pixhd_cityscapes.py``) or pix2pix's (its discriminator), each
listed below. The model is `tfi2i.msg_unet` (generator:
`tfi2i.networks.msg_unet`); this file is its command line.

Usage::

    python recipes/msg_unet_cityscapes.py                          # demo label maps, a few minutes on 2 CPU cores
    python recipes/msg_unet_cityscapes.py --data datasets/cityscapes --workdir runs/msg_cityscapes
    python recipes/msg_unet_cityscapes.py --data datasets/cityscapes --set msg.recompute=false  # 24 GB GPU: faster
    python recipes/msg_unet_cityscapes.py --task maps512 --data datasets/maps --workdir runs/msg_maps
    python recipes/msg_unet_cityscapes.py --variant top_only --data datasets/cityscapes --workdir runs/msg_top
    tfi2i evaluate --workdir runs/msg_cityscapes --paper msg_unet_cityscapes          # Table 1
    tfi2i resolution-ablation --workdir runs/msg_cityscapes                           # Table 2 (Table 3 for 512)
    tfi2i gradient-histogram --workdir runs/msg_cityscapes --workdir runs/msg_top    # Fig. 2
    tfi2i translate --model runs/msg_cityscapes --input colour_labels/ --output out/

``--data`` (``cityscapes``): pix2pixHD's layout (``train_label/``,
``train_img/``; ``../shared/data/cityscapes_fullres`` has 8 real pairs), the
official Cityscapes one (``leftImg8bit/``, ``gtFine/``) or ``tfds:cityscapes``
(manual download; it gives the colour maps itself). The ``*_labelIds.png`` maps
are rendered with the official Cityscapes palette in tf.data
(``data.label_colors=cityscapes``): the paper's "segmented RGB image", which is
what ``gtFine_color.png`` holds, so translate / export take such colour maps.
``maps512``: the pix2pix ``maps`` release (``tfi2i download maps``; aerial
photo A -> map B). ``nyu512``: a folder of (segmented, photo) pairs in the
two-folder layout (``A/``, ``B/``); we ship no NYU reader.

Tasks: ``cityscapes`` (default): 2048x1024, five input / output scales
2048x1024 .. 128x64, U-Net below to 8x4. ``maps512`` / ``nyu512`` (Sec. 3.1):
the top input and output level removed, the 1024x512 level at 512x512 (four
scales 512 .. 64, bottleneck 4x4; the widths of the full model's levels 1..).

Memory: ``cityscapes`` trains with ``msg.recompute=true`` (our choice; the
paper gives no memory figure): G's Conv-BN-LeakyReLU blocks and VGG-19's blocks
keep only their inputs and are recomputed in the backward pass, with the same
losses, gradients and moving statistics (tested). A float32 batch-1 step at
2048x1024 then holds 6.5 GiB of tensors and fits an 11 GB card such as the
paper-era 1080 Ti; without it, 12.5 GiB (a 24 GB card), at 1/1.32 of the step
time on a CPU (README, "MSG U-Net", for the commands). ``maps512`` / ``nyu512``
train without recomputation.

Variants (``--variant``): ``full`` (default); ``top_only``: one D on the
top output only, no intermediate output judged (the left panel of Fig. 2;
``msg.judged=top``); ``no_feat`` / ``no_vgg``: alpha / beta = 0.

Paper <-> code
--------------
====================================================  ==============================================================
MSG U-Net                                              tfi2i
====================================================  ==============================================================
Sec. 2.1 encoder: two 4x4/1 Conv-BN-LReLU blocks,        `networks.msg_unet.msg_unet_generator`: ``enc{l}_conv1/2``,
4x4/2 block, concat the resized source, 1x1 block,      ``enc{l}_down``, ``enc{l}_concat``, ``enc{l}_fuse``;
"in this way" at every input scale to 128x64            ``msg.encoder_blocks`` (2), ``msg.scales`` (5)
then "normal U-Net" down to 8x4                         ``msg.depth`` (4): ``enc5_down`` .. ``enc8_down``
decoder: TransposedConv-BN-LReLU, **added** to the       ``dec{l}_up`` (4x4/2), ``dec{l}_skip`` (Add), ``dec{l}_conv``
encoder feature, then a stride-1 block                  (``msg.decoder_kernel`` 4)
outputs at 128x64 .. 2048x1024                          ``out{l}_conv`` (1x1) + tanh: outputs ``y``, ``y_2`` .. ``y_16``
source at every scale                                   inputs ``x``, ``x_2`` .. ``x_16`` (`tfi2i.contract` ``resized_from``);
                                                        tf.data ``data.pyramid_levels=5`` (`augment.downscale`)
Sec. 2.2: one pix2pix PatchGAN per scale on (x_k, .)   ``D_y`` .. ``D_y_16`` (`networks.patchgan`, 70x70, ``msg.ndf`` 64)
Eq. 1, L_GAN: pix2pixHD's improved (LSGAN) loss          ``g_gan``, ``d_real``, ``d_fake`` (LSGAN), summed over k
Eq. 1, alpha sum_k sum_i 1/E_i ||D_k^i(x,y)-D_k^i(x,z)||  ``g_feat`` weight 10: every LeakyReLU output of every D_k, L1 mean
Eq. 1, beta sum_k sum_i 1/V_i ||F^i(y_k)-F^i(z_k)||_1     ``g_vgg`` weight 0.25: all 16 VGG-19 convs (``msg.vgg_layers=all``)
Sec. 3: alpha = 10, beta = 0.25                          ``loss.weights``
Sec. 3.1: 512x512 variant                                ``--task maps512`` / ``nyu512``: ``msg.scales=4``, ``first_level=1``
Sec. 3.2, Tables 2-3: input at a lower resolution,       ``tfi2i resolution-ablation`` (`tfi2i.resolution_ablation`)
resampled to all input scales; SSIM per output
Fig. 2: gradients with / without intermediate outputs   ``--variant top_only``; ``tfi2i gradient-histogram``
Table 1: PSNR, SSIM, VIF                                 ``tfi2i evaluate --paper msg_unet_cityscapes``
"1.28 TeraFlops" vs pix2pixHD's 3.32                     `tfi2i.flops.count_flops`: 1.330e12 (tests/test_msg_unet.py)
====================================================  ==============================================================

Deviations and choices
----------------------
* **Channel widths** (the paper gives none): pix2pix's doubling rule
  ``min(ngf * 2**l, 512)`` with ``ngf = 32``: 32, 64, 128, 256, 512, 512,
  512, 512, 512 from 2048x1024 to 8x4. With the same counter (2 FLOPs per
  multiply-accumulate) that gives **1.330 TFLOPs** at 2048x1024 (paper 1.28;
  pix2pixHD's global generator, ngf 64 and 3 downsamplings, 3.326 against the
  paper's 3.32) and 68,851,951 parameters. ``ngf = 64`` would give 2.54
  TFLOPs (worse than the paper's ratio); the other reading of the encoder
  (the two stride-1 blocks at the top level only, ``msg.top_blocks_only``)
  gives 0.78 TFLOPs at ``ngf = 32`` and 1.52 at 48.
* **Kernel sizes**: 4x4 for every stride-1 and stride-2 block (the paper's only
  stated size), 1x1 for the fusion after each concatenation (stated) and for
  the output branches (MSG-GAN's ``toRGB``; the paper says "branching").
  ``padding="same"``: Keras' (a 4x4 stride-1 conv pads 1 before, 2 after).
* **Normalisation and init** as pix2pix (PyTorch's batch norm: momentum 0.1,
  eps 1e-5; kernels N(0, 0.02); no conv bias before a batch norm), LeakyReLU
  0.2 in encoder and decoder (the paper says LeakyReLU for both).
* **Discriminator**: pix2pix's 70x70 PatchGAN (``n_layers_D 3``, ``ndf 64``,
  batch norm) per scale, each with its own weights ("the architecture ... is
  same at all scales"). **Feature matching** weights every D layer 1 (Eq. 1's
  ``1/E_i``), not pix2pixHD's ``(1/num_D)(4/(n_layers_D+1))``; the logits
  are not matched (they are L_GAN's). **D loss** halved: pix2pixHD's
  ``0.5 (real + fake)``, per scale, summed.
* **VGG-19**: Keras' ImageNet (Caffe) weights through pix2pixHD's input mapping
  (`tfi2i.networks.vgg`); "the i-th layer" of the 16 convolutions is taken
  after its ReLU. A scale under 16 pixels a side (tiny test sizes only) has no
  VGG term. The term is computed by `tfi2i.networks.vgg.vgg_l1_loss`: autodiff's
  value and gradient, with a backward pass written to hold less memory.
* **Scales**: the source and the target are downscaled by 2^k as block means
  (an area resize), in tf.data for training and evaluation and in the model
  for callers that give only ``x``; Table 2's low-resolution input is
  resampled up with bicubic interpolation (the paper does not say how).
* **Optimiser and schedule** (the paper is silent): pix2pixHD's, Adam lr 2e-4,
  beta1 0.5, beta2 0.999 (``adam=torch``), batch 1, 100 epochs + 100 of
  linear decay (``decay_rule=pix2pixhd``), horizontal flip; pix2pixHD's
  update order (one forward pass; `tfi2i.gan.OneForwardGAN`). No instance
  maps (the paper's input is the colour map alone).
* **Evaluation**: every output scale is scored against the target at its scale
  (``tfi2i evaluate`` writes ``outputs``); Table 1 reads the top (``y``).
  Batch norm uses its running statistics at test time.
* **Recomputation** at 2048x1024 (``msg.recompute``, see "Memory" above): the
  default trades about a third more step time for a card of the paper's era;
  the numbers are those of a plain step.
* **Inference** of the generator is deterministic (no dropout, no noise); the
  512x512 tasks use ``resize_and_crop`` with load 512 (no crop jitter, flip).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tfi2i import train  # noqa: E402
from tfi2i.config import DataConfig, GeneratorConfig, LossConfig, OptimConfig, TrainConfig, replace  # noqa: E402
from tfi2i.msg_unet import MSGSection, MSGUNetConfig  # noqa: E402

TASKS = ("cityscapes", "maps512", "nyu512")
VARIANTS = ("full", "top_only", "no_feat", "no_vgg")


def _table1(dataset, rows):
    return {"corner": "Model", "columns": {"psnr": "PSNR", "ssim": "SSIM", "vif": "VIF"}, "decimals": 2,
            "note": f"Paper: MSG U-Net Table 1, {dataset}; pix2pix / PAN at 256x256, the others as named.",
            "rows": rows}


#: MSG U-Net's Table 1, one table per data set, rows keyed by our run names.
PAPER_TABLES = {
    "MSG U-Net Table 1: Cityscapes": _table1("Cityscapes", {
        "pix2pix_cityscapes": ("Pix2Pix (256 × 256)", (15.74, 0.42, 0.05)),
        "pan_cityscapes": ("PAN (256 × 256)", (16.06, 0.48, 0.06)),
        "pix2pixhd_cityscapes_1024p": ("Pix2Pix-HD (2048 × 1024)", (22.18, 0.66, 0.14)),
        "msg_unet_cityscapes": ("MSG U-Net (2048 × 1024)", (23.99, 0.69, 0.15)),
    }),
    "MSG U-Net Table 1: NYU Indoor RGBD": _table1("NYU Indoor RGBD", {
        "pix2pix_nyu": ("Pix2Pix (256 × 256)", (18.08, 0.45, 0.07)),
        "pan_nyu": ("PAN (256 × 256)", (19.23, 0.54, 0.11)),
        "pix2pixhd_nyu512": ("Pix2Pix-HD (512 × 512)", (25.01, 0.79, 0.28)),
        "msg_unet_nyu512": ("MSG U-Net (512 × 512)", (25.17, 0.77, 0.27)),
    }),
    "MSG U-Net Table 1: Aerial Images to Maps": _table1("Aerial Images to Maps", {
        "pix2pix_maps": ("Pix2Pix (256 × 256)", (26.20, 0.64, 0.02)),
        "pan_maps": ("PAN (256 × 256)", (28.32, 0.75, 0.16)),
        "pix2pixhd_maps512": ("Pix2Pix-HD (512 × 512)", (32.32, 0.87, 0.24)),
        "msg_unet_maps512": ("MSG U-Net (512 × 512)", (31.04, 0.84, 0.23)),
    }),
}

#: Tables 2 and 3 (SSIM, rows: input resolution, columns: output resolution), for `tfi2i.resolution_ablation`.
PAPER_ABLATIONS = {
    "cityscapes": {
        "title": "MSG U-Net Table 2: Cityscapes, SSIM",
        "sizes": ("128×64", "256×128", "512×256", "1024×512", "2048×1024"),
        "ssim": ((0.42, 0.43, 0.44, 0.49, 0.49), (0.56, 0.58, 0.58, 0.59, 0.59), (0.59, 0.63, 0.63, 0.63, 0.63),
                 (0.63, 0.65, 0.67, 0.67, 0.68), (0.65, 0.67, 0.70, 0.69, 0.69)),
    },
    "nyu512": {
        "title": "MSG U-Net Table 3: NYU Indoor RGBD, SSIM",
        "sizes": ("64", "128", "256", "512"),
        "ssim": ((0.51, 0.57, 0.58, 0.57), (0.69, 0.75, 0.76, 0.72), (0.71, 0.78, 0.80, 0.76),
                 (0.71, 0.79, 0.80, 0.77)),
    },
    "maps512": {
        "title": "MSG U-Net Table 3: Aerial Images to Maps, SSIM",
        "sizes": ("64", "128", "256", "512"),
        "ssim": ((0.51, 0.57, 0.61, 0.61), (0.64, 0.78, 0.79, 0.78), (0.77, 0.82, 0.83, 0.83),
                 (0.79, 0.84, 0.86, 0.84)),
    },
}


def variant_weights(variant="full"):
    """``loss.weights`` of a variant: alpha = 10, beta = 0.25 (Sec. 3), D halved."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant '{variant}'; valid: {', '.join(VARIANTS)}")
    return {"g_gan": 1.0, "g_feat": 0.0 if variant == "no_feat" else 10.0,
            "g_vgg": 0.0 if variant == "no_vgg" else 0.25, "d_real": 0.5, "d_fake": 0.5}


def config(task="cityscapes", variant="full") -> MSGUNetConfig:
    """The paper's settings for `task` and `variant` (pix2pixHD's where the paper is silent)."""
    if task not in TASKS:
        raise ValueError(f"unknown task '{task}'; valid: {', '.join(TASKS)}")
    city = task == "cityscapes"
    # 2048x1024: G's and VGG-19's blocks recomputed, so a float32 batch-1 step fits an 11 GB card (module docstring)
    msg = MSGSection(judged="top" if variant == "top_only" else "all", recompute=city)
    if city:
        data = DataConfig(
            direction="AtoB",  # pix2pixHD / Cityscapes layouts: x = label map, y = photo
            x_kind="labels", num_classes=35, label_colors="cityscapes",  # the paper's "segmented RGB"
            resize_or_crop="none", load_size=(1024, 2048), crop_size=(1024, 2048), size_multiple=msg.multiple,
            pyramid_levels=msg.scales, flip=True, batch_size=1, num_samples=2)
    else:
        msg = MSGSection(judged=msg.judged, scales=4, first_level=1)
        data = DataConfig(direction="AtoB", load_size=512, crop_size=512, pyramid_levels=4, flip=True,
                          batch_size=1, num_samples=2)
    suffix = "" if variant == "full" else f"_{variant}"
    return MSGUNetConfig(
        name=f"msg_unet_{task}{suffix}", builder="tfi2i.msg_unet:build", data=data,
        generator=GeneratorConfig(input_channels=3, output_channels=3),
        loss=LossConfig(gan_mode="lsgan", weights=variant_weights(variant)),
        optim=OptimConfig(lr=2e-4, beta1=0.5, beta2=0.999, n_epochs=100, n_epochs_decay=100,
                          decay_rule="pix2pixhd", adam="torch"),
        msg=msg,
        train=TrainConfig(log_every=100, sample_every=1000, checkpoint_every=1000),
    )


def demo_config(cfg):
    """No --data: the synthetic label-map demo (35 classes) at 128x256, four scales, small widths, a short run."""
    from tfi2i.data.demo import ensure_label_demo

    h = 128
    path = str(ensure_label_demo(size=(h, 2 * h), num_classes=35))
    return replace(
        cfg, name=cfg.name + "_demo",
        data={"path": path, "direction": "BtoA", "x_kind": "labels", "num_classes": 35, "label_colors": "cityscapes",
              "resize_or_crop": "resize_and_crop", "load_size": (h, 2 * h), "crop_size": (h, 2 * h),
              "pyramid_levels": 4},
        msg={"scales": 4, "depth": 2, "first_level": 0, "ngf": 8, "width_cap": 64, "ndf": 16, "n_layers_d": 1},
        optim={"fit_to_run": True},
        train={"steps": 60, "log_every": 5, "sample_every": 20, "checkpoint_every": 20},
    )


def smoke_config(data_path="", variant="full", task="cityscapes"):
    """The five-scale structure at 256x128 (16x8 at the lowest scale, bottleneck 8x4) with tiny widths; 4 steps.

    `data_path`: pix2pixHD's layout (``../shared/data/cityscapes_fullres``); random VGG-19 weights.
    """
    cfg = config(task, variant)
    msg = {"depth": 1, "ngf": 4, "width_cap": 16, "ndf": 4, "n_layers_d": 1, "vgg_weights": "random"}
    return replace(
        cfg,
        data={"path": data_path, "resize_or_crop": "scale_width", "load_size": (128, 256), "crop_size": (128, 256),
              "size_multiple": 32, "num_samples": 1, "num_train": 2},
        msg=msg,
        optim={"n_epochs": 1, "n_epochs_decay": 1},
        train={"steps": 4, "log_every": 1, "sample_every": 4, "checkpoint_every": 2, "deterministic": True,
               "export_at_end": False},
    )


def add_arguments(parser):
    parser.add_argument("--task", choices=TASKS, default="cityscapes",
                        help="cityscapes: 2048x1024, five scales (default); maps512 / nyu512: the 512x512 variant")
    parser.add_argument("--variant", choices=VARIANTS, default="full",
                        help="full; top_only (Fig. 2: only the top output judged); no_feat / no_vgg")
    parser.add_argument("--vgg-weights", default=None, metavar="PATH",
                        help="the Keras VGG-19 no-top .h5 (default: Keras' ImageNet weights from ~/.keras/models)")


def tfds_cityscapes(cfg):
    """``--data tfds:cityscapes``: the TFDS builder gives the colour maps itself (B) beside the photos (A)."""
    return replace(cfg, data={"x_kind": "rgb", "label_colors": "", "num_classes": 0, "direction": "BtoA"})


def _config(args):
    cfg = config(args.task, args.variant)
    if str(getattr(args, "data", "") or "").startswith("tfds:cityscapes"):
        cfg = tfds_cityscapes(cfg)
    if args.vgg_weights:
        cfg = replace(cfg, msg={"vgg_weights": args.vgg_weights})
    return cfg


def main(argv=None):
    """``train.main`` with ``--task``, ``--variant`` and ``--vgg-weights``."""
    return train.main(_config, argv=argv, description=__doc__, demo_config_fn=demo_config,
                      add_arguments=add_arguments)


if __name__ == "__main__":
    raise SystemExit(main())
