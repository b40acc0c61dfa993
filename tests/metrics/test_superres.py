"""Super-resolution protocol (PAN Table 2): luma by hand, the bicubic baseline, real Set5 photos, the recipe hook."""

import json
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import REPO, shared_data_dir
from tfi2i.metrics.superres import evaluate_superres, luma


def test_luma_is_matlab_rgb2ycbcr():
    rgb = tf.constant([[[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]]])
    np.testing.assert_allclose(luma(rgb)[0, 0, :, 0], [16 / 255, 235 / 255, (16 + 65.481) / 255], rtol=1e-6)


def _set5():
    folder = shared_data_dir() / "sr_set5"
    if not folder.is_dir():
        pytest.skip(f"needs Set5 in {folder} (set TFI2I_SHARED_DATA)")
    return folder


def test_identity_model_scores_exactly_bicubic():
    result = evaluate_superres(lambda x: x, _set5(), factor=4)  # G = identity on the bicubic input
    assert result["num_images"] == 5
    for key in result["model"]:
        assert result["model"][key] == pytest.approx(result["bicubic"][key], abs=1e-9)
    assert 26.0 < result["bicubic"]["psnr_y"] < 31.0  # x4 bicubic on Set5 is ~28.4 dB (Y) in the literature
    assert all(r["size"][0] % 4 == 0 and r["size"][1] % 4 == 0 for r in result["images"])


def test_a_sharper_model_beats_bicubic_on_real_photos():
    """Unsharp masking of the bicubic input is a crude SR model: it must be scored as better than bicubic."""
    def unsharp(x):
        blurred = tf.nn.avg_pool2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], "SYMMETRIC"), 3, 1, "VALID")
        return tf.clip_by_value(x + 0.6 * (x - blurred), -1, 1)

    result = evaluate_superres(unsharp, _set5(), factor=4)
    assert result["model"]["psnr_y"] > result["bicubic"]["psnr_y"]


def test_recipe_runs_the_table2_protocol_after_training(tmp_path):
    sys.path.insert(0, str(REPO / "recipes"))
    import pan_cityscapes as recipe

    folder = _set5()
    tiny = ["data.crop_size=64", "generator.name=unet_6", "generator.ngf=4", "discriminator.ndf=4",
            "discriminator.n_layers=1", "loss.feature_weights=[1.0, 1.0]", "train.eval_at_end=false",
            "train.export_at_end=false"]
    argv = ["--task", "superres4x", "--workdir", str(tmp_path / "run"), "--steps", "1", "--set5", str(folder)]
    assert recipe.main(argv + [a for t in tiny for a in ("--set", t)]) == 0
    saved = json.loads((tmp_path / "run" / "superres_set5.json").read_text())
    assert saved["num_images"] == 5 and saved["paper"] == {"psnr": 23.85, "ssim": 0.8563}
    assert set(saved["model"]) == {"psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y"}
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"]["task"] == "superres4x"
