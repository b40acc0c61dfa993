"""PyTorch pix2pix weights (junyanz/pytorch-CycleGAN-and-pix2pix) -> tfi2i networks, and ``tfi2i import-reference``.

A state dict is a ``{key: numpy array}`` (what ``torch.load(".pth")`` gives,
``.numpy()``-ed, or an ``.npz`` of it). The reference's keys follow its module
nesting (models/networks.py):

* ``UnetGenerator``: the outermost ``UnetSkipConnectionBlock`` is
  ``model.model.`` = ``[downconv, submodule, uprelu, upconv, tanh]``; a middle
  block ``[downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm(,
  dropout)]``; the innermost ``[downrelu, downconv, uprelu, upconv, upnorm]``.
  Block ``k`` (1 = outermost) is ``model.model.1.model.3.model. ... `` and maps
  onto tfi2i's ``down{k}`` / ``down{k}_norm`` / ``up{k}`` / ``up{k}_norm``.
* ``NLayerDiscriminator``: ``model.<i>`` in its ``Sequential``: ``conv1`` is
  ``model.0``, ``conv{n+1}`` / ``conv{n+1}_norm`` are ``model.{3n-1}`` /
  ``model.{3n}``, the last conv ``model.{3 n_layers + 2}``.

Layouts: ``Conv2d`` weights ``(out, in, kh, kw)`` -> Keras ``(kh, kw, in,
out)``; ``ConvTranspose2d`` weights ``(in, out, kh, kw)`` -> Keras
``Conv2DTranspose`` ``(kh, kw, out, in)``: both are ``transpose(2, 3, 1, 0)``
and neither needs a spatial flip (both frameworks define the transposed conv
as the gradient of their cross-correlation). Padding: PyTorch
``ConvTranspose2d(4, stride 2, padding 1)`` and Keras ``Conv2DTranspose(4, 2,
"same")`` give the same ``2H x 2W`` output for every input size (TF's SAME
puts 1 + 1 rows of padding on the forward conv of a ``2H`` map); PyTorch
``Conv2d(4, 2, padding 1)`` and Keras ``Conv2D(4, 2, "same")`` agree on even
sizes (all a U-Net sees: sizes are multiples of ``2**depth``); on an odd size
SAME pads 1 + 2 and gives one more row. Checked in
tests/test_reference_pix2pix.py against PyTorch outputs. Batch norm:
``weight, bias, running_mean, running_var`` -> ``gamma, beta, moving_mean,
moving_variance`` (``num_batches_tracked`` is dropped).

pix2pixHD (NVIDIA/pix2pixHD, `load_pix2pixhd_generator`,
`load_multiscale_discriminator`): `tfi2i.networks.pix2pixhd` names its layers
after NVIDIA's state-dict keys, so the map is by name (`pix2pixhd_key`: dots
for underscores, NVIDIA's ``model1_2`` / ``scale0_layer1`` / ``conv_block``
kept); the layouts are the ones above (its ``ConvTranspose2d(3, 2, padding 1,
output_padding 1)`` is a VALID ``Conv2DTranspose`` plus a crop: the kernel
maps the same way). Checked in tests/test_reference_pix2pixhd.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

import numpy as np


class ConversionError(ValueError):
    """A state dict that does not fit the network (first mismatching key and shape named)."""


# ------------------------------------------------------------------ reading
def read_state_dict(path) -> dict:
    """``{key: float32/int array}`` from a ``.pth`` / ``.pt`` (needs torch) or an ``.npz`` of the state dict.

    A ``module.`` prefix (``nn.DataParallel``) is stripped and
    ``num_batches_tracked`` dropped.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: no such file")
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            raw = {k: np.asarray(data[k]) for k in data.files}
    else:
        try:
            import torch
        except ImportError:
            raise ConversionError(
                f"reading {path} needs PyTorch: pip install torch (only to read the file; or save the state dict "
                "as .npz: np.savez(out, **{k: v.numpy() for k, v in torch.load(path).items()}))"
            ) from None
        obj = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(obj, dict):
            raise ConversionError(f"{path} holds a {type(obj).__name__}, not a state dict")
        raw = {k: v.detach().cpu().numpy() for k, v in obj.items() if hasattr(v, "detach")}
    out = {}
    for key, value in raw.items():
        key = key[len("module."):] if key.startswith("module.") else key
        if not key.endswith("num_batches_tracked"):
            out[key] = value
    return out


