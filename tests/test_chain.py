"""Every recipe's smoke config, and toy models of the coming papers' shapes, through the whole chain.

train (2 steps) -> `load_model` -> export (both signatures; loaded and compared
with the in-memory model within 1e-5 / 1 grey level) -> `tfi2i translate`
(from the run and from the export) -> `tfi2i evaluate --workdir`.

A new recipe is covered by adding one line to `CASES`.
"""

import importlib
import json
import pathlib
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfi2i import config as C
from tfi2i import export, train
from tfi2i.cli import main as cli_main
from tfi2i.runs import load_model

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "recipes"))


def recipe_smoke(name, *args):
    def make(_tmp):
        return importlib.import_module(name).smoke_config(*args)

    return make


def pix2pixhd_smoke(task, features=False):
    def make(tmp):
        from tfi2i.data.demo import make_label_demo

        path = str(make_label_demo(tmp / "labels", num_train=4, num_val=2, size=(64, 128), num_classes=35))
        # without the VGG term: its cost, not the contract (the losses: test_pix2pixhd*, test_reference_pix2pixhd)
        cfg = importlib.import_module("pix2pixhd_cityscapes").smoke_config(task, path, variant="no_vgg",
                                                                            features=features)
        return C.replace(cfg, data={"direction": "BtoA", "load_size": (64, 128), "crop_size": (64, 128)},
                         train={"export_at_end": True})

    return make


def msg_unet_smoke(tmp):
    from tfi2i.data.demo import make_label_demo

    path = str(make_label_demo(tmp / "labels", num_train=4, num_val=2, size=(128, 256), num_classes=35))
    cfg = importlib.import_module("msg_unet_cityscapes").smoke_config(path, "no_vgg")  # the losses: test_msg_unet
    return C.replace(cfg, data={"direction": "BtoA"})


def grit_smoke(tmp):
    from tfi2i.data.demo import make_label_demo

    path = str(make_label_demo(tmp / "faces", num_train=4, num_val=2, size=(64, 64), num_classes=19, instances=False))
    return C.replace(importlib.import_module("grit_celebamask").smoke_config(path), data={"direction": "BtoA"})


#: name -> (tmp_path -> config). One line per recipe (and per toy shape).
CASES = {
    "pix2pix_facades": recipe_smoke("pix2pix_facades"),
    "pan_cityscapes": recipe_smoke("pan_cityscapes"),
    "modified_pix2pix_day2night": recipe_smoke("modified_pix2pix_day2night"),
    "pix2pixhd_cityscapes": pix2pixhd_smoke("512p"),  # labels + instance boundaries, global G, 2-scale D
    "pix2pixhd_cityscapes_feat": pix2pixhd_smoke("512p", features=True),  # + raw instance ids, E, seeded clusters
    "msg_unet_cityscapes": msg_unet_smoke,  # segmented RGB in, five scales out, resized inputs, one D per scale
    "grit_celebamask": grit_smoke,  # labels + style in, y = y_rec + y_res out, seeded noise per decoder block
    # the toys (tfi2i.toys) of the papers' shapes are covered by the real models above: pix2pixhd_cityscapes is
    # the same 2:1 label + boundary-map contract; tests/test_contract.py still builds and checks every toy
}

H, W = 30, 62  # not a multiple of any model's size multiple: exports pad and crop


