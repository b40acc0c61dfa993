"""pix2pixHD's instance-feature path (``--instance_feat`` / ``--label_feat``), end to end.

E trained by G's optimizer and checkpointed beside G and D, G's extra ``feat`` input, the
``encode_features.py`` step (``tfi2i encode-features`` and the end of `tfi2i.train.fit`), seeded cluster
sampling, and a features run through ``load_model`` -> ``tfi2i translate`` / ``tfi2i export``, plus
kill-and-resume. Tiny widths on the label-map demo (35 classes, instance ids, 64x128).
"""

import shutil

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import load_recipe
from tfi2i import config as config_lib
from tfi2i import export, features, train
from tfi2i.cli import main as cli_main
from tfi2i.config import replace
from tfi2i.networks import pix2pixhd as nets
from tfi2i.pix2pixhd import HDSection, Pix2PixHDConfig, build
from tfi2i.runs import load_model


def _recipe(name="pix2pixhd_cityscapes"):
    return load_recipe(name)


def _count(models):
    return int(sum(np.prod(v.shape) for m in models for v in m.trainable_weights))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from tfi2i.data.demo import make_label_demo

    return str(make_label_demo(tmp_path_factory.mktemp("hdf") / "labels", num_train=4, num_val=1, size=(64, 128),
                               num_classes=35))


def _cfg(demo, steps=2, **hd):
    # without the VGG term (its cost, not the encoder's logic: tests/test_pix2pixhd.py trains with it)
    cfg = _recipe().smoke_config("512p", demo, variant="no_vgg", features=True)
    return replace(cfg, data={"direction": "BtoA", "load_size": (64, 128), "crop_size": (64, 128)},
                   hd={"nef": 2, "n_downsample_e": 2, **hd}, train={"steps": steps, "eval_at_end": False})


