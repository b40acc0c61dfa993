"""NVIDIA's PyTorch pix2pixHD generators, for a same-machine comparison with `bench_pix2pixhd.py`.

Runs ONE configuration and prints one JSON object (what `bench_pix2pixhd.py`
reads when it starts this script as a subprocess, one process per
configuration, so ``ru_maxrss`` is that configuration's peak):

    python benchmarks/reference_torch_pix2pixhd.py --model global --size 1024x512 --task infer
    python benchmarks/reference_torch_pix2pixhd.py --model local --size 2048x1024 --task train --device cuda

``--model global``: ``GlobalGenerator(36, 3, ngf=64, n_downsampling=4, n_blocks=9)``
(pix2pixHD's 512p Cityscapes generator: 35 labels + the edge map);
``--model local``: ``LocalEnhancer(36, 3, ngf=32)`` with its defaults
``n_downsample_global=4`` as ``define_G`` passes it from ``--n_downsample_global 4``
(the 1024p model). ``--task train`` times ``Pix2PixHDModel``'s step:
G forward, the two-scale ``MultiscaleDiscriminator`` (``getIntermFeat``) on the
detached fake, the real and the fake pair, LSGAN + feature matching (10) +
VGG (10) losses, ``loss_G.backward(); optimizer_G.step(); loss_D.backward();
optimizer_D.step()`` as ``train.py``. The VGG-19 has random weights
(torchvision is not needed: its ``features[:30]`` is rebuilt layer for layer);
its cost is the same.

The network classes (in ``tests/reference/nvidia_pix2pixhd.py``: ``GlobalGenerator``, ``LocalEnhancer``,
``ResnetBlock``, ``MultiscaleDiscriminator``, ``NLayerDiscriminator``,
``weights_init``) are copied unchanged in substance (``Variable`` and
``padding=[1, 1]`` kept) from NVIDIA/pix2pixHD ``models/networks.py``, commit
14b3b3c7fff413086e3b58df52096f16b6891172, under its BSD licence (the notice is in that file).

Needs ``torch`` only (not a dependency of tfi2i; a CPU wheel is enough).
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn

from machine import machine_info


# NVIDIA's networks: the repository's one copy (tests/reference/nvidia_pix2pixhd.py, BSD)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from nvidia_pix2pixhd import (  # noqa: E402
    GlobalGenerator, LocalEnhancer, MultiscaleDiscriminator, Vgg19, get_norm_layer, vgg19_features, weights_init)


MODELS = {
    # pix2pixHD 512p Cityscapes: --netG global --ngf 64 --n_downsample_global 4 (label_nc 35 + edge map)
    "global": lambda norm: GlobalGenerator(36, 3, 64, 4, 9, norm),
    # pix2pixHD 1024p: --netG local --ngf 32 (global part ngf 64, n_downsample_global 4, 9 blocks; 3 local blocks)
    "local": lambda norm: LocalEnhancer(36, 3, 32, 4, 9, 1, 3, norm),
}


def peak_gpu_mb(device):
    return torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, warmup, repeats, device):
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def train_step_fn(g, x, y, device):
    """``Pix2PixHDModel.forward`` (no instance features, VGG on) + ``train.py``'s two updates."""
    d = MultiscaleDiscriminator(36 + 3, 64, 3, get_norm_layer("instance"), False, 2, True).to(device)
    d.apply(weights_init)
    vgg = Vgg19(vgg19_features()).to(device)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    mse, l1 = nn.MSELoss(), nn.L1Loss()
    vgg_w, feat_w, d_w = [1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0], 4.0 / (3 + 1), 1.0 / 2

    def gan(pred, real):
        return sum(mse(p[-1], torch.full_like(p[-1], 1.0 if real else 0.0)) for p in pred)

    def step():
        fake = g(x)
        pred_fake_pool = d(torch.cat((x, fake.detach()), 1))
        loss_d_fake = gan(pred_fake_pool, False)
        pred_real = d(torch.cat((x, y.detach()), 1))
        loss_d_real = gan(pred_real, True)
        pred_fake = d(torch.cat((x, fake), 1))
        loss_g_gan = gan(pred_fake, True)
        loss_g_feat = 0
        for i in range(2):
            for j in range(len(pred_fake[i]) - 1):
                loss_g_feat = loss_g_feat + d_w * feat_w * l1(pred_fake[i][j], pred_real[i][j].detach()) * 10.0
        xv, yv = vgg(fake), vgg(y)
        loss_g_vgg = sum(w * l1(a, b.detach()) for w, a, b in zip(vgg_w, xv, yv)) * 10.0
        loss_d = (loss_d_fake + loss_d_real) * 0.5
        loss_g = loss_g_gan + loss_g_feat + loss_g_vgg
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()

    return step


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(MODELS), default="global")
    p.add_argument("--size", default="1024x512", help="W x H")
    p.add_argument("--task", choices=("infer", "train"), default="infer")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    device = torch.device(args.device)
    torch.manual_seed(0)
    g = MODELS[args.model](get_norm_layer("instance")).to(device)
    g.apply(weights_init)
    params = sum(q.numel() for q in g.parameters())
    labels = torch.randint(0, 35, (args.batch, h, w), device=device)
    x = torch.cat([nn.functional.one_hot(labels, 35).permute(0, 3, 1, 2).float(),
                   (torch.rand(args.batch, 1, h, w, device=device) > 0.9).float()], 1)
    if args.task == "infer":
        g.eval()

        def fn():
            with torch.no_grad():
                g(x)
    else:
        g.train()
        fn = train_step_fn(g, x, torch.rand(args.batch, 3, h, w, device=device) * 2 - 1, device)
    # after G (and for training D, VGG and the optimizers) are built; torch's Adam allocates its
    # moments at the first step, so for training they are in the peak, not the baseline (TF's compile builds them)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    times = timed(fn, args.warmup, args.repeats, device)
    med = statistics.median(times)
    print(json.dumps({
        "framework": "torch", **machine_info(), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "device": str(device), "model": args.model, "task": args.task, "width": w, "height": h,
        "batch": args.batch, "params": params, "warmup": args.warmup, "repeats": args.repeats,
        "median_s": med, "min_s": min(times), "times_s": times,
        "baseline_host_mb": baseline, "peak_host_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "peak_gpu_mb": peak_gpu_mb(device),
    }))


if __name__ == "__main__":
    main()
