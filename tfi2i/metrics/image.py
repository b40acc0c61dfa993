"""Full-reference image-quality metrics as pure TensorFlow functions.

Conventions (every function in this module):

* Inputs are floating-point images of shape ``[B, H, W, C]`` with values on the
  **[0, 1] scale** (use :func:`from_uint8` / :func:`from_minus1_1` /
  :func:`to_unit` to get there). Integer tensors are rejected rather than
  silently interpreted, because ``uint8`` 0..255 and float 0..1 differ by 255x.
* Each metric returns one value per image: a float32 tensor of shape ``[B]``.
  Averaging over a data set is the caller's job (see
  :class:`tfi2i.evaluate.MetricAccumulator`).

PSNR and SSIM delegate to TensorFlow's own, well-tested implementations
(:func:`tf.image.psnr`, :func:`tf.image.ssim`) instead of re-implementing them:

* ``psnr(a, b, max_val)`` equals scikit-image's
  ``skimage.metrics.peak_signal_noise_ratio(b, a, data_range=max_val)``
  (``10 * log10(max_val**2 / MSE)``, in dB; ``+inf`` for identical images).
* ``ssim(a, b, max_val)`` is SSIM of Wang et al. 2004 with an 11x11 Gaussian
  window (sigma 1.5), ``k1 = 0.01``, ``k2 = 0.03``, population (not sample)
  covariance, averaged over the "valid" window positions and then over
  channels. It equals scikit-image's
  ``structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=max_val, channel_axis=-1)``
  (checked to 1e-3 in ``tests/metrics/test_image_metrics.py``). Images must be
  at least 11x11 pixels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import tensorflow as tf

from tfi2i.metrics.checks import check_image_batch, prepare_pair  # noqa: F401 - check_image_batch re-exported
from tfi2i.metrics.lpips import LPIPS
from tfi2i.metrics.vif import vifp

__all__ = [
    "l1",
    "mse",
    "psnr",
    "ssim",
    "from_uint8",
    "from_minus1_1",
    "to_unit",
    "Metric",
    "METRICS",
    "SSIM_FILTER_SIZE",
    "SSIM_FILTER_SIGMA",
    "SSIM_K1",
    "SSIM_K2",
]

# Wang et al. 2004 constants, the same defaults as tf.image.ssim and skimage.
SSIM_FILTER_SIZE = 11
SSIM_FILTER_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


# --------------------------------------------------------------------------- #
# Range conversion helpers
# --------------------------------------------------------------------------- #
def from_uint8(x) -> tf.Tensor:
    """Map an integer image in ``0..255`` to float32 on the [0, 1] scale (``x / 255``)."""
    x = tf.convert_to_tensor(x)
    return tf.cast(x, tf.float32) / 255.0


def from_minus1_1(x) -> tf.Tensor:
    """Map a float image on the [-1, 1] scale (e.g. a ``tanh`` generator output)
    to float32 on the [0, 1] scale: ``(x + 1) / 2``, clipped to [0, 1] so the
    ``max_val=1`` assumption of PSNR/SSIM holds."""
    x = tf.cast(tf.convert_to_tensor(x), tf.float32)
    return tf.clip_by_value((x + 1.0) * 0.5, 0.0, 1.0)


def to_unit(x, value_range: str = "auto") -> tf.Tensor:
    """Convert an image to float32 on the [0, 1] scale.

    ``value_range``:
      * ``"auto"`` (default): ``uint8`` -> ``/255``, ``uint16`` -> ``/65535``;
        floating inputs are *not* guessed and raise ``ValueError`` (say
        ``"unit"`` or ``"minus1_1"``).
      * ``"uint8"``: values in 0..255 (any dtype) -> ``/255``.
      * ``"minus1_1"``: values in [-1, 1] -> :func:`from_minus1_1`.
      * ``"unit"``: already [0, 1]; only cast to float32.
    """
    x = tf.convert_to_tensor(x)
    if value_range == "auto":
        if x.dtype == tf.uint8:
            return from_uint8(x)
        if x.dtype == tf.uint16:
            return tf.cast(x, tf.float32) / 65535.0
        raise ValueError(
            f"to_unit: cannot infer the value range of a {x.dtype.name} tensor; "
            "pass value_range='unit', 'minus1_1' or 'uint8'"
        )
    if value_range == "uint8":
        return from_uint8(x)
    if value_range == "minus1_1":
        return from_minus1_1(x)
    if value_range == "unit":
        return tf.cast(x, tf.float32)
    raise ValueError(
        f"to_unit: unknown value_range {value_range!r} "
        "(expected 'auto', 'uint8', 'minus1_1' or 'unit')"
    )


# --------------------------------------------------------------------------- #
# Metrics
# --------------------------------------------------------------------------- #
# `check_image_batch` and `_prepare` live in the leaf module `tfi2i.metrics.checks` (imported above, so
# `from tfi2i.metrics.image import check_image_batch` keeps working) to keep vif / lpips free of this module.
_prepare = prepare_pair


def l1(a, b, scale: float = 1.0) -> tf.Tensor:
    """Mean absolute error per image, ``mean_{H,W,C} |a - b| * scale`` -> ``[B]``.

    Inputs are on the [0, 1] scale. With the default ``scale=1.0`` the result is
    on the [0, 1] scale; ``scale=255.0`` reports it on the 0-255 scale, as the
    GRIT paper does.
    """
    a, b = _prepare(a, b, "l1")
    return tf.reduce_mean(tf.abs(a - b), axis=[1, 2, 3]) * scale


def mse(a, b, scale: float = 1.0) -> tf.Tensor:
    """Mean squared error per image, ``mean_{H,W,C} ((a - b) * scale)**2`` -> ``[B]``.

    Inputs are on the [0, 1] scale. Default ``scale=1.0`` gives the MSE on the
    [0, 1] scale; ``scale=255.0`` gives it on the 0-255 scale (``255**2`` times
    larger).
    """
    a, b = _prepare(a, b, "mse")
    d = (a - b) * scale
    return tf.reduce_mean(tf.square(d), axis=[1, 2, 3])


def psnr(a, b, max_val: float = 1.0) -> tf.Tensor:
    """Peak signal-to-noise ratio per image in dB -> ``[B]`` (higher is better).

    ``10 * log10(max_val**2 / MSE)`` via :func:`tf.image.psnr`; ``max_val`` is the
    dynamic range of the inputs (1.0 for [0, 1] images). Identical images give
    ``+inf``. Equals ``skimage.metrics.peak_signal_noise_ratio(..., data_range=max_val)``.
    """
    a, b = _prepare(a, b, "psnr")
    return tf.image.psnr(a, b, max_val=max_val)


def ssim(a, b, max_val: float = 1.0) -> tf.Tensor:
    """Structural similarity per image -> ``[B]`` (higher is better, 1 = identical).

    :func:`tf.image.ssim` with the Wang et al. 2004 settings (11x11 Gaussian
    window, sigma 1.5, k1 0.01, k2 0.03), mean over valid window positions and
    channels. Equals ``skimage.metrics.structural_similarity(a, b,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=max_val, channel_axis=-1)``. H and W must be >= 11.
    """
    a, b = _prepare(a, b, "ssim")
    if a.shape.rank == 4 and a.shape[1] is not None and a.shape[2] is not None:
        if a.shape[1] < SSIM_FILTER_SIZE or a.shape[2] < SSIM_FILTER_SIZE:
            raise ValueError(
                f"ssim: images must be at least {SSIM_FILTER_SIZE}x{SSIM_FILTER_SIZE}, "
                f"got {a.shape[1]}x{a.shape[2]}"
            )
    return tf.image.ssim(
        a,
        b,
        max_val=max_val,
        filter_size=SSIM_FILTER_SIZE,
        filter_sigma=SSIM_FILTER_SIGMA,
        k1=SSIM_K1,
        k2=SSIM_K2,
    )


# --------------------------------------------------------------------------- #
# Registry
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Metric:
    """A registered metric: ``fn(a, b) -> [B]`` on [0, 1] images, plus report metadata."""

    name: str
    fn: Callable[..., tf.Tensor] | None
    higher_is_better: bool
    label: str
    unit: str = ""
    kind: str = "pair"  # "pair": fn(pred, target) -> [B]; "set": a statistic of all images

    @property
    def direction(self) -> str:
        """``"higher"`` or ``"lower"`` (which is better)."""
        return "higher" if self.higher_is_better else "lower"

    @property
    def arrow(self) -> str:
        """``"↑"`` if higher is better, else ``"↓"`` (for report headers)."""
        return "↑" if self.higher_is_better else "↓"

    def __call__(self, a, b) -> tf.Tensor:
        return self.fn(a, b)


def _l1_255(a, b):
    return l1(a, b, scale=255.0)


def _vif(pred, target):
    return vifp(target, pred)  # VIF is not symmetric: the target is the reference


def _lpips(pred, target):
    return _lpips_model()(pred, target)


@functools.lru_cache(maxsize=1)
def _lpips_model():
    return LPIPS(net="alex")


METRICS: dict[str, Metric] = {
    "l1": Metric("l1", l1, higher_is_better=False, label="L1"),
    "l1_255": Metric("l1_255", _l1_255, higher_is_better=False, label="L1 (0-255)"),
    "mse": Metric("mse", mse, higher_is_better=False, label="MSE"),
    "psnr": Metric("psnr", psnr, higher_is_better=True, label="PSNR", unit="dB"),
    "ssim": Metric("ssim", ssim, higher_is_better=True, label="SSIM"),
    "vif": Metric("vif", _vif, higher_is_better=True, label="VIF"),
    "lpips": Metric("lpips", _lpips, higher_is_better=False, label="LPIPS"),
    # set metrics: computed from the statistics of all predictions vs all targets
    "fid": Metric("fid", None, higher_is_better=False, label="FID", kind="set"),
    "kid": Metric("kid", None, higher_is_better=False, label="KID", kind="set"),
}
"""Registry of the metrics reports know about, in report column order. All on
the [0, 1] image scale (PSNR/SSIM with ``max_val=1``) except ``l1_255`` (GRIT's
L1 on 0-255). ``kind="pair"`` metrics score each (prediction, target) pair;
``kind="set"`` metrics (FID, KID: InceptionV3 features, see
:mod:`tfi2i.metrics.fid`) compare the set of predictions with the set of
targets. VIF is VIFp (:mod:`tfi2i.metrics.vif`) with the target as reference;
LPIPS needs the optional ``lpips`` extra (:mod:`tfi2i.metrics.lpips`)."""
