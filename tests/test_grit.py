"""GRIT: the modulation layers by hand, the generator's shape per variant, Eq. 2's gradients, seeded noise, runs.

Runs train the recipe's smoke config (tiny widths, 64x64) on a handful of generated files in the CelebAMask-HQ
layout (`tfi2i.data.demo.make_face_demo`: part masks merged in tf.data, the train / test split from the mapping
files); the layout's own rules are tested in tests/data/test_celebamask.py.
"""


import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import load_recipe
from tfi2i import train
from tfi2i.config import ConfigError, replace
from tfi2i.grit import GritSection, build
from tfi2i.layers.style import AdaIN, NoiseInjection
from tfi2i.networks.grit import grit_generator


def _recipe(name="grit_celebamask"):
    return load_recipe(name)


# ----------------------------------------------------------------- layers by hand
def test_noise_injection_adds_weighted_noise_per_channel():
    layer = NoiseInjection()
    features = tf.ones((1, 2, 2, 2))
    noise = tf.constant([[[[1.0], [2.0]], [[3.0], [4.0]]]])
    np.testing.assert_array_equal(layer([features, noise]), features)  # weights start at 0
    layer.weight.assign([0.5, -1.0])
    out = layer([features, noise]).numpy()
    np.testing.assert_allclose(out[0, 1, 0], [1.0 + 0.5 * 3, 1.0 - 3.0])


def test_adain_normalises_then_applies_the_style_scale_and_shift():
    layer = AdaIN()
    features = tf.constant([[[[1.0], [3.0]], [[5.0], [7.0]]]])  # mean 4, variance 5
    style = tf.constant([[2.0]])
    layer([features, style])
    layer.style_kernel.assign([[0.5, 1.0]])  # gamma = 0.5 * 2 = 1, beta = 1 * 2 = 2
    layer.style_bias.assign([0.0, 1.0])  # beta = 3
    out = layer([features, style]).numpy()[0, :, :, 0]
    normed = (np.array([[1.0, 3.0], [5.0, 7.0]]) - 4.0) / np.sqrt(5.0 + 1e-5)
    np.testing.assert_allclose(out, (1.0 + 1.0) * normed + 3.0, rtol=1e-5)


# ----------------------------------------------------------------- the generator
def test_variants_declare_their_inputs_and_outputs():
    full = grit_generator(19, ngf=4, n_downsample=3, nsf=4, style_dim=8)
    assert sorted(full.input) == ["noise_1", "noise_2", "noise_3", "style", "x"]
    assert sorted(full.output) == ["y", "y_rec", "y_res"]
    unet = grit_generator(19, ngf=4, n_downsample=3, nsf=4, style_dim=8, noise=False, residual=False)
    assert sorted(unet.input) == ["style", "x"] and list(unet.output) == ["y"]
    split = grit_generator(19, ngf=4, n_downsample=3, nsf=4, style_dim=8, split_blocks=1)
    assert {"rec_dec3_up", "res_dec3_up"} <= {layer.name for layer in split.layers}
    with pytest.raises(ValueError, match="residual"):
        grit_generator(19, n_downsample=3, residual=False, split_blocks=1)


def test_default_generator_parameter_count():
    def conv(k, c_in, c_out):
        return k * k * c_in * c_out + c_out

    widths = [64, 128, 256, 512, 512, 512]  # E^C: 19 one-hot channels in, instance norm (no parameters)
    e_c = conv(4, 19, 64) + sum(conv(4, widths[i - 1], widths[i]) for i in range(1, 6))
    e_s = conv(7, 3, 64) + conv(4, 64, 128) + conv(4, 128, 256) + 2 * conv(4, 256, 256) + 256 * 256 + 256
    decoder, c_in = 0, 512
    for k in range(1, 7):  # up, concat skip, 3x3 conv, noise weights, AdaIN's style affine (256 -> 2C)
        out = widths[5 - k] if k < 6 else 64
        decoder += conv(4, c_in, out) + conv(3, 2 * out if k < 6 else out, out) + out + (256 + 1) * 2 * out
        c_in = out
    heads = 2 * conv(3, 64, 3)
    g = grit_generator(19)  # ngf 64, 6 levels, MUNIT's style encoder, 256-d code, both heads
    assert g.count_params() == e_c + e_s + decoder + heads == 37_017_798


