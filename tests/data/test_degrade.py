"""The degradations of the derived tasks (super-resolution, inpainting), by hand and against PIL."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfi2i.config import ConfigError, DataConfig
from tfi2i.data import degrade


def ramp(h, w, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((h, w, c)) * 2 - 1).astype(np.float32)


# ----------------------------------------------------------------------------- inpainting


def test_inpainting_hole_exactly_zero_and_mask_exact():
    y = ramp(6, 8)
    x, mask = degrade.inpainting_input(y, 2)
    expected = np.zeros((6, 8, 1), np.float32)
    expected[2:4, 3:5] = 1  # top-left ((6-2)//2, (8-2)//2) = (2, 3)
    np.testing.assert_array_equal(mask.numpy(), expected)
    assert mask.dtype == tf.float32 and mask.shape == (6, 8, 1)
    x = x.numpy()
    assert (x[2:4, 3:5] == 0).all()
    outside = np.broadcast_to(expected == 0, y.shape)
    np.testing.assert_array_equal(x[outside], y[outside])


def test_inpainting_odd_margin_rounds_down_and_batches():
    y = np.stack([ramp(5, 5, seed=s) for s in range(3)])
    x, mask = degrade.inpainting_input(y, 2)  # margin 3: starts at 1
    assert mask.shape == (3, 5, 5, 1)
    np.testing.assert_array_equal(mask.numpy()[1, :, :, 0], np.pad(np.ones((2, 2)), ((1, 2), (1, 2))))
    for i in range(3):  # a batch gives what each image gives
        xi, mi = degrade.inpainting_input(y[i], 2)
        np.testing.assert_array_equal(x.numpy()[i], xi.numpy())
        np.testing.assert_array_equal(mask.numpy()[i], mi.numpy())


def test_inpainting_whole_image_and_bad_sizes():
    x, mask = degrade.inpainting_input(ramp(4, 4), 4)
    assert (x.numpy() == 0).all() and (mask.numpy() == 1).all()
    with pytest.raises(ValueError, match="larger than the image"):
        degrade.inpainting_input(ramp(4, 4), 5)
    with pytest.raises(ValueError, match=">= 1"):
        degrade.inpainting_input(ramp(4, 4), 0)


# ----------------------------------------------------------------------------- super-resolution


def test_superres_of_a_constant_image_is_constant():
    y = np.full((16, 12, 3), 0.3, np.float32)
    x = degrade.superres_input(y, 4).numpy()
    assert x.shape == (16, 12, 3)
    np.testing.assert_allclose(x, 0.3, atol=1e-6)


def test_superres_output_size_and_range_for_a_batch():
    y = np.stack([ramp(8, 16, seed=s) for s in range(2)])
    x = degrade.superres_input(y, 4)
    assert x.shape == (2, 8, 16, 3) and x.dtype == tf.float32
    assert float(tf.reduce_min(x)) >= -1 and float(tf.reduce_max(x)) <= 1
    np.testing.assert_allclose(x.numpy()[1], degrade.superres_input(y[1], 4).numpy(), atol=1e-6)


def test_superres_equals_pil_bicubic_down_antialiased_then_up():
    # PIL's BICUBIC on float ('F') images: Keys a=-0.5, kernel widened when shrinking (= MATLAB imresize)
    y = ramp(16, 24, c=1, seed=3) * 0.5  # well inside [-1, 1]: the clip does not act
    small = Image.fromarray(y[..., 0], mode="F").resize((6, 4), Image.BICUBIC)
    ref = np.asarray(small.resize((24, 16), Image.BICUBIC))
    ours = degrade.superres_input(y, 4).numpy()[..., 0]
    np.testing.assert_allclose(ours, np.clip(ref, -1, 1), atol=1e-5)
    assert np.abs(ours - y[..., 0]).mean() > 0.05  # it did lose detail


def test_superres_factor_one_is_identity_and_output_is_clipped():
    y = ramp(8, 8)
    np.testing.assert_allclose(degrade.superres_input(y, 1).numpy(), y, atol=1e-6)
    checker = np.where((np.indices((8, 8)).sum(0) // 4) % 2 == 0, 1.0, -1.0).astype(np.float32)[..., None]
    x = degrade.superres_input(np.repeat(checker, 3, -1), 2).numpy()  # bicubic overshoots; clipped
    assert x.min() >= -1 and x.max() <= 1


def test_superres_divisibility_error_and_modcrop():
    with pytest.raises(ValueError, match=r"10x12 \(HxW\) is not divisible by the scale 4.*modcrop.*8x12"):
        degrade.superres_input(ramp(10, 12), 4)
    y = degrade.modcrop(ramp(10, 13), 4)
    assert y.shape == (8, 12, 3)
    assert degrade.superres_input(y, 4).shape == (8, 12, 3)


def test_superres_dynamic_shape_checked_at_run_time():
    fn = tf.function(lambda y: degrade.superres_input(y, 4), input_signature=[tf.TensorSpec([None, None, 3])])
    assert fn(ramp(8, 4)).shape == (8, 4, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not divisible"):
        fn(ramp(6, 4))


# ----------------------------------------------------------------------------- config checks


def test_check_task_errors_name_the_setting():
    degrade.check_task(DataConfig())
    with pytest.raises(ConfigError, match="data.task must be one of paired, superres4x, inpainting"):
        degrade.check_task(DataConfig(task="denoise"))
    with pytest.raises(ConfigError, match="crop_size 250 is not divisible by data.sr_factor 4.*crop_size=248"):
        degrade.check_task(DataConfig(task="superres4x", crop_size=250))
    degrade.check_task(DataConfig(task="superres4x", crop_size=250, sr_factor=2))
    with pytest.raises(ConfigError, match="hole_size 300"):
        degrade.check_task(DataConfig(task="inpainting", hole_size=300))
    assert degrade.hole_size(DataConfig(crop_size=256)) == 128
    assert degrade.hole_size(DataConfig(crop_size=256, hole_size=64)) == 64


def test_make_example_keys():
    y = tf.constant(ramp(8, 8))
    sr = degrade.make_example(y, DataConfig(task="superres4x", crop_size=8))
    assert sorted(sr) == ["x", "y"]
    inp = degrade.make_example(y, DataConfig(task="inpainting", crop_size=8))
    assert sorted(inp) == ["mask", "x", "y"] and float(tf.reduce_sum(inp["mask"])) == 16.0