@pytest.fixture(scope="module")
def run(demo, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hdf") / "run"
    logs = train.fit(_cfg(demo), workdir=str(workdir))
    assert set(logs) >= {"g_gan", "g_feat", "d_real", "d_fake"}
    return workdir


def _encoder_weights(workdir, step):
    from tfi2i.checkpoint import model_objects
    from tfi2i.runs import load_config

    cfg = load_config(workdir)
    model = build(cfg)
    tf.train.Checkpoint(**model_objects(model)).restore(f"{workdir}/checkpoints/ckpt-{step}").expect_partial()
    return {layer.name: [w.numpy() for w in layer.weights] for layer in model.encoder.layers if layer.weights}


# ----------------------------------------------------------------- config and networks
def test_config_validation():
    cfg = _recipe().config("512p", features=True)
    assert cfg.hd.instance_feat and cfg.data.instance_ids and cfg.hd.feat_num == 3 and cfg.hd.n_clusters == 10
    with pytest.raises(config_lib.ConfigError, match="instance_ids"):
        replace(cfg, data={"instance_ids": False})
    with pytest.raises(config_lib.ConfigError, match="exclusive"):
        HDSection(instance_feat=True, label_feat=True)
    with pytest.raises(config_lib.ConfigError, match="x_kind=labels"):
        replace(Pix2PixHDConfig(), data={"x_kind": "rgb"}, hd={"label_feat": True})
    with pytest.raises(config_lib.ConfigError, match="feat_num"):
        HDSection(feat_num=0)


def test_golden_count_of_g_with_features():
    # NVIDIA's netG_input_nc = 35 labels + 1 edge + feat_num 3 = 39: only the first 7x7 conv grows, by 3 * 64 * 49
    g = nets.global_generator({"x": 35, "instances": 1, "feat": 3})
    assert _count([g]) == 182_546_755 + 3 * 64 * 7 * 7 == 182_556_163


def test_builder_wires_g_e_and_d(demo):
    model = build(_cfg(demo))
    g_in = model.generator.input
    assert list(g_in) == ["x", "instances", "feat"]  # NVIDIA's concatenation order: labels, edges, features
    assert [int(g_in[n].shape[-1]) for n in g_in] == [35, 1, 3]
    concat = model.generator.get_layer("input_concat").output
    assert int(concat.shape[-1]) == 35 + 1 + 3
    # D: labels + edges + image, no features (NVIDIA's netD_input_nc)
    assert all(int(d.input.shape[-1]) == 35 + 1 + 3 for d in model.discriminators)
    contract = model.contract
    assert [(s.name, s.kind) for s in contract.inputs] == [("x", "labels"), ("instances", "instances"),
                                                           ("feat", "features")]
    assert contract.input("instances").ids and contract.seeded and not contract.stochastic
    assert [s.name for s in contract.supplied] == ["x", "instances"]
    assert int(contract.condition({"x": tf.zeros([1, 4, 4, 35]), "instances": tf.zeros([1, 4, 4, 1]),
                                   "feat": tf.zeros([1, 4, 4, 3])}).shape[-1]) == 36
    e_vars = model.encoder.trainable_variables
    assert e_vars and model.generator_variables[-len(e_vars):] == e_vars
    assert set(model.extra_networks) == {"encoder"}


def test_fixed_global_phase_trains_the_encoder(demo):
    cfg = replace(_recipe().smoke_config("1024p", demo), data={"instance_ids": True},
                  hd={"instance_feat": True, "nef": 2, "n_downsample_e": 2})
    model = build(cfg)
    assert cfg.hd.niter_fix_global == 1
    n_e = len(model.encoder.trainable_variables)
    assert len(model._fixed) == len(model.generator_variables)
    assert not any(model._fixed[-n_e:])  # E is in G's optimizer in both phases (NVIDIA update_fixed_params)
    assert any(model._fixed[:-n_e]) and not all(model._fixed[:-n_e])


def test_label_feat_averages_per_label(demo):
    model = build(replace(_cfg(demo, instance_feat=False, label_feat=True), data={"instance_ids": False}))
    assert not model.contract.input("instances").ids
    x = tf.constant(np.repeat([[0, 3], [3, 7]], 4, axis=1)[None, :, :, None].repeat(4, axis=1).astype(np.int32))
    x = tf.image.resize(tf.cast(x, tf.float32), [16, 16], method="nearest")
    x = tf.cast(x, tf.int32)
    y = tf.random.stateless_uniform([1, 16, 16, 3], [1, 2], -1, 1)
    feat = model.encoded_features({"x": x, "y": y}).numpy()
    for label in (0, 3, 7):
        rows = feat[0][x.numpy()[0, ..., 0] == label]
        assert np.allclose(rows, rows[0], atol=1e-6)  # constant per label


# ----------------------------------------------------------------- training, checkpoint, resume
def test_encoder_trains_and_is_checkpointed(run):
    first, second = _encoder_weights(run, 1), _encoder_weights(run, 2)
    assert any(not np.array_equal(a, b) for n in first for a, b in zip(first[n], second[n])), "E did not train"
    loaded = load_model(run).model
    assert loaded.encoder is not None
    for layer in loaded.encoder.layers:
        for w, want in zip(layer.weights, second.get(layer.name, [])):
            np.testing.assert_array_equal(w.numpy(), want, err_msg=f"{layer.name}: not restored")
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(f"{run}/checkpoints"))
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    assert {c.local_name for c in graph.nodes[0].children} >= {"generator", "discriminator", "encoder"}
    # E alone restores from the run's checkpoint (its own entry, not only through the optimizer's slots)
    fresh = build(load_model(run).cfg)
    tf.train.Checkpoint(encoder=fresh.encoder).restore(tf.train.latest_checkpoint(f"{run}/checkpoints")
                                                       ).expect_partial().assert_existing_objects_matched()
    np.testing.assert_array_equal(fresh.encoder.weights[0].numpy(), loaded.encoder.weights[0].numpy())


