"""Test-time modes: deterministic (dropout off, moving statistics) and the pix2pix reference script's mode
(dropout on, statistics of the test batch), seeded, in evaluation, export and translate."""

import json
import pathlib
import sys

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfi2i import config as C
from tfi2i import export, train
from tfi2i.cli import main as cli_main
from tfi2i.gan import PairedGAN

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "recipes"))
import pix2pix_facades as recipe  # noqa: E402


def x_batch(n=2, size=64, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)), tf.float32)


def test_reference_mode_is_seeded_and_leaves_the_model_unchanged():
    gan = recipe.build(recipe.smoke_config())
    x = x_batch()
    before = [v.numpy().copy() for v in gan.generator.weights]  # incl. moving statistics and dropout RNG states
    a = gan.generate({"x": x}, mode="reference", seed=1)["y"].numpy()
    b = gan.generate({"x": x}, mode="reference", seed=1)["y"].numpy()
    c = gan.generate({"x": x}, mode="reference", seed=2)["y"].numpy()
    d = gan.generate({"x": x})["y"].numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3 and np.abs(a - d).max() > 1e-3
    for u, v in zip(before, gan.generator.weights):
        np.testing.assert_array_equal(u, v.numpy())
    with pytest.raises(ValueError, match="unknown mode"):
        gan.generate({"x": x}, mode="paper")


def test_reference_mode_normalises_with_the_batch_statistics():
    """A one-BN generator: reference mode = (x - batch mean) / sqrt(batch var + eps), moving stats unused."""
    inp = keras.Input((None, None, 3), name="x")
    bn = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9)
    g = keras.Model({"x": inp}, {"y": bn(inp)})
    bn.moving_mean.assign([5.0, -5.0, 1.0])
    bn.moving_variance.assign([9.0, 4.0, 1.0])
    d_in = keras.Input((None, None, 6))
    d = keras.Model(d_in, ([d_in], keras.layers.Conv2D(1, 1)(d_in)))
    gan = PairedGAN(g, d, {"l1": 1.0})
    x = np.random.default_rng(0).normal(2.0, 3.0, (1, 4, 5, 3)).astype(np.float32)
    want = (x - x.mean(axis=(0, 1, 2))) / np.sqrt(x.var(axis=(0, 1, 2)) + 1e-5)
    np.testing.assert_allclose(gan.generate({"x": x}, mode="reference")["y"], want, atol=1e-5)
    np.testing.assert_allclose(gan.generate({"x": x})["y"], (x - [5.0, -5.0, 1.0]) / np.sqrt(np.array([9.0, 4.0, 1.0]) + 1e-5),
                               atol=1e-5)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), [5.0, -5.0, 1.0])  # not moved by the reference pass


def test_eval_mode_config_is_checked():
    with pytest.raises(C.ConfigError, match="eval.mode"):
        C.override(recipe.smoke_config(), ["eval.mode=paper"])
    assert C.override(recipe.smoke_config(), ["eval.mode=reference"]).eval.mode == "reference"


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("modes") / "run"
    cfg = C.override(recipe.smoke_config(), ["eval.mode=reference", "train.steps=2"])
    train.fit(cfg, None, str(workdir))
    return workdir


@pytest.mark.slow
def test_reference_mode_through_evaluate_export_and_translate(reference_run, tmp_path):
    evaluated = json.loads((reference_run / "eval.json").read_text())
    assert evaluated["mode"] == "reference"
    from tfi2i.evaluate import evaluate_workdir

    again = evaluate_workdir(reference_run, progress=False)
    assert again["mode"] == "reference" and again["l1"] == pytest.approx(evaluated["l1"], abs=1e-7)  # seeded
    other_seed = evaluate_workdir(reference_run, progress=False, seed=5)
    deterministic = evaluate_workdir(reference_run, progress=False, mode="deterministic")
    assert other_seed["l1"] != again["l1"] and deterministic["l1"] != again["l1"]

    # export: the run's mode by default; the seeded signature draws the masks from the seed
    version = export.export_run(reference_run, tmp_path / "export")
    assert export.read_metadata(version)["mode"] == "reference"
    loaded = tf.saved_model.load(str(version))
    assert {"serving_seeded", "translate_bytes_seeded"} <= set(loaded.signatures)
    x = x_batch(1, 64, seed=3)
    from tfi2i.runs import load_model

    model = load_model(reference_run).model
    want = export.pad_run_crop(model, {"x": x}, mode="reference", seed=7)["y"].numpy()
    got = loaded.signatures["serving_seeded"](x=x, seed=tf.constant([7], tf.int64))["y"].numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert np.abs(loaded.signatures["serving_seeded"](x=x, seed=tf.constant([8], tf.int64))["y"].numpy()
                  - got).max() > 1e-3

    # translate: K samples per image in reference mode, same from run and export; tiling refused
    src = tmp_path / "in"
    src.mkdir()
    img = np.random.default_rng(0).integers(0, 256, (40, 50, 3)).astype(np.uint8)
    cv2.imwrite(str(src / "a.png"), img)
    outs = {}
    for name, path in (("run", reference_run), ("export", tmp_path / "export")):
        out = tmp_path / name
        assert cli_main(["translate", "--model", str(path), "--input", str(src), "--output", str(out),
                         "--samples", "2", "--seed", "4", "--no-progress"]) == 0
        outs[name] = [cv2.imread(str(out / f"a_s{k}.png")).astype(int) for k in range(2)]
    assert np.abs(outs["run"][0] - outs["run"][1]).max() > 0
    for a, b in zip(outs["run"], outs["export"]):
        assert np.abs(a - b).max() <= 1
    assert cli_main(["translate", "--model", str(reference_run), "--input", str(src), "--output",
                     str(tmp_path / "t"), "--tile", "32", "--no-progress"]) == 1
    assert cli_main(["translate", "--model", str(reference_run), "--mode", "deterministic", "--input", str(src),
                     "--output", str(tmp_path / "det"), "--samples", "2", "--no-progress"]) == 1  # nothing to sample
