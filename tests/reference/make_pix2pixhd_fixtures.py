"""Writes the pix2pixHD reference-equivalence fixture (tests/reference/pix2pixhd_small.npz) with PyTorch.

Needs ``torch`` and ``numpy`` only (not tfi2i, not TensorFlow, not torchvision)::

    /work/torchvenv/bin/python tests/reference/make_pix2pixhd_fixtures.py

The networks, losses and training order are NVIDIA/pix2pixHD's, commit
14b3b3c (BSD licence); the classes live in ``nvidia_pix2pixhd.py``, copied from:

* models/networks.py: ``GlobalGenerator``, ``LocalEnhancer``, ``ResnetBlock``,
  ``Encoder``, ``MultiscaleDiscriminator``, ``NLayerDiscriminator``,
  ``GANLoss``, ``VGGLoss``, ``Vgg19``, ``get_norm_layer`` (only changes: the
  ``Tensor`` factory of ``GANLoss`` follows the prediction's dtype so that the
  float64 run works; ``VGGLoss`` / ``Vgg19`` take a VGG-19 ``features``
  ``nn.Sequential`` rebuilt here in torchvision's layout, randomly initialised,
  instead of downloading ``torchvision.models.vgg19(pretrained=True)``);
* models/pix2pixHD_model.py: ``Pix2PixHDModel.forward`` (``pool_size 0``: the
  fake pool returns its input; no instance features), ``get_edges``,
  ``encode_input``'s one-hot ``scatter_``;
* train.py: ``loss_D = (D_fake + D_real) * 0.5``, ``loss_G = G_GAN + G_GAN_Feat
  + G_VGG``; one forward, then ``optimizer_G.zero_grad(); loss_G.backward();
  optimizer_G.step()``, then ``optimizer_D.zero_grad(); loss_D.backward();
  optimizer_D.step()``; Adam lr 2e-4, betas (0.5, 0.999).

Setting: label_nc 5 + the instance edge map (6 input channels), output_nc 3,
32 x 64 (H x W) inputs, batch 1, instance norm (NVIDIA's default). Global
generator: ngf 8, n_downsample_global 2, n_blocks_global 2. Local enhancer:
ngf 4 (its global part 8), n_local_enhancers 1, n_blocks_local 1. D: ndf 8,
n_layers_D 3, num_D 2, getIntermFeat (the feature-matching loss is on),
lsgan. Encoder (forward only): nef 4, n_downsample_E 2, feat_num 3.
lambda_feat 10. Two runs of 3 training steps ("global/", "local/"), each with
a fresh copy of the same initial D, on three different batches.

Initial weights (``weights_init``: conv kernels N(0, 0.02); the biases keep
PyTorch's default U(+-1/sqrt(fan_in))) are drawn by
`fixture_format.initial_state` from seeded NumPy and not stored (they would
not fit in a small file): both sides regenerate them bit for bit from the key
list, shapes, kinds and seed the fixture records. The VGG-19 (13 convs up to
relu5_1) the same way (kaiming fan_out kernels, torch-default biases). Large
tensors are stored as `fixture_format.sample` s of ``CAP`` values.

Everything is float32 on CPU; the 3 training steps are also run in float64
(``after64/``; ``gap/`` = per-tensor max |float32 - float64| of the
reference itself; ``gradgap/``, ``lossgap_*``, ``gap_fake_after``), which
justifies the tolerances of the comparisons.

NVIDIA's licence notice is in ``nvidia_pix2pixhd.py``, with the copied code.
"""

import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_format import initial_state, sample  # noqa: E402
from torch_state import load_numpy, numpy_state  # noqa: E402
from nvidia_pix2pixhd import (  # noqa: E402  (NVIDIA's classes: the repository's one copy)
    VGG_CONVS, Encoder, GANLoss, GlobalGenerator, LocalEnhancer, MultiscaleDiscriminator, VGGLoss, Vgg19,
    get_norm_layer, vgg19_features)

