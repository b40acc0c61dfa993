"""PAN (Li et al.): Eqs. 6-9 on tiny tensors, switching terms off, golden counts, smoke runs of every variant."""

import json
import os
import pathlib
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfi2i import config as C
from tfi2i import train
from tfi2i.checkpoint import model_objects
from tfi2i.model_eval import evaluate_model
from tfi2i.pan import PAN, perceptual_loss

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "recipes"))
import pan_cityscapes as recipe  # noqa: E402


def batch(seed=0, size=64):
    x = tf.random.stateless_uniform([1, size, size, 3], seed=[seed, 1], minval=-1, maxval=1)
    y = tf.random.stateless_uniform([1, size, size, 3], seed=[seed, 2], minval=-1, maxval=1)
    return {"x": x, "y": y}


def test_perceptual_loss_by_hand():
    # layer 1: [1, 2, 2, 1] diff 1 everywhere -> mean 1; layer 2: [1, 1, 1, 2] diffs (2, 0) -> mean 2
    f1, r1 = tf.ones([1, 2, 2, 1]), tf.zeros([1, 2, 2, 1])
    f2, r2 = tf.constant([[[[2.0, 5.0]]]]), tf.constant([[[[0.0, 5.0]]]])
    out = perceptual_loss([f1, f2], [r1, r2], [0.5, 3.0])
    np.testing.assert_allclose(out, [0.5 * 1 + 3.0 * 2])
    with pytest.raises(ValueError):
        perceptual_loss([f1], [r1, r2], [1.0])


@pytest.mark.parametrize("variant,channels", [("complete", 6), ("no_conditioning", 3)])
def test_discriminators_see_the_right_inputs(variant, channels):
    gan = recipe.build(recipe.smoke_config(variant))
    assert isinstance(gan, PAN) and len(gan.discriminator) == 6
    assert [d.input_shape[-1] for d in gan.d_high] == [channels] * 3
    assert [d.input_shape[-1] for d in gan.d_low] == [3] * 3
    b = batch()
    y_fake = gan.generator({"x": b["x"]}, training=True)["y"]
    seen = []
    for d in gan.discriminator:  # record the spatial size each D is called with
        orig = d.call
        d.call = (lambda o, name: (lambda t, *a, **k: (seen.append((name, t.shape[1], t.shape[-1])), o(t, *a, **k))[1]))(orig, d.name)
    gan.discriminator_terms(b, y_fake)
    sizes = {(n, s, c) for n, s, c in seen}
    assert {("D_high_0", 64, channels), ("D_high_1", 32, channels), ("D_high_2", 16, channels)} <= sizes
    assert {("D_low_0", 32, 3), ("D_low_1", 16, 3), ("D_low_2", 8, 3)} <= sizes


def test_high_terms_match_manual_computation():
    from tfi2i import losses
    from tfi2i.pyramid import high_frequency, smooth_pyramid

    gan = recipe.build(recipe.smoke_config())
    b = batch(1)
    y_fake = gan.generator({"x": b["x"]}, training=False)["y"]
    terms = gan.discriminator_terms(b, y_fake, training=False)
    px, hy = smooth_pyramid(b["x"]), high_frequency(b["y"])
    real = sum(losses.d_real_loss(d(tf.concat([px[k], hy[k]], -1))[-1]) for k, d in enumerate(gan.d_high))
    np.testing.assert_allclose(terms["d_high_real"], real, rtol=1e-5)
    py, pf = smooth_pyramid(b["y"]), smooth_pyramid(y_fake)
    fake = sum(losses.d_fake_loss(d(pf[k + 1])[1]) for k, d in enumerate(gan.d_low))
    np.testing.assert_allclose(terms["d_low_fake"], fake, rtol=1e-5)
    del py


def _step(gan):
    gan.compile(g_optimizer=tf.keras.optimizers.Adam(1e-3), d_optimizer=tf.keras.optimizers.Adam(1e-3))
    before = [[v.numpy().copy() for v in d.trainable_variables] for d in gan.discriminator]
    gan.train_step(batch(2))
    after = [[v.numpy() for v in d.trainable_variables] for d in gan.discriminator]
    return [any(not np.array_equal(a, b) for a, b in zip(x, y)) for x, y in zip(before, after)]


