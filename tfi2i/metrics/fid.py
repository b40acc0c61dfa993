"""Distribution metrics on Inception features: FID (Heusel et al. 2017) and KID
(Binkowski et al. 2018).

Pipeline and conventions:

* Images: float ``[B, H, W, 3]`` on the **[0, 1] scale** (the package
  convention; 1-channel images are repeated to 3 channels).
* Features (:class:`InceptionFeatures`): Keras ``InceptionV3(include_top=False,
  pooling="avg")`` -> 2048-d global-average-pool features. Preprocessing:
  resize to 299x299, **bilinear, antialias off** (the pytorch-fid / TF-FID
  convention; equal to PyTorch ``F.interpolate(mode="bilinear",
  align_corners=False)``), then scale [0, 1] -> [-1, 1] (``2x - 1``, Inception's
  own preprocessing).
* **Not the paper network.** Keras' ImageNet InceptionV3 weights are *not* the
  TF-FID graph ``pt_inception-2015-12-05`` used by the original TTUR code and
  by pytorch-fid (different training run, and that graph differs slightly in
  some pooling layers). Absolute FID/KID values therefore differ from
  published numbers by a model-dependent amount and must not be compared with
  papers' tables; rankings and differences between models evaluated here with
  the same extractor are consistent. ``weights`` may also be a path to an
  ``.h5`` file in the Keras InceptionV3 layout (e.g. a conversion of the
  FID-Inception weights) if you have one; the architecture stays Keras'.
* FID: :func:`frechet_distance` of the Gaussian fits (mean, unbiased
  covariance) of the two feature sets, computed as in pytorch-fid
  (``scipy.linalg.sqrtm``; ``eps * I`` added to both covariances when the
  product is singular; negligible imaginary parts dropped). Lower is better.
* KID: :func:`kid`, the unbiased MMD^2 estimate with the cubic polynomial
  kernel ``k(x, y) = (x.y / d + 1)**3`` averaged over random subsets (mean and
  standard deviation over subsets). Lower is better; about 0 for equal
  distributions (it can be slightly negative; see :func:`kid`).
* :class:`FIDAccumulator` streams over (prediction, target) batches: FID needs
  only running sums (:class:`FeatureStats`, float64, memory flat in the number
  of images: ~32 MB per set for D = 2048). KID needs the features themselves:
  they are kept as float32, **8 KB per image per set** (2048 x 4 bytes), i.e.
  ~16 MB per 1000 (prediction, target) pairs; pass ``compute_kid=False`` to
  keep only the sums.

Cost on CPU: the 2048x2048 matrix square root takes tens of seconds on a
2-core machine (as in pytorch-fid); InceptionV3 costs ~6 GFLOP per image.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import tensorflow as tf

from tfi2i.pretrained import KERAS_WEIGHTS, WeightsUnavailableError, build_application

__all__ = [
    "InceptionFeatures",
    "WeightsUnavailableError",
    "frechet_distance",
    "FeatureStats",
    "kid",
    "FIDAccumulator",
    "INCEPTION_INPUT_SIZE",
    "INCEPTION_WEIGHTS_FILE",
]

INCEPTION_INPUT_SIZE = 299
INCEPTION_WEIGHTS_FILE = KERAS_WEIGHTS["InceptionV3"].file
"""File name of Keras' ImageNet InceptionV3 weights without the top, as cached
in ``$KERAS_HOME/models`` (default ``~/.keras/models``)."""

# `WeightsUnavailableError` is `tfi2i.pretrained.WeightsUnavailableError` (re-exported here).


# --------------------------------------------------------------------------- #
# Feature extractor
# --------------------------------------------------------------------------- #
class InceptionFeatures:
    """InceptionV3 pool features (2048-d) of [0, 1] images, for FID/KID.

    ``keras.applications.InceptionV3(include_top=False, pooling="avg")``.
    Preprocessing: float images ``[B, H, W, 3]`` on [0, 1] (1 channel is
    repeated to 3) -> resize to 299x299 **bilinear, antialias off** (the
    pytorch-fid / TF-FID convention) -> scale to [-1, 1] (``2x - 1``,
    Inception's preprocessing).

    These are Keras' ImageNet weights, **not** the TF-FID graph
    ``pt_inception-2015-12-05`` of pytorch-fid: absolute FID differs from
    papers' numbers by a model-dependent offset; rankings within our own
    tables are consistent.

    Args:
      weights: ``"imagenet"`` (Keras' file, downloaded into
        ``$KERAS_HOME/models``; offline, :class:`WeightsUnavailableError` says
        how to provide it), a local ``.h5`` path in the Keras InceptionV3
        no-top layout (e.g. converted FID-Inception weights), or ``None``
        (random weights, for tests). Loaded by
        :func:`tfi2i.pretrained.build_application`.
      batch_size: images per forward pass.

    Calling the object on ``[B, H, W, C]`` images returns float32 ``[B, 2048]``.
    """

    dim = 2048

    def __init__(self, weights="imagenet", batch_size: int = 32):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.weights = weights
        size = INCEPTION_INPUT_SIZE
        self.model = build_application(
            "InceptionV3",
            weights,
            how_to_pass=f"InceptionFeatures(weights='/path/to/{INCEPTION_WEIGHTS_FILE}')",
            input_shape=(size, size, 3),
            pooling="avg",
        )
        self._forward = tf.function(
            self._forward_impl,
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
        )

    @staticmethod
    def preprocess(images) -> tf.Tensor:
        """[0, 1] images ``[B, H, W, 3]`` -> 299x299 bilinear (no antialias) on [-1, 1]."""
        x = tf.image.resize(
            tf.cast(images, tf.float32),
            [INCEPTION_INPUT_SIZE, INCEPTION_INPUT_SIZE],
            method="bilinear",
            antialias=False,
        )
        return x * 2.0 - 1.0

    def _forward_impl(self, images):
        return self.model(self.preprocess(images), training=False)

    def __call__(self, images) -> np.ndarray:
        x = tf.convert_to_tensor(images)
        if not x.dtype.is_floating:
            raise TypeError(
                f"InceptionFeatures: got dtype {x.dtype.name}; expected float images "
                "on the [0, 1] scale (convert with tfi2i.metrics.from_uint8)"
            )
        if x.shape.rank != 4 or x.shape[-1] not in (1, 3):
            raise ValueError(
                f"InceptionFeatures: expected [B, H, W, 3] (or 1-channel) images, got {x.shape}"
            )
        x = tf.cast(x, tf.float32)
        if x.shape[-1] == 1:
            x = tf.repeat(x, 3, axis=-1)
        out = [
            self._forward(x[i : i + self.batch_size]).numpy()
            for i in range(0, int(x.shape[0]), self.batch_size)
        ]
        if not out:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate(out, axis=0).astype(np.float32, copy=False)


# --------------------------------------------------------------------------- #
# FID
# --------------------------------------------------------------------------- #
def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (FID).

    ``||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2))``, computed
    as in pytorch-fid: :func:`scipy.linalg.sqrtm`; if the result is not finite
    (singular product) ``eps * I`` is added to both covariances (with a
    warning); an imaginary part from rounding is dropped, unless its diagonal
    exceeds 1e-3 (``ValueError``). Exactly equal statistics return 0.0 without
    the O(D^3) square root (pytorch-fid would return rounding noise).

    Args:
      mu1, mu2: means ``[D]``.
      sigma1, sigma2: covariances ``[D, D]``.
      eps: diagonal offset for the singular case.

    Returns:
      The distance as a Python float (>= 0 up to rounding).
    """
    from scipy import linalg  # imported here: only FID needs SciPy

    mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape:
        raise ValueError(f"frechet_distance: means differ in shape: {mu1.shape} vs {mu2.shape}")
    if sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"frechet_distance: covariances must be [D, D] with D = {mu1.size}, got "
            f"{sigma1.shape} and {sigma2.shape}"
        )
    if np.array_equal(mu1, mu2) and np.array_equal(sigma1, sigma2):
        return 0.0
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        warnings.warn(
            f"frechet_distance: singular product; adding {eps} to the diagonal of the "
            "covariance estimates",
            RuntimeWarning,
        )
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(
                f"frechet_distance: imaginary component {np.max(np.abs(covmean.imag))}"
            )
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


