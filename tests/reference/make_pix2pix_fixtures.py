"""Writes the pix2pix reference-equivalence fixtures (tests/reference/pix2pix_<norm>.npz) with PyTorch.

Needs ``torch`` and ``numpy`` only (not tfi2i, not TensorFlow)::

    python3 -m venv /work/torchvenv && /work/torchvenv/bin/pip install torch==2.13.0 numpy
    /work/torchvenv/bin/python tests/reference/make_pix2pix_fixtures.py

The networks, losses, optimizer and schedule below are rebuilt from the
reference repository junyanz/pytorch-CycleGAN-and-pix2pix (our own code,
following its structure so the state-dict keys are the reference's):

* models/networks.py: ``get_norm_layer`` (batch: ``BatchNorm2d(affine=True,
  track_running_stats=True)``; instance: ``InstanceNorm2d(affine=False,
  track_running_stats=False)``), ``init_weights`` (normal, gain 0.02),
  ``UnetGenerator`` / ``UnetSkipConnectionBlock``, ``NLayerDiscriminator``,
  ``GANLoss("vanilla")`` (``BCEWithLogitsLoss`` against 1 / 0 targets),
  ``get_scheduler(lr_policy="linear")`` (``LambdaLR`` on ``lambda_rule``);
* models/pix2pix_model.py: ``backward_D`` (fake then real, ``(D_fake +
  D_real) * 0.5``), ``backward_G`` (``G_GAN + 100 * L1``),
  ``optimize_parameters`` (one G forward, D step, then G step judged by the
  updated D), Adam lr 2e-4, betas (0.5, 0.999);
* train.py (since 2020): ``model.update_learning_rate()`` at the start of
  every epoch.

Setting: ngf = ndf = 8, 64x64 crops, U-Net depth 6 (tfi2i ``unet_6``),
n_layers 3, batch 2, dropout off for the training steps (``use_dropout=False``,
i.e. p = 0; the eval-mode output is checked to be the same with
``use_dropout=True``), 3 steps with steps_per_epoch 1, n_epochs 2,
n_epochs_decay 2 (LR factors 1, 2/3, 1/3: the decay boundary is crossed).
Initial weights come from `fixture_format.initial_state` (seeded NumPy) so
they are not stored. Everything is float32 on CPU.
"""

import copy
import functools
import os
import sys
import warnings

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_format import initial_state, sample  # noqa: E402
from torch_state import load_numpy, numpy_state  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NGF = NDF = 8
DEPTH = 6
N_LAYERS = 3
SIZE = 64
BATCH = 2
STEPS = 3
N_EPOCHS, N_EPOCHS_DECAY, EPOCH_COUNT = 2, 2, 1
LR, BETA1, BETA2 = 2e-4, 0.5, 0.999
LAMBDA_L1 = 100.0
SEED = {"batch": 1, "instance": 2}


# ----------------------------------------------------------------------------- networks (models/networks.py)
def norm_layer_for(norm):
    if norm == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    raise ValueError(norm)