def test_zero_weight_switches_discriminators_off():
    changed = _step(recipe.build(recipe.smoke_config("no_low")))
    assert changed == [True] * 3 + [False] * 3
    changed = _step(recipe.build(recipe.smoke_config("no_high")))
    assert changed == [False] * 3 + [True] * 3  # D_high untrained (and, with Eq. 6 gone, unused: no perceptual term)
    assert _step(recipe.build(recipe.smoke_config("cnn"))) == [False] * 6


def test_no_high_drops_the_perceptual_term_with_eq6():
    """Eq. 8 reads the high-frequency discriminators' features: without Eq. 6 (untrained D_high) it goes too."""
    weights, conditional = recipe.variant_overrides("no_high")
    assert conditional and {k: weights[k] for k in ("g_high", "d_high_real", "d_high_fake", "perceptual")} == dict.fromkeys(
        ("g_high", "d_high_real", "d_high_fake", "perceptual"), 0.0)
    assert (weights["g_low"], weights["l1"], weights["d_low_real"]) == (5.0, 100.0, 0.5)
    gan = recipe.build(recipe.smoke_config("no_high"))
    b = batch(7)
    y_fake = gan.generator({"x": b["x"]}, training=False)["y"]
    assert set(gan.generator_terms(b, y_fake, training=False)) == {"g_low", "l1"}  # no D_high is called for G


def test_paper_tables_rows_are_our_runs():
    table1, table2 = recipe.PAPER_TABLES.values()
    assert list(table1["rows"]) == [recipe.config(v).name for v in ("no_conditioning", "no_low", "no_high", "complete")]
    assert list(table2["rows"]) == [recipe.config(v, "superres4x").name for v in ("no_high", "no_low", "complete")]
    assert list(table1["columns"]) == ["fcn_pixel_acc", "fcn_class_acc", "fcn_class_iou"]  # tfi2i evaluate's keys
    assert recipe.PAPER_TABLE1 == {"no_conditioning": (0.42, 0.10, 0.07), "no_low": (0.71, 0.25, 0.18),
                                   "no_high": (0.45, 0.15, 0.11), "complete": (0.74, 0.26, 0.19)}
    assert recipe.PAPER_TABLE2 == {"no_high": (20.34, 0.8279), "no_low": (19.82, 0.8097), "complete": (23.85, 0.8563)}


def test_generator_terms_skip_inactive_and_give_d_no_gradient():
    cfg = recipe.smoke_config()
    gan = recipe.build(cfg)
    b = batch(3)
    with tf.GradientTape(persistent=True) as tape:
        y_fake = gan.generator({"x": b["x"]}, training=True)["y"]
        terms = gan.generator_terms(b, y_fake)
    assert set(terms) == {"g_high", "g_low", "perceptual", "l1"}
    # the perceptual term reaches G; D is only updated by the D objective (G's optimizer holds G's variables)
    assert all(g is not None for g in tape.gradient(terms["perceptual"], gan.generator.trainable_variables)[:1])
    only_l1 = recipe.build(C.replace(cfg, loss={"weights": {**cfg.loss.weights, "g_high": 0.0, "g_low": 0.0, "perceptual": 0.0}}))
    assert set(only_l1.generator_terms(b, y_fake)) == {"l1"}
    # perceptual only: a G step leaves every D unchanged
    w = {k: 0.0 for k in cfg.loss.weights}
    w.update(perceptual=1.0, l1=1.0)
    assert _step(recipe.build(C.replace(cfg, loss={"weights": w}))) == [False] * 6


def test_parameter_counts_golden():
    summary = train.parameter_summary(recipe.build(recipe.config()))
    assert summary["generator"] == 54_409_603
    assert [summary[f"discriminator_{i}"] for i in range(3)] == [2_767_809] * 3  # 6 inputs, instance norm
    assert [summary[f"discriminator_{i}"] for i in range(3, 6)] == [2_764_737] * 3  # 3 inputs: 4*4*3*64 fewer