def test_kill_and_resume_is_bit_exact_with_features(demo, tmp_path):
    from tests.helpers import killed_copy

    cfg = _cfg(demo, steps=3)
    straight = str(tmp_path / "straight")
    train.fit(cfg, workdir=straight)
    killed = str(killed_copy(straight, 1, tmp_path / "killed"))  # as a kill after the checkpoint at step 1 leaves it
    train.fit(cfg, workdir=killed, resume=True)
    a, b = load_model(straight).model, load_model(killed).model
    for net_a, net_b in ((a.generator, b.generator), (a.encoder, b.encoder), *zip(a.discriminators, b.discriminators)):
        for va, vb in zip(net_a.weights, net_b.weights):
            np.testing.assert_array_equal(va.numpy(), vb.numpy(), 
                                          err_msg=f"{net_a.name}/{va.path}: resumed run differs")


# ----------------------------------------------------------------- clusters (encode_features.py)
def test_fit_writes_the_clusters_and_encode_features_recomputes_them(run, tmp_path):
    path = run / features.clusters_filename(10)
    clusters = features.load_clusters(path)
    assert clusters and all(c.shape[1] == 3 and 1 <= c.shape[0] <= 10 for c in clusters.values())
    rows = features.load_rows(run / "features.npz")
    assert set(rows) == set(range(35)) and all(r.shape[1] == 4 for r in rows.values())
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / features.clusters_filename(10)).unlink()
    assert cli_main(["encode-features", "--workdir", str(copy)]) == 0
    again = features.load_clusters(copy / features.clusters_filename(10))
    assert sorted(again) == sorted(clusters)
    for label in clusters:
        np.testing.assert_allclose(again[label], clusters[label], rtol=1e-5, atol=1e-6)
    assert load_model(copy).model.clusters_source.endswith("features_clustered_010.npz")


def test_encode_features_refuses_a_run_without_features(demo, tmp_path):
    workdir = tmp_path / "plain"
    cfg = replace(_recipe().smoke_config("512p", demo), data={"direction": "BtoA", "load_size": (64, 128),
                                                              "crop_size": (64, 128)},
                  train={"steps": 1, "eval_at_end": False})
    train.fit(cfg, workdir=str(workdir))
    assert not (workdir / "features_clustered_010.npz").exists()  # no encoder, no encode step
    assert cli_main(["encode-features", "--workdir", str(workdir)]) == 1


def test_no_clusters_is_a_clear_error(run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / features.clusters_filename(10)).unlink()
    model = load_model(copy).model
    with pytest.raises(features.FeatureFileError, match="tfi2i encode-features --workdir"):
        model.generate({"x": tf.zeros([1, 64, 128, 1], tf.int32), "instances": tf.zeros([1, 64, 128, 1])})
    with pytest.raises(export.ExportError, match="encode-features"):
        export.export_run(str(copy), str(tmp_path / "export"))
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((64, 128), np.uint8))
    assert cli_main(["translate", "--model", str(copy), "--input", str(folder), "--instances", str(folder),
                     "--output", str(tmp_path / "out"), "--no-progress"]) == 1
    assert "encode-features" in capsys.readouterr().err