# ------------------------------------------------------------------ key maps
def _unet_prefix(k):
    return "model.model." if k == 1 else "model.model.1.model." + "3.model." * (k - 2)


def unet_keys(depth, batch_norm):
    """``[(tfi2i layer name, kind, torch module key)]`` of a depth-`depth` U-Net; kind conv | deconv | bn."""
    entries = []
    for k in range(1, depth + 1):
        p = _unet_prefix(k)
        if k == 1:
            entries += [("down1", "conv", p + "0"), ("up1", "deconv", p + "3")]
        elif k < depth:
            entries += [(f"down{k}", "conv", p + "1"), (f"down{k}_norm", "bn", p + "2"),
                        (f"up{k}", "deconv", p + "5"), (f"up{k}_norm", "bn", p + "6")]
        else:
            entries += [(f"down{k}", "conv", p + "1"), (f"up{k}", "deconv", p + "3"), (f"up{k}_norm", "bn", p + "4")]
    return [e for e in entries if e[1] != "bn" or batch_norm]


def patchgan_keys(n_layers, batch_norm):
    """``[(tfi2i layer name, kind, torch module key)]`` of an ``NLayerDiscriminator``."""
    entries = [("conv1", "conv", "model.0")]
    for n in range(1, n_layers + 1):
        entries += [(f"conv{n + 1}", "conv", f"model.{3 * n - 1}"), (f"conv{n + 1}_norm", "bn", f"model.{3 * n}")]
    entries.append((f"conv{n_layers + 2}", "conv", f"model.{3 * n_layers + 2}"))
    return [e for e in entries if e[1] != "bn" or batch_norm]


_BN = (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"), ("running_var", "moving_variance"))


def _pairs(model, entries):
    """``[(torch key, keras variable, kind)]`` for the layers of `model` named in `entries`."""
    out = []
    for layer_name, kind, key in entries:
        layer = model.get_layer(layer_name)
        if kind == "bn":
            out += [(f"{key}.{t}", getattr(layer, k), "vector") for t, k in _BN]
        else:
            out.append((f"{key}.weight", layer.kernel, kind))
            if layer.use_bias:
                out.append((f"{key}.bias", layer.bias, "vector"))
    return out


def _is_batch_norm(model):
    import keras

    return any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)


def unet_pairs(generator):
    """``[(torch key, keras variable, kind)]`` of a tfi2i U-Net (its depth and norm read from the model)."""
    depth = sum(1 for layer in generator.layers if layer.name.startswith("down") and layer.name[4:].isdigit())
    return _pairs(generator, unet_keys(depth, _is_batch_norm(generator)))


def patchgan_pairs(discriminator):
    """``[(torch key, keras variable, kind)]`` of a tfi2i PatchGAN."""
    convs = sum(1 for layer in discriminator.layers if layer.name.startswith("conv") and layer.name[4:].isdigit())
    return _pairs(discriminator, patchgan_keys(convs - 2, _is_batch_norm(discriminator)))


def to_keras(kind, array):
    """A PyTorch-layout array as the Keras variable wants it (conv and deconv: ``transpose(2, 3, 1, 0)``)."""
    array = np.asarray(array, np.float32)
    return array.transpose(2, 3, 1, 0) if kind in ("conv", "deconv") else array


def to_torch(kind, array):
    """The inverse of `to_keras`: a Keras variable's value in PyTorch layout."""
    array = np.asarray(array, np.float32)
    return array.transpose(3, 2, 0, 1) if kind in ("conv", "deconv") else array