def test_smoke_run_checkpoints_every_discriminator(tmp_path):
    # the export at the end: tests/test_chain.py (pan_cityscapes)
    cfg = C.replace(recipe.smoke_config(), train={"steps": 2, "deterministic": True, "export_at_end": False})
    train.fit(cfg, recipe.build, str(tmp_path / "run"))
    path = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    fresh = recipe.build(cfg)
    before = [d.trainable_variables[0].numpy().copy() for d in fresh.discriminator]
    status = tf.train.Checkpoint(discriminator=model_objects(fresh)["discriminator"]).restore(path)
    status.expect_partial().assert_existing_objects_matched()
    for d, b in zip(fresh.discriminator, before):  # every D's weights come back from the checkpoint
        assert all(v.numpy().shape for v in d.trainable_variables) and not np.array_equal(d.trainable_variables[0].numpy(), b)
    assert "l1" in json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])


@pytest.mark.parametrize("variant", [v for v in recipe.VARIANTS if v != "complete"])  # complete: the smoke run
def test_every_variant_trains_one_step(variant, tmp_path):
    task = "inpainting" if variant == "context_encoder" else "cityscapes"
    cfg = C.replace(recipe.smoke_config(variant, task), train={"steps": 1, "eval_at_end": False, "export_at_end": False})
    logs = train.fit(cfg, recipe.build, str(tmp_path / variant))
    assert logs and all(np.isfinite(float(v)) for v in logs.values())
    assert ("l2_hole" if variant == "context_encoder" else "l1") in logs


def test_too_small_crop_is_a_clear_error():
    with pytest.raises(ValueError, match="crop_size=128 is too small for PAN.*>= 192"):
        recipe.build(C.replace(recipe.config(), data={"crop_size": 128}))


