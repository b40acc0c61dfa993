"""L1/MSE/PSNR/SSIM: hand-computed values, identities, and agreement with scikit-image."""

import math
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfi2i.metrics import (
    METRICS,
    from_minus1_1,
    from_uint8,
    l1,
    mse,
    psnr,
    ssim,
    to_unit,
)
from tests.helpers import shared_data_dir, facade_photos

skmetrics = pytest.importorskip("skimage.metrics")

REPO_ROOT = Path(__file__).resolve().parents[2]




def sk_ssim(a, b, data_range=1.0):
    return skmetrics.structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
        channel_axis=-1,
    )


def sk_psnr(a, b, data_range=1.0):
    return skmetrics.peak_signal_noise_ratio(a, b, data_range=data_range)


def assert_matches_skimage(a, b, tol=1e-3):
    """a, b: float [B, H, W, C] on [0, 1]."""
    ours_ssim = ssim(a, b).numpy()
    ours_psnr = psnr(a, b).numpy()
    assert ours_ssim.shape == ours_psnr.shape == (a.shape[0],)
    for i in range(a.shape[0]):
        ref_a = np.asarray(a[i], np.float64)
        ref_b = np.asarray(b[i], np.float64)
        assert ours_ssim[i] == pytest.approx(sk_ssim(ref_a, ref_b), abs=tol)
        assert ours_psnr[i] == pytest.approx(sk_psnr(ref_a, ref_b), abs=tol)


# --------------------------------------------------------------------------- #
# Hand-computed values on tiny tensors
# --------------------------------------------------------------------------- #
def tiny_pair():
    # Image 0: a single pixel of a 2x2x1 image differs by 0.5.
    # Image 1: every pixel differs by 0.1.
    a = np.zeros((2, 2, 2, 1), np.float32)
    b = np.zeros((2, 2, 2, 1), np.float32)
    b[0, 0, 0, 0] = 0.5
    b[1] = 0.1
    return a, b


def test_l1_hand_computed():
    a, b = tiny_pair()
    np.testing.assert_allclose(l1(a, b).numpy(), [0.125, 0.1], rtol=1e-6)
    np.testing.assert_allclose(l1(a, b, scale=255.0).numpy(), [31.875, 25.5], rtol=1e-6)
    assert l1(a, b).dtype == tf.float32


def test_mse_hand_computed():
    a, b = tiny_pair()
    np.testing.assert_allclose(mse(a, b).numpy(), [0.0625, 0.01], rtol=1e-6)
    np.testing.assert_allclose(
        mse(a, b, scale=255.0).numpy(), [0.0625 * 255**2, 0.01 * 255**2], rtol=1e-5
    )


def test_psnr_hand_computed():
    a, b = tiny_pair()
    # 10 log10(1 / MSE): MSE 1/16 -> 12.0412 dB, MSE 0.01 -> 20 dB.
    np.testing.assert_allclose(
        psnr(a, b).numpy(), [10 * math.log10(16.0), 20.0], rtol=1e-5
    )
    # On the 0..255 scale with max_val=255 PSNR is the same.
    np.testing.assert_allclose(
        psnr(a * 255.0, b * 255.0, max_val=255.0).numpy(), psnr(a, b).numpy(), rtol=1e-5
    )


def test_symmetric():
    rng = np.random.default_rng(1)
    a = rng.random((2, 16, 16, 3), dtype=np.float32)
    b = rng.random((2, 16, 16, 3), dtype=np.float32)
    for fn in (l1, mse, psnr, ssim):
        np.testing.assert_allclose(fn(a, b).numpy(), fn(b, a).numpy(), rtol=1e-5)


def test_identical_images():
    rng = np.random.default_rng(2)
    a = rng.random((3, 24, 20, 3), dtype=np.float32)
    np.testing.assert_allclose(ssim(a, a).numpy(), 1.0, atol=1e-6)
    np.testing.assert_array_equal(mse(a, a).numpy(), 0.0)
    np.testing.assert_array_equal(l1(a, a).numpy(), 0.0)
    p = psnr(a, a).numpy()
    assert p.shape == (3,) and np.all(np.isinf(p)) and np.all(p > 0)


# --------------------------------------------------------------------------- #
# Agreement with scikit-image
# --------------------------------------------------------------------------- #
def test_matches_skimage_random():
    rng = np.random.default_rng(3)
    a = rng.random((3, 40, 37, 3), dtype=np.float32)
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1).astype(np.float32)
    assert_matches_skimage(a, b)


