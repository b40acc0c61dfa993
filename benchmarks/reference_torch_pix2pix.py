"""The PyTorch reference pix2pix step, for a same-machine comparison with `bench_pix2pix.py`.

Rebuilds junyanz/pytorch-CycleGAN-and-pix2pix's `UnetGenerator` (unet_256,
batch norm, dropout) and `NLayerDiscriminator` (n_layers 3) and times its
`optimize_parameters` (forward G, D step on detached fake, G step with
GAN + 100 * L1) on random 256x256 tensors; prints JSON in the same shape.
Needs `torch` (not a dependency of tfi2i; a CPU wheel is enough):

    python benchmarks/reference_torch_pix2pix.py --steps 10
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn


class UnetBlock(nn.Module):
    def __init__(self, outer, inner, input_nc=None, sub=None, outermost=False, innermost=False, dropout=False):
        super().__init__()
        self.outermost = outermost
        input_nc = input_nc or outer
        down = [nn.Conv2d(input_nc, inner, 4, 2, 1, bias=False)]
        if outermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
            layers = down + [sub] + up
        elif innermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False), nn.BatchNorm2d(outer)]
            layers = [nn.LeakyReLU(0.2, True)] + down + up
        else:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False), nn.BatchNorm2d(outer)]
            layers = [nn.LeakyReLU(0.2, True)] + down + [nn.BatchNorm2d(inner), sub] + up + ([nn.Dropout(0.5)] if dropout else [])
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def unet_256(ngf=64):
    b = UnetBlock(ngf * 8, ngf * 8, innermost=True)
    for _ in range(3):
        b = UnetBlock(ngf * 8, ngf * 8, sub=b, dropout=True)
    b = UnetBlock(ngf * 4, ngf * 8, sub=b)
    b = UnetBlock(ngf * 2, ngf * 4, sub=b)
    b = UnetBlock(ngf, ngf * 2, sub=b)
    return UnetBlock(3, ngf, input_nc=3, sub=b, outermost=True)


def patchgan(ndf=64):
    seq = [nn.Conv2d(6, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, 3):
        prev, mult = mult, min(2**n, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
    prev, mult = mult, 8
    seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=False), nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
    seq += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
    return nn.Sequential(*seq)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batches", default="1,4")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args()
    torch.manual_seed(0)
    results = []
    for batch in [int(b) for b in args.batches.split(",")]:
        g, d = unet_256(), patchgan()
        opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
        bce, l1 = nn.BCEWithLogitsLoss(), nn.L1Loss()
        x, y = torch.rand(batch, 3, 256, 256) * 2 - 1, torch.rand(batch, 3, 256, 256) * 2 - 1

        def step():
            fake = g(x)
            for q in d.parameters():
                q.requires_grad_(True)
            opt_d.zero_grad()
            pf, pr = d(torch.cat([x, fake.detach()], 1)), d(torch.cat([x, y], 1))
            loss_d = 0.5 * (bce(pf, torch.zeros_like(pf)) + bce(pr, torch.ones_like(pr)))
            loss_d.backward()
            opt_d.step()
            for q in d.parameters():
                q.requires_grad_(False)
            opt_g.zero_grad()
            pf = d(torch.cat([x, fake], 1))
            loss_g = bce(pf, torch.ones_like(pf)) + 100 * l1(fake, y)
            loss_g.backward()
            opt_g.step()

        times = []
        for i in range(args.warmup + args.steps):
            t0 = time.perf_counter()
            step()
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        results.append({"task": "train_step", "size": 256, "batch": batch, "median_s": med, "images_per_s": batch / med})
    g.eval()
    with torch.no_grad():
        x = torch.rand(1, 3, 256, 256)
        times = []
        for i in range(args.warmup + 2 * args.steps):
            t0 = time.perf_counter()
            g(x)
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    results.append({"task": "inference", "size": 256, "batch": 1, "median_s": med, "images_per_s": 1 / med})
    print(json.dumps({"benchmark": "reference PyTorch pix2pix (junyanz networks)", "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