class SkipBlock(nn.Module):
    """``UnetSkipConnectionBlock``: X -> [down -> submodule -> up] concatenated with X (not outermost)."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        use_bias = norm_layer.func == nn.InstanceNorm2d
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = norm_layer(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = norm_layer(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if use_dropout:
                model = model + [nn.Dropout(0.5)]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf, norm_layer, use_dropout=False):
        super().__init__()
        block = SkipBlock(ngf * 8, ngf * 8, submodule=None, norm_layer=norm_layer, innermost=True)
        for _ in range(num_downs - 5):
            block = SkipBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer, use_dropout=use_dropout)
        block = SkipBlock(ngf * 4, ngf * 8, submodule=block, norm_layer=norm_layer)
        block = SkipBlock(ngf * 2, ngf * 4, submodule=block, norm_layer=norm_layer)
        block = SkipBlock(ngf, ngf * 2, submodule=block, norm_layer=norm_layer)
        self.model = SkipBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                               norm_layer=norm_layer)

    def forward(self, x):
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc, ndf, n_layers, norm_layer):
        super().__init__()
        use_bias = norm_layer.func == nn.InstanceNorm2d
        seq = [nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=use_bias), norm_layer(ndf * mult),
                    nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2**n_layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=use_bias), norm_layer(ndf * mult),
                nn.LeakyReLU(0.2, True)]
        seq += [nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


def kinds_of(net):
    """``(keys, shapes, kinds)`` of a network's state dict in order (``num_batches_tracked`` left out)."""
    modules = dict(net.named_modules())
    keys, shapes, kinds = [], [], []
    for key, value in net.state_dict().items():
        owner, leaf = key.rsplit(".", 1)
        module = modules[owner]
        if leaf == "num_batches_tracked":
            continue
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            kind = "conv_weight" if leaf == "weight" else "bias"
        elif isinstance(module, nn.BatchNorm2d):
            kind = {"weight": "bn_weight", "bias": "bn_bias", "running_mean": "running_mean",
                    "running_var": "running_var"}[leaf]
        else:
            raise ValueError(key)
        keys.append(key)
        shapes.append(tuple(value.shape))
        kinds.append(kind)
    return keys, shapes, kinds


# ----------------------------------------------------------------------------- objective (models/pix2pix_model.py)
bce = nn.BCEWithLogitsLoss()  # GANLoss("vanilla")
l1 = nn.L1Loss()


def gan_loss(pred, target_is_real):
    return bce(pred, torch.full_like(pred, 1.0 if target_is_real else 0.0))


def lambda_rule(epoch):  # get_scheduler(lr_policy="linear")
    return 1.0 - max(0, epoch + EPOCH_COUNT - N_EPOCHS) / float(N_EPOCHS_DECAY + 1)


def train(G, D, real_A, real_B, d_real_first=False):
    """The reference loop: STEPS epochs of one step each; returns per-step records (with step 1's gradients).

    ``d_real_first`` only reorders D's two calls in its step (tfi2i's order); it changes nothing but D's
    batch-norm running statistics.
    """
    opt_G = torch.optim.Adam(G.parameters(), lr=LR, betas=(BETA1, BETA2))
    opt_D = torch.optim.Adam(D.parameters(), lr=LR, betas=(BETA1, BETA2))
    schedulers = [torch.optim.lr_scheduler.LambdaLR(o, lr_lambda=lambda_rule) for o in (opt_G, opt_D)]
    G.train()
    D.train()
    records = []
    for _epoch in range(EPOCH_COUNT, EPOCH_COUNT + STEPS):
        with warnings.catch_warnings():  # reference issue #1100: "lr_scheduler.step() before optimizer.step()"
            warnings.simplefilter("ignore", UserWarning)
            for scheduler in schedulers:  # model.update_learning_rate() at the start of the epoch
                scheduler.step()
        rec = {"lr": opt_G.param_groups[0]["lr"], "lr_D": opt_D.param_groups[0]["lr"]}
        fake_B = G(real_A)  # forward()
        # update D (backward_D)
        for p in D.parameters():
            p.requires_grad_(True)
        opt_D.zero_grad()
        fake_AB = torch.cat((real_A, fake_B), 1).detach()
        real_AB = torch.cat((real_A, real_B), 1)
        if d_real_first:
            pred_real = D(real_AB)
            pred_fake = D(fake_AB)
        else:
            pred_fake = D(fake_AB)
            pred_real = D(real_AB)
        loss_D_fake = gan_loss(pred_fake, False)
        loss_D_real = gan_loss(pred_real, True)
        loss_D = (loss_D_fake + loss_D_real) * 0.5
        loss_D.backward()
        rec["grad_D"] = {k: p.grad.detach().numpy().copy() for k, p in D.named_parameters()}
        opt_D.step()
        # update G (backward_G), judged by the updated D
        for p in D.parameters():
            p.requires_grad_(False)
        opt_G.zero_grad()
        pred_fake_G = D(torch.cat((real_A, fake_B), 1))
        loss_G_GAN = gan_loss(pred_fake_G, True)
        loss_G_L1 = l1(fake_B, real_B) * LAMBDA_L1
        loss_G = loss_G_GAN + loss_G_L1
        loss_G.backward()
        rec["grad_G"] = {k: p.grad.detach().numpy().copy() for k, p in G.named_parameters()}
        opt_G.step()
        for p in D.parameters():
            p.requires_grad_(True)
        rec.update(
            fake_B=fake_B.detach().numpy().copy(), d_real_logits=pred_real.detach().numpy().copy(),
            d_fake_logits=pred_fake.detach().numpy().copy(), g_d_fake_logits=pred_fake_G.detach().numpy().copy(),
            D_fake=loss_D_fake.item(), D_real=loss_D_real.item(), D=loss_D.item(), G_GAN=loss_G_GAN.item(),
            G_L1=loss_G_L1.item(), G=loss_G.item(),
        )
        records.append(rec)
    return records