def _assign(pairs, state_dict, what):
    expected = {key for key, _, _ in pairs}
    for key, var, kind in pairs:
        if key not in state_dict:
            raise ConversionError(f"not a {what} state dict: key {key!r} (shape {tuple(to_torch(kind, np.zeros(var.shape)).shape)}) "
                                  f"is missing (the file's first keys: {list(state_dict)[:3]})")
        value = to_keras(kind, state_dict[key])
        if tuple(value.shape) != tuple(var.shape):
            want = tuple(to_torch(kind, np.zeros(var.shape)).shape)
            raise ConversionError(f"not a {what} state dict: key {key!r} has shape {tuple(state_dict[key].shape)}, "
                                  f"expected {want}")
    extra = [k for k in state_dict if k not in expected and not _ignorable(k)]
    if extra:
        raise ConversionError(f"not a {what} state dict: unexpected key {extra[0]!r} with shape "
                              f"{tuple(np.shape(state_dict[extra[0]]))} ({len(extra)} unexpected keys)")
    for key, var, kind in pairs:
        var.assign(to_keras(kind, state_dict[key]))


def _ignorable(key):
    # pre-0.4 / track_running_stats InstanceNorm checkpoints carry running stats the network does not use
    return key.endswith(("running_mean", "running_var"))


def load_unet(generator, state_dict):
    """Assigns a reference ``UnetGenerator`` state dict to a tfi2i U-Net (same depth, ngf, norm, channels)."""
    _assign(unet_pairs(generator), state_dict, f"pix2pix U-Net ({generator.name})")
    return generator


def load_patchgan(discriminator, state_dict):
    """Assigns a reference ``NLayerDiscriminator`` state dict to a tfi2i PatchGAN."""
    _assign(patchgan_pairs(discriminator), state_dict, f"PatchGAN ({discriminator.name})")
    return discriminator


def unet_state_dict(generator):
    """A tfi2i U-Net's weights as the reference's state dict (PyTorch layout)."""
    return {key: to_torch(kind, var.numpy()) for key, var, kind in unet_pairs(generator)}


def patchgan_state_dict(discriminator):
    return {key: to_torch(kind, var.numpy()) for key, var, kind in patchgan_pairs(discriminator)}


# ------------------------------------------------------------------ pix2pixHD (NVIDIA/pix2pixHD), by name
def pix2pixhd_key(layer_name):
    """The NVIDIA state-dict module key of a `tfi2i.networks.pix2pixhd` / `feature_encoder` layer name.

    Our names are NVIDIA's keys with dots replaced by underscores, except in
    NVIDIA's own underscored names (``model{n}_1`` / ``model{n}_2``,
    ``scale{i}_layer{j}``, ``conv_block``): ``model_13_conv_block_5`` ->
    ``model.13.conv_block.5``, ``model1_2_0_conv_block_1`` ->
    ``model1_2.0.conv_block.1``, ``scale1_layer2_0`` -> ``scale1_layer2.0``.
    """
    key = layer_name.replace("_", ".").replace("conv.block", "conv_block")
    key = re.sub(r"^model(\d+)\.([12])(?=\.|$)", r"model\1_\2", key)
    return re.sub(r"^scale(\d+)\.layer(\d+)(?=\.|$)", r"scale\1_layer\2", key)


def _pix2pixhd_kind(layer):
    import keras

    if isinstance(layer, keras.layers.Conv2DTranspose):
        return "deconv"
    if isinstance(layer, keras.layers.Conv2D):
        return "conv"
    if isinstance(layer, keras.layers.BatchNormalization):
        return "bn"
    return None


