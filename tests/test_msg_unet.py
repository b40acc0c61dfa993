"""MSG U-Net: golden FLOPs and parameters, the generator's structure, Eq. 1 term by term, the scales, and runs.

The runs train the recipe's smoke config (`recipes/msg_unet_cityscapes.smoke_config`: the five-scale structure
at 256x128, tiny widths) on the real full-resolution Cityscapes pairs of ``../shared/data/cityscapes_fullres``
rendered as segmented RGB (``data.label_colors=cityscapes``), skipped when they are absent.
"""


import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import load_recipe
from tfi2i import train
from tfi2i.config import ConfigError, replace
from tfi2i.data import pipeline
from tfi2i.data.augment import downscale
from tfi2i.flops import count_flops
from tfi2i.msg_unet import MSGSection, MSGUNetConfig, build
from tfi2i.networks import msg_unet as nets
from tfi2i.networks.pix2pixhd import global_generator


def _recipe(name="msg_unet_cityscapes"):
    return load_recipe(name)


def _shapes(generator, h, w):
    return {name: (h // 2**k, w // 2**k, 3) for k, name in enumerate(generator.input)}


# ----------------------------------------------------------------- golden FLOPs / parameters
def test_generator_at_2048x1024_costs_1_33_tflops_against_pix2pixhd_3_33():
    widths = MSGSection().level_widths
    assert widths == (32, 64, 128, 256, 512, 512, 512, 512, 512)
    g = nets.msg_unet_generator(widths=widths)
    assert list(g.input) == ["x", "x_2", "x_4", "x_8", "x_16"] and list(g.output) == ["y", "y_2", "y_4", "y_8", "y_16"]
    flops = count_flops(g, _shapes(g, 1024, 2048))
    assert flops == 1_329_913_135_104  # the paper: 1.28e12
    assert g.count_params() == 68_851_951
    hd = count_flops(global_generator({"x": 3}, ngf=64, n_downsample=3), {"x": (1024, 2048, 3)})
    assert hd == 3_325_915_299_840  # the paper: 3.32e12
    assert hd / flops > 2.5


def test_the_512_variant_drops_the_top_level():
    full, small = MSGSection(), MSGSection(scales=4, first_level=1)
    assert small.level_widths == full.level_widths[1:]
    g = nets.msg_unet_generator(widths=small.level_widths, scales=4, depth=4)
    assert list(g.output) == ["y", "y_2", "y_4", "y_8"]
    assert count_flops(g, _shapes(g, 512, 512)) == 523_457_527_808
    out = g.compute_output_spec({n: keras.KerasTensor((1, *s)) for n, s in _shapes(g, 512, 512).items()})
    assert {k: tuple(v.shape) for k, v in out.items()} == {"y": (1, 512, 512, 3), "y_2": (1, 256, 256, 3),
                                                          "y_4": (1, 128, 128, 3), "y_8": (1, 64, 64, 3)}
    assert small.multiple == 128


# ----------------------------------------------------------------- structure (Sec. 2.1)
def _layer(g, name):
    return g.get_layer(name)


def test_encoder_and_decoder_blocks_follow_section_2_1():
    g = nets.msg_unet_generator(widths=(4, 8, 8, 8, 8), scales=3, depth=2)
    convs = {layer.name: layer for layer in g.layers if isinstance(layer, keras.layers.Conv2D)}
    for level in range(3):  # two 4x4 stride-1 blocks at every input level
        for k in (1, 2):
            c = convs[f"enc{level}_conv{k}_conv"]
            assert c.kernel_size == (4, 4) and c.strides == (1, 1) and not c.use_bias
    for level in range(1, 5):  # a 4x4 stride-2 block down to every level
        assert convs[f"enc{level}_down_conv"].kernel_size == (4, 4) and convs[f"enc{level}_down_conv"].strides == (2, 2)
    for level in (1, 2):  # the resized source is concatenated, then a 1x1 block
        assert isinstance(_layer(g, f"enc{level}_concat"), keras.layers.Concatenate)
        assert convs[f"enc{level}_fuse_conv"].kernel_size == (1, 1)
        assert convs[f"enc{level}_fuse_conv"].input.shape[-1] == 8 + 3
    assert "enc3_concat" not in [layer.name for layer in g.layers]  # below the input scales: a plain U-Net
    for level in range(4):  # transposed conv up, ADDED to the encoder feature, stride-1 block
        up = _layer(g, f"dec{level}_up_conv")
        assert isinstance(up, keras.layers.Conv2DTranspose) and up.strides == (2, 2)
        assert isinstance(_layer(g, f"dec{level}_skip"), keras.layers.Add)
        assert _layer(g, f"dec{level}_conv_conv").strides == (1, 1)
    assert not [layer for layer in g.layers if layer.name.startswith("dec") and "concat" in layer.name]
    assert {f"out{level}_conv" for level in range(3)} <= set(convs)
    for name in ("enc0_conv1_lrelu", "dec1_conv_lrelu"):
        assert _layer(g, name).negative_slope == pytest.approx(0.2)
    top = nets.msg_unet_generator(widths=(4, 8, 8, 8, 8), scales=3, depth=2, top_blocks_only=True)
    assert [layer.name for layer in top.layers if "_conv1_conv" in layer.name] == ["enc0_conv1_conv"]


def test_skip_addition_and_output_shapes_on_a_rectangular_input():
    g = nets.msg_unet_generator(widths=(4, 8, 8, 8, 8), scales=3, depth=2)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 32, 64, 3)).astype(np.float32)
    inputs = {name: downscale(x, 2**k) for k, name in enumerate(g.input)}
    out = g(inputs, training=False)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"y": (2, 32, 64, 3), "y_2": (2, 16, 32, 3),
                                                          "y_4": (2, 8, 16, 3)}
    probe = keras.Model(g.input, [g.get_layer("dec1_up_lrelu").output, g.get_layer("enc1_conv2_lrelu").output,
                                  g.get_layer("dec1_skip").output])
    up, skip, added = probe(inputs, training=False)
    np.testing.assert_allclose(added, up + skip, rtol=0, atol=1e-6)
    assert np.all(np.abs(out["y"]) <= 1.0)


