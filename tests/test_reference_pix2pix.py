"""tfi2i's pix2pix against the PyTorch reference (junyanz), through fixtures written by PyTorch.

The fixtures (tests/reference/*.npz) come from tests/reference/make_pix2pix_fixtures.py
(run with a torch venv; torch is not needed here). Setting: ngf = ndf = 8, 64x64,
``unet_6``, n_layers 3, batch 2, dropout p = 0 while training, 3 steps with the LR
schedule crossing a decay boundary (factors 1, 2/3, 1/3). Batch norm and instance norm.

Each comparison prints ``MAXDIFF <what> <value>`` (run with ``-s`` to see them).
"""

from pathlib import Path

import numpy as np
import pytest
import keras
import tensorflow as tf

from tests.reference.fixture_format import initial_state, sample
from tfi2i import convert
from tfi2i.gan import PairedGAN
from tfi2i.networks import patchgan_discriminator, unet_generator
from tfi2i.optimizers import TorchAdam
from tfi2i.schedules import Pix2PixLinearDecay

HERE = Path(__file__).parent / "reference"
NORMS = ("batch", "instance")
WEIGHTS = {"g_gan": 1.0, "l1": 100.0, "d_real": 0.5, "d_fake": 0.5}
FORWARD_TOL = 1e-5  # outputs, logits, losses
GRAD_TOL = 1e-4  # relative to the tensor's largest gradient
GRAD_FLOOR = 1e-6  # gradients below this are float noise (a conv bias before an instance norm: exactly 0)
# After 3 steps, weights and G's running stats are compared with the same 3 steps of the reference run in float64
# (the exact result): Adam (beta1 = 0.5) normalises each gradient element, so float32 rounding in the backward
# pass (batch norm's above all) is amplified; the float32 reference itself lands up to ~3.4e-4 away from its
# float64 result (its per-weight "gap"). tfi2i (float32) must be within AFTER_TOL + that weight's gap of the exact
# result. Measured with TF's default thread pools: 1.8e-6 with batch norm, 4.6e-7 with instance norm. With one
# thread (as under `pytest -n`), batch norm's G weights land 1.3e-4 from float64 but 2.0e-6 from torch float32,
# inside the float32 reference's own gap (3.4e-4): reductions summed in another order round differently.
AFTER_TOL = 1e-5  # absolute, times max(1, |value|) for running variances

def fixture(name):
    path = HERE / name
    if not path.is_file():
        pytest.skip(f"{path} missing: run tests/reference/make_pix2pix_fixtures.py with torch")
    data = dict(np.load(path))
    for key in ("x", "y"):
        if key in data:
            data[key] = data[key].astype(np.float32)  # stored as float16 (exact values)
    return data


def init_weights(data, prefix):
    keys = [str(k) for k in data[f"{prefix}_keys"]]
    shapes = [tuple(int(s) for s in str(v).split(",")) for v in data[f"{prefix}_shapes"]]
    kinds = [str(k) for k in data[f"{prefix}_kinds"]]
    return initial_state(keys, shapes, kinds, int(data["seed"]) + (100 if prefix == "D" else 0))


def networks(data, dropout=0.0):
    norm = str(data["norm"])
    keras.utils.set_random_seed(0)
    g = unet_generator("unet_6", 8, norm, dropout, 3, 3)
    d = patchgan_discriminator(6, 8, 3, norm)
    convert.load_unet(g, init_weights(data, "G"))
    convert.load_patchgan(d, init_weights(data, "D"))
    return g, d


def report(what, value):
    print(f"MAXDIFF {what} {value:.3g}")
    return value