def pix2pixhd_pairs(model):
    """``[(torch key, keras variable, kind)]`` of a pix2pixHD network (global / local G, one D scale, encoder E).

    Every layer holding weights is mapped by name (`pix2pixhd_key`): convs
    (``weight``, ``bias``), transposed convs, batch norms (``weight, bias,
    running_mean, running_var``). Instance norm (non-affine) holds none.
    """
    entries = []
    for layer in model.layers:
        if not layer.weights:
            continue
        kind = _pix2pixhd_kind(layer)
        if kind is None:
            raise ConversionError(f"{model.name}: layer {layer.name!r} ({type(layer).__name__}) holds weights but has "
                                  "no pix2pixHD counterpart")
        entries.append((layer.name, kind, pix2pixhd_key(layer.name)))
    return _pairs(model, entries)


def pix2pixhd_generator_pairs(generator):
    """``[(torch key, keras variable, kind)]`` of a tfi2i ``GlobalGenerator`` / ``LocalEnhancer`` (or ``Encoder``)."""
    return pix2pixhd_pairs(generator)


def multiscale_discriminator_pairs(discriminators):
    """``[(torch key, keras variable, kind)]`` of a tfi2i multi-scale D (the list `multiscale_discriminator` returns).

    Its entry ``k`` has NVIDIA's ``scale{num_D-1-k}_layer*`` names, so the
    pairs of all entries together are NVIDIA's ``MultiscaleDiscriminator``
    state dict (``getIntermFeat``).
    """
    return [pair for d in discriminators for pair in pix2pixhd_pairs(d)]


def load_pix2pixhd_generator(generator, state_dict):
    """Assigns an NVIDIA ``GlobalGenerator`` / ``LocalEnhancer`` (``netG``) state dict to a tfi2i generator.

    Same architecture needed (ngf, n_downsample, blocks, channels); the first
    missing, unexpected or mis-shaped key is named in the `ConversionError`.
    Also loads an ``Encoder`` (``netE``) state dict into `tfi2i.networks.feature_encoder.feature_encoder`.
    """
    _assign(pix2pixhd_generator_pairs(generator), state_dict, f"pix2pixHD generator ({generator.name})")
    return generator


def load_multiscale_discriminator(discriminators, state_dict):
    """Assigns an NVIDIA ``MultiscaleDiscriminator`` (``getIntermFeat``; ``netD``) state dict to tfi2i's list of Ds."""
    _assign(multiscale_discriminator_pairs(discriminators), state_dict, "pix2pixHD multi-scale discriminator")
    return discriminators


def pix2pixhd_generator_state_dict(generator):
    """A tfi2i pix2pixHD generator's (or encoder's) weights as NVIDIA's state dict (PyTorch layout)."""
    return {key: to_torch(kind, var.numpy()) for key, var, kind in pix2pixhd_generator_pairs(generator)}


def multiscale_discriminator_state_dict(discriminators):
    """tfi2i's multi-scale D as NVIDIA's ``MultiscaleDiscriminator`` state dict."""
    return {key: to_torch(kind, var.numpy()) for key, var, kind in multiscale_discriminator_pairs(discriminators)}


# ------------------------------------------------------------------ architecture from a state dict
def unet_architecture(state_dict):
    """``{"depth", "ngf", "batch_norm", "input_channels", "output_channels"}`` read off a U-Net state dict."""
    first = "model.model.0.weight"
    if first not in state_dict:
        raise ConversionError(f"not a pix2pix U-Net state dict: no key {first!r} (the outermost down conv); "
                              f"the file's first key is {next(iter(state_dict), None)!r}")
    depth = 1
    while any(k.startswith(_unet_prefix(depth + 1)) for k in state_dict):
        depth += 1
    w = np.shape(state_dict[first])
    out_key = "model.model.3.weight"
    if out_key not in state_dict:
        raise ConversionError(f"not a pix2pix U-Net state dict: no key {out_key!r} (the outermost up conv)")
    return {"depth": depth, "ngf": int(w[0]), "input_channels": int(w[1]),
            "output_channels": int(np.shape(state_dict[out_key])[1]),
            "batch_norm": f"{_unet_prefix(2)}2.weight" in state_dict}


