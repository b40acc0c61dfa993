"""Modified Pix2Pix (Mrudula Y): Eqs. 3-6 by hand on tiny tensors, the variants, golden counts, smoke runs, the recipe CLI."""

import json
import pathlib
import sys

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfi2i import config as C
from tfi2i import train
from tfi2i.data.open import open_data
from tfi2i.data.sources import SideBySide, Subset
from tfi2i.modified_pix2pix import PAPER_WEIGHTS, VARIANTS, ModifiedPix2Pix, reconstruction_loss, variant_weights

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "recipes"))
import modified_pix2pix_day2night as recipe  # noqa: E402

LN2 = float(np.log(2.0))
# x: [1, 1, 2, 3], mean |x| = (1 + 1 + 0.5 + 0 + 2 + 2) / 6 = 6.5 / 6
X = tf.constant([[[[1.0, -1.0, 0.5], [0.0, 2.0, -2.0]]]])
Y = tf.zeros_like(X)
MEAN_ABS_X = 6.5 / 6


class Scale(keras.layers.Layer):
    """``w * x`` with one trainable scalar ``w``: a generator whose terms can be worked out by hand."""

    def __init__(self, w0, **kwargs):
        super().__init__(**kwargs)
        self.w0 = w0

    def build(self, input_shape):
        self.w = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.w0), name="w")

    def call(self, x):
        return self.w * x


def toy_gan(weights=PAPER_WEIGHTS, w0=0.5, generator=None):
    """G(x) = w x (or `generator`); D = a zero 1x1 conv on concat(x, y): logits 0, so each adversarial term is log 2."""
    if generator is None:
        x_in = keras.Input((None, None, 3))
        generator = keras.Model({"x": x_in}, {"y": Scale(w0)(x_in)})
    d_in = keras.Input((None, None, 6))
    d = keras.Model(d_in, ([d_in], keras.layers.Conv2D(1, 1, kernel_initializer="zeros", bias_initializer="zeros")(d_in)))
    return ModifiedPix2Pix(generator, d, weights)


def scalar_w(gan):
    return gan.generator.trainable_variables[0]


def test_terms_and_eq6_total_by_hand():
    gan = toy_gan()
    batch = {"x": X, "y": Y}
    terms = gan.generator_terms(batch, gan.generator({"x": X})["y"])
    assert set(terms) == {"g_gan", "l1", "rec"}
    np.testing.assert_allclose(terms["g_gan"], [LN2], rtol=1e-6)  # -log sigmoid(0)
    np.testing.assert_allclose(terms["l1"], [0.5 * MEAN_ABS_X], rtol=1e-6)  # |0 - 0.5 x|
    np.testing.assert_allclose(terms["rec"], [0.75 * MEAN_ABS_X], rtol=1e-6)  # |x - 0.5 (0.5 x)|
    total, _ = gan.weighted_sum(terms)  # Eq. 6: 1 * L_adv + 1 * L_L1 + 10 * L_rec
    np.testing.assert_allclose(total, LN2 + 0.5 * MEAN_ABS_X + 10 * 0.75 * MEAN_ABS_X, rtol=1e-6)
    d_terms = gan.discriminator_terms(batch, gan.generator({"x": X})["y"])  # Eq. 5, unhalved
    np.testing.assert_allclose([d_terms["d_real"][0], d_terms["d_fake"][0]], [LN2, LN2], rtol=1e-6)
    np.testing.assert_allclose(gan.weighted_sum(d_terms)[0], 2 * LN2, rtol=1e-6)


def test_reconstruction_loss_is_per_example_l1():
    x = tf.constant([[[[1.0]], [[3.0]]], [[[0.0]], [[0.0]]]])  # [2, 2, 1, 1]
    rec = tf.constant([[[[0.0]], [[1.0]]], [[[0.5]], [[-0.5]]]])
    np.testing.assert_allclose(reconstruction_loss(x, rec), [(1 + 2) / 2, 0.5])


def test_rec_gradient_reaches_g_through_both_applications():
    # rec(w) = mean |x - w (w x)| = (1 - w^2) mean|x|  ->  d rec / dw = -2 w mean|x|: -w mean|x| from each application
    gan = toy_gan()
    w = scalar_w(gan)
    with tf.GradientTape(persistent=True) as tape:
        y_fake = gan.generator({"x": X}, training=True)["y"]
        both = gan.generator_terms({"x": X, "y": Y}, y_fake)["rec"]
        outer_only = gan.generator_terms({"x": X, "y": Y}, tf.stop_gradient(y_fake))["rec"]
    np.testing.assert_allclose(tape.gradient(both, w), -2 * 0.5 * MEAN_ABS_X, rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(outer_only, w), -0.5 * MEAN_ABS_X, rtol=1e-6)