class FeatureStats:
    """Streaming mean and covariance of feature vectors (float64).

    Keeps ``N``, the sum and the sum of outer products of the features (after
    subtracting the first batch's mean, for numerical stability): memory is
    ``O(D^2)`` (32 MB for D = 2048), flat in the number of images.

    ``update(features [N, D])``; ``mean() -> [D]``; ``cov() -> [D, D]``
    (unbiased, divided by ``N - 1``, equal to ``np.cov(all, rowvar=False)``);
    ``num``: number of feature vectors seen.
    """

    def __init__(self):
        self._n = 0
        self._shift = None
        self._sum = None
        self._outer = None

    @property
    def num(self) -> int:
        return self._n

    @property
    def dim(self) -> int | None:
        return None if self._sum is None else int(self._sum.shape[0])

    def update(self, features) -> None:
        x = np.asarray(features, np.float64)
        if x.ndim != 2:
            raise ValueError(f"FeatureStats.update: expected [N, D] features, got {x.shape}")
        if x.shape[0] == 0:
            return
        if self._sum is None:
            self._shift = x.mean(axis=0)
            self._sum = np.zeros(x.shape[1])
            self._outer = np.zeros((x.shape[1], x.shape[1]))
        elif x.shape[1] != self._sum.shape[0]:
            raise ValueError(
                f"FeatureStats.update: feature dim {x.shape[1]} != {self._sum.shape[0]}"
            )
        x = x - self._shift
        self._n += x.shape[0]
        self._sum += x.sum(axis=0)
        self._outer += x.T @ x

    def mean(self) -> np.ndarray:
        """Mean feature ``[D]`` (float64); needs at least one update."""
        if self._n == 0:
            raise ValueError("FeatureStats.mean: no features seen")
        return self._shift + self._sum / self._n

    def cov(self) -> np.ndarray:
        """Unbiased covariance ``[D, D]`` (float64, ``N - 1``); needs ``N >= 2``."""
        if self._n < 2:
            raise ValueError(f"FeatureStats.cov: needs at least 2 features, got {self._n}")
        m = self._sum / self._n
        return (self._outer - self._n * np.outer(m, m)) / (self._n - 1)


