"""The model contract: declarations, encoding, seeded noise, self-describing runs, honoured flags, layering."""

import ast
import dataclasses
import json
import pathlib
import shutil
import sys

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfi2i import config as C
from tfi2i import toys, train
from tfi2i.contract import Contract, ContractError, InputSpec, NoiseSpec, OutputSpec, image_contract
from tfi2i.runs import RunError, load_config, load_model

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "recipes"))
import modified_pix2pix_day2night as modified_recipe  # noqa: E402
import pix2pix_facades as recipe  # noqa: E402


# ----------------------------------------------------------------------------- declarations
def test_declarations_are_checked():
    with pytest.raises(ContractError, match="kind"):
        InputSpec("x", "depth")
    with pytest.raises(ContractError, match="num_classes"):
        InputSpec("x", "labels", num_classes=1)
    assert InputSpec("x", "labels", num_classes=35).channels == 35 and InputSpec("i", "instances").channels == 1
    with pytest.raises(ContractError, match="start with the translation 'y'"):
        Contract(outputs=(OutputSpec("y_rec"),))
    with pytest.raises(ContractError, match="cannot be tiled"):
        Contract(noise=(NoiseSpec("n"),))  # noise but tileable
    with pytest.raises(ContractError, match="cannot be tiled"):
        Contract(outputs=(OutputSpec("y"), OutputSpec("y_2", factor=2)))
    with pytest.raises(ContractError, match="unique"):
        Contract(inputs=(InputSpec("x"), InputSpec("x", "style")))
    c = Contract(inputs=(InputSpec("x", "labels", num_classes=3), InputSpec("style", "style")),
                 outputs=(OutputSpec("y"), OutputSpec("y_rec")), noise=(NoiseSpec("n", 2, 2),), multiple=4,
                 tileable=False, why_not_tileable="noise")
    assert Contract.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert c.stochastic and c.main_input.name == "x" and c.output_names == ("y", "y_rec")


def test_encode_one_hot_and_condition_by_hand():
    c = Contract(inputs=(InputSpec("x", "labels", num_classes=3), InputSpec("instances", "instances"),
                         InputSpec("style", "style")), tileable=False)
    ids = tf.constant([[[[0], [2]], [[1], [0]]]], tf.int32)  # [1, 2, 2, 1]
    edges = tf.constant([[[[1.0], [1.0]], [[0.0], [1.0]]]])
    y = tf.fill([1, 2, 2, 3], 0.5)
    enc = c.encode({"x": ids, "instances": edges}, fallback_style=y)
    np.testing.assert_array_equal(enc["x"].numpy()[0, 0, 1], [0, 0, 1])  # id 2 -> third class
    np.testing.assert_array_equal(enc["x"].numpy()[0, 1, 0], [0, 1, 0])
    np.testing.assert_array_equal(enc["style"], y)  # the target stands in for the style image
    cond = c.condition(enc)
    assert cond.shape == (1, 2, 2, 4)  # D sees labels + boundaries, never the style image
    np.testing.assert_array_equal(cond[..., 3:], edges)
    with pytest.raises(ContractError, match="missing input 'instances'"):
        c.encode({"x": ids})


def test_noise_depends_only_on_each_examples_seed():
    c = Contract(noise=(NoiseSpec("n1", 2, 1), NoiseSpec("n2", 3, 2)), tileable=False)
    a = c.draw_noise(8, 6, tf.constant([5, 9], tf.int64))
    b = c.draw_noise(8, 6, tf.constant([9], tf.int64))
    assert a["n1"].shape == (2, 8, 6, 2) and a["n2"].shape == (2, 4, 3, 3)
    np.testing.assert_array_equal(a["n1"][1], b["n1"][0])  # seed 9 draws the same maps in any batch
    assert np.abs(a["n1"][0] - a["n1"][1]).max() > 0
    assert abs(float(tf.reduce_mean(c.draw_noise(64, 64, tf.constant([1]))["n1"]))) < 0.1