HERE = os.path.dirname(os.path.abspath(__file__))
LABEL_NC, OUTPUT_NC = 5, 3
INPUT_NC = LABEL_NC + 1  # + the instance edge map
H, W = 32, 64
BATCH, STEPS = 1, 3
NGF, N_DOWNSAMPLE_GLOBAL, N_BLOCKS_GLOBAL = 8, 2, 2
NGF_LOCAL, N_LOCAL_ENHANCERS, N_BLOCKS_LOCAL = 4, 1, 1
NDF, N_LAYERS_D, NUM_D = 8, 3, 2
NEF, N_DOWNSAMPLE_E, FEAT_NUM = 4, 2, 3
LR, BETA1, BETA2 = 2e-4, 0.5, 0.999
LAMBDA_FEAT = 10.0
SEED = 20
SEEDS = {"global": SEED, "local": SEED + 1, "D": SEED + 2, "vgg": SEED + 3, "E": SEED + 4}
CAP = 256  # values per stored large tensor (fixture_format.sample)




# ---------------------------------------------------------------------------- pix2pixHD_model.py / train.py
def get_edges(t):
    """``Pix2PixHDModel.get_edges`` (on CPU: ``torch.ByteTensor`` for ``torch.cuda.ByteTensor``)."""
    edge = torch.ByteTensor(t.size()).zero_()
    edge[:,:,:,1:] = edge[:,:,:,1:] | (t[:,:,:,1:] != t[:,:,:,:-1])
    edge[:,:,:,:-1] = edge[:,:,:,:-1] | (t[:,:,:,1:] != t[:,:,:,:-1])
    edge[:,:,1:,:] = edge[:,:,1:,:] | (t[:,:,1:,:] != t[:,:,:-1,:])
    edge[:,:,:-1,:] = edge[:,:,:-1,:] | (t[:,:,1:,:] != t[:,:,:-1,:])
    return edge.float()


def encode_input(label_map, inst_map):
    """``Pix2PixHDModel.encode_input``: one-hot labels (``scatter_``) concatenated with the edge map."""
    size = label_map.size()
    input_label = torch.FloatTensor(torch.Size((size[0], LABEL_NC, size[2], size[3]))).zero_()
    input_label = input_label.scatter_(1, label_map.data.long(), 1.0)
    return torch.cat((input_label, get_edges(inst_map)), dim=1)


class Reference:
    """The loss part of ``Pix2PixHDModel`` (``forward`` with pool_size 0, no features) for one dtype."""

    def __init__(self, G, D, vgg, dtype):
        self.G, self.D = G, D
        self.criterionGAN = GANLoss(use_lsgan=True, tensor=lambda size: torch.empty(size, dtype=dtype))
        self.criterionFeat = torch.nn.L1Loss()
        self.criterionVGG = VGGLoss(vgg)

    def discriminate(self, input_label, test_image):
        return self.D.forward(torch.cat((input_label, test_image.detach()), dim=1))

    def forward(self, input_label, real_image):
        fake_image = self.G.forward(input_label)
        pred_fake_pool = self.discriminate(input_label, fake_image)  # fake_pool.query: identity (pool_size 0)
        loss_D_fake = self.criterionGAN(pred_fake_pool, False)
        pred_real = self.discriminate(input_label, real_image)
        loss_D_real = self.criterionGAN(pred_real, True)
        pred_fake = self.D.forward(torch.cat((input_label, fake_image), dim=1))
        loss_G_GAN = self.criterionGAN(pred_fake, True)
        loss_G_GAN_Feat = 0
        feat_weights = 4.0 / (N_LAYERS_D + 1)
        D_weights = 1.0 / NUM_D
        for i in range(NUM_D):
            for j in range(len(pred_fake[i])-1):
                loss_G_GAN_Feat += D_weights * feat_weights * \
                    self.criterionFeat(pred_fake[i][j], pred_real[i][j].detach()) * LAMBDA_FEAT
        loss_G_VGG = self.criterionVGG(fake_image, real_image) * LAMBDA_FEAT
        losses = {"G_GAN": loss_G_GAN, "G_GAN_Feat": loss_G_GAN_Feat, "G_VGG": loss_G_VGG, "D_real": loss_D_real,
                  "D_fake": loss_D_fake}
        return losses, fake_image, pred_fake, pred_real