# ----------------------------------------------------------------- the scales: tf.data == the contract
def _tiny_cfg(judged="all", **msg):
    return MSGUNetConfig(
        builder="tfi2i.msg_unet:build",
        msg=MSGSection(scales=3, depth=1, ngf=4, width_cap=8, ndf=4, n_layers_d=1, judged=judged, vgg_weights="random",
                       **msg),
        loss=_recipe().config().loss)


def test_the_contract_resizes_with_the_tf_data_pyramid():
    model = build(_tiny_cfg())
    spec = model.contract.input("x_4")
    assert (spec.factor, spec.resized_from, spec.supplied, spec.conditions) == (4, "x", False, False)
    assert [s.name for s in model.contract.supplied] == ["x"]
    assert model.contract.multiple == 8 and not model.contract.tileable
    rng = np.random.default_rng(1)
    x = tf.constant(rng.uniform(-1, 1, (1, 32, 64, 3)).astype(np.float32))
    levels = tuple(tf.stack([level]) for level in
                   __import__("tfi2i.data.augment", fromlist=["pyramid_levels"]).pyramid_levels(x[0], 3))
    from_data = model.encode({"x": x, "x_levels": levels})
    from_contract = model.contract.encode({"x": x})
    for name in ("x", "x_2", "x_4"):
        np.testing.assert_array_equal(from_data[name], from_contract[name])
    np.testing.assert_allclose(from_contract["x_2"][0, 0, 0], np.mean(x[0, :2, :2], axis=(0, 1)), atol=1e-6)
    a = model.generate({"x": x, "x_levels": levels})
    b = model.generate({"x": x})
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_config_rules():
    with pytest.raises(ConfigError, match="pyramid_levels"):
        replace(_recipe().config(), data={"pyramid_levels": 3})
    with pytest.raises(ConfigError, match="label_colors"):
        replace(_recipe().config(), data={"label_colors": ""})
    with pytest.raises(ConfigError, match="msg.judged"):
        MSGSection(judged="middle")
    with pytest.raises(ConfigError, match="msg.widths"):
        MSGSection(widths=(8, 8))
    cfg = _recipe().config()
    assert cfg.data.crop_hw == (1024, 2048) and cfg.data.pyramid_levels == 5 and cfg.data.label_colors == "cityscapes"
    assert cfg.loss.weights["g_feat"] == 10.0 and cfg.loss.weights["g_vgg"] == 0.25
    assert _recipe().config("maps512").data.crop_hw == (512, 512)


