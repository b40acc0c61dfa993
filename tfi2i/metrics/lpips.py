"""LPIPS (Zhang et al. 2018) through the reference ``lpips`` package, optional.

GRIT reports LPIPS "using AlexNet features". A faithful metric needs the
original AlexNet (ImageNet) weights plus the learned linear-layer weights of
LPIPS v0.1; a TensorFlow re-implementation whose weights cannot be checked
against the reference would produce numbers that look like LPIPS but are not
comparable. So this module does not re-implement LPIPS: it wraps the reference
PyTorch package, installed as an optional extra::

    pip install 'tfi2i[lpips]'        # lpips, torch, torchvision

The ``lpips`` package ships its linear-layer weights (``weights/v0.1/alex.pth``
inside the package); the AlexNet backbone weights are fetched by torchvision on
first use (``alexnet-owt-7be5be79.pth``, cached under
``$TORCH_HOME/hub/checkpoints/``, default ``~/.cache/torch``). On a machine
without network access, copy that file there beforehand.

Status of verification: in the environment this module was written in, neither
``lpips`` nor torchvision could be installed and the AlexNet weights could not
be downloaded, so **LPIPS values from this wrapper were not checked against
known values here**; only the input conversion and the error path are tested.
To check it, compute the distance for the same pair of images with this class
and with the reference package directly (e.g. its ``lpips_2imgs.py`` on
``imgs/ex_ref.png`` / ``imgs/ex_p0.png``, loading the PNGs as [0, 1] floats
for this class); the two must agree to float precision.

Conventions: :meth:`LPIPS.__call__` takes our images, float ``[B, H, W, C]`` on
the [0, 1] scale (NumPy or TF), converts them to the package's convention
(``NCHW`` torch tensors on [-1, 1], via ``2 * x - 1``) and returns one distance
per image pair, float32 ``[B]`` (lower = more similar). One-channel images are
repeated to 3 channels; other channel counts are rejected. Version 0.1 of the
linear layers is used, as in the package's default.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from tfi2i.metrics.checks import check_image_batch

__all__ = ["LPIPS", "LPIPSUnavailableError", "LPIPS_INSTALL_HINT"]

LPIPS_INSTALL_HINT = (
    "pip install 'tfi2i[lpips]' (installs lpips, torch, torchvision); the AlexNet "
    "weights are downloaded by torchvision on first use or put into TORCH_HOME "
    "($TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth, default TORCH_HOME is "
    "~/.cache/torch) on machines without network access"
)


class LPIPSUnavailableError(ImportError):
    """LPIPS cannot be computed: ``lpips``/``torch``/``torchvision`` are missing
    or the backbone weights could not be loaded. The message says how to fix it."""


class LPIPS:
    """Learned Perceptual Image Patch Similarity with the reference ``lpips`` model.

    ``torch`` and ``lpips`` are imported lazily, when the object is created, so
    importing :mod:`tfi2i.metrics` never needs them.

    Args:
      net: backbone, ``"alex"`` (GRIT's choice and the package's recommended
        one), ``"vgg"`` or ``"squeeze"``.
      device: torch device string, e.g. ``"cpu"`` or ``"cuda"``.
      batch_size: image pairs per forward pass in :meth:`__call__`.

    Raises:
      LPIPSUnavailableError: the optional dependencies are not installed, or
        the model (backbone weights) could not be loaded.
    """

    def __init__(self, net: str = "alex", device: str = "cpu", batch_size: int = 16):
        if net not in ("alex", "vgg", "squeeze"):
            raise ValueError(f"LPIPS: net must be 'alex', 'vgg' or 'squeeze', got {net!r}")
        missing = [m for m in ("torch", "torchvision", "lpips") if importlib.util.find_spec(m) is None]
        if missing:
            raise LPIPSUnavailableError(
                "LPIPS needs the optional packages lpips, torch and torchvision; not installed: "
                f"{', '.join(missing)}. {LPIPS_INSTALL_HINT}"
            )
        try:
            import lpips
            import torch
        except ImportError as e:  # installed but broken (e.g. mismatched torch/torchvision)
            raise LPIPSUnavailableError(f"could not import lpips/torch ({e}). {LPIPS_INSTALL_HINT}") from e
        try:
            model = lpips.LPIPS(net=net, version="0.1", verbose=False)
        except Exception as e:  # e.g. URLError: backbone download failed offline
            raise LPIPSUnavailableError(
                f"could not load the LPIPS '{net}' model ({type(e).__name__}: {e}). {LPIPS_INSTALL_HINT}"
            ) from e
        self._torch = torch
        self.net = net
        self.device = device
        self.batch_size = int(batch_size)
        self.model = model.to(device).eval()

    @staticmethod
    def _to_nchw_minus1_1(x, name: str) -> np.ndarray:
        arr = check_image_batch(x, f"LPIPS: {name}")
        if arr.shape[-1] == 1:
            arr = np.repeat(arr, 3, axis=-1)
        elif arr.shape[-1] != 3:
            raise ValueError(f"LPIPS: {name} must have 1 or 3 channels, got {arr.shape[-1]}")
        arr = arr.astype(np.float32) * 2.0 - 1.0  # [0, 1] -> [-1, 1], lpips' convention
        return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))  # NHWC -> NCHW

    def __call__(self, a, b) -> np.ndarray:
        """LPIPS distance per image pair.

        Args:
          a, b: float ``[B, H, W, C]`` on the [0, 1] scale, same shape, C in {1, 3}.

        Returns:
          float32 ``[B]``, 0 for identical images, larger = more different.
        """
        a = self._to_nchw_minus1_1(a, "a")
        b = self._to_nchw_minus1_1(b, "b")
        if a.shape != b.shape:
            raise ValueError(f"LPIPS: shapes differ: {a.shape} vs {b.shape}")
        torch = self._torch
        out = []
        with torch.no_grad():
            for i in range(0, a.shape[0], self.batch_size):
                ta = torch.from_numpy(a[i : i + self.batch_size]).to(self.device)
                tb = torch.from_numpy(b[i : i + self.batch_size]).to(self.device)
                d = self.model(ta, tb, normalize=False)  # [b, 1, 1, 1]
                out.append(d.reshape(-1).cpu().numpy())
        if not out:
            return np.zeros((0,), np.float32)
        return np.concatenate(out).astype(np.float32)
