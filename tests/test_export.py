"""SavedModel export for TF Serving: layout, atomicity, both signatures, bad requests, saved_model_cli, CLI."""

import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tfi2i import config as C
from tfi2i import export, train
from tfi2i.cli import main as cli_main
from tfi2i.data.images import read_image

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "recipes"))
import pix2pix_facades as recipe  # noqa: E402

MAX_PIXELS = 200 * 200  # small limit so that "too large" requests are cheap to build


def tiny_run(workdir):
    """A 2-step smoke run (U-Net depth 6 -> multiple 64); no automatic export (the tests export themselves)."""
    fields = {"steps": 2}
    if "export_at_end" in {f.name for f in dataclasses.fields(C.TrainConfig)}:
        fields["export_at_end"] = False
    train.fit(C.replace(recipe.smoke_config(), train=fields), recipe.build, str(workdir))
    return workdir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("export") / "run")


@pytest.fixture(scope="module")
def model(run_dir):
    from tfi2i.runs import load_model

    return load_model(run_dir).model


@pytest.fixture(scope="module")
def version_dir(run_dir, tmp_path_factory):
    return export.export_run(run_dir, tmp_path_factory.mktemp("served"), max_pixels=MAX_PIXELS)


@pytest.fixture(scope="module")
def loaded(version_dir):
    import tensorflow as tf

    return tf.saved_model.load(str(version_dir))


def reference(model, x, multiple=64):
    """Pad (reflect; edge where the axis is too short) + G(training=False) + crop, done directly."""
    h, w = x.shape[1:3]
    ph, pw = -h % multiple, -w % multiple
    x = np.pad(x, [(0, 0), (0, ph), (0, 0), (0, 0)], mode="reflect" if ph < h else "edge")
    x = np.pad(x, [(0, 0), (0, 0), (0, pw), (0, 0)], mode="reflect" if pw < w else "edge")
    return model.generator({"x": x}, training=False)["y"].numpy()[:, :h, :w]


def smooth_image(h, w, seed=0):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 6, 3)
    return np.stack([127.5 + 120 * np.sin(xx / 9 + yy / 13 + p) for p in phase], -1).round().astype(np.uint8)


def encode(rgb, ext):
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(rgb[..., ::-1]) if rgb.ndim == 3 else rgb)
    assert ok
    return buf.tobytes()


# --------------------------------------------------------------------------- layout and versions


def test_versions_increase_and_metadata_is_recorded(run_dir, tmp_path):
    root = tmp_path / "export"
    (root / "notes").mkdir(parents=True)  # non-numeric folders are ignored, as TF Serving does
    (root / ".tmp-stale").mkdir()
    v1 = export.export_run(run_dir, root, max_pixels=MAX_PIXELS)
    v2 = export.export_run(run_dir, root)
    assert (v1, v2) == (root / "1", root / "2")
    assert export.list_versions(root) == [1, 2]
    assert export.resolve_version_dir(root) == v2
    for v in (v1, v2):
        assert (v / "saved_model.pb").is_file() and (v / "variables").is_dir()
    meta = json.loads((v1 / export.METADATA_FILE).read_text())
    assert meta["multiple"] == 64 and meta["max_pixels"] == MAX_PIXELS
    assert meta["config_name"] == recipe.smoke_config().name
    assert meta["checkpoint"].endswith("ckpt-2") and meta["tfi2i_version"]
    assert set(meta["signatures"]) == {"serving_default", "translate_bytes"}
    assert export.read_metadata(v2)["max_pixels"] == export.DEFAULT_MAX_PIXELS
    with pytest.raises(export.ExportError, match="already exists"):
        export.export_run(run_dir, root, version=2)
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-") and p.name != ".tmp-stale"]


def test_failed_export_leaves_no_version(model, tmp_path, monkeypatch):
    import keras

    def half_write(self, filepath, *args, **kwargs):
        (pathlib.Path(filepath) / "saved_model.pb").write_bytes(b"half")  # partial output, then a crash
        raise RuntimeError("disk full")

    archive_class = type(keras.export.ExportArchive())  # ExportArchive() returns a backend subclass
    monkeypatch.setattr(archive_class, "write_out", half_write)
    root = tmp_path / "export"
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_model(model, root)
    assert export.list_versions(root) == []
    assert list(root.iterdir()) == []  # the temporary folder is removed too
    with pytest.raises(export.ExportError):
        export.resolve_version_dir(root)


# --------------------------------------------------------------------------- signatures


@pytest.mark.parametrize("shape", [(2, 64, 64, 3), (1, 37, 70, 3), (1, 5, 3, 3)], ids=["multiple", "odd", "tiny"])
def test_serving_default_equals_generator(loaded, model, shape):
    import tensorflow as tf

    x = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
    y = loaded.signatures["serving_default"](x=tf.constant(x))["y"].numpy()
    assert y.shape == shape and y.dtype == np.float32
    np.testing.assert_allclose(y, reference(model, x), atol=1e-5, rtol=0)