def nhwc(t):
    return np.ascontiguousarray(np.asarray(t).transpose(0, 2, 3, 1))


def write_fixture(norm):
    torch.manual_seed(0)
    norm_layer = norm_layer_for(norm)
    G = UnetGenerator(3, 3, DEPTH, NGF, norm_layer, use_dropout=False)
    G_dropout = UnetGenerator(3, 3, DEPTH, NGF, norm_layer, use_dropout=True)
    D = NLayerDiscriminator(6, NDF, N_LAYERS, norm_layer)
    out = {"norm": np.array(norm), "seed": np.array(SEED[norm]),
           "config": np.array([NGF, NDF, DEPTH, N_LAYERS, SIZE, BATCH, STEPS, N_EPOCHS, N_EPOCHS_DECAY])}
    g_keys, g_shapes, g_kinds = kinds_of(G)
    d_keys, d_shapes, d_kinds = kinds_of(D)
    assert kinds_of(G_dropout)[0] == g_keys  # dropout has no parameters: same state-dict keys
    for prefix, (keys, shapes, kinds) in (("G", (g_keys, g_shapes, g_kinds)), ("D", (d_keys, d_shapes, d_kinds))):
        out[f"{prefix}_keys"] = np.array(keys)
        out[f"{prefix}_shapes"] = np.array([",".join(map(str, s)) for s in shapes])
        out[f"{prefix}_kinds"] = np.array(kinds)
    init_G = initial_state(g_keys, g_shapes, g_kinds, SEED[norm])
    init_D = initial_state(d_keys, d_shapes, d_kinds, SEED[norm] + 100)
    for net in (G, G_dropout):
        load_numpy(net, init_G)
    load_numpy(D, init_D)

    rng = np.random.default_rng(SEED[norm] + 1000)
    # float16-representable values, stored as float16 (exact) to halve their size; used as float32
    x = rng.uniform(-1, 1, (BATCH, 3, SIZE, SIZE)).astype(np.float16).astype(np.float32)
    y = rng.uniform(-1, 1, (BATCH, 3, SIZE, SIZE)).astype(np.float16).astype(np.float32)
    out["x"], out["y"] = nhwc(x).astype(np.float16), nhwc(y).astype(np.float16)
    real_A, real_B = torch.from_numpy(x), torch.from_numpy(y)

    with torch.no_grad():  # forward checks at the initial weights, on copies (running stats untouched)
        g_eval = copy.deepcopy(G).eval()(real_A)
        g_eval_dropout = copy.deepcopy(G_dropout).eval()(real_A)
        assert torch.equal(g_eval, g_eval_dropout)  # eval mode: dropout off
        out["g_eval_init"] = nhwc(g_eval)
        out["g_train_init"] = nhwc(copy.deepcopy(G).train()(real_A))  # batch statistics, dropout p = 0

    records = train(G, D, real_A, real_B)
    first = records[0]
    assert np.array_equal(nhwc(first["fake_B"]), out["g_train_init"])  # step 1's G(x) is the train-mode output
    for name in ("d_real_logits", "d_fake_logits", "g_d_fake_logits"):
        out[name] = nhwc(first[name])
    for name in ("D_fake", "D_real", "D", "G_GAN", "G_L1", "G"):
        out[f"loss_{name}"] = np.array([r[name] for r in records], np.float32)
    out["lr"] = np.array([r["lr"] for r in records], np.float64)
    assert [r["lr"] for r in records] == [r["lr_D"] for r in records]
    for prefix, grads in (("G", first["grad_G"]), ("D", first["grad_D"])):
        for key, grad in grads.items():
            out[f"grad/{prefix}/{key}"] = sample(grad)
            out[f"gradnorm/{prefix}/{key}"] = np.array(np.linalg.norm(grad), np.float32)
    for prefix, net in (("G", G), ("D", D)):
        for key, value in numpy_state(net).items():
            out[f"after/{prefix}/{key}"] = sample(value)
    with torch.no_grad():
        out["g_eval_after"] = nhwc(copy.deepcopy(G).eval()(real_A))  # running statistics after 3 steps

    # float32 conditioning: the same 3 steps in float64 ("after64/...", "g_eval_after64"), and per tensor
    # max |float32 - float64| ("gap/..."): how far the float32 reference itself is from the exact result
    G64 = UnetGenerator(3, 3, DEPTH, NGF, norm_layer, use_dropout=False)
    D64 = NLayerDiscriminator(6, NDF, N_LAYERS, norm_layer)
    load_numpy(G64, init_G)
    load_numpy(D64, init_D)
    G64, D64 = G64.double(), D64.double()
    train(G64, D64, real_A.double(), real_B.double())
    for prefix, net, net64 in (("G", G, G64), ("D", D, D64)):
        exact = numpy_state(net64)
        for key, value in numpy_state(net).items():
            out[f"gap/{prefix}/{key}"] = np.array(np.max(np.abs(value.astype(np.float64) - exact[key])), np.float32)
            out[f"after64/{prefix}/{key}"] = sample(exact[key])
    with torch.no_grad():
        exact_eval = nhwc(G64.eval()(real_A.double()))
    out["g_eval_after64"] = exact_eval.astype(np.float32)
    out["gap_g_eval_after"] = np.array(np.max(np.abs(out.pop("g_eval_after").astype(np.float64) - exact_eval)),
                                       np.float32)  # (the float32 output itself is not stored)

    path = os.path.join(HERE, f"pix2pix_{norm}.npz")
    np.savez_compressed(path, **out)
    print(f"{path}: {os.path.getsize(path) / 1024:.0f} KB; losses step 1: D {first['D']:.6f} G {first['G']:.6f}; "
          f"lr {out['lr'].tolist()}")


