"""`tfi2i segmenter train|score` on a tiny synthetic cityscapes-like folder; FCN-8s structure; weight errors."""

import argparse
import json

import cv2
import numpy as np
import pytest

from tfi2i import segmenter
from tfi2i.metrics.cityscapes import LABEL_COLORS, LABELS
from tfi2i.metrics.fcn import SCORE_KEYS, Segmenter, load_segmenter

# fc6/fc7 are 4096 wide in FCN (fc6 alone: 103 M parameters, a 540 MB .keras file);
# the command-line smoke runs use a narrow head to stay fast and small.
FAST = ["--weights", "none", "--steps", "2", "--size", "64", "--batch-size", "2", "--fc-units", "32",
        "--no-progress"]


def cli(argv):
    parser = argparse.ArgumentParser(prog="tfi2i")
    sub = parser.add_subparsers(dest="command", required=True)
    segmenter.add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def write_cityscapes_like(folder, n, size, seed):
    """pix2pix layout: photo (left, A) | official-palette colour label map (right, B), PNG."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    ids = [lab.id for lab in LABELS]
    for k in range(n):
        block = size // 4
        lab = np.kron(rng.choice(ids, (4, 4)), np.ones((block, block), np.int64))
        colours = LABEL_COLORS[lab]
        photo = np.clip(colours.astype(int) // 2 + rng.integers(0, 64, colours.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{k}.png"), cv2.cvtColor(np.concatenate([photo, colours], 1), cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cityscapes_like")
    return write_cityscapes_like(root / "train", 4, 96, 0), write_cityscapes_like(root / "val", 2, 96, 1)


def test_train_writes_model_and_prints_scores(data, tmp_path, capsys):
    train, val = data
    out = tmp_path / "models" / "fcn.keras"
    assert cli(["segmenter", "train", "--data", str(train), "--val", str(val), "--out", str(out)] + FAST) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    for k in SCORE_KEYS:
        assert 0.0 <= result[k] <= 1.0
    assert result["images"] == 2 and "ceiling" in result["note"]
    assert set(result["per_class"]) >= {"road", "car", "bicycle"} and len(result["per_class"]) == 19
    assert "warning" not in captured.err
    assert out.is_file() and sorted(p.name for p in out.parent.iterdir()) == ["fcn.keras"]  # no temp files left

    seg = load_segmenter(out, input_size=(64, 64))
    photo = cv2.cvtColor(cv2.imread(str(val / "0.png")), cv2.COLOR_BGR2RGB)[:, :96]
    pred = seg(photo)
    assert pred.shape == (96, 96) and pred.dtype == np.uint8 and pred.max() < 19

    # `score` on the same model and folder reproduces the scores printed by `train`
    assert cli(["segmenter", "score", "--model", str(out), "--data", str(val), "--input-size", "64",
                "--no-progress"]) == 0
    again = json.loads(capsys.readouterr().out)
    for k in SCORE_KEYS:
        assert again[k] == pytest.approx(result[k], abs=1e-6)


def test_train_without_val_warns(data, tmp_path, capsys):
    train, _ = data
    out = tmp_path / "m.keras"
    assert cli(["segmenter", "train", "--data", str(train), "--out", str(out)] + FAST) == 0
    captured = capsys.readouterr()
    assert "warning" in captured.err and "TRAINING photos" in captured.err
    assert json.loads(captured.out)["images"] == 4


def _offline(*args, **kwargs):
    raise Exception("URL fetch failure on https://storage.googleapis.com/...: simulated, no network")


def test_imagenet_weights_unavailable(data, tmp_path, capsys, monkeypatch):
    import keras
    import keras.src.utils.file_utils as file_utils

    monkeypatch.setattr(file_utils, "get_file", _offline)  # what keras.applications.VGG16 calls
    monkeypatch.setattr(keras.utils, "get_file", _offline)
    train, _ = data
    out = tmp_path / "m.keras"
    argv = ["segmenter", "train", "--data", str(train), "--out", str(out), "--steps", "1", "--size", "64",
            "--no-progress"]
    assert cli(argv) == 1  # --weights imagenet is the default
    err = capsys.readouterr().err
    assert err.startswith("error: cannot get the ImageNet VGG16 weights") and segmenter.VGG16_NOTOP_FILE in err
    assert "--weights PATH" in err and "--weights none" in err and "models" in err
    assert not out.exists()

    # the same with the application constructor itself failing
    def broken(*a, **k):
        raise OSError("no route to host")

    monkeypatch.setattr(keras.applications, "VGG16", broken)
    assert cli(argv) == 1
    assert segmenter.VGG16_NOTOP_FILE in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--weights", "/nonexistent/vgg.h5"], "file not found"),
        (["--size", "50"], "multiple of 32"),
        (["--out-name"], None),
    ],
)
def test_train_argument_errors(data, tmp_path, capsys, extra, message):
    train, _ = data
    if message is None:  # wrong --out suffix and a missing data folder
        assert cli(["segmenter", "train", "--data", str(train), "--out", str(tmp_path / "m.h5")]) == 1
        assert ".keras" in capsys.readouterr().err
        assert cli(["segmenter", "train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "m.keras")]) == 1
        assert "not found" in capsys.readouterr().err
        return
    argv = ["segmenter", "train", "--data", str(train), "--out", str(tmp_path / "m.keras")] + FAST + extra
    assert cli(argv) == 1
    assert message in capsys.readouterr().err


def test_fcn8s_structure():
    import keras

    model = segmenter.build_fcn8s(weights="none", fc_units=64)
    x = np.random.default_rng(0).uniform(0, 255, (1, 96, 64, 3)).astype(np.float32)
    assert tuple(model(x).shape) == (1, 96, 64, 19)
    names = [layer.name for layer in model.layers]
    for name in ("vgg_preprocess", "block5_pool", "fc6", "drop6", "fc7", "drop7", "score_fr", "upscore2",
                 "score_pool4", "fuse_pool4", "upscore_pool4", "score_pool3", "fuse_pool3", "upscore8"):
        assert name in names
    assert model.get_layer("fc6").kernel.shape == (7, 7, 512, 64)
    # VGG16 conv weights + head; the preprocessing layer is fixed (RGB -> BGR - ImageNet mean)
    head = (7 * 7 * 512 * 64 + 64) + (64 * 64 + 64) + (64 * 19 + 19) + (512 * 19 + 19) + (256 * 19 + 19) \
        + 2 * (4 * 4 * 19 * 19) + 16 * 16 * 19 * 19
    assert sum(int(np.prod(v.shape)) for v in model.trainable_weights) == 14_714_688 + head
    pre = model.get_layer("vgg_preprocess")
    assert not pre.trainable
    px = np.array([[[[10.0, 20.0, 30.0]]]], np.float32)
    np.testing.assert_allclose(pre(px).numpy().ravel(), [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-5)

    # bilinear transposed convolution: a linear ramp stays a ramp (away from the borders)
    up = keras.layers.Conv2DTranspose(1, 16, strides=8, padding="same", use_bias=False)
    ramp = np.tile(np.arange(8, dtype=np.float32), (8, 1))[None, :, :, None]
    up.build(ramp.shape)
    up.set_weights([segmenter.bilinear_kernel(16, 1)])
    row = up(ramp).numpy()[0, 32, 8:56, 0]
    np.testing.assert_allclose(np.diff(row), 1 / 8, atol=1e-5)
    # zero-initialised score layers: an untrained net predicts uniform logits
    assert np.abs(model(x).numpy()).max() == 0.0


def test_segmenter_wraps_the_keras_model_with_padding():
    model = segmenter.build_fcn8s(weights="none", fc_units=16)
    seg = Segmenter(model)
    photo = np.random.default_rng(0).integers(0, 256, (40, 70, 3)).astype(np.uint8)  # padded to 64x96
    assert seg(photo).shape == (40, 70)


def test_backbone_weights_from_path(tmp_path):
    import keras

    vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    path = tmp_path / "vgg16_notop.weights.h5"
    vgg.save_weights(path)
    model = segmenter.build_fcn8s(weights=str(path), fc_units=16)
    for name in ("block1_conv1", "block5_conv3"):
        np.testing.assert_array_equal(model.get_layer(name).get_weights()[0], vgg.get_layer(name).get_weights()[0])
