"""Running scores over batches of (prediction, target) images: the one accumulator every evaluation uses.

`MetricAccumulator` takes float32 ``[B, H, W, C]`` tensors on the [0, 1]
scale with a name per image (folder evaluation in `tfi2i.evaluate`, a model
over its evaluation split in `tfi2i.model_eval`) and keeps only running sums
and a small per-image score dict.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from tfi2i.metrics.image import METRICS

DEFAULT_METRICS = ("l1", "mse", "psnr", "ssim")

#: How many offending file names an error message lists before "... and N more".
_MAX_NAMES_IN_ERROR = 10


class EvaluationError(ValueError):
    """Inputs to an evaluation are unusable (missing/empty folder, unpaired or
    unreadable file, size mismatch, ...). The message names the file(s)."""


def _list_names(names: Sequence[str]) -> str:
    names = sorted(names)
    shown = ", ".join(names[:_MAX_NAMES_IN_ERROR])
    if len(names) > _MAX_NAMES_IN_ERROR:
        shown += f", ... and {len(names) - _MAX_NAMES_IN_ERROR} more"
    return shown


def _check_metric_names(metrics: Iterable[str]) -> tuple[str, ...]:
    names = tuple(metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise EvaluationError(
            f"unknown metric(s) {', '.join(unknown)}; available: {', '.join(METRICS)}"
        )
    if not names:
        raise EvaluationError(f"no metrics requested; available: {', '.join(METRICS)}")
    if len(set(names)) != len(names):
        raise EvaluationError(f"metric listed twice: {', '.join(names)}")
    return names


class MetricAccumulator:
    """Running per-image metrics over batches of (prediction, target) pairs.

    ``update`` takes float32 tensors ``[B, H, W, C]`` on the [0, 1] scale (use
    :func:`tfi2i.metrics.from_minus1_1` for generator outputs) and a name per
    image; ``result`` returns the means over all images seen plus per-image
    values. Only running sums and the small per-image score dict are kept.
    PSNR of an identical pair is ``inf``, which makes the mean PSNR ``inf``.
    """

    def __init__(self, metrics: Iterable[str] = DEFAULT_METRICS, inception_weights="imagenet"):
        self.metrics = _check_metric_names(metrics)
        self.pair_metrics = tuple(m for m in self.metrics if METRICS[m].kind == "pair")
        self.set_metrics = tuple(m for m in self.metrics if METRICS[m].kind == "set")
        self._inception_weights = inception_weights
        self._features = None
        self.reset()

    def reset(self) -> None:
        self._sums = {m: 0.0 for m in self.pair_metrics}
        self._count = 0
        self._per_image: dict[str, dict[str, float]] = {}
        self._sets = None
        if self.set_metrics:
            from tfi2i.metrics.fid import FIDAccumulator, InceptionFeatures

            if self._features is None:  # InceptionV3 is built once and reused across resets
                self._features = InceptionFeatures(weights=self._inception_weights)
            self._sets = FIDAccumulator(self._features, compute_kid="kid" in self.set_metrics)

    @property
    def num_images(self) -> int:
        return self._count

    def update(self, pred_batch, target_batch, names: Sequence[str]) -> dict[str, list[float]]:
        """Score one batch; returns ``{metric: [value per image]}`` for this batch."""
        names = [str(n) for n in names]
        batch = int(pred_batch.shape[0])
        if len(names) != batch:
            raise ValueError(f"got {len(names)} names for a batch of {batch} images")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate image names in batch: {names}")
        seen = [n for n in names if n in self._per_image]
        if seen:
            raise ValueError(f"image name(s) already scored: {_list_names(seen)}")
        values = {
            m: [float(v) for v in np.asarray(METRICS[m].fn(pred_batch, target_batch))]
            for m in self.pair_metrics
        }
        if self._sets is not None:
            self._sets.update(pred_batch, target_batch)
        for i, name in enumerate(names):
            self._per_image[name] = {m: values[m][i] for m in self.pair_metrics}
        for m in self.pair_metrics:
            self._sums[m] += math.fsum(values[m])
        self._count += batch
        return values

    def result(self) -> dict:
        """``{"num_images", "scale", "metrics", <metric>: mean, ..., "per_image"}``."""
        if self._count == 0:
            raise EvaluationError("no images were evaluated")
        out: dict = {
            "num_images": self._count,
            "scale": "[0,1]",
            "metrics": list(self.metrics),
        }
        for m in self.pair_metrics:
            out[m] = self._sums[m] / self._count
        if self._sets is not None:
            sets = self._sets.result()
            for m in self.set_metrics:
                out[m] = sets[m]
            if "kid" in self.set_metrics:
                out["kid_std"] = sets["kid_std"]
        out["per_image"] = {k: dict(v) for k, v in self._per_image.items()}
        return out


__all__ = ["DEFAULT_METRICS", "EvaluationError", "MetricAccumulator"]