def patchgan_architecture(state_dict):
    """``{"n_layers", "ndf", "batch_norm", "input_channels"}`` of an ``NLayerDiscriminator`` state dict."""
    if "model.0.weight" not in state_dict:
        raise ConversionError(f"not a PatchGAN state dict: no key 'model.0.weight'; first key "
                              f"{next(iter(state_dict), None)!r}")
    last = max(int(k.split(".")[1]) for k in state_dict if k.startswith("model.") and k.split(".")[1].isdigit())
    w = np.shape(state_dict["model.0.weight"])
    return {"n_layers": (last - 2) // 3, "ndf": int(w[0]), "input_channels": int(w[1]),
            "batch_norm": "model.3.weight" in state_dict}


def _unet_name(depth):
    return {7: "unet_128", 8: "unet_256"}.get(depth, f"unet_{depth}")


# ------------------------------------------------------------------ import-reference
def _check_new_workdir(workdir):
    ckpt_dir = os.path.join(workdir, "checkpoints")
    if os.path.isdir(ckpt_dir) and os.listdir(ckpt_dir):
        raise ConversionError(f"{workdir} already holds a run with checkpoints; choose another --workdir")


def _write_run(workdir, cfg, model, checkpoint, discriminator, reference, arch):
    """Writes an imported model as a run directory: ``config.json``, ``imported.json``, checkpoint 0 (its path)."""
    from tfi2i import config as config_lib
    from tfi2i.checkpoint import TrainingState, model_objects

    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(config_lib.to_json(cfg))
    with open(os.path.join(workdir, "imported.json"), "w") as f:
        json.dump({"generator": os.path.abspath(checkpoint),
                   "discriminator": os.path.abspath(discriminator) if discriminator else None,
                   "reference": reference, "architecture": arch}, f, indent=2)
    return TrainingState(os.path.join(workdir, "checkpoints"), keep=1, **model_objects(model)).save(step=0, epoch=0)


def import_reference(checkpoint, workdir, netG=None, norm=None, ngf=None, input_nc=None, output_nc=None,
                     dropout=0.5, discriminator=None, n_layers_D=None, ndf=None, name="pix2pix_imported"):
    """Turns a reference ``*_net_G.pth`` (or ``.npz``) into a tfi2i run directory; returns the checkpoint path.

    The architecture is read from the state dict (depth, ngf, channels, batch
    norm or not); explicit arguments must agree with it. Without batch norm the
    file cannot tell instance norm from none: ``norm`` (default ``instance``)
    decides. `discriminator` optionally names the matching ``*_net_D.pth``.
    """
    import dataclasses

    from tfi2i import config as config_lib

    sd = read_state_dict(checkpoint)
    arch = unet_architecture(sd)
    found_norm = "batch" if arch["batch_norm"] else (norm if norm in ("instance", "none") else "instance")
    if norm is not None and (norm == "batch") != arch["batch_norm"]:
        raise ConversionError(f"--norm {norm}, but {checkpoint} {'has' if arch['batch_norm'] else 'has no'} "
                              "batch-norm weights")
    from tfi2i.networks.unet import unet_depth

    if netG is not None and unet_depth(netG) != arch["depth"]:
        raise ConversionError(f"--netG {netG} has depth {unet_depth(netG)}, but {checkpoint} holds a depth-"
                              f"{arch['depth']} U-Net ({_unet_name(arch['depth'])})")
    for flag, given, key in (("--ngf", ngf, "ngf"), ("--input-nc", input_nc, "input_channels"),
                             ("--output-nc", output_nc, "output_channels")):
        if given is not None and int(given) != arch[key]:
            raise ConversionError(f"{flag} {given}, but {checkpoint} has {arch[key]}")
    gen = config_lib.GeneratorConfig(name=netG or _unet_name(arch["depth"]), ngf=arch["ngf"], norm=found_norm,
                                     dropout=float(dropout), input_channels=arch["input_channels"],
                                     output_channels=arch["output_channels"])
    disc = dataclasses.replace(config_lib.DiscriminatorConfig(), norm=found_norm)
    d_sd = None
    if discriminator is not None:
        d_sd = read_state_dict(discriminator)
        d_arch = patchgan_architecture(d_sd)
        disc = dataclasses.replace(disc, ndf=ndf or d_arch["ndf"], n_layers=n_layers_D or d_arch["n_layers"],
                                   norm=found_norm if d_arch["batch_norm"] == arch["batch_norm"] else
                                   ("batch" if d_arch["batch_norm"] else "instance"))
    elif ndf is not None or n_layers_D is not None:
        disc = dataclasses.replace(disc, ndf=ndf or disc.ndf, n_layers=n_layers_D or disc.n_layers)
    cfg = dataclasses.replace(config_lib.Config(), name=name, generator=gen, discriminator=disc)

    _check_new_workdir(workdir)
    from tfi2i.pix2pix import build

    model = build(cfg)
    load_unet(model.generator, sd)
    if d_sd is not None:
        load_patchgan(model.discriminator, d_sd)
    return _write_run(workdir, cfg, model, checkpoint, discriminator, "junyanz/pytorch-CycleGAN-and-pix2pix", arch)


