"""tfi2i's pix2pixHD against NVIDIA/pix2pixHD (commit 14b3b3c), through a fixture written by PyTorch.

The fixture (tests/reference/pix2pixhd_small.npz) comes from
tests/reference/make_pix2pixhd_fixtures.py (run with a torch venv; torch is not
needed here). Setting: label_nc 5 + instance edges, 32 x 64 (H x W), batch 1,
instance norm; global G ngf 8, n_downsample_global 2, n_blocks_global 2; local
enhancer ngf 4, 1 enhancer, n_blocks_local 1; multi-scale D ndf 8, n_layers_D 3,
num_D 2 (getIntermFeat), lsgan, lambda_feat 10, a random VGG-19 (torchvision
layout, fed the [-1, 1] image raw as NVIDIA's ``VGGLoss`` does); encoder nef 4,
n_downsample_E 2, feat_num 3. Initial weights are regenerated from the
fixture's key lists and seeds (`fixture_format.initial_state`).

Checked: the one-hot + boundary-map input (``encode_input`` / ``get_edges``);
the converter (`tfi2i.convert.load_pix2pixhd_generator`,
`load_multiscale_discriminator`: NVIDIA's keys by name, layouts, errors); G's
outputs, every D scale's features and logits, E's output and its instance-wise
average; every loss term of ``Pix2PixHDModel.forward`` (with tfi2i's loss
functions) and the gradients of ``loss_G`` / ``loss_D``; 3 training steps of
`tfi2i.pix2pixhd.Pix2PixHD.train_step` (`TorchAdam`) in train.py's order, a
different batch each step, against the reference run in float64.

Each comparison prints ``MAXDIFF <what> <value>`` (run with ``-s`` to see them).
"""

import functools
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.reference.fixture_format import initial_state, sample
from tfi2i import convert
from tfi2i.data.labels import instance_edges, one_hot
from tfi2i.networks import pix2pixhd as hd

HERE = Path(__file__).parent / "reference"
RUNS = ("global", "local")
SEED_INDEX = {"global/G": 0, "local/G": 1, "D": 2, "vgg": 3, "E": 4}
LABEL_NC, N_LAYERS_D, LAMBDA_FEAT = 5, 3, 10.0
WEIGHTS = {"g_gan": 1.0, "g_feat": LAMBDA_FEAT, "g_vgg": LAMBDA_FEAT, "d_real": 0.5, "d_fake": 0.5}
FORWARD_TOL = 1e-5  # outputs, features, logits, losses (features, logits, losses: times max(1, |value|))
# Gradients: relative to the tensor's largest gradient. Measured up to 2.1e-5 (the local enhancer's full-size 7x7
# input conv, model1_1.1; ~1e-5 on the other 7x7 convs): TensorFlow's float32 CPU conv backprop rounds more than
# torch's (torch float32 vs float64: <= 3.3e-6); the same tfi2i code run in float64 lands 1.6e-6 from torch's float32
# gradient, i.e. within torch's own rounding of the exact value.
GRAD_TOL = 1e-4
# gradient of a conv bias followed by a non-affine instance norm: 0 up to rounding, on both sides; relative to the
# largest gradient of the layer's kernel (measured: torch 6.5e-6 at most, on the 7x7 input conv: a 32 x 64 sum)
CANCELLED_TOL = 1e-4
# After 3 steps, weights vs the same 3 steps of the reference in float64 (the exact result). Adam (beta1 0.5, batch 1)
# divides each gradient element by its own magnitude, so float32 rounding of small gradient elements becomes
# weight differences: the torch float32 run itself lands up to 3e-6 from float64 on the weights (the fixture's
# ``gap/``; up to 6e-4 = 3 lr on the conv biases an instance norm cancels, whose gradient is pure rounding), and
# its G output after the 3 steps up to 3e-5. tfi2i (float32) must be within AFTER_TOL of float64 (measured 2.6e-8
# on the sampled positions; G output 3e-6).
AFTER_TOL = 1e-5
LR = 2e-4


def report(what, value):
    print(f"MAXDIFF {what} {value:.3g}")
    return value


