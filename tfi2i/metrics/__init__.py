"""Image-quality metrics (L1, MSE, PSNR, SSIM) on float [0, 1] images ``[B, H, W, C]``."""

from tfi2i.metrics.image import (
    METRICS,
    SSIM_FILTER_SIGMA,
    SSIM_FILTER_SIZE,
    SSIM_K1,
    SSIM_K2,
    Metric,
    from_minus1_1,
    from_uint8,
    l1,
    mse,
    psnr,
    ssim,
    to_unit,
)

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
