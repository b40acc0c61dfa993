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

from tfi2i.metrics.diversity import GRIT_NUM_SAMPLES, mean_std, per_pixel_std, sample_diversity, save_std_heatmap
from tfi2i.metrics.lpips import LPIPS, LPIPS_INSTALL_HINT, LPIPSUnavailableError
from tfi2i.metrics.spectrum import (
    BT601_LUMA,
    azimuthal_average,
    power_spectrum,
    save_spectrum_numbers,
    save_spectrum_plot,
    spectrum_of_sets,
)

__all__ += [
    "per_pixel_std",
    "mean_std",
    "sample_diversity",
    "save_std_heatmap",
    "GRIT_NUM_SAMPLES",
    "power_spectrum",
    "azimuthal_average",
    "spectrum_of_sets",
    "save_spectrum_plot",
    "save_spectrum_numbers",
    "BT601_LUMA",
    "LPIPS",
    "LPIPSUnavailableError",
    "LPIPS_INSTALL_HINT",
]

from tfi2i.metrics.fid import (
    INCEPTION_WEIGHTS_FILE,
    FeatureStats,
    FIDAccumulator,
    InceptionFeatures,
    WeightsUnavailableError,
    frechet_distance,
    kid,
)
from tfi2i.metrics.vif import VIFP_MIN_SIZE, vifp

__all__ += [
    "vifp",
    "VIFP_MIN_SIZE",
    "InceptionFeatures",
    "WeightsUnavailableError",
    "INCEPTION_WEIGHTS_FILE",
    "frechet_distance",
    "FeatureStats",
    "kid",
    "FIDAccumulator",
]