def train(G, D, vgg, batches, dtype):
    """train.py's loop over `batches` (one step each); per-step records, step 1 with gradients and outputs."""
    ref = Reference(G, D, vgg, dtype)
    optimizer_G = torch.optim.Adam(G.parameters(), lr=LR, betas=(BETA1, BETA2))
    optimizer_D = torch.optim.Adam(D.parameters(), lr=LR, betas=(BETA1, BETA2))
    records = []
    for input_label, real_image in batches:
        losses, fake, pred_fake, pred_real = ref.forward(input_label.to(dtype), real_image.to(dtype))
        loss_D = (losses["D_fake"] + losses["D_real"]) * 0.5
        loss_G = losses["G_GAN"] + losses["G_GAN_Feat"] + losses["G_VGG"]
        optimizer_G.zero_grad()
        loss_G.backward()
        grad_G = {k: p.grad.detach().numpy().copy() for k, p in G.named_parameters()}
        optimizer_G.step()
        optimizer_D.zero_grad()
        loss_D.backward()
        grad_D = {k: p.grad.detach().numpy().copy() for k, p in D.named_parameters()}
        optimizer_D.step()
        rec = {k: v.item() for k, v in losses.items()}
        rec.update(G=loss_G.item(), D=loss_D.item())
        if not records:
            rec.update(grad_G=grad_G, grad_D=grad_D, fake=fake.detach().numpy().copy(),
                       pred_fake=[[t.detach().numpy().copy() for t in scale] for scale in pred_fake],
                       pred_real=[[t.detach().numpy().copy() for t in scale] for scale in pred_real])
        records.append(rec)
    return records


# ---------------------------------------------------------------------------- fixture writing
def kinds_of(net):
    """``(keys, shapes, kinds)`` of a network's state dict: conv kernels N(0, 0.02), biases torch's default."""
    modules = dict(net.named_modules())
    keys, shapes, kinds = [], [], []
    for key, value in net.state_dict().items():
        owner, leaf = key.rsplit(".", 1)
        module = modules[owner]
        if not isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            raise ValueError(key)
        weight = module.weight
        fan_in = weight.shape[1] * weight.shape[2] * weight.shape[3]  # torch: dim 1, for ConvTranspose2d too
        keys.append(key)
        shapes.append(tuple(value.shape))
        kinds.append("conv_weight" if leaf == "weight" else f"torch_bias:{fan_in}")
    return keys, shapes, kinds


def vgg_kinds():
    keys, shapes, kinds = [], [], []
    features = vgg19_features()
    for i in VGG_CONVS:
        w = features[i].weight
        keys += [f"{i}.weight", f"{i}.bias"]
        shapes += [tuple(w.shape), (w.shape[0],)]
        kinds += ["kaiming_fan_out", f"torch_bias:{w.shape[1] * 9}"]
    return keys, shapes, kinds


def nhwc(t):
    return np.ascontiguousarray(np.asarray(t).transpose(0, 2, 3, 1))


def make_batch(rng):
    """An integer label map (5 classes) and instance map from random rectangles, and a float16-exact image."""
    label = np.zeros((H, W), np.int64)
    inst = np.zeros((H, W), np.int64)
    for k in range(7):
        h, w = rng.integers(6, 20), rng.integers(8, 36)
        top, left = rng.integers(0, H - h + 1), rng.integers(0, W - w + 1)
        cls = int(rng.integers(1, LABEL_NC))
        label[top:top + h, left:left + w] = cls
        inst[top:top + h, left:left + w] = cls * 1000 + k if cls >= 3 else cls  # "things" get instance ids
    image = rng.uniform(-1, 1, (BATCH, OUTPUT_NC, H, W)).astype(np.float16).astype(np.float32)
    return label, inst, image