def _conv_indices(state_dict, prefix):
    """Sorted ints ``i`` with a ``{prefix}.{i}.weight`` of rank 4 (a conv or transposed conv of a Sequential)."""
    out = set()
    for key, value in state_dict.items():
        m = re.fullmatch(re.escape(prefix) + r"\.(\d+)\.weight", key)
        if m and np.ndim(value) == 4:
            out.add(int(m.group(1)))
    return sorted(out)


def _blocks(state_dict, prefix):
    return len({int(m.group(1)) for k in state_dict
                if (m := re.fullmatch(re.escape(prefix) + r"\.(\d+)\.conv_block\.1\.weight", k))})


def pix2pixhd_architecture(state_dict):
    """NVIDIA ``netG`` options read off its state dict: ``netG``, ``ngf``, ``n_downsample_global``,
    ``n_blocks_global``, ``n_local_enhancers``, ``n_blocks_local``, ``input_nc``, ``output_nc``, ``norm``."""
    if "model.1.weight" not in state_dict:
        raise ConversionError(f"not a pix2pixHD generator state dict: no key 'model.1.weight' (the first 7x7 conv); "
                              f"the file's first key is {next(iter(state_dict), None)!r}")
    n_local = 0
    while f"model{n_local + 1}_1.1.weight" in state_dict:
        n_local += 1
    convs = _conv_indices(state_dict, "model")
    first = np.shape(state_dict["model.1.weight"])
    down = 0
    while 4 + 3 * down in convs and np.shape(state_dict[f"model.{4 + 3 * down}.weight"])[0] == 2 * int(
            np.shape(state_dict[f"model.{1 + 3 * down if down else 1}.weight"])[0]):
        down += 1
    arch = {"netG": "local" if n_local else "global", "n_downsample_global": down,
            "n_blocks_global": _blocks(state_dict, "model"), "n_local_enhancers": max(n_local, 1),
            "norm": "batch" if any(k.endswith("running_mean") for k in state_dict) else "instance"}
    if n_local:
        top = np.shape(state_dict[f"model{n_local}_1.1.weight"])
        last = _conv_indices(state_dict, f"model{n_local}_2")[-1]
        arch.update(ngf=int(top[0]), input_nc=int(top[1]), n_blocks_local=_blocks(state_dict, f"model{n_local}_2"),
                    output_nc=int(np.shape(state_dict[f"model{n_local}_2.{last}.weight"])[0]))
    else:
        arch.update(ngf=int(first[0]), input_nc=int(first[1]), n_blocks_local=3,
                    output_nc=int(np.shape(state_dict[f"model.{convs[-1]}.weight"])[0]))
    return arch


