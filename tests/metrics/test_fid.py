"""FID / KID: Frechet distance vs direct formulas, streaming stats, KID estimator,
the InceptionV3 feature extractor (random weights only) and the offline error."""

import itertools
import urllib.error

import numpy as np
import pytest
import tensorflow as tf
from scipy import linalg

import tfi2i.metrics.fid as fid_mod
from tfi2i.metrics.fid import (
    INCEPTION_WEIGHTS_FILE,
    FeatureStats,
    FIDAccumulator,
    InceptionFeatures,
    WeightsUnavailableError,
    frechet_distance,
    kid,
)


def _stats(f):
    return f.mean(axis=0), np.cov(f, rowvar=False)


def direct_fid(mu1, s1, mu2, s2):
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)), straight from the definition."""
    covmean = linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2.0 * np.real(covmean)))


def eig_fid(mu1, s1, mu2, s2):
    """Same quantity via Tr sqrtm(S1 S2) = sum sqrt(eig(S1^1/2 S2 S1^1/2)), an independent route."""
    w, v = linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.clip(linalg.eigvalsh(r @ s2 @ r), 0, None)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * np.sum(np.sqrt(ev)))


# --------------------------------------------------------------------------- #
# frechet_distance
# --------------------------------------------------------------------------- #
def test_frechet_distance_matches_direct_computation():
    rng = np.random.default_rng(0)
    f1 = rng.normal(size=(300, 16))
    f2 = rng.normal(size=(250, 16)) @ rng.normal(size=(16, 16)) * 0.5 + 0.3
    mu1, s1 = _stats(f1)
    mu2, s2 = _stats(f2)
    got = frechet_distance(mu1, s1, mu2, s2)
    assert isinstance(got, float)
    assert got == pytest.approx(direct_fid(mu1, s1, mu2, s2), rel=1e-9)
    assert got == pytest.approx(eig_fid(mu1, s1, mu2, s2), rel=1e-6)
    assert got == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-6)  # symmetric


def test_frechet_distance_hand_computed_1d_and_diagonal():
    # 1-D: (0 - 3)^2 + (sqrt(1) - sqrt(16))^2 = 9 + 9.
    assert frechet_distance(0.0, 1.0, 3.0, 16.0) == pytest.approx(18.0, abs=1e-9)
    # Diagonal: sum (mu1 - mu2)^2 + sum (sqrt(s1) - sqrt(s2))^2 = (1 + 0 + 4) + (1 + 0 + 4).
    got = frechet_distance(
        np.array([0.0, 1.0, 2.0]),
        np.diag([1.0, 4.0, 9.0]),
        np.array([1.0, 1.0, 0.0]),
        np.diag([4.0, 4.0, 1.0]),
    )
    assert got == pytest.approx(10.0, abs=1e-9)


def test_frechet_distance_identical_and_nearly_identical_features():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(200, 32)) ** 2
    mu, s = _stats(f)
    assert abs(frechet_distance(mu, s, mu.copy(), s.copy())) < 1e-6
    # Not bit-identical: goes through sqrtm and still gives ~0.
    mu2, s2 = _stats(f + rng.normal(scale=1e-9, size=f.shape))
    assert not np.array_equal(s, s2)
    assert abs(frechet_distance(mu, s, mu2, s2)) < 1e-6


def test_frechet_distance_singular_covariances():
    # Fewer samples than dimensions: rank-deficient covariances (the pytorch-fid eps path).
    rng = np.random.default_rng(2)
    f1, f2 = rng.normal(size=(6, 20)), rng.normal(size=(6, 20)) + 1.0
    mu1, s1 = _stats(f1)
    mu2, s2 = _stats(f2)
    with np.errstate(all="ignore"):
        got = frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(got)
    assert got == pytest.approx(eig_fid(mu1, s1, mu2, s2), rel=1e-4, abs=1e-4)


def test_frechet_distance_shape_checks():
    with pytest.raises(ValueError, match="means differ"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="covariances"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(2))


# --------------------------------------------------------------------------- #
# FeatureStats
# --------------------------------------------------------------------------- #
def test_feature_stats_streaming_equals_numpy():
    rng = np.random.default_rng(3)
    f = rng.normal(size=(40, 12)) * 3.0 + 1000.0  # large offset: checks numerical stability
    stats = FeatureStats()
    for lo, hi in [(0, 7), (7, 8), (8, 28), (28, 28), (28, 40)]:
        stats.update(f[lo:hi].astype(np.float32) if lo == 8 else f[lo:hi])
    ref = f.copy()
    ref[8:28] = ref[8:28].astype(np.float32)
    assert stats.num == 40 and stats.dim == 12
    np.testing.assert_allclose(stats.mean(), ref.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.cov(), np.cov(ref, rowvar=False), rtol=1e-9, atol=1e-9)
    assert stats.mean().dtype == np.float64 and stats.cov().dtype == np.float64


def test_feature_stats_errors():
    stats = FeatureStats()
    with pytest.raises(ValueError, match="no features"):
        stats.mean()
    stats.update(np.ones((1, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        stats.cov()
    with pytest.raises(ValueError, match="dim"):
        stats.update(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        stats.update(np.ones(4))


# --------------------------------------------------------------------------- #
# KID
# --------------------------------------------------------------------------- #
def direct_mmd2_unbiased(x, y):
    """O(n^2) double loop: unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3."""
    d = x.shape[1]
    k = lambda u, v: (float(np.dot(u, v)) / d + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2.0 * kxy


def test_kid_matches_direct_computation():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(25, 6))
    y = rng.normal(size=(25, 6)) * 1.2 + 0.4
    # One subset of all samples = the full unbiased estimate (a subset is a permutation).
    mean, std = kid(x, y, num_subsets=1, subset_size=25)
    assert mean == pytest.approx(direct_mmd2_unbiased(x, y), rel=1e-10)
    assert std == 0.0
    # subset_size larger than the sets is clamped to min(N_a, N_b).
    assert kid(x, y, num_subsets=3, subset_size=1000)[0] == pytest.approx(mean, rel=1e-10)


def test_kid_identical_same_distribution_and_shifted():
    rng = np.random.default_rng(5)
    x = np.abs(rng.normal(size=(400, 16))).astype(np.float32)
    m = len(x)
    # Identical sets: the unbiased estimator's cross term includes the pairs (x_i, x_i), so
    # the value is not exactly 0 but -2 (mean diag k - mean off-diag k) / m = O(1/m) <= 0.
    k = (x.astype(np.float64) @ x.T.astype(np.float64) / x.shape[1] + 1.0) ** 3
    diag, off = np.mean(np.diag(k)), (k.sum() - np.trace(k)) / (m * (m - 1))
    mean, std = kid(x, x, num_subsets=10, subset_size=m)
    assert mean == pytest.approx(-2.0 * (diag - off) / m, rel=1e-9)
    assert std < 1e-12
    # Two independent samples of the same distribution: ~0 (unbiased), either sign.
    x1, x2 = x[:200], x[200:]
    same_mean, _ = kid(x1, x2, num_subsets=20, subset_size=100)
    shifted_mean, shifted_std = kid(x1, x2 + 0.5, num_subsets=20, subset_size=100)
    assert shifted_mean > 0.05 and shifted_std > 0.0
    assert abs(same_mean) < 0.05 * shifted_mean
    assert abs(mean) < 0.05 * shifted_mean


def test_kid_subset_paths_agree(monkeypatch):
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(60, 8)), rng.normal(size=(50, 8)) + 0.2
    full = kid(x, y, num_subsets=7, subset_size=20, seed=3)
    monkeypatch.setattr(fid_mod, "_FULL_GRAM_MAX", 0)  # force per-subset kernels
    per_subset = kid(x, y, num_subsets=7, subset_size=20, seed=3)
    np.testing.assert_allclose(per_subset, full, rtol=1e-10)
    assert kid(x, y, num_subsets=7, subset_size=20, seed=4) != full


def test_kid_errors():
    with pytest.raises(ValueError, match="at least 2"):
        kid(np.ones((1, 3)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="equal D"):
        kid(np.ones((4, 3)), np.ones((4, 2)))


# --------------------------------------------------------------------------- #
# InceptionFeatures (random weights) and FIDAccumulator
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def inception():
    return InceptionFeatures(weights=None, batch_size=4)


def _images(seed, n=6, size=80, channels=3):
    return tf.random.stateless_uniform([n, size, size, channels], seed=[seed, 0])


def test_preprocess_resize_and_scale():
    x = _images(0, n=2, size=80)
    y = InceptionFeatures.preprocess(x)
    assert y.shape == (2, 299, 299, 3)
    ref = tf.image.resize(x, [299, 299], method="bilinear", antialias=False) * 2.0 - 1.0
    np.testing.assert_allclose(y.numpy(), ref.numpy(), atol=1e-6)
    assert -1.0 <= float(tf.reduce_min(y)) and float(tf.reduce_max(y)) <= 1.0
    const = InceptionFeatures.preprocess(tf.fill([1, 10, 10, 3], 0.75))
    np.testing.assert_allclose(const.numpy(), 0.5, atol=1e-6)


def test_inception_features_shapes_and_batching(inception):
    x = _images(1, n=6, size=80)
    f = inception(x)  # batch_size 4: two forward passes (4 + 2)
    assert f.shape == (6, 2048) and f.dtype == np.float32
    np.testing.assert_allclose(inception(x[4:]), f[4:], rtol=1e-4, atol=1e-6)
    gray = inception(x[:2, :, :, :1])
    np.testing.assert_allclose(gray, inception(tf.repeat(x[:2, :, :, :1], 3, -1)), atol=1e-6)
    with pytest.raises(TypeError, match="float"):
        inception(np.zeros((1, 80, 80, 3), np.uint8))


def test_accumulator_identical_batches_give_zero(inception):
    acc = FIDAccumulator(features=inception)
    for seed in (2, 3):
        x = _images(seed, n=3, size=80)
        acc.update(x, x)
    assert acc.num_images == 6
    res = acc.result()
    assert set(res) == {"fid", "kid", "kid_std"}
    assert abs(res["fid"]) < 1e-6
    # KID of identical sets is -2 (mean diag k - mean off-diag k) / m (see kid()); with
    # random-weights features (all ~1e-4) the kernel is ~constant, so that is ~1e-11.
    assert abs(res["kid"]) < 1e-6 and res["kid_std"] < 1e-6


def _cheap_features(images):
    """A fixed 12-d feature map (3x3 area-average grey + channel means); keeps
    the accumulator tests free of the 2048-d matrix square root."""
    x = tf.convert_to_tensor(images)
    pooled = tf.image.resize(tf.reduce_mean(x, -1, keepdims=True), [3, 3], method="area")
    return tf.concat([tf.reshape(pooled, [x.shape[0], -1]), tf.reduce_mean(x, [1, 2])], 1).numpy()


def test_accumulator_matches_direct_statistics():
    acc = FIDAccumulator(features=_cheap_features, kid_num_subsets=5, seed=1)
    preds, targets = [], []
    for seed in range(4):
        p = _images(10 + seed, n=8, size=16) ** 2  # darker, different distribution
        t = _images(20 + seed, n=8, size=16)
        acc.update(p, t)
        preds.append(_cheap_features(p))
        targets.append(_cheap_features(t))
    fp, ft = np.concatenate(preds), np.concatenate(targets)
    res = acc.result()
    mu_t, s_t = _stats(ft.astype(np.float64))
    mu_p, s_p = _stats(fp.astype(np.float64))
    assert res["fid"] == pytest.approx(direct_fid(mu_t, s_t, mu_p, s_p), rel=1e-6)
    assert res["fid"] > 0.01
    kid_mean, kid_std = kid(ft, fp, num_subsets=5, subset_size=32, seed=1)
    assert res["kid"] == pytest.approx(kid_mean, rel=1e-9) and res["kid"] > 0
    assert res["kid_std"] == pytest.approx(kid_std, rel=1e-9, abs=1e-12)

    no_kid = FIDAccumulator(features=_cheap_features, compute_kid=False)
    no_kid.update(np.asarray(_images(1, n=4, size=16)), np.asarray(_images(2, n=4, size=16)))
    assert set(no_kid.result()) == {"fid"}
    no_kid.reset()
    assert no_kid.num_images == 0
    with pytest.raises(ValueError, match="at least 2 images"):
        no_kid.result()
    with pytest.raises(TypeError, match="float"):
        no_kid.update(np.zeros((2, 16, 16, 3), np.uint8), np.zeros((2, 16, 16, 3), np.uint8))


# --------------------------------------------------------------------------- #
# Offline weights
# --------------------------------------------------------------------------- #
def test_imagenet_weights_offline_raise_with_instructions(tmp_path, monkeypatch):
    import keras

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    calls = []

    def offline_get_file(*args, **kwargs):
        calls.append(kwargs)
        # What keras.utils.get_file raises when the host cannot be reached.
        raise Exception(
            "URL fetch failure on https://storage.googleapis.com/...: None -- "
            f"{urllib.error.URLError('[Errno -2] Name or service not known')}"
        )

    monkeypatch.setattr(keras.utils, "get_file", offline_get_file)
    with pytest.raises(WeightsUnavailableError) as info:
        InceptionFeatures(weights="imagenet")
    msg = str(info.value)
    assert INCEPTION_WEIGHTS_FILE in msg
    assert str(tmp_path / "models") in msg  # where to put the file ($KERAS_HOME/models)
    assert "KERAS_HOME" in msg and "weights=" in msg  # ... or pass a local path
    assert calls and calls[0]["cache_dir"] == str(tmp_path)  # $KERAS_HOME read at call time
    assert isinstance(info.value.__cause__, Exception)


def test_missing_local_weights_file(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="not found"):
        InceptionFeatures(weights=str(tmp_path / "nope.h5"))