def test_matches_skimage_synthetic_structured():
    # Smooth gradients + a square, vs. a shifted/contrast-changed copy.
    h, w = 48, 64
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / w, y / h, 0.5 + 0.5 * np.sin(x / 5) * np.cos(y / 7)], -1)
    base[10:30, 20:40] = 0.9
    other = np.clip(0.8 * np.roll(base, 2, axis=1) + 0.05, 0, 1)
    a = base[None].astype(np.float32)
    b = other[None].astype(np.float32)
    assert_matches_skimage(a, b)


def test_matches_skimage_grayscale_single_channel():
    rng = np.random.default_rng(4)
    a = rng.random((2, 32, 32, 1), dtype=np.float32)
    b = np.clip(a * 0.7 + 0.1, 0, 1).astype(np.float32)
    assert_matches_skimage(a, b)




def test_matches_skimage_real_photographs():
    import cv2

    rng = np.random.default_rng(5)
    photos = facade_photos()
    refs, degraded = [], []
    for i, photo in enumerate(photos):
        blurred = cv2.GaussianBlur(photo, (0, 0), sigmaX=1.0 + i)
        noisy = np.clip(blurred.astype(np.float32) + rng.normal(0, 8, photo.shape), 0, 255)
        refs.append(photo.astype(np.float32) / 255.0)
        degraded.append(np.round(noisy).astype(np.float32) / 255.0)
    a = np.stack(refs)
    b = np.stack(degraded)
    assert_matches_skimage(a, b)
    # Also on the 0..255 scale with data_range / max_val = 255.
    a255, b255 = a * 255.0, b * 255.0
    ours = ssim(a255, b255, max_val=255.0).numpy()
    ref = [sk_ssim(a255[i].astype(np.float64), b255[i].astype(np.float64), 255.0) for i in range(len(a))]
    np.testing.assert_allclose(ours, ref, atol=1e-3)
    # Sanity: a degraded photo is similar but not identical.
    s = ssim(a, b).numpy()
    assert np.all((s > 0.2) & (s < 0.99))


# --------------------------------------------------------------------------- #
# Helpers, input checks, registry
# --------------------------------------------------------------------------- #
def test_range_helpers():
    np.testing.assert_allclose(
        from_minus1_1(np.array([-1.0, 0.0, 1.0, 1.5], np.float32)).numpy(), [0.0, 0.5, 1.0, 1.0]
    )
    u8 = np.array([0, 51, 255], np.uint8)
    np.testing.assert_allclose(from_uint8(u8).numpy(), [0.0, 0.2, 1.0], rtol=1e-6)
    np.testing.assert_allclose(to_unit(u8).numpy(), [0.0, 0.2, 1.0], rtol=1e-6)
    np.testing.assert_allclose(
        to_unit(np.array([0, 65535], np.uint16)).numpy(), [0.0, 1.0], rtol=1e-6
    )
    np.testing.assert_allclose(
        to_unit(np.array([-1.0, 1.0], np.float32), "minus1_1").numpy(), [0.0, 1.0]
    )
    with pytest.raises(ValueError, match="value_range"):
        to_unit(np.array([0.5], np.float32))


def test_rejects_bad_inputs():
    a = np.zeros((1, 16, 16, 3), np.uint8)
    with pytest.raises(TypeError, match="from_uint8"):
        l1(a, a)
    with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
        mse(np.zeros((16, 16, 3), np.float32), np.zeros((16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(np.zeros((1, 16, 16, 3), np.float32), np.zeros((1, 16, 15, 3), np.float32))
    with pytest.raises(ValueError, match="11x11"):
        ssim(np.zeros((1, 8, 8, 3), np.float32), np.zeros((1, 8, 8, 3), np.float32))


def test_registry():
    assert list(METRICS) == ["l1", "l1_255", "mse", "psnr", "ssim", "vif", "lpips", "fid", "kid"]
    assert {k: v.direction for k, v in METRICS.items()} == {
        "l1": "lower",
        "l1_255": "lower",
        "mse": "lower",
        "psnr": "higher",
        "ssim": "higher",
        "vif": "higher",
        "lpips": "lower",
        "fid": "lower",
        "kid": "lower",
    }
    assert {k for k, v in METRICS.items() if v.kind == "set"} == {"fid", "kid"}
    assert METRICS["psnr"].unit == "dB"
    assert METRICS["ssim"].arrow == "↑" and METRICS["l1"].arrow == "↓"
    a, b = tiny_pair()
    np.testing.assert_allclose(METRICS["l1"](a, b).numpy(), l1(a, b).numpy())