def test_output_is_the_sum_of_the_components_and_the_style_changes_it():
    g = grit_generator(5, ngf=4, n_downsample=2, nsf=4, style_dim=8)
    rng = np.random.default_rng(0)
    inputs = {"x": tf.one_hot(rng.integers(0, 5, (1, 16, 16)), 5),
              "style": tf.constant(rng.uniform(-1, 1, (1, 16, 16, 3)), tf.float32),
              "noise_1": tf.zeros((1, 8, 8, 1)), "noise_2": tf.zeros((1, 16, 16, 1))}
    out = g(inputs)
    np.testing.assert_allclose(out["y"], out["y_rec"] + out["y_res"], atol=1e-6)
    other = g({**inputs, "style": -inputs["style"]})
    assert np.abs(other["y"] - out["y"]).max() > 0


# ----------------------------------------------------------------- Eq. 2
def _model(variant="full"):
    return build(_recipe().smoke_config("", variant))


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    return {"x": tf.constant(rng.integers(0, 19, (1, 32, 32, 1)), tf.int32),
            "y": tf.constant(rng.uniform(-1, 1, (1, 32, 32, 3)), tf.float32)}


def test_reconstruction_loss_never_reaches_the_residual_head():
    model = _model()
    res, rec = model.generator.get_layer("res_head").kernel, model.generator.get_layer("rec_head").kernel
    batch = model.with_inputs(_batch(), seeds=tf.constant([1], tf.int64))
    with tf.GradientTape(persistent=True) as tape:
        terms = model.generator_terms(batch, model.generator(batch["inputs"], training=True))
    assert tape.gradient(terms["rec"], res) is None  # Eq. 2: L_rec on I_rec only
    assert float(tf.reduce_max(tf.abs(tape.gradient(terms["rec"], rec)))) > 0
    for head in (res, rec):  # the adversarial loss on I_rec + I_res reaches both heads
        assert float(tf.reduce_max(tf.abs(tape.gradient(terms["g_gan"], head)))) > 0
    fake = model.generator(batch["inputs"], training=True)
    np.testing.assert_allclose(terms["rec"], np.mean(np.abs(batch["y"] - fake["y_rec"])), rtol=1e-5)


def test_without_residuals_the_reconstruction_loss_is_on_the_output():
    model = _model("unet")
    assert model.contract.output_names == ("y",) and not model.contract.noise
    batch = model.with_inputs(_batch())
    fake = model.generator(batch["inputs"], training=False)
    terms = model.generator_terms(batch, fake, training=False)
    np.testing.assert_allclose(terms["rec"], np.mean(np.abs(batch["y"] - fake["y"])), rtol=1e-5)


def test_noise_comes_from_the_seed():
    model = _model()
    for layer in model.generator.layers:
        if isinstance(layer, NoiseInjection):
            layer.weight.assign(tf.ones_like(layer.weight))
    batch = _batch()
    a = model.generate(batch, seeds=tf.constant([3], tf.int64))
    b = model.generate(batch, seeds=tf.constant([3], tf.int64))
    c = model.generate(batch, seeds=tf.constant([4], tf.int64))
    np.testing.assert_array_equal(a["y"], b["y"])
    assert np.abs(a["y_res"] - c["y_res"]).max() > 0


def test_config_rules():
    with pytest.raises(ConfigError, match="label maps"):
        replace(_recipe().config(), data={"x_kind": "rgb"})
    with pytest.raises(ConfigError, match="split_blocks"):
        GritSection(residual=False, split_blocks=1)
    cfg = _recipe().config("512", "noise")
    assert cfg.grit.n_downsample == 7 and cfg.grit.noise and not cfg.grit.residual and not cfg.data.flip
    assert cfg.name == "grit_celebamask_512_noise" and cfg.loss.weights["rec"] == 10.0
    hd = replace(_recipe().pix2pixhd_config(), hd={"ngf": 4, "n_downsample_global": 2, "n_blocks_global": 1,
                                                   "ndf": 4, "vgg_weights": "random"})
    assert hd.hd.label_feat and hd.name == "pix2pixhd_celebamask_256"
    from tfi2i.pix2pixhd import build as build_hd

    model = build_hd(hd)  # the per-label feature encoder: G takes labels + the 3 feature channels
    assert model.encoder is not None and model.contract.input("feat").channels == 3


def test_tables_are_printed_in_the_papers_layout():
    from tfi2i.evaluate import format_paper_tables

    text = format_paper_tables(_recipe().PAPER_TABLES, {"r": {"config_name": "grit_celebamask_256_unet_demo",
                                                              "l1_255": 30.0, "psnr": 15.0, "ssim": 0.4,
                                                              "lpips": 0.3, "fid": 99.0}})
    assert "| Ours | paper | 18.34 | 19.54 | 0.531 | 0.245 | 17.04 |" in text
    assert "| U-Net | paper | 21.68 | 18.25 | 0.504 | 0.222 | 20.24 |" in text and "ours: r" in text


