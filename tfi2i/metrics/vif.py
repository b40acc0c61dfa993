"""Pixel-domain Visual Information Fidelity (VIFp) as a TensorFlow function.

Variant: the **pixel-domain, multi-scale VIF** ("VIFp") of Sheikh & Bovik,
"Image information and visual quality", IEEE TIP 15(2), 2006, exactly as in
the widely used reference implementation (the authors' MATLAB
``vifp_mscale.m``; ``sewar.full_ref.vifp`` is a faithful NumPy port of it), not
the wavelet-domain (steerable-pyramid) VIF of the paper's main text:

* 4 scales ``s = 1..4``; at scale ``s`` a Gaussian window of size
  ``N = 2**(4 - s + 1) + 1`` (17, 9, 5, 3) with ``sigma = N / 5``;
* before scales 2..4 both images are filtered with that scale's window
  ('valid') and subsampled by 2 (``[::2, ::2]``);
* local means / variances / covariance with the same window, 'valid' filtering;
* the GSM-channel model ``b = g * a + v`` with the same clamping rules as the
  reference (``eps = 1e-10``), HVS noise variance ``sigma_nsq = 2``;
* ``VIFp = sum_s num_s / sum_s den_s`` with
  ``num = sum log10(1 + g**2 sigma_a**2 / (sigma_v**2 + sigma_nsq))`` and
  ``den = sum log10(1 + sigma_a**2 / sigma_nsq)``.

Conventions:

* ``a`` is the **reference** (ground truth) and ``b`` the **distorted** image
  (prediction). VIF is *not* symmetric: ``vifp(a, b) != vifp(b, a)``.
* Inputs are float images ``[B, H, W, C]`` on the [0, ``max_val``] scale (the
  package convention is [0, 1]). ``sigma_nsq = 2`` is defined for 8-bit pixel
  values, so the images are rescaled by ``255 / max_val`` internally; the
  result therefore equals the reference run on 0..255 images.
* Colour: VIFp is computed **per channel** (each channel a grey image) and the
  per-channel values are **averaged** (arithmetic mean of the per-channel
  ``num / den`` ratios), as ``sewar.full_ref.vifp`` does for RGB. For the
  luminance-only variant of the original grey-scale code, convert first
  (e.g. :func:`tf.image.rgb_to_grayscale`) and pass a 1-channel image.
* Returns float32 ``[B]``; 1 for identical images (up to float error), lower
  for stronger distortions, 0 when the distorted image carries no information
  about the reference; it can exceed 1 for contrast-enhanced images. A
  constant reference channel gives 0/0 = NaN (as in the reference code).
* Images must be at least :data:`VIFP_MIN_SIZE` (41) pixels in each spatial
  dimension so that all four scales have at least one valid window position.
* Computation is in float64 (variances as ``E[x^2] - E[x]^2`` on the 0..255
  scale need it to match the reference to 1e-6); the Gaussian windows are
  applied as two separable 1-D convolutions. Called eagerly, each image runs
  through an XLA-compiled graph (compiled once per image size, ~3 s on CPU;
  then ~15 ms per 256x256 RGB image on 2 CPU cores); inside a caller's
  :func:`tf.function` it is traced into that graph instead.
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from tfi2i.metrics.checks import prepare_pair

__all__ = ["vifp", "VIFP_SIGMA_NSQ", "VIFP_NUM_SCALES", "VIFP_MIN_SIZE"]

VIFP_SIGMA_NSQ = 2.0
"""HVS noise variance of the reference implementation (8-bit pixel scale)."""
VIFP_NUM_SCALES = 4
VIFP_MIN_SIZE = 41
"""Smallest H and W for which all 4 scales have a valid window position."""

_EPS = 1e-10


def _window_1d(scale: int) -> np.ndarray:
    """1-D factor of the reference ``fspecial('gaussian', N, N/5)`` window.

    The 2-D window is ``outer(w, w)`` exactly: MATLAB's ``fspecial`` zeroes
    values below ``eps * max``, but the smallest corner value of these windows
    is ~4e-3 of the maximum, so that truncation never applies.
    """
    n = 2 ** (VIFP_NUM_SCALES - scale + 1) + 1
    sigma = n / 5.0
    x = np.arange(n, dtype=np.float64) - (n // 2)
    w = np.exp(-(x**2) / (2.0 * sigma**2))
    return w / w.sum()


_WINDOWS = {s: _window_1d(s) for s in range(1, VIFP_NUM_SCALES + 1)}


def _filter(x: tf.Tensor, w: np.ndarray, stride: int = 1) -> tf.Tensor:
    """Separable 'valid' Gaussian filtering of ``x`` ``[N, H, W, 1]`` (float64),
    optionally keeping every ``stride``-th output (= ``valid[::2, ::2]``)."""
    k = tf.constant(w, tf.float64)
    x = tf.nn.conv2d(x, tf.reshape(k, [-1, 1, 1, 1]), [1, stride, 1, 1], "VALID")
    return tf.nn.conv2d(x, tf.reshape(k, [1, -1, 1, 1]), [1, 1, stride, 1], "VALID")


def _vifp_num_den(ref: tf.Tensor, dist: tf.Tensor, sigma_nsq: float):
    """Per-image ``(num, den)`` summed over scales; inputs ``[N, H, W, 1]`` float64."""
    num = tf.zeros([tf.shape(ref)[0]], tf.float64)
    den = tf.zeros([tf.shape(ref)[0]], tf.float64)
    eps = tf.constant(_EPS, tf.float64)
    zero = tf.zeros([], tf.float64)
    log10 = tf.math.log(tf.constant(10.0, tf.float64))
    for scale in range(1, VIFP_NUM_SCALES + 1):
        w = _WINDOWS[scale]
        if scale > 1:
            ref = _filter(ref, w, stride=2)
            dist = _filter(dist, w, stride=2)
        # One filtering call for the five local moments.
        stack = tf.concat([ref, dist, ref * ref, dist * dist, ref * dist], axis=0)
        mu1, mu2, e11, e22, e12 = tf.split(_filter(stack, w), 5, axis=0)
        sigma1_sq = tf.maximum(e11 - mu1 * mu1, zero)
        sigma2_sq = tf.maximum(e22 - mu2 * mu2, zero)
        sigma12 = e12 - mu1 * mu2

        # GSM channel b = g * a + v, with the reference's clamping order.
        g = sigma12 / (sigma1_sq + eps)
        sv_sq = sigma2_sq - g * sigma12

        small1 = sigma1_sq < eps
        g = tf.where(small1, zero, g)
        sv_sq = tf.where(small1, sigma2_sq, sv_sq)
        sigma1_sq = tf.where(small1, zero, sigma1_sq)

        small2 = sigma2_sq < eps
        g = tf.where(small2, zero, g)
        sv_sq = tf.where(small2, zero, sv_sq)

        neg = g < 0
        sv_sq = tf.where(neg, sigma2_sq, sv_sq)
        g = tf.where(neg, zero, g)
        sv_sq = tf.where(sv_sq <= eps, eps, sv_sq)

        num += tf.reduce_sum(
            tf.math.log1p(g * g * sigma1_sq / (sv_sq + sigma_nsq)) / log10, axis=[1, 2, 3]
        )
        den += tf.reduce_sum(tf.math.log1p(sigma1_sq / sigma_nsq) / log10, axis=[1, 2, 3])
    return num, den


def vifp(a, b, max_val: float = 1.0, sigma_nsq: float = VIFP_SIGMA_NSQ) -> tf.Tensor:
    """Pixel-domain VIF (VIFp, Sheikh & Bovik 2006) per image -> ``[B]`` (higher is better).

    The 4-scale pixel-domain reference version (MATLAB ``vifp_mscale``, equal
    to ``sewar.full_ref.vifp``); see the module docstring for the details.

    Args:
      a: **reference** (ground-truth) images, float ``[B, H, W, C]`` on the
        [0, ``max_val``] scale; H, W >= 41.
      b: **distorted** images (predictions), same shape and scale as ``a``.
      max_val: dynamic range of the inputs (1.0 for [0, 1] images). Images are
        rescaled to 0..255 internally because ``sigma_nsq`` is defined there.
      sigma_nsq: HVS noise variance on the 0..255 scale (reference: 2).

    Returns:
      float32 ``[B]``: the mean over channels of the per-channel VIFp. 1 for
      ``a == b``; lower for stronger distortions; NaN for a constant reference.
    """
    a, b = prepare_pair(a, b, "vifp", dtype=tf.float64)
    h, w = a.shape[1], a.shape[2]
    if h is not None and w is not None and (h < VIFP_MIN_SIZE or w < VIFP_MIN_SIZE):
        raise ValueError(
            f"vifp: images must be at least {VIFP_MIN_SIZE}x{VIFP_MIN_SIZE} "
            f"(4 scales of 'valid' Gaussian filtering), got {h}x{w}"
        )

    scale = 255.0 / float(max_val)
    a = a * scale
    b = b * scale
    shape = tf.shape(a)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    # [B, H, W, C] -> [B, C, H, W, 1]: every channel is a grey image.
    a = tf.expand_dims(tf.transpose(a, [0, 3, 1, 2]), -1)
    b = tf.expand_dims(tf.transpose(b, [0, 3, 1, 2]), -1)
    if tf.executing_eagerly():
        # One compiled call per image ([C, H, W, 1]), so XLA compiles once per
        # image size rather than once per batch size.
        ratios = [_ratio_per_channel(a[i], b[i], float(sigma_nsq)) for i in range(int(batch))]
        per_channel = tf.stack(ratios) if ratios else tf.zeros([0, channels], tf.float64)
    else:  # inside a caller's tf.function: trace into its graph.
        flat_a = tf.reshape(a, [batch * channels, height, width, 1])
        flat_b = tf.reshape(b, [batch * channels, height, width, 1])
        num, den = _vifp_num_den(flat_a, flat_b, float(sigma_nsq))
        per_channel = tf.reshape(num / den, [batch, channels])
    return tf.cast(tf.reduce_mean(per_channel, axis=1), tf.float32)


_compiled = {
    True: tf.function(_vifp_num_den, jit_compile=True),
    False: tf.function(_vifp_num_den),
}
_use_xla = [True]


def _ratio_per_channel(ref: tf.Tensor, dist: tf.Tensor, sigma_nsq: float) -> tf.Tensor:
    """``num / den`` per channel for one image given as ``[C, H, W, 1]`` float64.

    Uses an XLA-compiled graph (about 10x faster than TF's float64
    convolutions on CPU); falls back to a plain graph where XLA is unavailable.
    """
    if _use_xla[0]:
        try:
            num, den = _compiled[True](ref, dist, sigma_nsq)
            return num / den
        except (tf.errors.UnimplementedError, tf.errors.NotFoundError,
                tf.errors.InvalidArgumentError) as err:  # pragma: no cover
            warnings.warn(f"vifp: XLA unavailable ({type(err).__name__}); using a plain graph")
            _use_xla[0] = False
    num, den = _compiled[False](ref, dist, sigma_nsq)
    return num / den