def raw_inputs(contract, seed=0):
    """Synthetic files' contents per input kind: uint8 images, int ids."""
    rng = np.random.default_rng(seed)
    out = {}
    for spec in contract.supplied:
        if spec.kind == "labels":
            ids = np.zeros((H, W), np.int32)
            ids[:, W // 3:] = 1
            ids[H // 2:, : W // 2] = spec.num_classes - 1
            out[spec.name] = ids
        elif spec.kind == "instances":
            ids = np.full((H, W), 7, np.int32)
            ids[5:15, 10:30] = 26001  # a 16-bit Cityscapes-like instance id
            out[spec.name] = ids
        else:
            yy, xx = np.mgrid[0:H, 0:W]
            phase = rng.uniform(0, 6, 3)
            out[spec.name] = np.stack([127.5 + 120 * np.sin(xx / 7 + yy / 5 + p) for p in phase], -1).astype(np.uint8)
    return out


def encoded(contract, raw):
    """The float inputs the network takes (what `serving_default` receives)."""
    from tfi2i.data.labels import instance_edges

    out = {}
    for spec in contract.supplied:
        v = raw[spec.name]
        if spec.kind == "labels":
            out[spec.name] = np.eye(spec.num_classes, dtype=np.float32)[v][None]
        elif spec.kind == "instances" and spec.ids:  # the model takes the raw ids
            out[spec.name] = v.astype(np.float32)[None, :, :, None]
        elif spec.kind == "instances":
            out[spec.name] = np.asarray(instance_edges(v[None, :, :, None]))
        else:
            out[spec.name] = (v.astype(np.float32) / 127.5 - 1.0)[None]
    return out


def png(array):
    if array.ndim == 2:
        array = array.astype(np.uint16 if array.max() > 255 else np.uint8)
    else:
        array = np.ascontiguousarray(array[..., ::-1])
    ok, buf = cv2.imencode(".png", array)
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module", params=sorted(CASES))
def trained(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    cfg = CASES[request.param](tmp)
    cfg = C.replace(cfg, train={"steps": 2, "checkpoint_every": 2, "sample_every": 2, "eval_at_end": False,
                                "export_at_end": False})
    workdir = tmp / "run"
    train.fit(cfg, None, str(workdir))
    return request.param, cfg, workdir


@pytest.mark.slow
def test_chain(trained, tmp_path):
    name, cfg, workdir = trained
    # --- the run describes itself: config type and builder in config.json; load_model rebuilds it
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["builder"] == cfg.builder and saved[C.CONFIG_TYPE_KEY] == C.qualified_name(type(cfg))
    run = load_model(workdir)
    assert type(run.cfg) is type(cfg) and run.cfg.builder == cfg.builder
    model, contract = run.model, run.model.contract
    assert run.checkpoint.endswith("ckpt-2")
    assert (workdir / "samples" / "step_0000002.png").is_file()

    # --- export: serving_default equals the in-memory model (pad, run, crop) within 1e-5
    version = export.export_run(workdir, tmp_path / "export", max_pixels=200 * 200)
    meta = export.read_metadata(version)
    assert type(contract).from_dict(meta["contract"]) == contract
    loaded = tf.saved_model.load(str(version))
    raw = raw_inputs(contract)
    floats = encoded(contract, raw)
    served = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in floats.items()})
    want = export.pad_run_crop(model, {k: tf.constant(v) for k, v in floats.items()})
    assert set(served) == set(contract.output_names)
    for out in contract.outputs:
        expect_shape = (1, -(-H // out.factor), -(-W // out.factor), out.channels)
        assert tuple(served[out.name].shape) == expect_shape, out.name
        np.testing.assert_allclose(served[out.name].numpy(), want[out.name].numpy(), atol=1e-5, rtol=0)

    # --- the bytes signature: files in (ids as 1-channel PNGs), PNGs out, = the float path to 1 grey level
    in_names, out_names = export.bytes_names(contract)
    blobs = {n: tf.constant([png(raw[s.name])]) for n, s in zip(in_names, contract.supplied)}
    got = loaded.signatures["translate_bytes"](**blobs)
    assert set(got) == set(out_names)
    for out, bname in zip(contract.outputs, out_names):
        image = tf.io.decode_png(got[bname][0]).numpy().astype(int)
        ref = np.clip(np.round((served[out.name].numpy()[0] + 1) * 127.5), 0, 255)
        assert image.shape == ref.shape and np.abs(image - ref).max() <= 1, out.name

    # --- labels: an id out of range is a clean error, and the model keeps answering
    labels = [(n, s) for n, s in zip(in_names, contract.supplied) if s.kind == "labels"]
    for bname, spec in labels:
        bad = raw[spec.name].copy()
        bad[0, 0] = spec.num_classes
        with pytest.raises(tf.errors.InvalidArgumentError, match="label id out of range"):
            loaded.signatures["translate_bytes"](**{**blobs, bname: tf.constant([png(bad)])})
        assert loaded.signatures["translate_bytes"](**blobs)[out_names[0]].shape == (1,)

    # --- a seeded model (noise, or sampled feature clusters): the seed decides the sample, export = memory
    if contract.seeded:
        seeded = loaded.signatures["serving_seeded"]
        args = {k: tf.constant(v) for k, v in floats.items()}
        a = seeded(**args, seed=tf.constant([3], tf.int64))["y"].numpy()
        b = seeded(**args, seed=tf.constant([3], tf.int64))["y"].numpy()
        c = seeded(**args, seed=tf.constant([4], tf.int64))["y"].numpy()
        mem = export.pad_run_crop(model, args, seeds=tf.constant([3], tf.int64), seed=3)["y"].numpy()
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, mem, atol=1e-5, rtol=0)
        if contract.stochastic:  # (a features model's few demo clusters may give seeds 3 and 4 the same draw)
            assert np.abs(a - c).max() > 0

    # --- tfi2i translate, from the run and from the export, every input from files matched by stem
    folders = {}
    for spec in contract.supplied:
        folder = tmp_path / f"in_{spec.name}"
        folder.mkdir()
        (folder / "img.png").write_bytes(png(raw[spec.name]))
        folders[spec.name] = folder
    main = contract.main_input.name
    extra_flags = []
    for spec in contract.supplied:
        if spec.name != main:
            extra_flags += [f"--{spec.kind}", str(folders[spec.name])]
    samples = ["--samples", "2", "--seed", "3"] if contract.stochastic else []
    results = {}
    for source, path in (("run", workdir), ("export", tmp_path / "export")):
        out_dir = tmp_path / f"out_{source}"
        rc = cli_main(["translate", "--model", str(path), "--input", str(folders[main]), "--output", str(out_dir),
                       "--outputs", "all", "--no-progress", *extra_flags, *samples])
        assert rc == 0, source
        results[source] = {p.name: cv2.imread(str(p)) for p in sorted(out_dir.iterdir())}
    assert sorted(results["run"]) == sorted(results["export"]) and results["run"]
    for file_name, image in results["run"].items():
        assert np.abs(image.astype(int) - results["export"][file_name]).max() <= 1, file_name
    assert results["run"][f"img{'_s0' if samples else ''}.png"].shape == (H, W, 3)
    if samples:
        assert np.abs(results["run"]["img_s0.png"].astype(int) - results["run"]["img_s1.png"]).max() > 0
    if not contract.tileable:
        rc = cli_main(["translate", "--model", str(workdir), "--input", str(folders[main]), "--output",
                       str(tmp_path / "tiled"), "--tile", "16", "--no-progress", *extra_flags])
        assert rc == 1

    # --- tfi2i evaluate --workdir: one row per named output
    report = tmp_path / "report"
    assert cli_main(["evaluate", "--workdir", str(workdir), "--outputs", "all", "--out", str(report),
                     "--no-progress"]) == 0
    rows = json.loads((report / "report.json").read_text())
    assert set(rows) == {workdir.name} | {f"{workdir.name}:{o}" for o in contract.output_names if o != "y"}
    assert all(0 <= r["l1"] <= 2 for r in rows.values())