def test_table_1_is_printed_beside_our_run():
    from tfi2i.evaluate import format_paper_tables

    text = format_paper_tables(_recipe().PAPER_TABLES, {"run": {"config_name": "msg_unet_cityscapes_demo",
                                                                "psnr": 12.5, "ssim": 0.25, "vif": 0.01}})
    assert "| MSG U-Net (2048 × 1024) | paper | 23.99 | 0.69 | 0.15 |" in text
    assert "| | ours: run | 12.5" in text.replace("|  |", "| |") and "| 26.20 |" in text


def test_tfds_cityscapes_gives_the_colour_maps_itself(capsys):
    import json

    assert _recipe().main(["--data", "tfds:cityscapes", "--print-config"]) == 0
    data = json.loads(capsys.readouterr().out)["data"]
    assert (data["path"], data["x_kind"], data["label_colors"], data["direction"]) == ("tfds:cityscapes", "rgb", "",
                                                                                      "BtoA")


# ----------------------------------------------------------------- Eq. 1, recomputed independently
def _l1(a, b):
    return np.mean(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


def test_objective_is_equation_1_summed_over_the_scales():
    cfg = _tiny_cfg()
    model = build(cfg)
    model.vgg = model.vgg_factory()
    rng = np.random.default_rng(2)
    x = tf.constant(rng.uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32))
    y = tf.constant(rng.uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32))
    batch = model.with_inputs({"x": x, "y": y})
    fake = model.generator(batch["inputs"], training=False)
    g_terms, d_terms = model.objective(batch, fake, training=False)
    want = {"g_gan": 0.0, "g_feat": 0.0, "g_vgg": 0.0, "d_real": 0.0, "d_fake": 0.0}
    for k, d in enumerate(model.discriminators):
        cond = downscale(x, 2**k)
        real, out = downscale(y, 2**k), fake[nets.output_name(k)]
        f_fake, p_fake = d(tf.concat([cond, out], -1), training=False)
        f_real, p_real = d(tf.concat([cond, real], -1), training=False)
        want["g_gan"] += np.mean((np.asarray(p_fake) - 1.0) ** 2)
        want["d_fake"] += np.mean(np.asarray(p_fake) ** 2)
        want["d_real"] += np.mean((np.asarray(p_real) - 1.0) ** 2)
        want["g_feat"] += sum(_l1(a, b) for a, b in zip(f_fake, f_real))  # weight 1 (1/E_i) for every layer
        if min(out.shape[1:3]) >= 16:  # VGG-19's fifth block needs 16 pixels
            want["g_vgg"] += sum(_l1(a, b) for a, b in zip(model.vgg(out), model.vgg(real)))
    assert len(model.vgg.outputs) == 16  # every convolution of VGG-19
    got = {**{k: float(v[0]) for k, v in g_terms.items()}, **{k: float(v[0]) for k, v in d_terms.items()}}
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-5), name


def test_vgg_term_trains_the_generator():
    model = build(_tiny_cfg())
    model.vgg = model.vgg_factory()
    rng = np.random.default_rng(6)
    batch = model.with_inputs({"x": tf.constant(rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)),
                               "y": tf.constant(rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32))})
    heads = [model.generator.get_layer(f"out{k}_conv").kernel for k in range(2)]  # 32 and 16 px: VGG fits
    with tf.GradientTape() as tape:
        g_vgg = model.objective(batch, model.generator(batch["inputs"], training=True))[0]["g_vgg"]
    for grad in tape.gradient(g_vgg, heads):
        assert grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0
    assert not any(v.trainable for v in model.vgg.weights)  # frozen