def nets(kind, dtype=torch.float32):
    norm_layer = get_norm_layer("instance")
    if kind == "global":
        G = GlobalGenerator(INPUT_NC, OUTPUT_NC, NGF, N_DOWNSAMPLE_GLOBAL, N_BLOCKS_GLOBAL, norm_layer)
    else:
        G = LocalEnhancer(INPUT_NC, OUTPUT_NC, NGF_LOCAL, N_DOWNSAMPLE_GLOBAL, N_BLOCKS_GLOBAL, N_LOCAL_ENHANCERS,
                          N_BLOCKS_LOCAL, norm_layer)
    D = MultiscaleDiscriminator(INPUT_NC + OUTPUT_NC, NDF, N_LAYERS_D, norm_layer, use_sigmoid=False, num_D=NUM_D,
                                getIntermFeat=True)
    load_numpy(G, initial_state(*kinds_of(G), SEEDS[kind]))
    load_numpy(D, initial_state(*kinds_of(D), SEEDS["D"]))
    features = vgg19_features()
    load_numpy(features, initial_state(*vgg_kinds(), SEEDS["vgg"]))
    vgg = Vgg19(features)
    return G.to(dtype), D.to(dtype), vgg.to(dtype)


def record_keys(out, prefix, net):
    keys, shapes, kinds = kinds_of(net)
    out[f"{prefix}_keys"] = np.array(keys)
    out[f"{prefix}_shapes"] = np.array([",".join(map(str, s)) for s in shapes])
    out[f"{prefix}_kinds"] = np.array(kinds)


def write_run(out, kind, batches):
    G, D, vgg = nets(kind)
    record_keys(out, f"{kind}/G", G)
    if kind == "global":
        record_keys(out, "D", D)
    records = train(G, D, vgg, batches, torch.float32)
    first = records[0]
    p = f"{kind}/"
    out[p + "fake"] = nhwc(first["fake"])
    for who, preds in (("fake", first["pred_fake"]), ("real", first["pred_real"])):
        for k, scale in enumerate(preds):  # k: NVIDIA's result index (scale{NUM_D-1-k}) = tfi2i's list index
            for j, t in enumerate(scale[:-1]):
                out[f"{p}D{k}/{who}/feat{j}"] = sample(t, CAP)  # NCHW, sampled
                out[f"{p}D{k}/{who}/feat{j}_mean_abs"] = np.array(np.abs(t).mean(), np.float32)
            out[f"{p}D{k}/{who}/logits"] = nhwc(scale[-1])
    for name in ("G_GAN", "G_GAN_Feat", "G_VGG", "D_real", "D_fake", "G", "D"):
        out[f"{p}loss_{name}"] = np.array([r[name] for r in records], np.float32)
    for who, grads in (("G", first["grad_G"]), ("D", first["grad_D"])):
        for key, grad in grads.items():
            out[f"{p}grad/{who}/{key}"] = sample(grad, CAP)
            out[f"{p}gradnorm/{who}/{key}"] = np.array(np.linalg.norm(grad), np.float32)

    # the same 3 steps in float64: the exact result, and how far the float32 reference is from it
    G64, D64, vgg64 = nets(kind, torch.float64)
    records64 = train(G64, D64, vgg64, batches, torch.float64)
    for who, grads in (("G", first["grad_G"]), ("D", first["grad_D"])):
        grads64 = records64[0][f"grad_{who}"]
        # relative to each tensor's largest gradient; conv biases before an instance norm (exactly 0 in float64,
        # rounding noise in float32) are left out
        for k, g in grads.items():  # per tensor too (scalars), for the comparison's report
            if np.max(np.abs(grads64[k])) > 1e-10:
                out[f"{p}gradgap/{who}/{k}"] = np.array(np.max(np.abs(g - grads64[k])) / np.max(np.abs(grads64[k])),
                                                        np.float32)
        out[f"{p}gradgap/{who}"] = np.array(max(np.max(np.abs(g - grads64[k])) / np.max(np.abs(grads64[k]))
                                                for k, g in grads.items() if np.max(np.abs(grads64[k])) > 1e-10),
                                            np.float32)
    for name in ("G", "D"):
        out[f"{p}lossgap_{name}"] = np.array(max(abs(a[name] - b[name]) for a, b in zip(records, records64)),
                                             np.float32)
    for who, net, net64 in (("G", G, G64), ("D", D, D64)):
        exact = numpy_state(net64)
        for key, value in numpy_state(net).items():
            out[f"{p}after64/{who}/{key}"] = sample(exact[key], CAP)
            out[f"{p}gap/{who}/{key}"] = np.array(np.max(np.abs(value.astype(np.float64) - exact[key])), np.float32)
    with torch.no_grad():
        label0 = batches[0][0]
        out[p + "fake_after64"] = sample(G64(label0.double()).numpy(), 1024)  # NCHW, sampled
        out[p + "gap_fake_after"] = np.array(np.max(np.abs(nhwc(G(label0)).astype(np.float64) -
                                                           nhwc(G64(label0.double())))), np.float32)
    return records


