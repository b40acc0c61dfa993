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

The network classes below (``GlobalGenerator``, ``LocalEnhancer``,
``ResnetBlock``, ``MultiscaleDiscriminator``, ``NLayerDiscriminator``,
``weights_init``) are copied unchanged in substance (``Variable`` and
``padding=[1, 1]`` kept) from NVIDIA/pix2pixHD ``models/networks.py``, commit
14b3b3c7fff413086e3b58df52096f16b6891172, under its licence:

    Copyright (C) 2019 NVIDIA Corporation. Ting-Chun Wang, Ming-Yu Liu, Jun-Yan Zhu.
    BSD License. All rights reserved.

    Redistribution and use in source and binary forms, with or without
    modification, are permitted provided that the following conditions are met:

    * Redistributions of source code must retain the above copyright notice, this
      list of conditions and the following disclaimer.

    * Redistributions in binary form must reproduce the above copyright notice,
      this list of conditions and the following disclaimer in the documentation
      and/or other materials provided with the distribution.

    THE AUTHOR DISCLAIMS ALL WARRANTIES WITH REGARD TO THIS SOFTWARE, INCLUDING ALL
    IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR ANY PARTICULAR PURPOSE.
    IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR ANY SPECIAL, INDIRECT OR CONSEQUENTIAL
    DAMAGES OR ANY DAMAGES WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS,
    WHETHER IN AN ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING
    OUT OF OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.