def multiscale_discriminator_architecture(state_dict):
    """``{"num_D", "n_layers_D", "ndf", "input_nc"}`` of an NVIDIA ``MultiscaleDiscriminator`` (getIntermFeat)."""
    scales = {int(m.group(1)) for k in state_dict if (m := re.match(r"scale(\d+)_layer\d+\.", k))}
    if "scale0_layer0.0.weight" not in state_dict:
        raise ConversionError("not a pix2pixHD multi-scale discriminator state dict (getIntermFeat): no key "
                              f"'scale0_layer0.0.weight'; first key {next(iter(state_dict), None)!r}")
    layers = {int(m.group(1)) for k in state_dict if (m := re.match(r"scale0_layer(\d+)\.", k))}
    w = np.shape(state_dict["scale0_layer0.0.weight"])
    return {"num_D": len(scales), "n_layers_D": len(layers) - 2, "ndf": int(w[0]), "input_nc": int(w[1])}


def import_pix2pixhd(checkpoint, workdir, label_nc=35, no_instance=False, discriminator=None,
                     name="pix2pixhd_imported"):
    """Turns NVIDIA's ``latest_net_G.pth`` (and optionally ``latest_net_D.pth``) into a tfi2i pix2pixHD run.

    The networks' options are read from the files (`pix2pixhd_architecture`);
    ``label_nc`` (``--label_nc``, 0: RGB input) and ``no_instance`` say how the
    input channels split (labels, then the instance boundary map). Returns the
    checkpoint path; ``tfi2i export / translate / evaluate --workdir`` take it.
    """
    import dataclasses

    from tfi2i import config as config_lib
    from tfi2i.pix2pixhd import HDSection, Pix2PixHDConfig, build

    sd = read_state_dict(checkpoint)
    arch = pix2pixhd_architecture(sd)
    expected = (int(label_nc) if label_nc else 3) + (0 if no_instance else 1)
    if arch["input_nc"] != expected:
        raise ConversionError(
            f"{checkpoint}: the generator takes {arch['input_nc']} input channels, but --label-nc {label_nc}"
            f"{' --no-instance' if no_instance else ''} means {expected} "
            f"({label_nc or 3} {'labels' if label_nc else 'RGB channels'}{'' if no_instance else ' + 1 instance edge map'}); "
            "a generator trained with --instance_feat / --label_feat (feature channels) is not supported yet")
    hd = HDSection(netG=arch["netG"], ngf=arch["ngf"], n_downsample_global=arch["n_downsample_global"],
                   n_blocks_global=arch["n_blocks_global"], n_local_enhancers=arch["n_local_enhancers"],
                   n_blocks_local=arch["n_blocks_local"], norm=arch["norm"])
    d_sd = None
    if discriminator is not None:
        d_sd = read_state_dict(discriminator)
        d_arch = multiscale_discriminator_architecture(d_sd)
        if d_arch["input_nc"] != expected + arch["output_nc"]:
            raise ConversionError(f"{discriminator}: the discriminator takes {d_arch['input_nc']} channels, the "
                                  f"generator's condition + output are {expected + arch['output_nc']}")
        hd = dataclasses.replace(hd, num_d=d_arch["num_D"], n_layers_d=d_arch["n_layers_D"], ndf=d_arch["ndf"])
    data = config_lib.DataConfig(
        x_kind="labels" if label_nc else "rgb", num_classes=int(label_nc), instances="" if no_instance else "inst",
        resize_or_crop="none", size_multiple=2 ** (arch["n_downsample_global"]
                                                   + (arch["n_local_enhancers"] if arch["netG"] == "local" else 0)))
    cfg = Pix2PixHDConfig(name=name, builder="tfi2i.pix2pixhd:build", data=data,
                          generator=dataclasses.replace(config_lib.GeneratorConfig(), output_channels=arch["output_nc"]),
                          loss=config_lib.LossConfig(gan_mode="lsgan", weights={
                              "g_gan": 1.0, "g_feat": 10.0, "g_vgg": 10.0, "d_real": 0.5, "d_fake": 0.5}),
                          optim=config_lib.OptimConfig(decay_rule="pix2pixhd"), hd=hd)
    _check_new_workdir(workdir)
    model = build(cfg)
    load_pix2pixhd_generator(model.generator, sd)
    if d_sd is not None:
        load_multiscale_discriminator(model.discriminators, d_sd)
    return _write_run(workdir, cfg, model, checkpoint, discriminator, "NVIDIA/pix2pixHD", arch)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``import-reference`` subcommand."""
    p = subparsers.add_parser(
        "import-reference",
        help="turn a trained junyanz pix2pix or NVIDIA pix2pixHD generator (.pth / .npz) into a tfi2i run directory",
        description="Reads a pytorch-CycleGAN-and-pix2pix UnetGenerator state dict (latest_net_G.pth; .pth needs "
        "torch, .npz does not), writes W/config.json and a checkpoint that tfi2i export/translate/evaluate "
        "restore. The architecture is read from the file; the flags only check it (and pick instance vs no "
        "norm, which the file cannot tell apart).",
    )
    p.add_argument("--reference", choices=("pix2pix", "pix2pixhd"), default="pix2pix",
                   help="pix2pix: junyanz UnetGenerator (default); pix2pixhd: NVIDIA GlobalGenerator / LocalEnhancer")
    p.add_argument("--label-nc", type=int, default=35,
                   help="pix2pixhd: --label_nc of the run (0: RGB input; default 35, Cityscapes)")
    p.add_argument("--no-instance", action="store_true", help="pix2pixhd: the run was trained with --no_instance")
    p.add_argument("--checkpoint", required=True, metavar="PTH", help="the generator's state dict (.pth or .npz)")
    p.add_argument("--workdir", required=True, metavar="W", help="run directory to create")
    p.add_argument("--discriminator", default=None, metavar="PTH", help="optional latest_net_D.pth / .npz")
    p.add_argument("--netG", default=None, help="unet_128 | unet_256 | unet_<depth> (default: from the file)")
    p.add_argument("--norm", choices=("batch", "instance", "none"), default=None,
                   help="default: batch when the file has batch-norm weights, else instance")
    p.add_argument("--ngf", type=int, default=None)
    p.add_argument("--input-nc", type=int, default=None)
    p.add_argument("--output-nc", type=int, default=None)
    p.add_argument("--n-layers-D", type=int, default=None)
    p.add_argument("--ndf", type=int, default=None)
    p.add_argument("--no-dropout", action="store_true", help="the model was trained with --no_dropout")
    p.add_argument("--name", default="pix2pix_imported", help="the run's config name")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    try:
        if args.reference == "pix2pixhd":
            path = import_pix2pixhd(args.checkpoint, args.workdir, label_nc=args.label_nc,
                                    no_instance=args.no_instance, discriminator=args.discriminator,
                                    name=args.name if args.name != "pix2pix_imported" else "pix2pixhd_imported")
            print(path)
            return 0
        path = import_reference(args.checkpoint, args.workdir, netG=args.netG, norm=args.norm, ngf=args.ngf,
                                input_nc=args.input_nc, output_nc=args.output_nc,
                                dropout=0.0 if args.no_dropout else 0.5, discriminator=args.discriminator,
                                n_layers_D=args.n_layers_D, ndf=args.ndf, name=args.name)
    except (ConversionError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


__all__ = ["ConversionError", "import_pix2pixhd", "import_reference", "multiscale_discriminator_architecture",
           "pix2pixhd_architecture", "load_multiscale_discriminator", "load_patchgan",
           "load_pix2pixhd_generator", "load_unet", "multiscale_discriminator_pairs",
           "multiscale_discriminator_state_dict", "patchgan_architecture", "patchgan_state_dict",
           "pix2pixhd_generator_pairs", "pix2pixhd_generator_state_dict", "pix2pixhd_key", "pix2pixhd_pairs",
           "read_state_dict", "to_keras", "to_torch", "unet_architecture", "unet_state_dict"]