def write_encoder(out, inst, image):
    E = Encoder(OUTPUT_NC, FEAT_NUM, NEF, N_DOWNSAMPLE_E, get_norm_layer("instance"))
    record_keys(out, "E", E)
    load_numpy(E, initial_state(*kinds_of(E), SEEDS["E"]))
    with torch.no_grad():
        out["E/raw"] = sample(E.model(image).numpy(), 1024)  # NCHW, sampled: before the instance averaging
        out["E/pooled"] = nhwc(E(image, inst))


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(SEED + 1000)
    out = {"seeds": np.array([SEEDS[k] for k in ("global", "local", "D", "vgg", "E")]), "cap": np.array(CAP),
           "config": np.array([LABEL_NC, H, W, NGF, N_DOWNSAMPLE_GLOBAL, N_BLOCKS_GLOBAL, NGF_LOCAL, N_LOCAL_ENHANCERS,
                               N_BLOCKS_LOCAL, NDF, N_LAYERS_D, NUM_D, NEF, N_DOWNSAMPLE_E, FEAT_NUM])}
    vk = vgg_kinds()
    out["vgg_keys"], out["vgg_shapes"], out["vgg_kinds"] = (
        np.array(vk[0]), np.array([",".join(map(str, s)) for s in vk[1]]), np.array(vk[2]))
    labels, insts, images, batches = [], [], [], []
    for _ in range(STEPS):
        label, inst, image = make_batch(rng)
        labels.append(label)
        insts.append(inst)
        images.append(image)
        input_label = encode_input(torch.from_numpy(label)[None, None], torch.from_numpy(inst)[None, None])
        batches.append((input_label, torch.from_numpy(image)))
    out["label_ids"] = np.stack(labels).astype(np.uint8)[..., None]  # [STEPS, H, W, 1]
    out["inst_ids"] = np.stack(insts).astype(np.int16)[..., None]
    out["image"] = np.concatenate([nhwc(i) for i in images]).astype(np.float16)  # exact
    out["input_label"] = np.concatenate([nhwc(b[0].numpy()) for b in batches]).astype(np.uint8)  # one-hot + edges
    for kind in ("global", "local"):
        records = write_run(out, kind, batches)
        terms = {k: round(records[0][k], 5) for k in ("G_GAN", "G_GAN_Feat", "G_VGG", "D_real", "D_fake")}
        print(f"{kind}: step losses G {[round(r['G'], 5) for r in records]} D {[round(r['D'], 5) for r in records]}; "
              f"terms step 1 {terms}")
    write_encoder(out, torch.from_numpy(insts[0])[None, None], torch.from_numpy(images[0]))
    path = os.path.join(HERE, "pix2pixhd_small.npz")
    np.savez_compressed(path, **out)
    gaps = {k: float(v) for k, v in out.items() if "gap" in k and "/gap/" not in k and v.ndim == 0 and
            not k.split("/")[-1].endswith(("weight", "bias"))}
    print(f"{path}: {os.path.getsize(path) / 1024:.0f} KB; float32 vs float64 gaps {gaps}; "
          f"max weight gap {max(float(v) for k, v in out.items() if '/gap/' in k):.3g}")


if __name__ == "__main__":
    main()