def max_abs(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


class RecordingGAN(PairedGAN):
    """`PairedGAN` that keeps each update's gradients (D's, then G's) by variable."""

    def _update(self, tape, optimizer, loss, variables):
        grads = tape.gradient(loss, variables)
        self.recorded.append({id(v): g.numpy() for v, g in zip(variables, grads)})
        optimizer.apply(grads, variables)


def test_conv_and_transposed_conv_padding_match_pytorch():
    data = fixture("conv_layers.npz")
    deconv = keras.layers.Conv2DTranspose(2, 4, strides=2, padding="same")
    x = tf.constant(data["deconv_x"])  # 3 x 5: odd sizes too
    deconv.build(x.shape)
    deconv.kernel.assign(convert.to_keras("deconv", data["deconv_weight"]))
    deconv.bias.assign(data["deconv_bias"])
    y = deconv(x).numpy()
    assert y.shape == data["deconv_y"].shape
    assert report("ConvTranspose2d(4,2,1) vs Conv2DTranspose same", max_abs(y, data["deconv_y"])) < FORWARD_TOL
    conv = keras.layers.Conv2D(2, 4, strides=2, padding="same")
    x = tf.constant(data["conv_x"])  # 6 x 10: even, as in a U-Net
    conv.build(x.shape)
    conv.kernel.assign(convert.to_keras("conv", data["conv_weight"]))
    conv.bias.assign(data["conv_bias"])
    assert report("Conv2d(4,2,1) vs Conv2D same", max_abs(conv(x).numpy(), data["conv_y"])) < FORWARD_TOL


@pytest.mark.parametrize("norm", NORMS)
def test_forward_outputs_and_logits(norm):
    data = fixture(f"pix2pix_{norm}.npz")
    x, y = tf.constant(data["x"]), tf.constant(data["y"])
    g, _ = networks(data, dropout=0.5)  # eval mode: dropout off, moving statistics
    assert report(f"{norm} G eval (init)", max_abs(g({"x": x}, training=False)["y"], data["g_eval_init"])) < FORWARD_TOL
    g, d = networks(data, dropout=0.0)  # train mode, dropout p = 0: batch statistics
    assert state_dict_round_trip(g, d, data)
    fake = g({"x": x}, training=True)["y"]
    assert report(f"{norm} G train (init)", max_abs(fake, data["g_train_init"])) < FORWARD_TOL
    # the reference's D step: fake pair first, then the real pair, both in train mode
    d_fake = d(tf.concat([x, fake], -1), training=True)[1]
    d_real = d(tf.concat([x, y], -1), training=True)[1]
    assert report(f"{norm} D logits fake", max_abs(d_fake, data["d_fake_logits"])) < FORWARD_TOL
    assert report(f"{norm} D logits real", max_abs(d_real, data["d_real_logits"])) < FORWARD_TOL


def state_dict_round_trip(g, d, data):
    """Our networks written back as state dicts have exactly the reference's keys, shapes and initial values."""
    for prefix, sd in (("G", convert.unet_state_dict(g)), ("D", convert.patchgan_state_dict(d))):
        want = init_weights(data, prefix)
        assert set(sd) == set(want)
        assert all(np.array_equal(sd[k], want[k]) for k in want)
    return True


@pytest.mark.parametrize("norm", NORMS)
def test_losses_gradients_and_three_training_steps(norm, monkeypatch):
    """With TensorFlow's own kernels (``TFI2I_CONV=native``; at ngf 8 no layer is wide enough for the shape forms of
    `tfi2i.layers.conv` anyway). Those forms sum in another order; their equality is shown per layer
    (`tests/networks/test_conv.py`). Step 1 with all of them forced on measured as close as native (8.1e-6 vs
    8.4e-6 relative for G's gradients); after three Adam steps this tiny instance-norm U-Net is chaotic (G's eval
    output landed 1.4e-2 from float64 with all three forms on and one thread, 1.2e-6 to 2.0e-6 with any two)."""
    monkeypatch.setenv("TFI2I_CONV", "native")
    data = fixture(f"pix2pix_{norm}.npz")
    batch = {"x": tf.constant(data["x"]), "y": tf.constant(data["y"])}
    g, d = networks(data)
    gan = RecordingGAN(g, d, WEIGHTS)
    gan.recorded = []
    schedule = lambda: Pix2PixLinearDecay(2e-4, steps_per_epoch=1, n_epochs=2, n_epochs_decay=2)  # noqa: E731
    gan.compile(TorchAdam(schedule(), beta_1=0.5, beta_2=0.999), TorchAdam(schedule(), beta_1=0.5, beta_2=0.999))
    lrs = [float(schedule()(i)) for i in range(3)]
    np.testing.assert_allclose(lrs, data["lr"], rtol=1e-6)  # 2e-4 x (1, 2/3, 1/3)

    logs = [{k: float(v) for k, v in gan.train_step(batch).items()} for _ in range(3)]
    pairs = {"d_fake": "D_fake", "d_real": "D_real", "d_total": "D", "g_gan": "G_GAN", "g_total": "G"}
    for step in range(3):
        for ours, theirs in pairs.items():
            diff = abs(logs[step][ours] - float(data[f"loss_{theirs}"][step]))
            assert report(f"{norm} step {step + 1} {ours}", diff) < FORWARD_TOL * max(1.0, abs(logs[step][ours]))
        diff = abs(100 * logs[step]["l1"] - float(data["loss_G_L1"][step]))
        assert report(f"{norm} step {step + 1} 100*l1", diff) < FORWARD_TOL * 100

    d_grads, g_grads = gan.recorded[0], gan.recorded[1]  # step 1
    worst = {"G": 0.0, "D": 0.0}
    for prefix, pairs_, grads in (("G", convert.unet_pairs(g), g_grads), ("D", convert.patchgan_pairs(d), d_grads)):
        for key, var, kind in pairs_:
            if not var.trainable:
                continue
            ours = convert.to_torch(kind, grads[id(var)])
            theirs = data[f"grad/{prefix}/{key}"]
            if cancelled_by_instance_norm(g if prefix == "G" else d, var, norm):  # both exactly 0 up to rounding
                assert np.max(np.abs(ours)) < 1e-5 and np.max(np.abs(theirs)) < 1e-5, key
                continue
            scale = max(float(np.max(np.abs(theirs))), GRAD_FLOOR)
            rel = max_abs(sample(ours), theirs) / scale
            norm_rel = abs(float(np.linalg.norm(ours)) - float(data[f"gradnorm/{prefix}/{key}"])) / max(
                float(data[f"gradnorm/{prefix}/{key}"]), GRAD_FLOOR)
            worst[prefix] = max(worst[prefix], rel, norm_rel)
            assert rel < GRAD_TOL and norm_rel < GRAD_TOL, (key, rel, norm_rel)
    report(f"{norm} gradients G (relative)", worst["G"])
    report(f"{norm} gradients D (relative)", worst["D"])

    worst = {}

    def note(group, value):
        worst[group] = max(worst.get(group, 0.0), value)

    for prefix, net, pairs_ in (("G", g, convert.unet_pairs(g)), ("D", d, convert.patchgan_pairs(d))):
        for key, var, kind in pairs_:
            ours = sample(convert.to_torch(kind, var.numpy()))
            scale = max(1.0, float(np.max(np.abs(data[f"after64/{prefix}/{key}"]))))
            if cancelled_by_instance_norm(net, var, norm):
                # its gradient is 0 up to rounding and Adam turns the rounding into +-lr steps, in the
                # reference too (float32 vs float64: ~gap); the weight has no effect on any output
                note(f"{prefix} biases before instance norm (no effect), torch float32 vs float64",
                     float(data[f"gap/{prefix}/{key}"]))
                continue
            group = f"{prefix} {'running stats' if 'running' in key else 'weights'}"
            note(f"{group} vs torch float32", max_abs(ours, data[f"after/{prefix}/{key}"]))
            note(f"{group}: torch float32 vs float64", float(data[f"gap/{prefix}/{key}"]))
            diff = max_abs(ours, data[f"after64/{prefix}/{key}"])
            note(f"{group} vs torch float64", diff)
            # float32 may land as far from the exact result as the float32 reference does (its gap)
            assert diff <= AFTER_TOL * scale + float(data[f"gap/{prefix}/{key}"]), (key, diff)
    for group, value in worst.items():
        report(f"{norm} after 3 steps {group}", value)
    eval_after = g({"x": batch["x"]}, training=False)["y"]
    diff = report(f"{norm} G eval after 3 steps vs torch float64", max_abs(eval_after, data["g_eval_after64"]))
    report(f"{norm} G eval after 3 steps, torch float32 vs float64", float(data["gap_g_eval_after"]))
    assert diff <= FORWARD_TOL + float(data["gap_g_eval_after"])


def cancelled_by_instance_norm(model, var, norm):
    """A conv bias followed by a non-affine instance norm (which subtracts it again)."""
    if norm != "instance" or not var.path.endswith("bias"):
        return False
    layer = var.path.split("/")[-2]
    return any(other.name == f"{layer}_norm" for other in model.layers)


def _write_npz(path, state):
    np.savez(path, **state)
    return str(path)


def test_import_reference_makes_a_loadable_run(tmp_path):
    from tfi2i import cli
    from tfi2i.runs import load_model

    data = fixture("pix2pix_batch.npz")
    ckpt = _write_npz(tmp_path / "latest_net_G.npz", init_weights(data, "G"))
    d_ckpt = _write_npz(tmp_path / "latest_net_D.npz", init_weights(data, "D"))
    workdir = tmp_path / "run"
    assert cli.main(["import-reference", "--checkpoint", ckpt, "--discriminator", d_ckpt,
                     "--workdir", str(workdir)]) == 0
    run = load_model(str(workdir))
    gen = run.cfg.generator
    assert (gen.name, gen.ngf, gen.norm, gen.input_channels, gen.output_channels) == ("unet_6", 8, "batch", 3, 3)
    assert (run.cfg.discriminator.ndf, run.cfg.discriminator.n_layers) == (8, 3)
    out = run.model.generator({"x": tf.constant(data["x"])}, training=False)["y"]
    assert report("import-reference G eval", max_abs(out, data["g_eval_init"])) < FORWARD_TOL
    logits = run.model.discriminator(tf.concat([data["x"], data["y"]], -1), training=True)[1]
    assert max_abs(logits, data["d_real_logits"]) < FORWARD_TOL
    from tfi2i.export import export_run  # what `tfi2i export --workdir W` does: the served model is the reference's

    served = tf.saved_model.load(str(export_run(str(workdir), None))).signatures["serving_default"]
    assert report("import-reference exported G", max_abs(served(x=tf.constant(data["x"]))["y"], data["g_eval_init"])) \
        < FORWARD_TOL


def test_import_reference_errors_are_clear(tmp_path, capsys, monkeypatch):
    from tfi2i import cli

    data = fixture("pix2pix_batch.npz")
    state = init_weights(data, "G")
    key = "model.model.1.model.1.weight"
    state[key] = state[key][:, :4]  # a different width
    bad = _write_npz(tmp_path / "bad.npz", state)
    assert cli.main(["import-reference", "--checkpoint", bad, "--workdir", str(tmp_path / "w1")]) == 1
    err = capsys.readouterr().err
    assert key in err and "(16, 4, 4, 4)" in err and "(16, 8, 4, 4)" in err
    resnet = _write_npz(tmp_path / "resnet.npz", {"model.1.weight": np.zeros((64, 3, 7, 7), np.float32)})
    assert cli.main(["import-reference", "--checkpoint", resnet, "--workdir", str(tmp_path / "w2")]) == 1
    assert "not a pix2pix U-Net" in capsys.readouterr().err
    pth = tmp_path / "latest_net_G.pth"
    pth.write_bytes(b"not read")
    monkeypatch.setitem(__import__("sys").modules, "torch", None)  # as if torch were not installed
    assert cli.main(["import-reference", "--checkpoint", str(pth), "--workdir", str(tmp_path / "w3")]) == 1
    assert "pip install torch" in capsys.readouterr().err
    ok = _write_npz(tmp_path / "ok.npz", init_weights(data, "G"))
    assert cli.main(["import-reference", "--checkpoint", ok, "--norm", "instance", "--workdir",
                     str(tmp_path / "w4")]) == 1
    assert "batch-norm weights" in capsys.readouterr().err


def test_batch_norm_moving_variance_is_unbiased_and_old_checkpoints_load(tmp_path):
    from tfi2i.layers.normalization import TorchBatchNormalization, make_norm

    bn = make_norm("batch", "bn")
    assert isinstance(bn, TorchBatchNormalization)
    x = tf.constant([1.0, 2.0, 3.0, 6.0], shape=(4, 1, 1, 1))  # mean 3, biased var 14/4, unbiased 14/3
    bn.build(x.shape)
    bn.gamma.assign([1.0])
    y = bn(x, training=True).numpy().ravel()
    np.testing.assert_allclose(y, (np.array([1, 2, 3, 6]) - 3) / np.sqrt(3.5 + 1e-5), rtol=1e-6)  # biased
    np.testing.assert_allclose(bn.moving_mean.numpy(), [0.9 * 0 + 0.1 * 3], rtol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), [0.9 * 1 + 0.1 * 14 / 3], rtol=1e-6)  # Keras: 1.25

    def net(norm_layer):
        inp = keras.Input((2, 2, 3))
        return keras.Model(inp, norm_layer(keras.layers.Conv2D(3, 1, name="c")(inp)))

    old = net(keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="bn"))  # the layer tfi2i used
    old.get_layer("bn").moving_variance.assign([2.0, 3.0, 4.0])
    path = tf.train.Checkpoint(net=old).save(str(tmp_path / "old"))
    new = net(make_norm("batch", "bn"))
    assert [v.path for v in new.weights] == [v.path for v in old.weights]
    tf.train.Checkpoint(net=new).restore(path).assert_existing_objects_matched()
    np.testing.assert_array_equal(new.get_layer("bn").moving_variance.numpy(), [2.0, 3.0, 4.0])