def max_abs(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


@functools.lru_cache(maxsize=None)
def _load():
    path = HERE / "pix2pixhd_small.npz"
    if not path.is_file():
        return None
    data = dict(np.load(path))
    data["image"] = data["image"].astype(np.float32)  # stored as float16 (exact values)
    return data


def fixture():
    data = _load()
    if data is None:
        pytest.skip("tests/reference/pix2pixhd_small.npz missing: run tests/reference/make_pix2pixhd_fixtures.py")
    return data


def init_weights(data, prefix):
    keys = [str(k) for k in data[f"{prefix}_keys"]]
    shapes = [tuple(int(s) for s in str(v).split(",")) for v in data[f"{prefix}_shapes"]]
    kinds = [str(k) for k in data[f"{prefix}_kinds"]]
    return initial_state(keys, shapes, kinds, int(data["seeds"][SEED_INDEX[prefix]]))


def generator(data, run):
    channels = {"x": LABEL_NC, "instances": 1}
    if run == "global":
        g = hd.global_generator(channels, ngf=8, n_downsample=2, n_blocks=2)
    else:
        g = hd.local_enhancer(channels, ngf=4, n_downsample_global=2, n_blocks_global=2, n_local_enhancers=1,
                              n_blocks_local=1)
    return convert.load_pix2pixhd_generator(g, init_weights(data, f"{run}/G"))


def discriminators(data):
    return convert.load_multiscale_discriminator(hd.multiscale_discriminator(9, ndf=8, n_layers=3, num_d=2),
                                                 init_weights(data, "D"))


_VGG_NAMES = dict(zip((0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28),
                      ("block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1", "block3_conv2",
                       "block3_conv3", "block3_conv4", "block4_conv1", "block4_conv2", "block4_conv3", "block4_conv4",
                       "block5_conv1")))


@functools.lru_cache(maxsize=None)
def vgg():
    """Our VGG-19 features with the fixture's torchvision-layout ``features.{i}`` weights (frozen; built once)."""
    from tfi2i.networks.vgg import vgg19_features

    data = fixture()
    model = vgg19_features(weights=None, input_mapping="none")
    trunk = model.get_layer("vgg19_to_relu5_1")
    state = init_weights(data, "vgg")
    for index, name in _VGG_NAMES.items():
        layer = trunk.get_layer(name)
        layer.kernel.assign(convert.to_keras("conv", state[f"{index}.weight"]))
        layer.bias.assign(state[f"{index}.bias"])
    return model


def batch(data, step):
    """The raw batch of training step `step` (label ids, boundary map, image), as tfi2i's pipeline gives it."""
    return {"x": tf.constant(data["label_ids"][step:step + 1].astype(np.int32)),
            "instances": instance_edges(tf.constant(data["inst_ids"][step:step + 1].astype(np.int32))),
            "y": tf.constant(data["image"][step:step + 1])}


def nchw(t):
    return np.asarray(t).transpose(0, 3, 1, 2)


def cancelled_by_instance_norm(models, var):
    """A conv bias followed by a non-affine instance norm (which subtracts it again).

    The norm of conv layer ``..._{N}`` is layer ``..._{N+1}`` (NVIDIA's ``Sequential`` indices).
    """
    if not var.path.endswith("bias"):
        return False
    layer = var.path.split("/")[-2]
    head, _, index = layer.rpartition("_")
    for model in models:
        names = {lay.name: lay for lay in model.layers}
        if layer in names:
            norm = names.get(f"{head}_{int(index) + 1}")
            return norm is not None and "Normalization" in type(norm).__name__
    return False


# ----------------------------------------------------------------------------- inputs
def test_one_hot_and_instance_edges_match_encode_input():
    data = fixture()
    labels = one_hot(tf.constant(data["label_ids"].astype(np.int32)), LABEL_NC).numpy()
    edges = instance_edges(tf.constant(data["inst_ids"].astype(np.int32))).numpy()
    want = data["input_label"].astype(np.float32)  # NVIDIA encode_input: scatter_ one-hot, then get_edges
    assert 0 < edges.mean() < 0.5  # the maps do have boundaries (between instances of one class too)
    np.testing.assert_array_equal(labels, want[..., :LABEL_NC])
    np.testing.assert_array_equal(edges, want[..., LABEL_NC:])


# ----------------------------------------------------------------------------- converter
def test_state_dicts_round_trip_with_nvidia_keys():
    data = fixture()
    for run in RUNS:
        g = generator(data, run)
        sd, want = convert.pix2pixhd_generator_state_dict(g), init_weights(data, f"{run}/G")
        assert set(sd) == set(want)  # NVIDIA's keys (the order is Keras' topological one)
        assert all(np.array_equal(sd[k], want[k]) for k in want)
    sd, want = convert.multiscale_discriminator_state_dict(discriminators(data)), init_weights(data, "D")
    assert set(sd) == set(want) and all(np.array_equal(sd[k], want[k]) for k in want)
    assert convert.pix2pixhd_key("model1_2_0_conv_block_5") == "model1_2.0.conv_block.5"
    assert convert.pix2pixhd_key("scale1_layer2_0") == "scale1_layer2.0"
    assert convert.pix2pixhd_key("model_13_conv_block_1") == "model.13.conv_block.1"


def test_converter_errors_name_the_key_and_shapes():
    data = fixture()
    g = hd.global_generator({"x": LABEL_NC, "instances": 1}, ngf=8, n_downsample=2, n_blocks=2)
    state = init_weights(data, "global/G")
    bad = dict(state, **{"model.4.weight": state["model.4.weight"][:, :4]})
    with pytest.raises(convert.ConversionError, match=r"'model\.4\.weight' has shape \(16, 4, 3, 3\), expected "
                                                      r"\(16, 8, 3, 3\)"):
        convert.load_pix2pixhd_generator(g, bad)
    missing = {k: v for k, v in state.items() if k != "model.10.conv_block.5.bias"}
    with pytest.raises(convert.ConversionError, match=r"'model\.10\.conv_block\.5\.bias' \(shape \(32,\)\) is missing"):
        convert.load_pix2pixhd_generator(g, missing)
    with pytest.raises(convert.ConversionError, match=r"unexpected key 'model1_1\.1\.weight'"):
        convert.load_pix2pixhd_generator(g, dict(state, **{"model1_1.1.weight": np.zeros((4, 6, 7, 7), np.float32)}))
    d_state = init_weights(data, "D")
    with pytest.raises(convert.ConversionError, match=r"multi-scale discriminator state dict: key 'scale0_layer0\.0"):
        convert.load_multiscale_discriminator(hd.multiscale_discriminator(9, ndf=8, n_layers=3, num_d=2),
                                              {k: v for k, v in d_state.items() if not k.startswith("scale0_")})


# ----------------------------------------------------------------------------- forward
@pytest.mark.parametrize("run", RUNS)
def test_generator_and_discriminator_outputs(run):
    data = fixture()
    b = batch(data, 0)
    g, ds = generator(data, run), discriminators(data)
    fake = g({"x": one_hot(b["x"], LABEL_NC), "instances": b["instances"]}, training=True)["y"]
    assert report(f"{run} G output", max_abs(fake, data[f"{run}/fake"])) < FORWARD_TOL
    condition = tf.constant(data["input_label"][:1].astype(np.float32))
    fake = tf.constant(data[f"{run}/fake"])  # D on the reference's G(x): D's error alone
    for who, image in (("real", b["y"]), ("fake", fake)):
        outs = hd.judge_scales(ds, tf.concat([condition, image], -1), training=True)
        worst = worst_abs = 0.0
        for k, (features, logits) in enumerate(outs):
            assert len(features) == N_LAYERS_D + 1
            for j, f in enumerate(features + [logits]):
                p = f"{run}/D{k}/{who}/" + (f"feat{j}" if j < len(features) else "logits")
                ours = sample(nchw(f), int(data["cap"])) if j < len(features) else f
                assert ours.shape == data[p].shape, p  # logits: e.g. 7 x 11 at full size (padding 2)
                diff = max_abs(ours, data[p])
                worst_abs = max(worst_abs, diff)
                # instance-normed activations reach ~5: the tolerance scales with the tensor's largest value
                worst = max(worst, diff / max(1.0, float(np.max(np.abs(data[p])))))
                if j < len(features):
                    assert abs(float(np.mean(np.abs(f))) - float(data[p + "_mean_abs"])) < FORWARD_TOL
        report(f"{run} D features and logits ({who} pair, {len(outs)} scales), absolute", worst_abs)
        assert report(f"{run} D features and logits ({who} pair), / max(1, max |value|)", worst) < FORWARD_TOL


def test_feature_encoder_and_instance_average():
    from tfi2i.networks.feature_encoder import feature_encoder, instance_average

    data = fixture()
    e = convert.load_pix2pixhd_generator(feature_encoder(feat_num=3, nef=4, n_downsample=2), init_weights(data, "E"))
    raw = e({"image": tf.constant(data["image"][:1])}, training=True)
    assert report("E output (before pooling)", max_abs(sample(nchw(raw), 1024), data["E/raw"])) < FORWARD_TOL
    pooled = instance_average(raw, tf.constant(data["inst_ids"][:1].astype(np.int32)))
    assert report("E instance-averaged output", max_abs(pooled, data["E/pooled"])) < FORWARD_TOL


# ----------------------------------------------------------------------------- losses, gradients
def objective(g, ds, b, training=True):
    """``Pix2PixHDModel.forward`` written with tfi2i's loss functions: ``(terms as NVIDIA names them, fake)``."""
    condition = tf.concat([one_hot(b["x"], LABEL_NC), b["instances"]], -1)
    fake = g({"x": one_hot(b["x"], LABEL_NC), "instances": b["instances"]}, training=training)["y"]
    d_fake = hd.judge_scales(ds, tf.concat([condition, tf.stop_gradient(fake)], -1), training)
    d_real = hd.judge_scales(ds, tf.concat([condition, b["y"]], -1), training)
    g_fake = hd.judge_scales(ds, tf.concat([condition, fake], -1), training)
    model = vgg()
    mean = tf.reduce_mean  # batch 1: the per-example [B] value is the mean
    terms = {
        "G_GAN": mean(tf.add_n([_ls("g", o[1]) for o in g_fake])),
        "G_GAN_Feat": mean(_feat(g_fake, d_real)) * LAMBDA_FEAT,
        "G_VGG": mean(_vgg_loss(model(fake, training=False), model(b["y"], training=False))) * LAMBDA_FEAT,
        "D_real": mean(tf.add_n([_ls("real", o[1]) for o in d_real])),
        "D_fake": mean(tf.add_n([_ls("fake", o[1]) for o in d_fake])),
    }
    return terms, fake


def _ls(which, logits):
    from tfi2i import losses

    return {"g": losses.g_adversarial_loss, "real": losses.d_real_loss, "fake": losses.d_fake_loss}[which](
        logits, "lsgan")


def _feat(g_fake, d_real):
    from tfi2i import losses

    return losses.multiscale_feature_matching_loss(g_fake, d_real, n_layers_d=N_LAYERS_D)


def _vgg_loss(fake, real):
    from tfi2i import losses

    return losses.vgg_loss(fake, real)


@pytest.mark.parametrize("run", RUNS)
def test_loss_terms_and_gradients(run):
    data = fixture()
    g, ds = generator(data, run), discriminators(data)
    d_vars = [v for d in ds for v in d.trainable_variables]
    with tf.GradientTape(persistent=True) as tape:
        terms, _ = objective(g, ds, batch(data, 0))
        loss_G = terms["G_GAN"] + terms["G_GAN_Feat"] + terms["G_VGG"]
        loss_D = (terms["D_fake"] + terms["D_real"]) * 0.5
    for name, value in terms.items():
        want = float(data[f"{run}/loss_{name}"][0])
        assert report(f"{run} loss {name}", abs(float(value) - want)) < FORWARD_TOL * max(1.0, abs(want)), name
    grads = {"G": dict(zip(map(id, g.trainable_variables), tape.gradient(loss_G, g.trainable_variables))),
             "D": dict(zip(map(id, d_vars), tape.gradient(loss_D, d_vars)))}
    del tape
    cap = int(data["cap"])
    for who, pairs, nets in (("G", convert.pix2pixhd_generator_pairs(g), [g]),
                             ("D", convert.multiscale_discriminator_pairs(ds), ds)):
        worst, worst_key, cancelled = 0.0, None, 0.0
        for key, var, kind in pairs:
            ours = convert.to_torch(kind, grads[who][id(var)].numpy())
            theirs = data[f"{run}/grad/{who}/{key}"]
            if cancelled_by_instance_norm(nets, var):
                kernel = float(data[f"{run}/gradnorm/{who}/{key[:-len('bias')]}weight"])  # its L2 norm >= max
                rel = max(float(np.max(np.abs(ours))), float(np.max(np.abs(theirs)))) / float(
                    np.max(np.abs(data[f"{run}/grad/{who}/{key[:-len('bias')]}weight"])))
                assert rel < CANCELLED_TOL and kernel > 0, (key, rel)
                cancelled = max(cancelled, rel)
                continue
            scale = float(np.max(np.abs(theirs)))
            rel = max_abs(sample(ours, cap), theirs) / scale
            norm = float(data[f"{run}/gradnorm/{who}/{key}"])
            norm_rel = abs(float(np.linalg.norm(ours)) - norm) / norm
            if max(rel, norm_rel) > worst:
                worst, worst_key = max(rel, norm_rel), key
            assert rel < GRAD_TOL and norm_rel < GRAD_TOL, (key, rel, norm_rel)
        report(f"{run} gradients of loss_{who} (relative; worst {worst_key})", worst)
        report(f"{run} gradient of {worst_key}: torch float32 vs float64 (relative)",
               float(data[f"{run}/gradgap/{who}/{worst_key}"]))
        report(f"{run} gradients of loss_{who}, torch float32 vs float64 (relative)",
               float(data[f"{run}/gradgap/{who}"]))
        report(f"{run} gradients of loss_{who}: biases before instance norm (max |g| / max |g_kernel|, both sides)",
               cancelled)


# ----------------------------------------------------------------------------- 3 training steps
@pytest.mark.parametrize("run", RUNS)
def test_three_training_steps_in_nvidia_order(run):
    from tfi2i.contract import Contract, InputSpec, OutputSpec
    from tfi2i.optimizers import TorchAdam
    from tfi2i.pix2pixhd import Pix2PixHD

    data = fixture()
    g, ds = generator(data, run), discriminators(data)
    contract = Contract(inputs=(InputSpec("x", "labels", num_classes=LABEL_NC), InputSpec("instances", "instances")),
                        outputs=(OutputSpec("y", 3),), multiple=8, tileable=False, why_not_tileable="instance norm")
    model = Pix2PixHD(g, ds, WEIGHTS, n_layers_d=N_LAYERS_D, vgg_factory=vgg, contract=contract)
    model.compile(TorchAdam(LR, beta_1=0.5, beta_2=0.999), TorchAdam(LR, beta_1=0.5, beta_2=0.999))
    step = model.train_step  # eager: tracing would cost more than the 3 steps
    logs = [{k: float(v) for k, v in step(batch(data, s)).items()} for s in range(3)]

    names = {"g_gan": ("G_GAN", 1.0), "g_feat": ("G_GAN_Feat", LAMBDA_FEAT), "g_vgg": ("G_VGG", LAMBDA_FEAT),
             "d_real": ("D_real", 1.0), "d_fake": ("D_fake", 1.0), "g_total": ("G", 1.0), "d_total": ("D", 1.0)}
    for s in range(3):  # every term from the forward pass of step s (weights after s updates)
        worst = 0.0
        for ours, (theirs, factor) in names.items():
            want = float(data[f"{run}/loss_{theirs}"][s])
            diff = abs(factor * logs[s][ours] - want)
            worst = max(worst, diff / max(1.0, abs(want)))
            assert diff < FORWARD_TOL * max(1.0, abs(want)), (s, ours, diff)
        report(f"{run} step {s + 1} loss terms (relative to max(1, |loss|))", worst)

    worst = {}

    def note(group, value):
        worst[group] = max(worst.get(group, 0.0), value)

    cap = int(data["cap"])
    init = {**init_weights(data, f"{run}/G"), **init_weights(data, "D")}
    moved = 0.0
    for who, pairs, nets in (("G", convert.pix2pixhd_generator_pairs(g), [g]),
                             ("D", convert.multiscale_discriminator_pairs(ds), ds)):
        for key, var, kind in pairs:
            ours = sample(convert.to_torch(kind, var.numpy()), cap)
            exact = data[f"{run}/after64/{who}/{key}"]
            gap = float(data[f"{run}/gap/{who}/{key}"])
            diff = max_abs(ours, exact)
            if cancelled_by_instance_norm(nets, var):
                # gradient 0 up to rounding, which Adam turns into steps of about lr, in the reference too (its
                # float32 run vs float64: ~gap); the bias has no effect on any output. Only bounded by Adam's step.
                note(f"{who} biases before instance norm (no effect) vs torch float64", diff)
                note(f"{who} biases before instance norm (no effect): torch float32 vs float64", gap)
                assert diff < 2 * 3 * LR, (key, diff)
                continue
            note(f"{who} weights vs torch float64", diff)
            moved = max(moved, max_abs(exact, sample(init[key], cap)))
            note(f"{who} weights: torch float32 vs float64 (whole tensor)", gap)
            assert diff <= AFTER_TOL, (key, diff, gap)
    for group, value in worst.items():
        report(f"{run} after 3 steps {group}", value)
    assert report(f"{run} after 3 steps: largest weight change (the comparison bites)", moved) > 10 * AFTER_TOL
    out = g({"x": one_hot(batch(data, 0)["x"], LABEL_NC), "instances": batch(data, 0)["instances"]},
            training=False)["y"]
    diff = report(f"{run} G output after 3 steps vs torch float64", max_abs(sample(nchw(out), 1024),
                                                                               data[f"{run}/fake_after64"]))
    gap = report(f"{run} G output after 3 steps, torch float32 vs float64", float(data[f"{run}/gap_fake_after"]))
    assert diff <= FORWARD_TOL


@pytest.mark.parametrize("netG", ["global", "local"])
def test_import_reference_turns_nvidia_state_dicts_into_a_run(tmp_path, capsys, netG):
    from tfi2i.cli import main
    from tfi2i.runs import load_model

    if netG == "global":
        g = hd.global_generator({"x": 5, "instances": 1}, ngf=4, n_downsample=2, n_blocks=2)
    else:
        g = hd.local_enhancer({"x": 5, "instances": 1}, ngf=2, n_downsample_global=2, n_blocks_global=1,
                              n_blocks_local=2)
    d = hd.multiscale_discriminator(9, ndf=4, n_layers=2, num_d=3)
    g_sd, d_sd = convert.pix2pixhd_generator_state_dict(g), convert.multiscale_discriminator_state_dict(d)
    np.savez(tmp_path / "latest_net_G.npz", **g_sd)
    np.savez(tmp_path / "latest_net_D.npz", **d_sd)
    argv = ["import-reference", "--reference", "pix2pixhd", "--checkpoint", str(tmp_path / "latest_net_G.npz"),
            "--discriminator", str(tmp_path / "latest_net_D.npz"), "--label-nc", "5", "--workdir", str(tmp_path / "W")]
    assert main(argv) == 0
    run = load_model(tmp_path / "W")
    assert (run.cfg.hd.netG, run.cfg.hd.n_downsample_global, run.cfg.hd.num_d, run.cfg.hd.n_layers_d) == (
        netG, 2, 3, 2)
    back_g = convert.pix2pixhd_generator_state_dict(run.model.generator)
    back_d = convert.multiscale_discriminator_state_dict(run.model.discriminators)
    assert set(back_g) == set(g_sd) and set(back_d) == set(d_sd)
    for k in g_sd:
        np.testing.assert_array_equal(back_g[k], g_sd[k], err_msg=k)
    for k in d_sd:
        np.testing.assert_array_equal(back_d[k], d_sd[k], err_msg=k)
    x = {"x": tf.one_hot(tf.zeros([1, 16, 16], tf.int32), 5), "instances": tf.zeros([1, 16, 16, 1])}
    np.testing.assert_allclose(run.model.generator(x)["y"].numpy(), g(x)["y"].numpy(), atol=1e-6)
    capsys.readouterr()
    wrong = argv[:-4] + ["--label-nc", "35", "--workdir", str(tmp_path / "W2")]
    assert main(wrong) == 1
    assert "takes 6 input channels, but --label-nc 35 means 36" in capsys.readouterr().err
