"""Sample diversity of a stochastic generator: per-pixel standard deviation maps.

GRIT (Fig. 7, Sec. 4.2.2) visualises "the standard deviation of each pixel over
20 different outputs for the same example". This module computes that map and
writes it as a colour heat-map.

Conventions:

* ``samples`` are K outputs of a stochastic generator for the *same* input,
  float ``[K, H, W, C]`` on the **[0, 1] scale** (see
  :func:`tfi2i.metrics.from_minus1_1` for ``tanh`` outputs). Integer arrays are
  rejected, as in :mod:`tfi2i.metrics.image`.
* The standard deviation is the **population** standard deviation over the K
  samples (``ddof=0``, i.e. divide by K, like ``np.std``), computed per pixel
  and per channel and then **averaged over the C channels** (the mean of the
  per-channel standard deviations; not the standard deviation of a grey image).
  The map has the units of the image, so on the [0, 1] scale its values lie in
  [0, 0.5].
* Computation is NumPy in float64; results are float32 maps / Python floats.
"""

from __future__ import annotations

import io
import os
from typing import Callable

import numpy as np

from tfi2i.metrics.checks import check_image_batch

__all__ = [
    "per_pixel_std",
    "mean_std",
    "sample_diversity",
    "save_std_heatmap",
    "GRIT_NUM_SAMPLES",
]

#: Number of samples per input GRIT uses for its standard-deviation maps (Fig. 7).
GRIT_NUM_SAMPLES = 20

_VALUE_RANGES = ("unit", "minus1_1")


def _as_float_array(x, name: str) -> np.ndarray:
    return check_image_batch(x, name, rank=None).astype(np.float64, copy=False)


