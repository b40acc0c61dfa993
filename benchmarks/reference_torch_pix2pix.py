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

from machine import machine_info


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


def make_train_step(batch, size=256):
    """junyanz's ``optimize_parameters`` on random tensors: G forward, D step on the detached fake, G step."""
    g, d = unet_256(), patchgan()
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    bce, l1 = nn.BCEWithLogitsLoss(), nn.L1Loss()
    x, y = torch.rand(batch, 3, size, size) * 2 - 1, torch.rand(batch, 3, size, size) * 2 - 1

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

    return step


def profile(args):
    """Self CPU time per op (torch.profiler) of --steps training steps or inferences after --warmup."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    if args.profile == "train":
        batch, size = int(args.batches.split(",")[0]), 256
        fn = make_train_step(batch)
    else:
        batch, size = int(args.infer_batches.split(",")[0]), int(args.sizes.split(",")[0])
        g = unet_256().eval()
        x = torch.rand(batch, 3, size, size)

        def fn():
            with torch.no_grad():
                g(x)
    for _ in range(args.warmup):
        fn()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            fn()
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in rows)
    print(json.dumps({"benchmark": f"reference PyTorch pix2pix profile ({args.profile})", **machine_info(),
                      "torch": torch.__version__, "threads": torch.get_num_threads(), "size": size, "batch": batch,
                      "steps": args.steps, "total_self_ms_per_step": total / 1e3 / args.steps,
                      "ops": [{"op": e.key, "calls_per_step": e.count / args.steps,
                               "self_ms_per_step": e.self_cpu_time_total / 1e3 / args.steps,
                               "share": e.self_cpu_time_total / total} for e in rows[:30]]}, indent=2))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batches", default="1,4", help="training batch sizes (256x256)")
    p.add_argument("--sizes", default="256", help="inference sizes (square)")
    p.add_argument("--infer-batches", default="1", help="inference batch sizes")
    p.add_argument("--tasks", default="train,infer")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--profile", default=None, choices=("train", "infer"),
                   help="instead of timing: torch.profiler over --steps steps (batch: first of --batches / "
                   "--infer-batches), self CPU time per op as JSON")
    args = p.parse_args()
    torch.manual_seed(0)
    if args.profile:
        return profile(args)
    results = []
    tasks = args.tasks.split(",")
    for batch in [int(b) for b in args.batches.split(",")] if "train" in tasks else []:
        step = make_train_step(batch)
        times = []
        for i in range(args.warmup + args.steps):
            t0 = time.perf_counter()
            step()
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        results.append({"task": "train_step", "size": 256, "batch": batch, "median_s": med, "images_per_s": batch / med})
    g = unet_256()
    g.eval()
    for size in [int(v) for v in args.sizes.split(",")] if "infer" in tasks else []:
        for batch in [int(b) for b in args.infer_batches.split(",")]:
            with torch.no_grad():
                x = torch.rand(batch, 3, size, size)
                times = []
                for i in range(args.warmup + 2 * args.steps):
                    t0 = time.perf_counter()
                    g(x)
                    if i >= args.warmup:
                        times.append(time.perf_counter() - t0)
            med = statistics.median(times)
            results.append({"task": "inference", "size": size, "batch": batch, "median_s": med,
                            "images_per_s": batch / med})
    print(json.dumps({"benchmark": "reference PyTorch pix2pix (junyanz networks)", **machine_info(),
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "interop_threads": torch.get_num_interop_threads(),
                      "mkldnn": torch.backends.mkldnn.is_available(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