Needs ``torch`` only (not a dependency of tfi2i; a CPU wheel is enough).
"""

import argparse
import functools
import json
import resource
import statistics
import time

import numpy as np
import torch
import torch.nn as nn


# ----------------------------------------------------------------- NVIDIA/pix2pixHD models/networks.py (BSD)
def weights_init(m):
    classname = m.__class__.__name__
    if classname.find('Conv') != -1:
        m.weight.data.normal_(0.0, 0.02)
    elif classname.find('BatchNorm2d') != -1:
        m.weight.data.normal_(1.0, 0.02)
        m.bias.data.fill_(0)


def get_norm_layer(norm_type='instance'):
    if norm_type == 'batch':
        norm_layer = functools.partial(nn.BatchNorm2d, affine=True)
    elif norm_type == 'instance':
        norm_layer = functools.partial(nn.InstanceNorm2d, affine=False)
    else:
        raise NotImplementedError('normalization layer [%s] is not found' % norm_type)
    return norm_layer


class LocalEnhancer(nn.Module):
    def __init__(self, input_nc, output_nc, ngf=32, n_downsample_global=3, n_blocks_global=9,
                 n_local_enhancers=1, n_blocks_local=3, norm_layer=nn.BatchNorm2d, padding_type='reflect'):
        super(LocalEnhancer, self).__init__()
        self.n_local_enhancers = n_local_enhancers

        ###### global generator model #####
        ngf_global = ngf * (2**n_local_enhancers)
        model_global = GlobalGenerator(input_nc, output_nc, ngf_global, n_downsample_global, n_blocks_global, norm_layer).model
        model_global = [model_global[i] for i in range(len(model_global)-3)] # get rid of final convolution layers
        self.model = nn.Sequential(*model_global)

        ###### local enhancer layers #####
        for n in range(1, n_local_enhancers+1):
            ### downsample
            ngf_global = ngf * (2**(n_local_enhancers-n))
            model_downsample = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf_global, kernel_size=7, padding=0),
                                norm_layer(ngf_global), nn.ReLU(True),
                                nn.Conv2d(ngf_global, ngf_global * 2, kernel_size=3, stride=2, padding=1),
                                norm_layer(ngf_global * 2), nn.ReLU(True)]
            ### residual blocks
            model_upsample = []
            for i in range(n_blocks_local):
                model_upsample += [ResnetBlock(ngf_global * 2, padding_type=padding_type, norm_layer=norm_layer)]

            ### upsample
            model_upsample += [nn.ConvTranspose2d(ngf_global * 2, ngf_global, kernel_size=3, stride=2, padding=1, output_padding=1),
                               norm_layer(ngf_global), nn.ReLU(True)]

            ### final convolution
            if n == n_local_enhancers:
                model_upsample += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]

            setattr(self, 'model'+str(n)+'_1', nn.Sequential(*model_downsample))
            setattr(self, 'model'+str(n)+'_2', nn.Sequential(*model_upsample))

        self.downsample = nn.AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)

    def forward(self, input):
        ### create input pyramid
        input_downsampled = [input]
        for i in range(self.n_local_enhancers):
            input_downsampled.append(self.downsample(input_downsampled[-1]))

        ### output at coarest level
        output_prev = self.model(input_downsampled[-1])
        ### build up one layer at a time
        for n_local_enhancers in range(1, self.n_local_enhancers+1):
            model_downsample = getattr(self, 'model'+str(n_local_enhancers)+'_1')
            model_upsample = getattr(self, 'model'+str(n_local_enhancers)+'_2')
            input_i = input_downsampled[self.n_local_enhancers-n_local_enhancers]
            output_prev = model_upsample(model_downsample(input_i) + output_prev)
        return output_prev


class GlobalGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, ngf=64, n_downsampling=3, n_blocks=9, norm_layer=nn.BatchNorm2d,
                 padding_type='reflect'):
        assert(n_blocks >= 0)
        super(GlobalGenerator, self).__init__()
        activation = nn.ReLU(True)

        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0), norm_layer(ngf), activation]
        ### downsample
        for i in range(n_downsampling):
            mult = 2**i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1),
                      norm_layer(ngf * mult * 2), activation]

        ### resnet blocks
        mult = 2**n_downsampling
        for i in range(n_blocks):
            model += [ResnetBlock(ngf * mult, padding_type=padding_type, activation=activation, norm_layer=norm_layer)]

        ### upsample
        for i in range(n_downsampling):
            mult = 2**(n_downsampling - i)
            model += [nn.ConvTranspose2d(ngf * mult, int(ngf * mult / 2), kernel_size=3, stride=2, padding=1, output_padding=1),
                       norm_layer(int(ngf * mult / 2)), activation]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, input):
        return self.model(input)


# Define a resnet block
class ResnetBlock(nn.Module):
    def __init__(self, dim, padding_type, norm_layer, activation=nn.ReLU(True), use_dropout=False):
        super(ResnetBlock, self).__init__()
        self.conv_block = self.build_conv_block(dim, padding_type, norm_layer, activation, use_dropout)

    def build_conv_block(self, dim, padding_type, norm_layer, activation, use_dropout):
        conv_block = []
        p = 0
        if padding_type == 'reflect':
            conv_block += [nn.ReflectionPad2d(1)]
        elif padding_type == 'replicate':
            conv_block += [nn.ReplicationPad2d(1)]
        elif padding_type == 'zero':
            p = 1
        else:
            raise NotImplementedError('padding [%s] is not implemented' % padding_type)

        conv_block += [nn.Conv2d(dim, dim, kernel_size=3, padding=p),
                       norm_layer(dim),
                       activation]
        if use_dropout:
            conv_block += [nn.Dropout(0.5)]

        p = 0
        if padding_type == 'reflect':
            conv_block += [nn.ReflectionPad2d(1)]
        elif padding_type == 'replicate':
            conv_block += [nn.ReplicationPad2d(1)]
        elif padding_type == 'zero':
            p = 1
        else:
            raise NotImplementedError('padding [%s] is not implemented' % padding_type)
        conv_block += [nn.Conv2d(dim, dim, kernel_size=3, padding=p),
                       norm_layer(dim)]

        return nn.Sequential(*conv_block)

    def forward(self, x):
        out = x + self.conv_block(x)
        return out


class MultiscaleDiscriminator(nn.Module):
    def __init__(self, input_nc, ndf=64, n_layers=3, norm_layer=nn.BatchNorm2d,
                 use_sigmoid=False, num_D=3, getIntermFeat=False):
        super(MultiscaleDiscriminator, self).__init__()
        self.num_D = num_D
        self.n_layers = n_layers
        self.getIntermFeat = getIntermFeat

        for i in range(num_D):
            netD = NLayerDiscriminator(input_nc, ndf, n_layers, norm_layer, use_sigmoid, getIntermFeat)
            if getIntermFeat:
                for j in range(n_layers+2):
                    setattr(self, 'scale'+str(i)+'_layer'+str(j), getattr(netD, 'model'+str(j)))
            else:
                setattr(self, 'layer'+str(i), netD.model)

        self.downsample = nn.AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)

    def singleD_forward(self, model, input):
        if self.getIntermFeat:
            result = [input]
            for i in range(len(model)):
                result.append(model[i](result[-1]))
            return result[1:]
        else:
            return [model(input)]

    def forward(self, input):
        num_D = self.num_D
        result = []
        input_downsampled = input
        for i in range(num_D):
            if self.getIntermFeat:
                model = [getattr(self, 'scale'+str(num_D-1-i)+'_layer'+str(j)) for j in range(self.n_layers+2)]
            else:
                model = getattr(self, 'layer'+str(num_D-1-i))
            result.append(self.singleD_forward(model, input_downsampled))
            if i != (num_D-1):
                input_downsampled = self.downsample(input_downsampled)
        return result


# Defines the PatchGAN discriminator with the specified arguments.
class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc, ndf=64, n_layers=3, norm_layer=nn.BatchNorm2d, use_sigmoid=False, getIntermFeat=False):
        super(NLayerDiscriminator, self).__init__()
        self.getIntermFeat = getIntermFeat
        self.n_layers = n_layers

        kw = 4
        padw = int(np.ceil((kw-1.0)/2))
        sequence = [[nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw), nn.LeakyReLU(0.2, True)]]

        nf = ndf
        for n in range(1, n_layers):
            nf_prev = nf
            nf = min(nf * 2, 512)
            sequence += [[
                nn.Conv2d(nf_prev, nf, kernel_size=kw, stride=2, padding=padw),
                norm_layer(nf), nn.LeakyReLU(0.2, True)
            ]]

        nf_prev = nf
        nf = min(nf * 2, 512)
        sequence += [[
            nn.Conv2d(nf_prev, nf, kernel_size=kw, stride=1, padding=padw),
            norm_layer(nf),
            nn.LeakyReLU(0.2, True)
        ]]

        sequence += [[nn.Conv2d(nf, 1, kernel_size=kw, stride=1, padding=padw)]]

        if use_sigmoid:
            sequence += [[nn.Sigmoid()]]

        if getIntermFeat:
            for n in range(len(sequence)):
                setattr(self, 'model'+str(n), nn.Sequential(*sequence[n]))
        else:
            sequence_stream = []
            for n in range(len(sequence)):
                sequence_stream += sequence[n]
            self.model = nn.Sequential(*sequence_stream)

    def forward(self, input):
        if self.getIntermFeat:
            res = [input]
            for n in range(self.n_layers+2):
                model = getattr(self, 'model'+str(n))
                res.append(model(res[-1]))
            return res[1:]
        else:
            return self.model(input)


# ----------------------------------------------------------------- ours: VGG-19 without torchvision, the step
class Vgg19(nn.Module):
    """``Vgg19`` of networks.py with torchvision's ``vgg19().features[:30]`` rebuilt (random weights, frozen)."""

    def __init__(self):
        super().__init__()
        cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512]
        layers, c = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        f = layers  # indices as torchvision's features: slices [0:2], [2:7], [7:12], [12:21], [21:30]
        self.slices = nn.ModuleList(nn.Sequential(*f[a:b]) for a, b in ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30)))
        for p in self.parameters():
            p.requires_grad = False

    def forward(self, x):
        out = []
        for s in self.slices:
            x = s(x)
            out.append(x)
        return out


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
    vgg = Vgg19().to(device)
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
        "framework": "torch", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "device": str(device), "model": args.model, "task": args.task, "width": w, "height": h,
        "batch": args.batch, "params": params, "warmup": args.warmup, "repeats": args.repeats,
        "median_s": med, "min_s": min(times), "times_s": times,
        "baseline_host_mb": baseline, "peak_host_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "peak_gpu_mb": peak_gpu_mb(device),
    }))


if __name__ == "__main__":
    main()