def per_pixel_std(samples) -> np.ndarray:
    """Per-pixel standard deviation over K samples of the same input.

    Args:
      samples: float array ``[K, H, W, C]`` on the [0, 1] scale: K generator
        outputs for one input (GRIT Fig. 7 uses ``K = 20``). NumPy arrays and
        TF tensors are accepted.

    Returns:
      float32 ``[H, W]``: ``mean_c std_k(samples[k, y, x, c])`` with the
      population standard deviation (``ddof=0``) over the K samples, averaged
      over channels. Values lie in ``[0, 0.5]`` for inputs on [0, 1]; a
      deterministic generator (all K samples equal) gives exactly 0.

    Raises:
      TypeError: ``samples`` is not floating point.
      ValueError: ``samples`` is not 4-D or ``K < 2``.
    """
    arr = _as_float_array(samples, "per_pixel_std")
    if arr.ndim != 4:
        raise ValueError(f"per_pixel_std: samples must have shape [K, H, W, C], got {arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(f"per_pixel_std: need at least 2 samples, got K={arr.shape[0]}")
    return arr.std(axis=0, ddof=0).mean(axis=-1).astype(np.float32)


def mean_std(samples) -> float:
    """Mean over all pixels of :func:`per_pixel_std`: one diversity number.

    Args:
      samples: float ``[K, H, W, C]`` on the [0, 1] scale.

    Returns:
      The spatial mean of the ``[H, W]`` standard-deviation map (a Python float
      on the [0, 1] image scale; 0 for a deterministic generator).
    """
    return float(np.mean(per_pixel_std(samples), dtype=np.float64))


def sample_diversity(
    generator_fn: Callable,
    x,
    k: int = GRIT_NUM_SAMPLES,
    value_range: str = "unit",
) -> np.ndarray:
    """Calls a stochastic ``generator_fn(x)`` K times and returns the std maps.

    ``generator_fn`` must draw fresh noise on every call, otherwise the result is
    0 everywhere. Typical choices:

    * A model with a noise / style input (GRIT's spatial noise): a closure that
      samples new noise each call, e.g.
      ``lambda x: G([x, tf.random.normal(noise_shape)], training=False)``.
    * A pix2pix U-Net, whose only noise is dropout (``Dropout(0.5)`` in the
      decoder): call it with ``training=True`` so dropout is active. Caution:
      in Keras ``training=True`` also makes ``BatchNormalization`` use batch
      statistics **and update its moving mean/variance**. To sample dropout
      noise without touching the model's statistics, freeze it first::

          G.trainable = False            # BatchNorm now runs in inference mode
          std = sample_diversity(lambda x: G(x, training=True), x, k=20,
                                 value_range="minus1_1")

      (Keras runs a ``BatchNormalization`` layer whose ``trainable`` is False in
      inference mode even when ``training=True``; ``Dropout`` ignores
      ``trainable``.) The pix2pix reference's default test mode instead keeps
      batch statistics on (no ``model.eval()``); pick one and say which.

    Args:
      generator_fn: callable mapping ``x`` (``[B, H, W, C_in]``) to outputs
        ``[B, H, W, C]`` (NumPy or TF), stochastic across calls.
      x: the input batch ``[B, H, W, C_in]``; each of its B images gets its own
        map. For one input pass ``x[None]`` / ``x[:1]`` and take ``[0]``.
      k: number of samples per input (``>= 2``; GRIT uses 20).
      value_range: range of the generator's outputs: ``"unit"`` ([0, 1], used
        as is) or ``"minus1_1"`` (``tanh`` outputs; mapped to [0, 1] by
        ``(y + 1) / 2`` clipped to [0, 1], as :func:`tfi2i.metrics.from_minus1_1`).

    Returns:
      float32 ``[B, H, W]``: :func:`per_pixel_std` over the K outputs, per input
      image, on the [0, 1] scale.
    """
    if k < 2:
        raise ValueError(f"sample_diversity: k must be >= 2, got {k}")
    if value_range not in _VALUE_RANGES:
        raise ValueError(f"sample_diversity: value_range must be one of {_VALUE_RANGES}, got {value_range!r}")
    # Streamed, memory O(B*H*W*C) instead of O(K*B*H*W*C): running sums of the
    # deviations d = y - y_first (the "shifted data" variance formula, float64),
    # which is exact for identical samples and avoids cancellation.
    first = total = total_sq = None
    for _ in range(k):
        y = _as_float_array(generator_fn(x), "sample_diversity (generator output)")
        if y.ndim != 4:
            raise ValueError(f"sample_diversity: generator output must be [B, H, W, C], got {y.shape}")
        if value_range == "minus1_1":
            y = np.clip((y + 1.0) * 0.5, 0.0, 1.0)
        if first is None:
            first = y.copy()
            total, total_sq = np.zeros_like(y), np.zeros_like(y)
            continue
        if y.shape != first.shape:
            raise ValueError(f"sample_diversity: output shape changed between calls: {first.shape} vs {y.shape}")
        d = y - first
        total += d
        total_sq += d * d
    mean_d = total / k
    std = np.sqrt(np.maximum(total_sq / k - mean_d * mean_d, 0.0))
    return std.mean(axis=-1).astype(np.float32)


def save_std_heatmap(
    std,
    path,
    vmax: float | None = None,
    cmap: str = "viridis",
    title: str | None = None,
    dpi: int = 100,
):
    """Writes a standard-deviation map as a colour heat-map PNG with a colour bar.

    Uses matplotlib's non-interactive ``Agg`` backend; the file is written
    atomically (:func:`tfi2i.visualize.atomic_write_bytes`), so readers never see
    half a PNG.

    Args:
      std: ``[H, W]`` map (e.g. from :func:`per_pixel_std`), on the image scale.
      path: output ``.png`` path; parent folders are created.
      vmax: top of the colour scale; ``None`` uses the map's maximum (use a fixed
        value, e.g. 0.25, to compare several maps on one scale). The bottom is 0.
      cmap: matplotlib colour map name.
      title: optional axes title.
      dpi: resolution of the saved figure.

    Returns:
      ``path``.
    """
    from tfi2i.visualize import atomic_write_bytes, new_figure

    arr = np.asarray(std, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"save_std_heatmap: std must have shape [H, W], got {arr.shape}")
    top = float(np.nanmax(arr)) if vmax is None else float(vmax)
    if not np.isfinite(top) or top <= 0:
        top = 1e-12  # all-zero map: keep a valid, non-degenerate colour scale
    h, w = arr.shape
    fig = new_figure((4.0 * w / max(h, w) + 1.2, 4.0 * h / max(h, w)))
    ax = fig.subplots()
    im = ax.imshow(arr, cmap=cmap, vmin=0.0, vmax=top, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="per-pixel std")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    return path