def test_task_and_variant_flags(capsys):
    assert recipe.main(["--variant", "no_conditioning", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert '"conditional": false' in out and "pan_cityscapes_no_conditioning" in out
    assert recipe.main(["--task", "inpainting", "--variant=context_encoder", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert '"l2_hole": 0.999' in out and '"task": "inpainting"' in out
    assert recipe.main(["--task", "cityscapes", "--variant", "context_encoder", "--print-config"]) == 1
    assert "inpainting baseline" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        recipe.main(["--variant", "nope"])
    with pytest.raises(SystemExit):
        recipe.main(["--help"])
    assert "--task" in capsys.readouterr().out


def test_pyramids_are_built_once_per_step(monkeypatch):
    from tfi2i import pan

    calls = []
    real = pan.smooth_pyramid
    monkeypatch.setattr(pan, "smooth_pyramid", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    gan = recipe.build(recipe.smoke_config())
    gan.compile(g_optimizer=tf.keras.optimizers.Adam(1e-3), d_optimizer=tf.keras.optimizers.Adam(1e-3))
    gan.train_step(batch(4))
    assert len(calls) == 3  # x, y and G(x); shared by the D and the G objective
    calls.clear()
    cnn = recipe.build(recipe.smoke_config("cnn"))
    cnn.compile(g_optimizer=tf.keras.optimizers.Adam(1e-3), d_optimizer=tf.keras.optimizers.Adam(1e-3))
    cnn.train_step(batch(4))
    assert calls == []  # no pyramid term, no pyramid


def test_sample_panels_show_the_high_frequency_maps():
    from tfi2i.pyramid import high_frequency

    gan = recipe.build(recipe.smoke_config())
    b = batch(5)
    panels = gan.sample_panels(b["x"], b["y"])
    assert [n for n, _ in panels] == ["x", "G(x)", "y", "h0(G(x))", "h0(y)", "h1(G(x))", "h1(y)", "h2(G(x))", "h2(y)"]
    assert all(tuple(p.shape) == (1, 64, 64, 3) for _, p in panels)
    h1 = high_frequency(b["y"])[1].numpy()  # 32x32, shown nearest-upsampled x2 and amplified x4
    np.testing.assert_allclose(panels[6][1].numpy()[0, ::2, ::2], np.clip(4 * h1[0], -1, 1), atol=1e-6)


def test_context_encoder_objective():
    from tfi2i import losses
    from tfi2i.context_encoder import ContextEncoder

    # masked L2 by hand: 2x2 image, 1 channel, hole = top-left pixel -> only its error counts
    y = tf.constant([[[[1.0], [0.0]], [[0.0], [0.0]]]])
    f = tf.constant([[[[0.5], [9.0]], [[9.0], [9.0]]]])
    m = tf.constant([[[[1.0], [0.0]], [[0.0], [0.0]]]])
    np.testing.assert_allclose(losses.masked_l2_loss(y, f, m), [0.25])
    gan = recipe.build(recipe.smoke_config("context_encoder", "inpainting"))
    assert isinstance(gan, ContextEncoder) and gan.discriminator.input_shape[-1] == 3  # judges the output alone
    b = batch(6)
    b["mask"] = tf.ones([1, 64, 64, 1])
    y_fake = gan.generator({"x": b["x"]})["y"]
    terms = gan.generator_terms(b, y_fake)
    assert set(terms) == {"l2_hole", "g_gan"}
    np.testing.assert_allclose(terms["l2_hole"], tf.reduce_mean(tf.square(b["y"] - y_fake)), rtol=1e-5)
    with pytest.raises(ValueError, match="mask"):
        gan.generator_terms(batch(6), y_fake)


def test_pan_learns_on_real_cityscapes_pairs(tmp_path):
    """An honest learning check: 120 PAN steps on real pairs beat the untrained generator on held-back pairs."""
    from tests.helpers import shared_data_dir
    from tfi2i.data import sources

    folder = shared_data_dir() / "cityscapes_train300"
    if not folder.is_dir():
        pytest.skip(f"needs the real Cityscapes pairs in {folder} (set TFI2I_SHARED_DATA)")
    files = sorted(folder.glob("*.jpg"))
    for split, chosen in (("train", files[:240]), ("val", files[-24:])):
        (tmp_path / "data" / split).mkdir(parents=True)
        for f in chosen:
            (tmp_path / "data" / split / f.name).symlink_to(f)
    cfg = C.replace(
        recipe.config("complete"),
        data={"path": str(tmp_path / "data"), "load_size": 72, "crop_size": 64, "batch_size": 4, "num_samples": 2},
        generator={"name": "unet_6", "ngf": 16}, discriminator={"ndf": 16, "n_layers": 1},
        loss={"feature_weights": [1.0, 1.0]}, optim={"lr": 1e-3},
        train={"steps": 120, "log_every": 20, "sample_every": 120, "checkpoint_every": 120, "export_at_end": False},
    )
    untrained = recipe.build(cfg)
    ev = sources.open_source(tmp_path / "data" / "val", direction="BtoA")
    before = evaluate_model(untrained, ev, cfg.data, progress=False)
    train.fit(cfg, recipe.build, str(tmp_path / "run"))
    import json

    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    l1 = [r["l1"] for r in records if r["split"] == "train"]
    after = [r for r in records if r["split"] == "eval"][-1]
    assert l1[-1] < l1[0]  # the pixel loss went down
    assert after["psnr"] > before["psnr"] + 1.0, (before, after)
    assert (tmp_path / "run" / "samples" / "step_0000120.png").is_file()


def _pan_steps(jit, steps=2):
    from tfi2i.train import make_distributed_step

    tf.keras.utils.set_random_seed(0)
    cfg = C.replace(recipe.smoke_config(), generator={"dropout": 0.0})
    gan = recipe.build(cfg)
    # SGD: Adam's first steps are ~lr * sign(g), which turns float noise in near-zero gradients into lr-sized steps
    gan.compile(g_optimizer=tf.keras.optimizers.SGD(0.05), d_optimizer=tf.keras.optimizers.SGD(0.05))
    step = make_distributed_step(gan, tf.distribute.get_strategy(), jit=jit)
    logs = [step(batch(10 + s)) for s in range(steps)]
    weights = [v.numpy() for v in gan.generator.trainable_variables + gan.discriminator_variables]
    return weights, {k: float(v) for k, v in logs[-1].items()}


def test_xla_pan_step_changes_results_only_by_float_noise():
    """The whole PAN step (pyramids with the matrix bicubic, six Ds, perceptual loss) compiles under XLA."""
    ref, ref_logs = _pan_steps(jit=False)
    xla, xla_logs = _pan_steps(jit=True)
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(ref, xla)) < 1e-4
    for k in ref_logs:
        assert xla_logs[k] == pytest.approx(ref_logs[k], rel=1e-3, abs=1e-5)