def write_layer_fixture():
    """One ConvTranspose2d(4, 2, 1) and one Conv2d(4, 2, 1) on odd/even sizes: the padding conventions."""
    rng = np.random.default_rng(7)
    out = {}
    deconv = nn.ConvTranspose2d(4, 2, kernel_size=4, stride=2, padding=1)
    conv = nn.Conv2d(4, 2, kernel_size=4, stride=2, padding=1)
    for name, layer, size in (("deconv", deconv, (3, 5)), ("conv", conv, (6, 10))):
        weight = rng.normal(0, 0.5, tuple(layer.weight.shape)).astype(np.float32)
        bias = rng.normal(0, 0.5, tuple(layer.bias.shape)).astype(np.float32)
        x = rng.normal(0, 1, (1, 4) + size).astype(np.float32)
        layer.weight.data = torch.from_numpy(weight)
        layer.bias.data = torch.from_numpy(bias)
        with torch.no_grad():
            y = layer(torch.from_numpy(x)).numpy()
        out.update({f"{name}_weight": weight, f"{name}_bias": bias, f"{name}_x": nhwc(x), f"{name}_y": nhwc(y)})
    np.savez_compressed(os.path.join(HERE, "conv_layers.npz"), **out)


def main():
    torch.set_num_threads(1)
    write_layer_fixture()
    torch.use_deterministic_algorithms(True)
    for norm in ("batch", "instance"):
        write_fixture(norm)


if __name__ == "__main__":
    main()