def test_generator_must_match_its_contract():
    x = keras.Input((None, None, 3), name="x")
    plain = keras.Model(x, keras.layers.Conv2D(3, 1)(x))
    with pytest.raises(ContractError, match="dict of named inputs"):
        image_contract().check_generator(plain)
    named = keras.Model({"x": x}, {"y": keras.layers.Conv2D(3, 1)(x)})
    with pytest.raises(ContractError, match="has 3 channels, the contract says 1"):
        image_contract(input_channels=1).check_generator(named)


# ----------------------------------------------------------------------------- GRIT's Eq. 2 structure
def test_reconstruction_term_never_reaches_the_residual_head(tmp_path):
    from tfi2i.data.demo import make_label_demo

    cfg = toys.smoke_config("grit", str(make_label_demo(tmp_path / "d", num_train=2, num_val=0)))
    gan = toys.build_grit(cfg)
    batch = {"x": tf.constant(np.random.default_rng(0).integers(0, 5, (2, 16, 16, 1)), tf.int32),
             "y": tf.random.stateless_uniform([2, 16, 16, 3], (1, 2), -1, 1)}
    head_res = gan.generator.get_layer("head_res").trainable_variables
    head_rec = gan.generator.get_layer("head_rec").trainable_variables
    inject = gan.generator.get_layer("noise_injection").weight
    inject.assign(tf.fill(inject.shape, 0.3))
    with tf.GradientTape(persistent=True) as tape:
        batch = gan.with_inputs(batch, seeds=tf.constant([1, 2], tf.int64))
        terms = gan.generator_terms(batch, gan.generator(batch["inputs"], training=True))
    assert all(g is None for g in tape.gradient(terms["rec"], head_res))  # rec: I_rec only
    assert all(g is not None for g in tape.gradient(terms["rec"], head_rec))
    adv_res, adv_rec = tape.gradient(terms["g_gan"], head_res), tape.gradient(terms["g_gan"], head_rec)
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in adv_res + adv_rec)  # both heads
    out = gan.generate(batch, seeds=tf.constant([1, 2], tf.int64))
    np.testing.assert_allclose(out["y"], out["y_rec"] + out["y_res"], atol=1e-6)  # composition C = addition
    again = gan.generate(batch, seeds=tf.constant([1, 2], tf.int64))
    other = gan.generate(batch, seeds=tf.constant([3, 4], tf.int64))
    np.testing.assert_array_equal(out["y"], again["y"])
    assert np.abs(out["y"] - other["y"]).max() > 0


# ----------------------------------------------------------------------------- self-describing runs
def smoke(**train_fields):
    return C.replace(recipe.smoke_config(), train={"steps": 2, "eval_at_end": False, "export_at_end": False,
                                                   **train_fields})


def test_config_records_type_and_builder_and_rejects_foreign_names(tmp_path):
    cfg = toys.smoke_config("grit", "somewhere")
    values = json.loads(C.to_json(cfg))
    assert values["config_type"] == "tfi2i.toys:GritToyConfig" and values["builder"] == "tfi2i.toys:build_grit"
    back = C.load(values)
    assert type(back) is toys.GritToyConfig and back == cfg
    for key, bad in (("builder", "os:system"), ("config_type", "subprocess:Popen"), ("builder", "tfi2i.nope:build")):
        run = tmp_path / key / bad.replace(":", "_")
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps({**values, key: bad}))
        (run / "checkpoints").mkdir()
        with pytest.raises(RunError, match="inside the tfi2i package|cannot be imported"):
            load_config(run) if key == "config_type" else load_model(run)


def test_a_run_written_before_builders_were_recorded_still_loads(tmp_path):
    run = tmp_path / "old"
    train.fit(smoke(), None, str(run))
    values = json.loads((run / "config.json").read_text())
    values.pop("builder"), values.pop("config_type")  # what config.json looked like before
    (run / "config.json").write_text(json.dumps(values))
    loaded = load_model(run)
    assert loaded.cfg.builder == C.DEFAULT_BUILDER and loaded.model.contract.multiple == 64
    x = tf.zeros([1, 64, 64, 3])
    assert loaded.model.generate({"x": x})["y"].shape == (1, 64, 64, 3)


