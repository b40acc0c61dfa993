"""VIFp: agreement with sewar's reference port, identities, monotonicity, input checks."""

import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfi2i.metrics.vif import VIFP_MIN_SIZE, vifp
from tests.helpers import shared_data_dir, facade_photos

sewar_full_ref = pytest.importorskip(
    "sewar.full_ref",
    reason="sewar (test-only dependency, `pip install sewar`) provides the reference VIFp",
)

REPO_ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-3  # required agreement with sewar; the measured difference is ~1e-8




def sewar_vifp(ref01: np.ndarray, dist01: np.ndarray) -> float:
    """sewar's VIFp of one [H, W, C] pair given on [0, 1] (sewar works on 0..255:
    its sigma_nsq = 2 is an 8-bit variance)."""
    return sewar_full_ref.vifp(
        np.asarray(ref01, np.float64) * 255.0, np.asarray(dist01, np.float64) * 255.0
    )


def assert_matches_sewar(a: np.ndarray, b: np.ndarray) -> float:
    """a: references, b: distorted, float [B, H, W, C] on [0, 1]. Returns max |diff|."""
    ours = vifp(a, b).numpy()
    assert ours.shape == (a.shape[0],) and ours.dtype == np.float32
    ref = np.array([sewar_vifp(a[i], b[i]) for i in range(a.shape[0])])
    diff = np.abs(ours - ref)
    assert diff.max() < TOL, f"ours {ours} vs sewar {ref}"
    return float(diff.max())


# --------------------------------------------------------------------------- #
# Real photographs
# --------------------------------------------------------------------------- #


def _distortions(photo: np.ndarray, rng) -> dict:
    """uint8 RGB photo -> {name: distorted float image on [0, 1]}, each family mild->strong."""
    import cv2

    out = {}
    for s in (1.0, 3.0):
        out[f"blur{s:g}"] = cv2.GaussianBlur(photo, (0, 0), sigmaX=s)
    for s in (5.0, 30.0):
        noisy = photo.astype(np.float64) + rng.normal(0.0, s, photo.shape)
        out[f"noise{s:g}"] = np.round(np.clip(noisy, 0, 255))
    for q in (75, 10):
        bgr = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR)
        ok, enc = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, q])
        assert ok
        out[f"jpeg{q}"] = cv2.cvtColor(cv2.imdecode(enc, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return {k: np.asarray(v, np.float32) / 255.0 for k, v in out.items()}


def test_matches_sewar_on_real_photographs():
    rng = np.random.default_rng(0)
    photos = facade_photos()
    refs, dists, names = [], [], []
    for photo in photos:
        for name, d in _distortions(photo, rng).items():
            refs.append(photo.astype(np.float32) / 255.0)
            dists.append(d)
            names.append(name)
    a, b = np.stack(refs), np.stack(dists)
    assert a.shape[1:] == (256, 256, 3)
    max_diff = assert_matches_sewar(a, b)
    print(f"max |vifp - sewar.vifp| on {len(a)} distorted facades photos: {max_diff:.2e}")

    # Stronger distortion of the same kind -> lower VIF; all clearly below 1.
    v = vifp(a, b).numpy()
    per_photo = len(names) // len(photos)
    for p in range(len(photos)):
        got = dict(zip(names[p * per_photo : (p + 1) * per_photo], v[p * per_photo :]))
        assert got["blur1"] > got["blur3"]
        assert got["noise5"] > got["noise30"]
        assert got["jpeg75"] > got["jpeg10"]
        assert all(0.0 < x < 0.99 for x in got.values()), got


def test_identical_real_photographs_give_one():
    a = np.stack([p.astype(np.float32) / 255.0 for p in facade_photos()])
    np.testing.assert_allclose(vifp(a, a).numpy(), 1.0, atol=1e-6)


# --------------------------------------------------------------------------- #
# Synthetic images
# --------------------------------------------------------------------------- #
def _smooth_random(rng, shape, sigma=2.0):
    from scipy import ndimage

    x = ndimage.gaussian_filter(rng.random(shape), sigma=(0, sigma, sigma, 0))
    x = (x - x.min()) / (x.max() - x.min())
    return x.astype(np.float32)


def test_matches_sewar_on_synthetic_images():
    rng = np.random.default_rng(1)
    a = _smooth_random(rng, (4, 64, 80, 3))
    a[0, 10:40, 20:60] = 0.5  # flat patch (zero local variance)
    a[1, :, :, 1] = np.linspace(0, 1, 80)[None, :]  # a smooth ramp channel
    b = np.stack(
        [
            np.clip(a[0] + rng.normal(0, 0.05, a[0].shape), 0, 1),  # noise, incl. in the flat patch
            np.clip(0.5 + 1.3 * (a[1] - 0.5), 0, 1),  # contrast enhancement (VIF may exceed 1)
            a[2] * 0.6 + 0.2,  # contrast reduction
            1.0 - a[3],  # inverted: negative gain
        ]
    ).astype(np.float32)
    assert_matches_sewar(a, b)
    # Reference/distorted order matters (VIF is asymmetric) and matches sewar's (GT, P).
    assert_matches_sewar(b, a)
    assert abs(float(vifp(a, b)[2]) - float(vifp(b, a)[2])) > 1e-2


def test_matches_sewar_grayscale_and_minimum_size():
    rng = np.random.default_rng(2)
    a = _smooth_random(rng, (2, VIFP_MIN_SIZE, VIFP_MIN_SIZE, 1), sigma=1.0)
    b = np.clip(a + rng.normal(0, 0.03, a.shape), 0, 1).astype(np.float32)
    assert_matches_sewar(a, b)


def test_identical_synthetic_gives_one_and_distortion_monotone():
    rng = np.random.default_rng(3)
    a = _smooth_random(rng, (1, 64, 64, 3))
    np.testing.assert_allclose(vifp(a, a).numpy(), [1.0], atol=1e-6)
    values = [
        float(vifp(a, np.clip(a + rng.normal(0, s, a.shape), 0, 1).astype(np.float32))[0])
        for s in (0.01, 0.05, 0.2)
    ]
    assert 1.0 > values[0] > values[1] > values[2] > 0.0


def test_max_val_rescales_and_graph_mode_matches():
    rng = np.random.default_rng(4)
    a = _smooth_random(rng, (2, 48, 48, 3))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1).astype(np.float32)
    v = vifp(a, b).numpy()
    np.testing.assert_allclose(vifp(a * 255.0, b * 255.0, max_val=255.0).numpy(), v, atol=1e-6)
    graph = tf.function(vifp)(tf.constant(a), tf.constant(b)).numpy()
    np.testing.assert_allclose(graph, v, atol=1e-6)


def test_input_checks():
    a = np.zeros((1, 64, 64, 3), np.uint8)
    with pytest.raises(TypeError, match="floating-point"):
        vifp(a, a)
    small = np.zeros((1, VIFP_MIN_SIZE - 1, 64, 1), np.float32)
    with pytest.raises(ValueError, match="at least 41x41"):
        vifp(small, small)
    with pytest.raises(ValueError, match="shapes differ"):
        vifp(np.zeros((1, 64, 64, 1), np.float32), np.zeros((1, 64, 64, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
        vifp(np.zeros((64, 64, 3), np.float32), np.zeros((64, 64, 3), np.float32))
