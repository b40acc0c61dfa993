"""pix2pix on CMP Facades, labels -> photo: the baseline every paper compares against.

Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional
Adversarial Networks", CVPR 2017 (arXiv:1611.07004), reference code
junyanz/pytorch-CycleGAN-and-pix2pix.

Usage::

    python recipes/pix2pix_facades.py                       # demo data, ~2 min on 2 CPU cores
    python recipes/pix2pix_facades.py --data datasets/facades --workdir runs/facades
    python recipes/pix2pix_facades.py --data DIR --workdir W --steps 40 --resume
    python recipes/pix2pix_facades.py --summary             # parameter counts

The paper prints no table for facades (its FCN-score, AMT and colorization
tables are on Cityscapes, maps and ImageNet), so this recipe has no
``PAPER_TABLES`` for ``tfi2i evaluate --paper``.

Paper <-> code map
------------------
* Eq. 1, conditional GAN objective, G side (non-saturating ``-log D(x, G(x))``)
  -> ``tfi2i.losses.g_adversarial_loss`` (term ``g_gan``, weight 1).
* Eq. 1, D side, ``log D(x,y) + log(1 - D(x,G(x)))``, halved as in the
  reference (``loss_D = (loss_D_fake + loss_D_real) * 0.5``) ->
  ``tfi2i.losses.d_real_loss`` / ``d_fake_loss`` (terms ``d_real``,
  ``d_fake``, weights 0.5 each).
* Eq. 3, ``L_L1 = E ||y - G(x,z)||_1`` -> ``tfi2i.losses.l1_loss`` (term ``l1``).
* Eq. 4, ``G* = arg min_G max_D L_cGAN + lambda L_L1`` with lambda = 100
  (Sec. 4, "lambda = 100") -> ``loss.weights["l1"] = 100``; the weighted sum is
  ``PairedGAN.weighted_sum``.
* Sec. 3.1 / 3.2 generator "U-Net" with skips between mirrored layers, noise z
  as dropout -> ``tfi2i.networks.unet_generator("unet_256")`` (8
  downsamplings, dropout 0.5 in the three blocks next to the bottleneck, also
  at test time in the paper; see deviations).
* Sec. 3.2.2 "PatchGAN", 70x70 (appendix 6.1.2: C64-C128-C256-C512)
  -> ``tfi2i.networks.patchgan_discriminator(n_layers=3)``; 30x30 patch map at 256.
* Sec. 3.3 optimisation: alternate one D step and one G step; Adam, lr 2e-4,
  beta1 0.5 (beta2 0.999) -> ``PairedGAN.train_step``, ``config().optim``.
* Appendix 6.2, facades: 400 training images, 200 epochs, batch size 1, random
  jitter (resize to 286, random crop 256) and mirroring -> ``config().data``
  and ``optim.n_epochs + optim.n_epochs_decay = 100 + 100``.
* Reference code: lr 2e-4 for epochs 1-99, then linear decay; the current
  reference updates the rate at the start of each epoch, so the decay starts
  in epoch 100 (100/101 of the base) and epoch 200 runs at 0 ->
  ``tfi2i.schedules.Pix2PixLinearDecay``; Adam with torch's update (eps 1e-8
  after bias correction) -> ``tfi2i.optimizers.TorchAdam``; batch norm with
  PyTorch's unbiased moving variance -> ``tfi2i.layers.normalization``;
  weights ~ N(0, 0.02) -> ``tfi2i.layers.init``; ngf = ndf = 64. Numerical
  equality with the reference at small width: ``tests/test_reference_pix2pix.py``.

Deviations and choices
----------------------
* Test-time mode: default ``eval.mode = deterministic`` (dropout off,
  batch-norm running statistics): one reproducible answer per input, what a
  served model gives. The paper and the reference test script keep dropout
  and use the test batch's statistics (batch 1); ``--set eval.mode=reference``
  does exactly that for ``eval.json``, ``tfi2i evaluate``, ``tfi2i translate``
  and ``tfi2i export``, with dropout masks drawn from ``eval.seed``.
* Evaluation resizes straight to 256 (no jitter), as the reference test
  script does: its test options set ``load_size = crop_size`` ("To avoid
  cropping, the loadSize should be the same as fineSize",
  ``options/test_options.py``), so a test image is resized to 256 and the
  crop is the whole image; ``test.py`` also sets ``no_flip = True``.
* The data set's own order of the two halves: the pix2pix release stores the
  photo left (A) and the label map right (B), so labels -> photo is ``BtoA``.
* The demo run (no ``--data``) uses generated label->photo pairs (``AtoB``),
  60 steps and frequent samples/checkpoints so it finishes in minutes on CPU.
* Batch-norm layers are Keras ``synchronized`` (global statistics under
  ``MirroredStrategy``; identical to plain BN on one device).
"""

from tfi2i import train
from tfi2i.config import Config, DataConfig, DiscriminatorConfig, GeneratorConfig, LossConfig, OptimConfig, TrainConfig, replace
from tfi2i.pix2pix import build  # noqa: F401  (the run builder, recorded in config.json)


def config() -> Config:
    """pix2pix, facades labels -> photo, the paper's settings."""
    return Config(
        name="pix2pix_facades",
        builder="tfi2i.pix2pix:build",  # the model module (tfi2i/pix2pix.py)
        data=DataConfig(
            direction="BtoA",  # facades release: photo (A) left, labels (B) right
            load_size=286,  # Appendix 6.2: "resizing the 256x256 input images to 286x286"
            crop_size=256,  # Appendix 6.2: "randomly cropping back to size 256x256"
            flip=True,  # Appendix 6.2: mirroring
            batch_size=1,  # Appendix 6.2: "batch size 1"
        ),
        generator=GeneratorConfig(name="unet_256", ngf=64, norm="batch", dropout=0.5),  # Sec. 3.2.1, Appendix 6.1.1
        discriminator=DiscriminatorConfig(ndf=64, n_layers=3, norm="batch"),  # 70x70 PatchGAN, Appendix 6.1.2
        loss=LossConfig(
            gan_mode="vanilla",  # Eq. 1
            weights={"g_gan": 1.0, "l1": 100.0, "d_real": 0.5, "d_fake": 0.5},  # Eq. 4 lambda = 100; D halved (reference)
        ),
        optim=OptimConfig(lr=2e-4, beta1=0.5, beta2=0.999, n_epochs=100, n_epochs_decay=100),  # Sec. 3.3; reference
        train=TrainConfig(log_every=50, sample_every=2000, checkpoint_every=2000),
    )


def demo_config(cfg: Config) -> Config:
    """No --data: the embedded demo pairs (labels left, photo right), a short run."""
    return replace(
        cfg,
        name=cfg.name + "_demo",
        data={"direction": "AtoB"},
        train={"steps": 60, "log_every": 5, "sample_every": 20, "checkpoint_every": 20},
    )


def smoke_config() -> Config:
    """A tiny network on 64x64 crops for tests (with one dropout block): same code path, seconds per run.

    No SavedModel at the end (5 s of each test run; the tests that need one export explicitly)."""
    cfg = demo_config(config())
    return replace(
        cfg,
        data={"load_size": 72, "crop_size": 64, "num_samples": 2},
        generator={"name": "unet_6", "ngf": 4},
        discriminator={"ndf": 4, "n_layers": 2},
        train={"steps": 4, "log_every": 1, "sample_every": 2, "checkpoint_every": 2,
               "export_at_end": False},
    )


if __name__ == "__main__":
    raise SystemExit(train.main(config, description=__doc__, demo_config_fn=demo_config))