# ----------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """A handful of generated files in the CelebAMask-HQ layout (part masks, mapping and partition files)."""
    from tfi2i.data.demo import make_face_demo

    return str(make_face_demo(tmp_path_factory.mktemp("faces") / "CelebAMask-HQ", num_train=3, num_val=0,
                              num_test=2, size=(64, 64)))


def _weights(workdir):
    from tfi2i.runs import load_model

    _, model, _ = load_model(workdir)
    return [v.numpy() for v in model.generator.weights] + [v.numpy() for d in model.discriminators for v in d.weights]


@pytest.fixture(scope="module")
def grit_run(faces, tmp_path_factory):
    cfg = replace(_recipe().smoke_config(faces), train={"eval_at_end": False})
    workdir = str(tmp_path_factory.mktemp("grit") / "straight")
    train.fit(cfg, workdir=workdir)
    return cfg, workdir


def test_full_model_trains_and_resumes_bit_exactly(grit_run, tmp_path):
    from tests.helpers import killed_copy

    cfg, straight = grit_run
    killed = str(killed_copy(straight, 1, tmp_path / "killed"))  # as a kill after the checkpoint at step 1 leaves it
    train.fit(cfg, workdir=killed, resume=True)
    a, b = _weights(straight), _weights(killed)
    assert len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


def test_figures_7_8_9_from_a_trained_run(grit_run, tmp_path):
    from pathlib import Path

    from tfi2i.cli import main as cli_main

    _, workdir = grit_run
    grid = sorted((Path(workdir) / "samples").glob("*.png"))
    assert grid  # Fig. 8: label map, style, y, y_rec, y_res, target columns
    out = tmp_path / "eval"
    assert cli_main(["evaluate", "--workdir", workdir, "--metrics", "l1_255,psnr,ssim", "--outputs", "all",
                     "--diversity", "3", "--spectrum", "--out", str(out), "--no-progress"]) == 0
    assert list(out.glob("diversity_*.png"))  # Fig. 7: per-pixel std over the noise samples
    csv = (out / "spectrum.csv").read_text()
    assert (out / "spectrum.png").is_file()
    for name in ("straight:y_rec", "straight:y_res", "target"):  # Fig. 9: components, output, ground truth
        assert name in csv.splitlines()[0]


def test_sampled_styles_from_the_run_and_its_export_agree(grit_run, faces, tmp_path):
    """`tfi2i style-prior`, then `translate --style sampled` from the run and from `export --style sampled`."""
    import cv2

    from tfi2i import style_prior
    from tfi2i.cli import main as cli_main
    from tfi2i.data.images import read_image

    _, workdir = grit_run
    assert cli_main(["style-prior", "--workdir", workdir, "--no-progress"]) == 0
    prior = style_prior.load(workdir)
    assert int(prior["count"]) == 3 and prior["mean"].shape == (8,)  # the 3 training faces, style_dim 8
    labels = tmp_path / "labels"
    labels.mkdir()
    ids = np.zeros((64, 64), np.uint8)
    ids[8:56, 12:52], ids[20:28, 18:28], ids[40:46, 22:42] = 1, 4, 11  # skin, an eye, a lip
    cv2.imwrite(str(labels / "face.png"), ids)
    common = ["--input", str(labels), "--style", "sampled", "--samples", "2", "--seed", "5", "--no-progress"]
    assert cli_main(["translate", "--model", workdir, "--output", str(tmp_path / "run"), *common]) == 0
    assert cli_main(["export", "--workdir", workdir, "--out", str(tmp_path / "export"), "--style", "sampled"]) == 0
    assert cli_main(["translate", "--model", str(tmp_path / "export"), "--output", str(tmp_path / "exp"),
                     *common]) == 0
    run = [read_image(tmp_path / "run" / f"face_s{k}.png").astype(int) for k in (0, 1)]
    exp = [read_image(tmp_path / "exp" / f"face_s{k}.png").astype(int) for k in (0, 1)]
    assert all(np.abs(a - b).max() <= 1 for a, b in zip(run, exp))  # PNG rounding of equal floats
    assert np.abs(run[0] - run[1]).max() > 0  # two seeds, two styles (and noise)
    from tfi2i.translate import TranslateError, load_translator

    meta = tmp_path / "export" / "1" / "tfi2i_export.json"
    meta.write_text(meta.read_text().replace('"style": "sampled', '"style_was": "sampled'))
    with pytest.raises(TranslateError, match="not exported with sampled styles"):
        load_translator(tmp_path / "export", sampled_style=True)  # an export that takes no sampled style
