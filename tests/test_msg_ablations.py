"""MSG U-Net's ablations: the resolution ablation (Sec. 3.2, Tables 2-3) and the gradient histogram (Fig. 2).

Two tiny runs (the recipe's ``smoke_config``: five scales at 256x128, 2 steps), ``full`` and ``top_only``, on
the synthetic 35-class label-map demo at 128x256 (the real full-resolution pairs train in tests/test_msg_unet.py;
decoding them would double this file's time).
"""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import load_recipe
from tfi2i import cli, train
from tfi2i import gradient_histogram as gh
from tfi2i import resolution_ablation as ra
from tfi2i.config import replace
from tfi2i.networks.msg_unet import output_name


def _recipe(name="msg_unet_cityscapes"):
    return load_recipe(name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from tfi2i.data.demo import make_label_demo

    recipe, root = _recipe(), tmp_path_factory.mktemp("msg")
    data = make_label_demo(root / "labels", num_train=4, num_val=2, size=(128, 256), num_classes=35)
    out = {}
    for variant in ("full", "top_only"):  # without the VGG term (its cost, not its logic: tests/test_msg_unet.py)
        cfg = replace(recipe.smoke_config(str(data), variant), data={"direction": "BtoA"},
                      loss={"weights": {**recipe.variant_weights(variant), "g_vgg": 0.0}},
                      train={"steps": 2, "eval_at_end": False, "sample_every": 100})
        out[variant] = str(root / variant)
        train.fit(cfg, workdir=out[variant])
    return out


def _first_eval_batch(workdir):
    from tfi2i.data.open import open_data
    from tfi2i.data.pipeline import eval_dataset
    from tfi2i.runs import load_model

    cfg, model, _ = load_model(workdir)
    _, source, data_cfg = open_data(cfg)
    return model, next(iter(eval_dataset(source, data_cfg, batch_size=1, limit=1)))


# ----------------------------------------------------------------- Tables 2-3
@pytest.fixture(scope="module")
def ablation(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation")
    assert cli.main(["resolution-ablation", "--workdir", runs["full"], "--limit", "1", "--output", str(out),
                     "--no-progress"]) == 0
    return out


def test_resolution_ablation_matrix_and_files(ablation):
    result = json.loads((ablation / "resolution_ablation.json").read_text())
    scales = result["scales"]
    assert scales == 5 and result["num_images"] == 1
    assert result["sizes"] == ["16x8", "32x16", "64x32", "128x64", "256x128"]  # coarsest first
    matrix = np.asarray(result["ssim"])
    assert matrix.shape == (scales, scales) and np.all(np.abs(matrix) <= 1.0)
    assert not np.array_equal(matrix[0], matrix[-1])  # the lowest input resolution scores differently
    md = (ablation / "resolution_ablation.md").read_text()
    assert "Table 2" in md and "| 16x8 |" in md  # five scales, as the paper's Table 2


def test_full_resolution_row_equals_a_direct_ssim(runs, ablation):
    result = json.loads((ablation / "resolution_ablation.json").read_text())
    model, batch = _first_eval_batch(runs["full"])
    fake = model.generate({"x": batch["x"]}, training=False)  # the model's own pyramid: downscaled x
    y = tf.cast(batch["y"], tf.float32)
    direct = []
    for column, window in enumerate(result["ssim_window"]):
        level = result["scales"] - 1 - column
        f = 2 ** level
        target = tf.nn.avg_pool2d(y, f, f, "VALID") if f > 1 else y
        a = tf.clip_by_value((fake[output_name(level)] + 1) / 2, 0, 1)
        b = tf.clip_by_value((target + 1) / 2, 0, 1)
        side = min(a.shape[1], a.shape[2])
        assert window == min(11, side)
        direct.append(float(tf.image.ssim(a, b, 1.0, filter_size=window, filter_sigma=1.5 * window / 11)[0]))
    np.testing.assert_allclose(result["ssim"][-1], direct, atol=1e-5)


def test_the_low_resolution_input_changes_the_outputs(runs):
    model, batch = _first_eval_batch(runs["full"])
    scales = model.scales
    top, low = (ra.ablation_inputs(batch["x"], scales, r) for r in (0, scales - 1))
    np.testing.assert_array_equal(top["x"], batch["x"])  # r = 0: the model's own inputs
    np.testing.assert_array_equal(low["x_16"], top["x_16"])  # the coarsest level is x_r itself
    assert low["x"].shape == top["x"].shape and float(tf.reduce_max(tf.abs(low["x"] - top["x"]))) > 0.1
    assert float(tf.reduce_max(low["x"])) <= 1.0 and float(tf.reduce_min(low["x"])) >= -1.0
    a, b = model.generate(top), model.generate(low)
    assert float(tf.reduce_max(tf.abs(a["y"] - b["y"]))) > 1e-7


def test_markdown_names_the_paper_only_when_the_scales_match():
    four = {"scales": 4, "sizes": ["16x8", "32x16", "64x32", "128x64"], "ssim": [[0.5] * 4] * 4,
            "ssim_window": [8, 11, 11, 11], "num_images": 1}
    md = ra.format_markdown(four, "msg_unet_cityscapes_demo")
    assert "Table 2" not in md and "ours alone" in md
    assert "Table 3: Aerial Images to Maps" in ra.format_markdown(four, "msg_unet_maps512")
    assert "Table 3: NYU" in ra.format_markdown(four, "msg_unet_nyu512_top_only")
    assert "Table" not in ra.format_markdown(four, "pix2pix_facades")


def test_cli_errors_are_one_line(tmp_path, capsys):
    from tfi2i import config as config_lib
    from tfi2i.checkpoint import model_objects
    from tfi2i.runs import builder_of

    assert cli.main(["resolution-ablation", "--workdir", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "config.json" in err[0]
    # a single-scale run (pix2pix): config.json and a checkpoint, no training needed
    cfg = _recipe("pix2pix_facades").smoke_config()
    workdir = tmp_path / "pix2pix"
    (workdir / "checkpoints").mkdir(parents=True)
    (workdir / "config.json").write_text(config_lib.to_json(cfg))
    tf.train.Checkpoint(**model_objects(builder_of(cfg)(cfg))).save(str(workdir / "checkpoints" / "ckpt"))
    assert cli.main(["resolution-ablation", "--workdir", str(workdir)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "multi-scale" in err[0]


# ----------------------------------------------------------------- Fig. 2
def _checkpoint_bytes(workdir):
    return {p.name: p.read_bytes() for p in sorted((Path(workdir) / "checkpoints").iterdir())}


def test_gradient_histogram_cli(runs, tmp_path, capsys):
    before = {v: _checkpoint_bytes(w) for v, w in runs.items()}
    png = tmp_path / "fig2.png"
    assert cli.main(["gradient-histogram", "--workdir", runs["top_only"], "--workdir", runs["full"],
                     "--batches", "1", "--output", str(png)]) == 0
    assert "intermediate outputs judged" in capsys.readouterr().out
    assert png.stat().st_size > 1000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((tmp_path / "gradient_histogram.json").read_text())
    assert [r["judged"] for r in report["runs"]] == ["top", "all"]
    for run in report["runs"]:
        assert sorted(run["levels"], key=int) == ["1", "2", "3", "4", "5"]  # levels 1 .. bottleneck (5)
        for stats in run["levels"].values():
            assert stats["count"] > 0 and stats["mean_abs"] > 0 and stats["max_abs"] <= report["range"]
    assert {v: _checkpoint_bytes(w) for v, w in runs.items()} == before  # nothing written back


def _all_values(model):
    nets = [model.generator, *model.discriminators]
    return [v.numpy().copy() for net in nets for v in net.variables]


@pytest.mark.parametrize("variant", ["top_only", "full"])
def test_gradients_leave_the_weights_and_reach_the_heads_only_when_judged(runs, variant):
    from tfi2i.runs import load_model

    cfg, model, _ = load_model(runs[variant])
    before = _all_values(model)
    measured = gh.run_gradients(model, cfg, batches=1)
    after = _all_values(model)
    assert len(before) == len(after) and all(np.array_equal(a, b) for a, b in zip(before, after))
    assert set(measured["levels"]) == {1, 2, 3, 4, 5}
    assert not any(name.startswith(("enc0_", "dec0_", "out")) for name in measured["layers"])
    assert all(np.any(v != 0) for v in measured["levels"].values())
    # the output heads of levels >= 1, directly (a random pair; the model makes the pyramids): no gradient
    # without their discriminators
    rng = tf.random.stateless_uniform
    batch = {"x": rng([1, 128, 256, 3], [1, 2], -1, 1), "y": rng([1, 128, 256, 3], [3, 4], -1, 1)}
    heads = [model.generator.get_layer(f"out{level}_conv").kernel for level in range(1, model.scales)]
    with tf.GradientTape() as tape:
        batch = model.with_inputs(batch, training=True)
        fake = model.generator(batch["inputs"], training=True)
        total, _ = model.weighted_sum(model.objective(batch, fake, training=True)[0])
    grads = tape.gradient(total, heads)
    if variant == "top_only":
        assert all(g is None for g in grads)
    else:
        assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