def test_train_step_updates_g_by_the_hand_computed_gradient():
    # D frozen (lr 0) with zero weights: L_adv has no gradient in w; d L_G / dw = mean|x| + 10 * (-2 w mean|x|) = -9.75
    gan = toy_gan()
    gan.compile(g_optimizer=keras.optimizers.SGD(0.1), d_optimizer=keras.optimizers.SGD(0.0))
    logs = gan.train_step({"x": X, "y": Y})
    np.testing.assert_allclose(scalar_w(gan).numpy(), 0.5 - 0.1 * (MEAN_ABS_X - 10 * 2 * 0.5 * MEAN_ABS_X), rtol=1e-5)
    np.testing.assert_allclose(float(logs["rec"]), 0.75 * MEAN_ABS_X, rtol=1e-6)
    np.testing.assert_allclose(float(logs["d_total"]), 2 * LN2, rtol=1e-6)


def test_two_applications_use_different_dropout_noise():
    # G = Dropout(0.5) alone: kept values are doubled. With independent masks z, z' an element of G(G(1)) is 4 with
    # probability 1/4, else 0: E|1 - G(G(1))| = 1/4 * 3 + 3/4 * 1 = 1.5. With one shared mask it would be 1/2 * 3 + 1/2 * 1 = 2.
    x_in = keras.Input((None, None, 3))
    gan = toy_gan(generator=keras.Model({"x": x_in}, {"y": keras.layers.Dropout(0.5, seed=1)(x_in)}))
    x = tf.ones([1, 64, 64, 3])

    @tf.function  # as in the training step
    def rec():
        return gan.generator_terms({"x": x, "y": x}, gan.generator({"x": x}, training=True)["y"])["rec"]

    values = [float(rec()[0]) for _ in range(3)]
    for v in values:
        assert abs(v - 1.5) < 0.05, values  # std of the estimate: sqrt(0.75 / 12288) = 0.008
    assert len(set(values)) == 3  # fresh noise at every step too


EXPECTED = {  # variant -> (G terms computed, weights)
    "modified": ({"g_gan", "l1", "rec"}, {"g_gan": 1, "l1": 1, "rec": 10, "d_real": 1, "d_fake": 1}),
    "pix2pix": ({"g_gan", "l1"}, {"g_gan": 1, "l1": 1, "rec": 0, "d_real": 1, "d_fake": 1}),
    "pix2pix_l1_100": ({"g_gan", "l1"}, {"g_gan": 1, "l1": 100, "rec": 0, "d_real": 1, "d_fake": 1}),
    "rec_only": ({"g_gan", "l1", "rec"}, {"g_gan": 1, "l1": 0, "rec": 10, "d_real": 1, "d_fake": 1}),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_has_exactly_its_terms_and_weights(variant):
    assert set(VARIANTS) == set(EXPECTED)
    terms, weights = EXPECTED[variant]
    assert variant_weights(variant) == weights
    cfg = recipe.smoke_config("day2night", variant)
    assert cfg.loss.weights == weights
    gan = recipe.build(cfg)
    assert isinstance(gan, ModifiedPix2Pix) and gan.loss_weights == weights
    x = tf.random.stateless_uniform([1, 64, 64, 3], seed=[0, 1], minval=-1, maxval=1)
    calls = []
    gan.generator.call = (lambda orig: lambda *a, **k: (calls.append(1), orig(*a, **k))[1])(gan.generator.call)
    got = gan.generator_terms({"x": x, "y": x}, gan.generator({"x": x}, training=True)["y"])
    assert set(got) == terms
    assert len(calls) == (2 if "rec" in terms else 1)  # G(x), plus G(G(x)) only when rec is on
    assert set(gan.discriminator_terms({"x": x, "y": x}, x)) == {"d_real", "d_fake"}
    with pytest.raises(ValueError):
        variant_weights("nope")


def test_parameter_counts_golden():
    summary = train.parameter_summary(recipe.build(recipe.config()))
    assert summary["generator"] == 54_413_955  # pix2pix U-Net-256, batch norm
    assert summary["discriminator"] == 2_768_705  # 70x70 PatchGAN, 6 input channels, batch norm


def test_paper_settings():
    d2n, fac = recipe.config("day2night"), recipe.config("facades")
    assert (d2n.data.direction, d2n.data.batch_size, d2n.optim.n_epochs + d2n.optim.n_epochs_decay) == ("BtoA", 3, 100)
    assert (fac.data.direction, fac.data.batch_size, fac.optim.n_epochs + fac.optim.n_epochs_decay) == ("BtoA", 1, 200)
    assert recipe.TRAIN_IMAGES == {"day2night": 600, "facades": 400}
    assert d2n.loss.weights == PAPER_WEIGHTS and d2n.name == "modified_pix2pix_day2night"
    assert recipe.config("facades", "rec_only").name == "modified_pix2pix_facades_rec_only"


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "modified"])  # modified: tests/test_chain.py
def test_every_variant_trains_one_step(variant, tmp_path):
    cfg = C.replace(recipe.smoke_config("day2night", variant), train={"steps": 1, "eval_at_end": False, "export_at_end": False})
    logs = train.fit(cfg, recipe.build, str(tmp_path / variant))
    assert np.isfinite(float(logs["g_total"])) and np.isfinite(float(logs["d_total"]))
    assert ("rec" in logs) == (cfg.loss.weights["rec"] != 0)
    assert tf.train.latest_checkpoint(str(tmp_path / variant / "checkpoints"))