def test_judging_only_the_top_output_leaves_the_intermediate_heads_without_gradient():
    rng = np.random.default_rng(3)
    batch = {"x": tf.constant(rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)),
             "y": tf.constant(rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32))}
    for judged in ("all", "top"):
        model = build(replace(_tiny_cfg(judged), loss={"weights": {**_recipe().config().loss.weights, "g_vgg": 0.0}}))
        assert len(model.discriminators) == (3 if judged == "all" else 1)
        heads = [model.generator.get_layer(f"out{k}_conv").kernel for k in range(3)]
        with tf.GradientTape() as tape:
            b = model.with_inputs(batch)
            total, _ = model.weighted_sum(model.objective(b, model.generator(b["inputs"], training=True))[0])
        grads = tape.gradient(total, heads)
        assert grads[0] is not None and float(tf.reduce_max(tf.abs(grads[0]))) > 0
        for g in grads[1:]:
            assert (g is None) == (judged == "top")


# ----------------------------------------------------------------- msg.recompute: the same step, less memory
def _two_steps(recompute):
    keras.utils.set_random_seed(4)
    model = build(_tiny_cfg(recompute=recompute))
    # SGD: a weight moves by lr * gradient, so float noise in a gradient stays noise (Adam's first steps move a
    # weight by about lr * sign(gradient), and a gradient near 0 flips sign with the summation order)
    model.compile(keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.05))
    rng = np.random.default_rng(8)
    batch = {"x": tf.constant(rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)),
             "y": tf.constant(rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32))}
    step = tf.function(model.train_step, autograph=False)
    logs = [{k: float(v) for k, v in step(batch).items()} for _ in range(2)]
    return logs, {v.path: v.numpy() for n in [model.generator, *model.discriminators] for v in n.weights}


def test_recompute_gives_the_same_losses_weights_and_moving_statistics():
    logs_a, weights_a = _two_steps(False)
    logs_b, weights_b = _two_steps(True)  # G's blocks and VGG-19's recomputed
    assert logs_b[0].keys() == logs_a[0].keys() and "g_vgg" in logs_a[0]
    for a, b in zip(logs_a, logs_b):
        for name in a:
            assert b[name] == pytest.approx(a[name], rel=1e-5, abs=1e-6), name
    assert weights_b.keys() == weights_a.keys() and any("moving" in p for p in weights_a)
    for path, value in weights_a.items():  # after two SGD steps of G and every D
        np.testing.assert_allclose(weights_b[path], value, rtol=1e-4, atol=1e-6, err_msg=path)


# ----------------------------------------------------------------- runs on the real full-resolution pairs
def _weights(workdir):
    from tfi2i.runs import load_model

    _, model, _ = load_model(workdir)
    return ([v.numpy() for v in model.generator.weights],
            [v.numpy() for d in model.discriminators for v in d.weights])


def test_recipe_trains_on_the_real_pairs_and_resumes_bit_exactly(cityscapes_fullres, tmp_path):
    # without the VGG term: its cost, not its logic (test_vgg_term_trains_the_generator)
    from tests.helpers import killed_copy

    cfg = replace(_recipe().smoke_config(str(cityscapes_fullres), "no_vgg"),
                  train={"steps": 2, "checkpoint_every": 1, "eval_at_end": False})
    straight = str(tmp_path / "straight")
    train.fit(cfg, workdir=straight)
    killed = str(killed_copy(straight, 1, tmp_path / "killed"))  # as a kill after the checkpoint at step 1 leaves it
    train.fit(cfg, workdir=killed, resume=True)
    (g_a, d_a), (g_b, d_b) = _weights(straight), _weights(killed)
    assert len(d_a) and all(np.array_equal(a, b) for a, b in zip(g_a + d_a, g_b + d_b))
    from tfi2i.runs import load_model

    cfg_loaded, model, _ = load_model(straight)
    assert cfg_loaded.data.label_colors == "cityscapes" and model.contract.output("y_16").factor == 16
    batch = next(iter(pipeline.eval_dataset(*_sources(cfg_loaded), batch_size=1)))
    assert batch["x"].shape == (1, 128, 256, 3) and len(batch["x_levels"]) == 5
    out = model.generate(batch)
    assert out["y_16"].shape == (1, 8, 16, 3) and out["y"].shape == (1, 128, 256, 3)


def _sources(cfg):
    from tfi2i.data.open import open_data

    _, eval_src, data_cfg = open_data(cfg)
    return eval_src, data_cfg