# --------------------------------------------------------------------------- #
# KID
# --------------------------------------------------------------------------- #
_FULL_GRAM_MAX = 2048
"""Up to this many features per set, the full kernel matrices are computed once
(3 x N^2 float64) and subsets index into them; above it, per subset."""


def _poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    d = x.shape[1]
    return (x @ y.T / d + 1.0) ** 3


def kid(
    feats_a,
    feats_b,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int | None = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018) -> ``(mean, std)``.

    For each of ``num_subsets`` subsets, ``m`` features are drawn without
    replacement from each set and the unbiased MMD^2 estimate with the cubic
    polynomial kernel ``k(x, y) = (x.y / d + 1)**3`` is computed:
    ``sum_{i!=j} k(a_i, a_j) / (m(m-1)) + sum_{i!=j} k(b_i, b_j) / (m(m-1))
    - 2 sum_{i,j} k(a_i, b_j) / m^2`` (as in the reference implementations,
    e.g. torch-fidelity / clean-fid). Returns the mean and the standard
    deviation (``ddof=0``) over subsets. Computed in float64.

    For independent samples of one distribution the estimate is 0 in
    expectation (either sign). For two *identical* feature sets it is not
    exactly 0 but ``-2 (mean_i k(a_i, a_i) - mean_{i!=j} k(a_i, a_j)) / m``
    (slightly negative, O(1/m)), because the cross term includes the pairs
    ``(a_i, a_i)``; this is the behaviour of the reference implementations.

    Args:
      feats_a, feats_b: features ``[N_a, D]`` and ``[N_b, D]``.
      num_subsets: number of random subsets.
      subset_size: ``m``; clamped to ``min(N_a, N_b)`` (must end up >= 2).
      seed: seed of the subset sampling (``None``: nondeterministic).
    """
    a = np.asarray(feats_a, np.float64)
    b = np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"kid: expected [N, D] features with equal D, got {a.shape}, {b.shape}")
    m = min(int(subset_size), a.shape[0], b.shape[0])
    if m < 2:
        raise ValueError(f"kid: needs subsets of at least 2 features, got {m}")
    if num_subsets < 1:
        raise ValueError(f"kid: num_subsets must be >= 1, got {num_subsets}")
    rng = np.random.default_rng(seed)
    full = max(a.shape[0], b.shape[0]) <= _FULL_GRAM_MAX
    if full:
        k_aa, k_bb, k_ab = _poly_kernel(a, a), _poly_kernel(b, b), _poly_kernel(a, b)
    mmds = np.empty(num_subsets)
    for s in range(num_subsets):
        ia = rng.choice(a.shape[0], m, replace=False)
        ib = rng.choice(b.shape[0], m, replace=False)
        if full:
            kxx, kyy, kxy = k_aa[np.ix_(ia, ia)], k_bb[np.ix_(ib, ib)], k_ab[np.ix_(ia, ib)]
        else:
            x, y = a[ia], b[ib]
            kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
        within = kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)
        mmds[s] = within / (m * (m - 1)) - 2.0 * kxy.sum() / (m * m)
    return float(mmds.mean()), float(mmds.std())


# --------------------------------------------------------------------------- #
# Accumulator
# --------------------------------------------------------------------------- #
class FIDAccumulator:
    """FID (and KID) between predictions and targets, streamed over batches.

    Args:
      features: callable ``images [B, H, W, 3] float on [0, 1] -> [B, D]``;
        default ``InceptionFeatures()`` (ImageNet weights, see its docstring
        for the preprocessing and why absolute values differ from papers').
      compute_kid: keep the features (float32, 8 KB per image per set for
        D = 2048) so that :meth:`result` also returns KID.
      kid_num_subsets, kid_subset_size: KID subsets; the subset size used is
        ``min(kid_subset_size, N)``.
      seed: seed of the KID subset sampling.

    ``update(pred_batch, target_batch)`` takes float32 ``[B, H, W, 3]`` on
    [0, 1]; ``result()`` returns ``{"fid": float}`` plus ``"kid"`` and
    ``"kid_std"`` when ``compute_kid``. Needs at least 2 images per set.
    """

    def __init__(
        self,
        features: Callable | None = None,
        *,
        compute_kid: bool = True,
        kid_num_subsets: int = 100,
        kid_subset_size: int = 1000,
        seed: int | None = 0,
    ):
        self.features = InceptionFeatures() if features is None else features
        self.compute_kid = bool(compute_kid)
        self.kid_num_subsets = int(kid_num_subsets)
        self.kid_subset_size = int(kid_subset_size)
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        self.pred_stats = FeatureStats()
        self.target_stats = FeatureStats()
        self._pred_feats: list[np.ndarray] = []
        self._target_feats: list[np.ndarray] = []

    @property
    def num_images(self) -> int:
        """Number of prediction images seen."""
        return self.pred_stats.num

    def _extract(self, images, which: str) -> np.ndarray:
        x = tf.convert_to_tensor(images)
        if not x.dtype.is_floating:
            raise TypeError(
                f"FIDAccumulator.update: {which} has dtype {x.dtype.name}; expected float "
                "images on the [0, 1] scale"
            )
        if x.shape.rank != 4:
            raise ValueError(
                f"FIDAccumulator.update: {which} must have shape [B, H, W, C], got {x.shape}"
            )
        feats = np.asarray(self.features(tf.cast(x, tf.float32)), np.float32)
        if feats.ndim != 2 or feats.shape[0] != x.shape[0]:
            raise ValueError(
                f"features returned shape {feats.shape} for a batch of {x.shape[0]} images"
            )
        return feats

    def update(self, pred_batch, target_batch) -> None:
        """Add a batch of predictions and targets (float ``[B, H, W, 3]``, [0, 1])."""
        fp = self._extract(pred_batch, "pred_batch")
        ft = self._extract(target_batch, "target_batch")
        self.pred_stats.update(fp)
        self.target_stats.update(ft)
        if self.compute_kid:
            self._pred_feats.append(fp)
            self._target_feats.append(ft)

    def result(self) -> dict[str, float]:
        """``{"fid": ..., "kid": ..., "kid_std": ...}`` over everything seen so far."""
        if self.pred_stats.num < 2 or self.target_stats.num < 2:
            raise ValueError(
                "FIDAccumulator.result: needs at least 2 images per set, got "
                f"{self.pred_stats.num} predictions and {self.target_stats.num} targets"
            )
        out = {
            "fid": frechet_distance(
                self.target_stats.mean(),
                self.target_stats.cov(),
                self.pred_stats.mean(),
                self.pred_stats.cov(),
            )
        }
        if self.compute_kid:
            fp = np.concatenate(self._pred_feats)
            ft = np.concatenate(self._target_feats)
            out["kid"], out["kid_std"] = kid(
                ft,
                fp,
                num_subsets=self.kid_num_subsets,
                subset_size=min(self.kid_subset_size, fp.shape[0], ft.shape[0]),
                seed=self.seed,
            )
        return out