def test_bytes_signature_matches_float_path(loaded, tmp_path):
    import tensorflow as tf

    images = {
        "a.png": smooth_image(40, 50, 1),
        "b.jpg": smooth_image(33, 20, 2),
        "c.png": smooth_image(64, 64, 3)[..., 0],  # greyscale: replicated to RGB, as in training
    }
    blobs = []
    for name, img in images.items():
        blobs.append(encode(img, os.path.splitext(name)[1]))
        (tmp_path / name).write_bytes(blobs[-1])
    out = loaded.signatures["translate_bytes"](images=tf.constant(blobs))["image_bytes"].numpy()
    assert out.shape == (3,)
    for name, png in zip(images, out):
        assert png.startswith(b"\x89PNG")
        got = tf.io.decode_png(png).numpy()
        rgb = read_image(tmp_path / name)  # the training policy (OpenCV, accurate IDCT for JPEG)
        y = loaded.signatures["serving_default"](x=tf.constant(rgb[None] / 127.5 - 1.0, tf.float32))["y"].numpy()[0]
        want = np.clip(np.round((y + 1) * 127.5), 0, 255)
        assert got.shape == rgb.shape, name
        assert np.abs(got.astype(int) - want).max() <= 1, name


def run_saved_model_cli(*args):
    exe = pathlib.Path(sys.executable).parent / "saved_model_cli"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=120, env=env)


def test_saved_model_cli_show_and_run(version_dir, loaded, tmp_path):
    import tensorflow as tf

    show = run_saved_model_cli("show", "--dir", str(version_dir), "--all")
    assert show.returncode == 0, show.stderr[-2000:]
    for text in ("signature_def['serving_default']", "inputs['x']", "outputs['y']", "DT_FLOAT",
                 "signature_def['translate_bytes']", "inputs['images']", "outputs['image_bytes']", "DT_STRING"):
        assert text in show.stdout, text

    x = np.zeros((1, 64, 64, 3), np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    proc = run_saved_model_cli("run", "--dir", str(version_dir), "--tag_set", "serve",
                               "--signature_def", "serving_default", "--inputs", f"x={tmp_path / 'x.npy'}",
                               "--outdir", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    y = np.load(out / "y.npy")
    assert y.shape == (1, 64, 64, 3)
    want = loaded.signatures["serving_default"](x=tf.constant(x))["y"].numpy()
    np.testing.assert_allclose(y, want, atol=1e-5, rtol=0)

    # the bytes signature through the session-based loader (the way TF Serving's C++ loader runs it)
    blobs = np.array([encode(smooth_image(30, 40), ".png"), encode(smooth_image(20, 36), ".jpg")])  # dtype S
    np.save(tmp_path / "images.npy", blobs)
    proc = run_saved_model_cli("run", "--dir", str(version_dir), "--tag_set", "serve",
                               "--signature_def", "translate_bytes", "--inputs", f"images={tmp_path / 'images.npy'}",
                               "--outdir", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    pngs = np.load(out / "image_bytes.npy", allow_pickle=True)
    assert [tf.io.decode_png(p).shape for p in pngs] == [(30, 40, 3), (20, 36, 3)]


# --------------------------------------------------------------------------- bad requests


def test_bad_requests_fail_cleanly_and_the_model_keeps_working(loaded):
    import tensorflow as tf

    good_png = encode(smooth_image(30, 40), ".png")
    big = smooth_image(250, 250)  # 62500 > MAX_PIXELS
    cases = {
        "not an image": (b"hello, this is not an image", "Unknown image file format"),
        "truncated png": (good_png[: len(good_png) // 2], "Invalid PNG"),
        "too large png": (encode(big, ".png"), f"max_pixels={MAX_PIXELS}"),
        "too large jpeg": (encode(big, ".jpg"), f"max_pixels={MAX_PIXELS}"),
        "too large bmp": (encode(big, ".bmp"), f"max_pixels={MAX_PIXELS}"),  # no header check: after decoding
    }
    translate_bytes = loaded.signatures["translate_bytes"]
    for case, (blob, message) in cases.items():
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            translate_bytes(images=tf.constant([good_png, blob]))
        assert message in info.value.message, (case, info.value.message[:500])
    serve = loaded.signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[batch, H, W, 3\].*channels"):
        serve(x=tf.zeros([1, 64, 64, 4]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_pixels"):
        serve(x=tf.zeros([1, 256, 256, 3]))
    # the same loaded model still answers good requests
    out = translate_bytes(images=tf.constant([good_png]))["image_bytes"].numpy()
    assert tf.io.decode_png(out[0]).shape == (30, 40, 3)
    assert serve(x=tf.zeros([1, 64, 64, 3]))["y"].shape == (1, 64, 64, 3)


# --------------------------------------------------------------------------- CLI


def test_cli_exit_codes(run_dir, tmp_path, capsys):
    root = tmp_path / "served"
    assert cli_main(["export", "--workdir", str(run_dir), "--out", str(root), "--max-pixels", "10000"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert pathlib.Path(printed) == root / "1"
    assert export.read_metadata(printed)["max_pixels"] == 10000

    assert cli_main(["export", "--workdir", str(tmp_path / "missing")]) == 1
    assert "error:" in capsys.readouterr().err
    assert cli_main(["export", "--workdir", str(tmp_path)]) == 1  # a folder that is not a run
    err = capsys.readouterr().err
    assert "error:" in err and "config.json" in err
    no_ckpt = tmp_path / "no_ckpt"
    no_ckpt.mkdir()
    shutil.copy(run_dir / "config.json", no_ckpt / "config.json")
    assert cli_main(["export", "--workdir", str(no_ckpt)]) == 1
    assert "no checkpoint" in capsys.readouterr().err
    assert not (no_ckpt / "export").exists()