# ----------------------------------------------------------------- sampling
def test_cluster_sampling_is_seeded_per_instance():
    rng = np.random.default_rng(0)
    clusters = {26: rng.uniform(-1, 1, (10, 3)).astype(np.float32), 7: rng.uniform(-1, 1, (1, 3)).astype(np.float32)}
    table, counts = features.cluster_table(clusters, 35, 3)
    ids = np.full((2, 16, 32, 1), 7, np.int32)  # class 7 without instances
    for n in range(12):  # 12 cars (class 26), one per 4x4 block
        ids[n % 2, 4 * (n // 4):4 * (n // 4) + 4, 8 * (n % 4):8 * (n % 4) + 4] = 26000 + n
    ids[1, -2:, -2:] = 5  # a class without clusters
    a = features.sample_cluster_features(tf.constant(ids), table, counts, 3).numpy()
    b = tf.function(features.sample_cluster_features)(tf.constant(ids, tf.float32), table, counts,
                                                      tf.constant(3, tf.int64)).numpy()
    c = features.sample_cluster_features(tf.constant(ids), table, counts, 4).numpy()
    np.testing.assert_array_equal(a, b)  # same seed, same map (graph and eager, int and float ids)
    assert np.abs(a - c).max() > 0  # another seed, other centres
    for i in np.unique(ids):
        values = a[ids[..., 0] == i]
        assert np.all(values == values[0])  # constant per instance
        if i >= 26000:
            assert any(np.array_equal(values[0], centre) for centre in clusters[26])
    np.testing.assert_array_equal(a[ids[..., 0] == 7][0], clusters[7][0])
    assert np.all(a[ids[..., 0] == 5] == 0)  # no clusters: 0 (NVIDIA: uninitialised memory)


def test_model_sampling_is_reproducible(run):
    model = load_model(run).model
    label = max((k for k in model.clusters if k >= 1), key=lambda k: len(model.clusters[k]))
    ids = np.zeros((1, 64, 128, 1), np.int32)
    for n in range(16):  # 16 instances of `label` (ids label * 1000 + n), 8x16 blocks
        ids[0, 8 * (n // 4):8 * (n // 4) + 8, 16 * (n % 4):16 * (n % 4) + 16] = label * 1000 + n
    batch = {"instances": tf.constant(ids, tf.float32)}
    a, b = model.sampled_features(batch, 5).numpy(), model.sampled_features(batch, 5).numpy()
    np.testing.assert_array_equal(a, b)
    if len(model.clusters[label]) > 1:
        many = [model.sampled_features(batch, s).numpy() for s in range(6)]
        assert any(np.abs(m - many[0]).max() > 0 for m in many[1:]), "the seed never changes the sample"
    x = tf.constant(np.where(ids >= 1000, ids // 1000, ids))
    y1 = model.generate({"x": x, "instances": tf.constant(ids, tf.float32)}, seed=5)["y"].numpy()
    y2 = model.generate({"x": x, "instances": tf.constant(ids, tf.float32)}, seed=5)["y"].numpy()
    np.testing.assert_array_equal(y1, y2)


# ----------------------------------------------------------------- downstream tools
def _files(tmp_path, h=30, w=62):
    labels = np.zeros((h, w), np.uint8)
    labels[:, w // 3:] = 1
    labels[h // 2:, : w // 2] = 26
    inst = labels.astype(np.uint16)
    inst[h // 2:, : w // 4] = 26000
    inst[h // 2:, w // 4: w // 2] = 26001
    folders = {}
    for name, array in (("x", labels), ("instances", inst)):
        folder = tmp_path / f"in_{name}"
        folder.mkdir()
        cv2.imwrite(str(folder / "img.png"), array)
        folders[name] = folder
    return labels, inst, folders


def test_features_run_through_load_model_translate_and_export(run, tmp_path):
    labels, inst, folders = _files(tmp_path)
    run_model = load_model(run).model
    version = export.export_run(str(run), str(tmp_path / "export"), max_pixels=200 * 200)
    meta = export.read_metadata(version)
    assert set(meta["signatures"]) >= {"serving_default", "serving_seeded", "translate_bytes",
                                       "translate_bytes_seeded"}
    assert set(meta["signatures"]["serving_default"]["inputs"]) == {"x", "instances"}
    assert "raw instance ids" in meta["signatures"]["serving_default"]["inputs"]["instances"]
    loaded = tf.saved_model.load(str(version))
    floats = {"x": tf.constant(np.eye(35, dtype=np.float32)[labels][None]),
              "instances": tf.constant(inst.astype(np.float32)[None, :, :, None])}
    for seed in (0, 7):
        served = loaded.signatures["serving_seeded"](**floats, seed=tf.constant([seed], tf.int64))["y"].numpy()
        want = export.pad_run_crop(run_model, floats, seed=seed)["y"].numpy()
        assert served.shape == (1, 30, 62, 3)
        np.testing.assert_allclose(served, want, atol=1e-5, rtol=0)
    plain = loaded.signatures["serving_default"](**floats)["y"].numpy()
    np.testing.assert_allclose(plain, export.pad_run_crop(run_model, floats)["y"].numpy(), atol=1e-5, rtol=0)
    # the bytes signature: the instance PNG's raw ids reach the model (boundary map and features inside)
    ok_l, png_l = cv2.imencode(".png", labels)
    ok_i, png_i = cv2.imencode(".png", inst)
    got = loaded.signatures["translate_bytes"](images=tf.constant([png_l.tobytes()]),
                                               instances_images=tf.constant([png_i.tobytes()]))
    image = tf.io.decode_png(got["image_bytes"][0]).numpy().astype(int)
    assert np.abs(image - np.clip(np.round((plain[0] + 1) * 127.5), 0, 255)).max() <= 1

    results = {}
    for source, path in (("run", run), ("export", tmp_path / "export")):
        out = tmp_path / f"out_{source}"
        assert cli_main(["translate", "--model", str(path), "--input", str(folders["x"]), "--instances",
                         str(folders["instances"]), "--output", str(out), "--samples", "2", "--seed", "3",
                         "--no-progress"]) == 0, source
        results[source] = {p.name: cv2.imread(str(p)) for p in sorted(out.iterdir())}
    assert sorted(results["run"]) == ["img_s0.png", "img_s1.png"] == sorted(results["export"])
    for name, image in results["run"].items():
        assert image.shape == (30, 62, 3)
        assert np.abs(image.astype(int) - results["export"][name]).max() <= 1, name

    report = tmp_path / "report"
    assert cli_main(["evaluate", "--workdir", str(run), "--out", str(report), "--no-progress"]) == 0


def test_use_encoded_image_evaluates_with_e(run):
    from tfi2i.data import pipeline
    from tfi2i.data.open import open_data

    loaded = load_model(run)
    model = loaded.model
    _, eval_src, data_cfg = open_data(loaded.cfg)
    batch = next(iter(pipeline.eval_dataset(eval_src, data_cfg, batch_size=1)))
    sampled = model.encode(batch)["feat"].numpy()
    model.use_encoded_image = True  # hd.use_encoded_image: E on the batch's photo (NVIDIA --use_encoded_image)
    encoded = model.encode(batch)["feat"].numpy()
    np.testing.assert_allclose(encoded, model.encoded_features(batch).numpy(), atol=1e-6)
    assert np.abs(encoded - sampled).max() > 0
    # the pipeline's boundary map = the model's, from the raw ids
    np.testing.assert_array_equal(model.encode(batch)["instances"].numpy(), batch["instances"].numpy())


def test_label_feat_run_trains_clusters_and_generates(demo, tmp_path):
    workdir = tmp_path / "label_feat"
    cfg = replace(_cfg(demo, steps=1, instance_feat=False, label_feat=True), data={"instance_ids": False})
    train.fit(cfg, workdir=str(workdir))
    model = load_model(workdir).model
    assert model.feature_ids == "labels" and model.clusters  # written at the end of fit
    assert set(model.clusters) <= set(range(35))
    x = np.zeros((1, 64, 128), np.int32)
    x[:, :, 64:] = max(model.clusters)
    inputs = {"x": tf.constant(np.eye(35, dtype=np.float32)[x]), "instances": tf.zeros([1, 64, 128, 1])}
    feat = model.encode(inputs, seed=2)["feat"].numpy()
    np.testing.assert_array_equal(feat[0, :, 64:], np.broadcast_to(feat[0, 0, 64], feat[0, :, 64:].shape))
    assert np.abs(feat[0, 0, 64]).max() > 0  # the label's cluster centre (labels < 1000 are their own ids)
    assert model.generate(inputs, seed=2)["y"].shape == (1, 64, 128, 3)