def _side_by_side_folder(folder, n):
    folder.mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i + 1}.png"), np.full((16, 32, 3), i * 10, np.uint8))


def _dataset(root, counts=(("train", 10), ("val", 2), ("test", 3))):
    for split, n in counts:
        _side_by_side_folder(root / split, n)
    return root


def test_paper_data_settings():
    for task, n in (("day2night", 600), ("facades", 400)):
        cfg = recipe.config(task)
        assert (cfg.data.num_train, cfg.data.eval_split) == (n, "test")
        assert recipe.demo_config(cfg).data.num_train == 0  # the demo trains on every demo pair
    assert recipe.smoke_config().data.num_train == 0


def test_num_train_subset_and_test_split(tmp_path):
    root = _dataset(tmp_path / "night2day")
    cfg = C.replace(recipe.config("day2night"), data={"path": str(root), "num_train": 4})
    train_src, eval_src, _ = open_data(cfg)
    picked = sorted(np.random.default_rng(0).choice(10, size=4, replace=False).tolist())  # seed 0, the folder's order
    assert isinstance(train_src, Subset) and len(train_src) == 4
    assert train_src.names == tuple(str(i + 1) for i in picked)
    assert open_data(cfg)[0].names == train_src.names  # the same pairs every time (and on --resume)
    assert eval_src.folder == root / "test" and len(eval_src) == 3  # Sec. 4.1: the test images, not val/
    for n in (0, 10, 600):  # 0: all; N >= the split: all
        everything, _, _ = open_data(C.replace(cfg, data={"num_train": n}))
        assert isinstance(everything, SideBySide) and len(everything) == 10
    no_test = _dataset(tmp_path / "no_test", (("train", 5), ("val", 2)))
    assert open_data(C.replace(cfg, data={"path": str(no_test)}))[1].folder == no_test / "val"
    mine = C.replace(cfg, data={"eval_path": str(root / "val")})
    assert open_data(mine)[1].folder == root / "val"  # data.eval_path wins


def test_recipe_run_on_a_subset(tmp_path):
    root = _dataset(tmp_path / "night2day")
    cfg = C.replace(recipe.smoke_config(), data={"path": str(root), "num_train": 4, "direction": "BtoA"},
                    train={"steps": 1, "export_at_end": False})
    train.fit(cfg, recipe.build, str(tmp_path / "run"))
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["num_images"] == 3  # test/
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["data"]
    assert (saved["num_train"], saved["eval_split"], saved["path"]) == (4, "test", str(root))


def test_recipe_flags(capsys):
    assert recipe.main(["--task", "facades", "--variant", "rec_only", "--print-config"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "modified_pix2pix_facades_rec_only_demo"  # no --data: the demo schedule
    assert out["loss"]["weights"]["l1"] == 0 and out["loss"]["weights"]["rec"] == 10
    assert out["data"]["num_train"] == 0 and out["data"]["eval_split"] == "test"
    argv = ["--variant=pix2pix", "--data", "datasets/night2day", "--set", "data.num_train=50", "--print-config"]
    assert recipe.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "modified_pix2pix_day2night_pix2pix" and out["data"]["path"] == "datasets/night2day"
    assert out["data"]["num_train"] == 50 and out["data"]["batch_size"] == 3 and out["loss"]["weights"]["l1"] == 1
    assert recipe.main(["--task", "facades", "--data", "d", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["num_train"] == 400
    with pytest.raises(SystemExit) as exit_:
        recipe.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "--task {day2night,facades}" in text and "--variant {" + ",".join(VARIANTS) + "}" in text
    assert "data.num_train" in text and "--train-images" not in text
    for bad in (["--variant", "nope"], ["--variant"], ["--task", "maps"], ["--train-images", "600"]):
        with pytest.raises(SystemExit) as exit_:
            recipe.main(bad + ["--print-config"])
        assert exit_.value.code == 2  # argparse: usage error
        assert "error:" in capsys.readouterr().err
    assert recipe.main(["--set", "data.eval_split=tset", "--print-config"]) == 1
    assert "data.eval_split must be one of auto, test, val" in capsys.readouterr().err


def test_paper_table1_rows_are_our_runs_and_the_printed_values():
    (table,) = recipe.PAPER_TABLES.values()
    assert list(table["rows"]) == [recipe.config("day2night", v).name for v in ("pix2pix", "modified")]
    assert list(table["columns"]) == ["mse", "psnr", "ssim"] and table["transpose"]  # one column per model
    original, modified = (values for _, values in table["rows"].values())
    assert original == (0.002144413411081063, 26.766485, 0.97995055)
    assert modified == (0.0026935997096859295, 25.862993, 0.9762408)
    for mse, mean_psnr, _ in (original, modified):  # MSE on the [0, 1] scale <-> PSNR with peak 1: a mean of
        assert 0 <= mean_psnr - 10 * np.log10(1 / mse) < 0.5  # per-image PSNRs is >= the PSNR of the mean MSE
