"""Azimuthally averaged power spectra of image sets (GRIT Fig. 9).

GRIT (Sec. 4.4, Fig. 9) compares the frequency content of the reconstructed,
residual, combined and ground-truth images "similar to Schwarz et al. [36] which
uses azimuthal averaging over the spectrum", averaged over all test outputs.
The same 1-pixel ring averaging is used by Durall et al. 2020 ("Watch your
up-convolution"). This module computes that curve with NumPy.

Exact steps of :func:`power_spectrum` for one image ``[H, W, C]`` on [0, 1]:

1. Colour: with ``channels="average"`` (default) every channel is treated as
   its own grey image and the C power spectra are averaged (what Schwarz et
   al.'s code does); with ``channels="luma"`` the image is first converted to
   grey with ITU-R BT.601 luma, ``Y = 0.299 R + 0.587 G + 0.114 B`` (3-channel
   images only).
2. Subtract the image's spatial mean (per channel). This only zeroes the DC
   coefficient; every other frequency is unchanged.
3. 2-D DFT with orthonormal scaling, ``F = fft2(x) / sqrt(H * W)``
   (``numpy.fft.fft2(..., norm="ortho")``), so Parseval holds: the spectrum sums
   to ``sum((x - mean)**2)``, i.e. its mean over frequencies is the pixel
   variance.
4. ``fftshift``: the zero frequency moves to index ``(H // 2, W // 2)``.
5. Power ``|F|**2``.
6. Average over channels (step 1) and over all images.

:func:`azimuthal_average` then bins the ``[H, W]`` spectrum into rings of width
1 around the DC index ``(H // 2, W // 2)``: ring ``k`` holds the frequencies
with ``k <= sqrt(dy**2 + dx**2) < k + 1`` (the integer part of the radius, as
in Durall et al.'s and Schwarz et al.'s code), and the profile is the mean over
each ring. For square ``N x N`` images the radius is the spatial frequency in
cycles per image; the axis Nyquist frequency is ``N / 2`` and rings beyond it
(up to ``N / sqrt(2)``) are only the spectrum's corners. For non-square images
the radius is in DFT-index units, which differ per axis (index ``k`` is
``k / H`` cycles per pixel vertically, ``k / W`` horizontally).

Differences from the reference code, for the record: Schwarz et al. keep the DC
term (their plots drop bin 0; we zero it by the mean subtraction), pad even-
sized spectra to odd size and centre rings on the geometric centre; we centre
on the DC index exactly, so a cosine of ``f`` cycles per image lands in ring
``f``. Their plots label the corner radius (about ``sqrt(2) * N / 2``) as
``f_nyq``; :func:`save_spectrum_plot` takes the normaliser as an argument.
Durall et al. average ``20 log|F|`` instead of the power ``|F|**2``.

No window is applied (as in the references): the DFT treats each image as
periodic, so the jumps between its opposite borders add power along the
frequency axes at all frequencies; a blurred photo therefore keeps some
high-frequency power (there the border term dominates).

Spectra of images of different sizes are not comparable bin by bin; all images
of one set must share ``H x W``. Inputs are float ``[B, H, W, C]`` on the
[0, 1] scale (NumPy arrays or TF tensors); integer arrays are rejected.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Iterable, Mapping

import numpy as np

from tfi2i.metrics.checks import check_image_batch

__all__ = [
    "power_spectrum",
    "azimuthal_average",
    "spectrum_of_sets",
    "save_spectrum_plot",
    "save_spectrum_numbers",
    "BT601_LUMA",
]

#: ITU-R BT.601 luma weights for R, G, B (``channels="luma"``).
BT601_LUMA = (0.299, 0.587, 0.114)

_CHANNEL_MODES = ("average", "luma")
_FFT_CHUNK = 8  # images per FFT call: bounds the complex128 temporaries


def _check_batch(images, name: str) -> np.ndarray:
    return check_image_batch(images, name)


def _spectrum_sum(images, channels: str, name: str) -> tuple[np.ndarray, int]:
    """Sum over the batch of the per-image (channel-averaged) power spectra, and B."""
    if channels not in _CHANNEL_MODES:
        raise ValueError(f"{name}: channels must be one of {_CHANNEL_MODES}, got {channels!r}")
    arr = _check_batch(images, name)
    b, h, w, c = arr.shape
    total = np.zeros((h, w), np.float64)
    for start in range(0, b, _FFT_CHUNK):
        x = arr[start : start + _FFT_CHUNK].astype(np.float64)
        if channels == "luma":
            if c != 3:
                raise ValueError(f"{name}: channels='luma' needs 3-channel RGB images, got C={c}")
            x = x @ np.asarray(BT601_LUMA, np.float64)  # [b, H, W]
            x = x[..., None]
        x = x - x.mean(axis=(1, 2), keepdims=True)
        f = np.fft.fft2(x, axes=(1, 2), norm="ortho")
        power = f.real**2 + f.imag**2  # [b, H, W, C']
        total += power.mean(axis=-1).sum(axis=0)
    return np.fft.fftshift(total), b


def power_spectrum(images, channels: str = "average") -> np.ndarray:
    """Mean power spectrum of a batch of images (steps in the module docstring).

    Args:
      images: float ``[B, H, W, C]`` on the [0, 1] scale.
      channels: ``"average"`` (per-channel spectra, averaged) or ``"luma"``
        (BT.601 grey first; RGB only).

    Returns:
      float64 ``[H, W]``: mean over images and channels of ``|F|**2`` of the
      mean-centred image, orthonormal DFT, ``fftshift``-ed (DC at
      ``(H // 2, W // 2)``, where the value is 0).
    """
    total, count = _spectrum_sum(images, channels, "power_spectrum")
    if count == 0:
        raise ValueError("power_spectrum: empty batch")
    return total / count


def azimuthal_average(spec, center: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean of a centred 2-D spectrum over rings of width 1 around its centre.

    Args:
      spec: ``[H, W]`` array, zero frequency at ``center`` (the output of
        :func:`power_spectrum`).
      center: ``(row, col)`` of the ring centre; default ``(H // 2, W // 2)``,
        the DC index after ``fftshift``.

    Returns:
      ``(radii, profile)``, both float64 ``[R]`` with
      ``R = floor(max radius) + 1``: ``radii[k] = k`` is the inner radius of
      ring ``k`` (``k <= r < k + 1``; cycles per image for square images) and
      ``profile[k]`` the mean of ``spec`` over that ring (NaN for a ring with no
      pixels, which does not happen with the default centre).
    """
    arr = np.asarray(spec, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"azimuthal_average: spec must have shape [H, W], got {arr.shape}")
    h, w = arr.shape
    cy, cx = (h // 2, w // 2) if center is None else center
    yy, xx = np.indices((h, w))
    r = np.hypot(yy - cy, xx - cx)
    ring = np.floor(r).astype(np.int64).ravel()
    n_rings = int(ring.max()) + 1
    sums = np.bincount(ring, weights=arr.ravel(), minlength=n_rings)
    counts = np.bincount(ring, minlength=n_rings)
    with np.errstate(invalid="ignore", divide="ignore"):
        profile = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return np.arange(n_rings, dtype=np.float64), profile


def spectrum_of_sets(
    named_sets: Mapping[str, Iterable],
    channels: str = "average",
) -> dict[str, np.ndarray]:
    """Azimuthally averaged mean power spectrum of each named image set, streamed.

    Each set is consumed batch by batch; only the running sum of the ``[H, W]``
    spectra is kept, so memory does not grow with the set size. Because the
    ring average is linear, the result equals the mean of the per-image
    profiles (what GRIT plots: "the average over all the synthesized outputs").

    Args:
      named_sets: ``{name: batches}``, where ``batches`` is an iterable of float
        ``[B, H, W, C]`` arrays/tensors on [0, 1] (e.g. a generator of model
        outputs, a ``tf.data.Dataset`` of images), or a single 4-D array. All
        images of one set must share ``H x W``.
      channels: as in :func:`power_spectrum`.

    Returns:
      ``{name: profile}`` in input order; ``profile`` is float64 ``[R]`` from
      :func:`azimuthal_average` (index = ring radius, see there).

    Raises:
      ValueError: a set is empty, or its images change size.
    """
    out: dict[str, np.ndarray] = {}
    for name, batches in named_sets.items():
        if hasattr(batches, "shape") and len(getattr(batches, "shape")) == 4:
            batches = [batches]
        total, count = None, 0
        for batch in batches:
            s, n = _spectrum_sum(batch, channels, f"spectrum_of_sets[{name!r}]")
            if n == 0:
                continue
            if total is None:
                total = s
            elif s.shape != total.shape:
                raise ValueError(
                    f"spectrum_of_sets[{name!r}]: image size changed from {total.shape} to {s.shape}"
                )
            else:
                total += s
            count += n
        if count == 0:
            raise ValueError(f"spectrum_of_sets[{name!r}]: no images")
        out[name] = azimuthal_average(total / count)[1]
    return out


def save_spectrum_plot(
    profiles: Mapping[str, np.ndarray],
    path,
    log: bool = True,
    nyquist: float | None = None,
    title: str | None = None,
    dpi: int = 100,
):
    """Plots one line per set: power against spatial frequency; PNG, atomic write.

    The DC ring (index 0) is left out: it is 0 after mean removal and cannot be
    shown on a log scale.

    Args:
      profiles: ``{name: profile}`` from :func:`spectrum_of_sets`.
      path: output ``.png`` path; parent folders are created.
      log: log-scale power axis (default, as GRIT Fig. 9).
      nyquist: if given, the x axis shows ``radius / nyquist`` ("f / f_nyq";
        pass ``N / 2`` for the axis Nyquist of ``N x N`` images); by default it
        shows the ring radius in cycles per image.
      title: optional axes title.
      dpi: resolution of the saved figure.

    Returns:
      ``path``.
    """
    from tfi2i.visualize import atomic_write_bytes, new_figure

    if not profiles:
        raise ValueError("save_spectrum_plot: no profiles")
    fig = new_figure((5.5, 3.8))
    ax = fig.subplots()
    for name, profile in profiles.items():
        p = np.asarray(profile, dtype=np.float64)
        x = np.arange(len(p), dtype=np.float64)
        if nyquist:
            x = x / float(nyquist)
        ax.plot(x[1:], p[1:], label=str(name))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("f / f_nyq" if nyquist else "spatial frequency (cycles per image)")
    ax.set_ylabel("power spectral density")
    if title:
        ax.set_title(title)
    ax.legend()
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    return path


def save_spectrum_numbers(profiles: Mapping[str, np.ndarray], path):
    """Writes the profiles as CSV: ``frequency,<name 1>,<name 2>,...``; atomic write.

    ``frequency`` is the ring index (cycles per image for square images), one
    row per ring starting at 0 (the DC ring). Values use 10 significant
    digits; a set with fewer rings than the longest leaves its cells empty.

    Args:
      profiles: ``{name: profile}`` from :func:`spectrum_of_sets`.
      path: output ``.csv`` path; parent folders are created.

    Returns:
      ``path``.
    """
    from tfi2i.visualize import atomic_write_bytes

    if not profiles:
        raise ValueError("save_spectrum_numbers: no profiles")
    names = list(profiles)
    arrays = [np.asarray(profiles[n], dtype=np.float64) for n in names]
    n_rows = max(len(a) for a in arrays)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["frequency", *names])
    for i in range(n_rows):
        writer.writerow([i, *(format(a[i], ".10g") if i < len(a) else "" for a in arrays)])
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))
    return path