def test_load_model_restores_the_trained_weights(tmp_path):
    run = tmp_path / "run"
    train.fit(smoke(), None, str(run))
    a, b = load_model(run).model, recipe.build(recipe.smoke_config())
    trained = load_model(run).model
    for u, v in zip(a.generator.weights, trained.generator.weights):
        np.testing.assert_array_equal(u.numpy(), v.numpy())
    assert any(not np.array_equal(u.numpy(), v.numpy()) for u, v in zip(a.generator.weights, b.generator.weights))
    for u, v in zip(a.discriminator_variables, trained.discriminator_variables):
        np.testing.assert_array_equal(u.numpy(), v.numpy())


# ----------------------------------------------------------------------------- flags that used to be ignored
@pytest.mark.parametrize("module", [recipe, modified_recipe], ids=["pix2pix", "modified_pix2pix"])
def test_discriminator_conditional_false_is_honoured(module):
    cfg = C.override(module.smoke_config(), ["discriminator.conditional=false"])
    gan = module.build(cfg)
    assert gan.discriminator.input_shape[-1] == 3 and not gan.conditional  # judges y alone
    gan.compile(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4))
    logs = gan.train_step({"x": tf.zeros([1, 64, 64, 3]), "y": tf.zeros([1, 64, 64, 3])})
    assert np.isfinite(float(logs["d_total"]))
    assert module.build(module.smoke_config()).discriminator.input_shape[-1] == 6


def test_context_encoder_refuses_a_conditional_discriminator():
    import pan_cityscapes as pan_recipe

    cfg = C.override(pan_recipe.smoke_config("context_encoder", "inpainting"), ["discriminator.conditional=true"])
    with pytest.raises(ValueError, match="conditional=false"):
        pan_recipe.build(cfg)


# ----------------------------------------------------------------------------- label data at training time
def test_bad_label_id_found_during_training_names_the_file(tmp_path, capsys):
    from tfi2i.data.demo import make_label_demo

    root = make_label_demo(tmp_path / "labels", num_train=2, num_val=0)
    bad = root / "train" / "B" / sorted(p.name for p in (root / "train" / "B").iterdir())[0]
    ids = cv2.imread(str(bad), cv2.IMREAD_UNCHANGED)
    ids[0, 0] = 9  # num_classes is 5
    cv2.imwrite(str(bad), ids)
    cfg = toys.smoke_config("pix2pixhd", str(root))
    with pytest.raises(Exception, match="outside"):  # validated up front: a DataError naming the file
        train.fit(cfg, None, str(tmp_path / "a"))
    cfg = C.replace(cfg, data={"validate": False})
    with pytest.raises(train.TrainingError, match=bad.name):
        train.fit(cfg, None, str(tmp_path / "b"))


# ----------------------------------------------------------------------------- layering
def _imports(path, package_root):
    """Modules of the package a file imports (module level and inside functions)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                parts = path.relative_to(package_root.parent).with_suffix("").parts[: -node.level]
                base = ".".join([*parts, node.module])
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return found


def test_the_package_has_no_import_cycles():
    root = REPO / "tfi2i"
    modules = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph = {}
    for name, path in modules.items():
        deps = {d for d in _imports(path, root) if d in modules and d != name}
        graph[name] = {d for d in deps if not name.startswith(d + ".")}  # a package's own __init__ is not a cycle
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
    assert "tfi2i.evaluate" not in graph["tfi2i.train"] and "tfi2i.train" not in graph["tfi2i.evaluate"]


def test_sample_grid_shows_label_maps_in_a_palette_not_as_one_hot_planes():
    from tfi2i.visualize import label_palette, show_input

    spec = InputSpec("x", "labels", num_classes=4)
    ids = tf.constant([[[[0], [3]], [[1], [2]]]], tf.int32)
    shown = show_input(spec, ids).numpy()
    palette = label_palette(4)
    np.testing.assert_array_equal(shown[0, 0, 1], palette[3])
    np.testing.assert_array_equal(show_input(spec, tf.one_hot(ids[..., 0], 4)).numpy(), shown)  # one-hot: same picture
    assert len({tuple(c) for c in palette}) == 4 and shown.shape == (1, 2, 2, 3)
    edges = show_input(InputSpec("i", "instances"), tf.constant([[[[1.0]], [[0.0]]]])).numpy()
    np.testing.assert_array_equal(edges[0, :, 0, 0], [1.0, -1.0])  # boundaries white, the rest black
