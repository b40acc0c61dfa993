"""Sampled styles for a model with a style encoder (GRIT): a Gaussian fitted to its training codes.

GRIT (Sec. 3.1, Fig. 5) feeds the decoder a style code ``z^s = E^S(image)``
and is evaluated with the ground truth as the style reference; it also shows
outputs "with sampled styles" without saying from what distribution. Its style
encoder is trained without a KL term (none is in Eq. 2), so there is no
N(0, I) prior to sample from as in SPADE's VAE. Our choice (recipe
"Deviations and choices"): after training, encode every training target with
the trained E^S and fit a Gaussian ``N(mean, cov)`` to the codes; a sampled
style is ``z = mean + L eps``, ``L L^T = cov``, ``eps ~ N(0, I)`` drawn from the
example's seed (`tfi2i.contract.NoiseSpec` with ``factor=0``), so a run and its
export give the same image for the same seed.

With ``n`` codes of dimension ``d`` the sample covariance is singular for
``n <= d``; it is shrunk towards its mean variance,
``cov = (1 - a) S + a (tr(S) / d) I`` with ``a = d / (n + d)`` (a little
shrinkage for CelebAMask-HQ's 24k faces, nearly isotropic for a demo's
handful).

The fit is written to ``W/style_prior.npz`` (atomically) at the end of
training by the GRIT recipe and by ``tfi2i style-prior --workdir W``;
``tfi2i translate --style sampled`` and ``tfi2i export --style sampled`` use it.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

import numpy as np

#: The fitted prior of a run: ``W/style_prior.npz`` (``mean``, ``scale``, ``count``, ``shrinkage``, ``checkpoint``).
STYLE_PRIOR_FILE = "style_prior.npz"


class StylePriorError(ValueError):
    """A run cannot give sampled styles (no style encoder, no fitted prior, an unreadable file)."""


def shrinkage(count: int, dim: int) -> float:
    """``a = d / (n + d)``: the weight of the isotropic target in the shrunk covariance."""
    return float(dim) / float(count + dim)


def fit_gaussian(codes) -> dict:
    """``codes [n, d]`` -> ``{"mean" [d], "scale" [d, d] (Cholesky of the shrunk covariance), "count", "shrinkage"}``."""
    codes = np.asarray(codes, np.float64)
    if codes.ndim != 2 or codes.shape[0] < 1:
        raise StylePriorError(f"need style codes [n >= 1, d], got shape {codes.shape}")
    n, d = codes.shape
    mean = codes.mean(0)
    centred = codes - mean
    sample = centred.T @ centred / max(n - 1, 1)
    a = shrinkage(n, d)
    target = max(float(np.trace(sample)) / d, 1e-12)
    cov = (1.0 - a) * sample + a * target * np.eye(d)
    scale = np.linalg.cholesky(cov + 1e-10 * target * np.eye(d))
    return {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32), "count": np.int64(n),
            "shrinkage": np.float64(a)}


def style_encoder_of(model):
    """The trained style encoder (``E_S``) of a model's generator, or `StylePriorError`."""
    if not any(s.kind == "style" for s in model.contract.inputs):
        raise StylePriorError(f"{model.name} has no style input: there is no style to sample")
    try:
        return model.generator.get_layer("E_S")
    except ValueError:
        raise StylePriorError(f"{model.generator.name} has a style input but no 'E_S' style encoder") from None


def encode_styles(model, source, data_cfg, limit=None, progress=True) -> np.ndarray:
    """``E^S`` of every target image of ``source`` (no augmentation), ``[n, style_dim]`` float64."""
    from tqdm.auto import tqdm

    from tfi2i.data.pipeline import eval_dataset

    encoder = style_encoder_of(model)
    total = len(source) if limit is None else min(int(limit), len(source))
    if total < 1:
        raise StylePriorError("no training images to fit the style prior on")
    codes = []
    bar = tqdm(total=total, desc="style codes", unit="img", disable=not progress, file=sys.stderr)
    for batch in eval_dataset(source, data_cfg, limit=total):
        codes.append(np.asarray(encoder(batch["y"], training=False), np.float64))
        bar.update(len(codes[-1]))
    bar.close()
    return np.concatenate(codes, 0)


def save(path, prior: dict) -> Path:
    """Writes a prior (`fit_gaussian`'s dict plus ``checkpoint``) to ``path`` atomically."""
    from tfi2i.visualize import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, **prior)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def load(workdir) -> dict:
    """The prior of run ``workdir`` (``W/style_prior.npz``), or `StylePriorError` saying how to make it."""
    path = Path(workdir) / STYLE_PRIOR_FILE
    if not path.is_file():
        raise StylePriorError(f"{workdir} has no {STYLE_PRIOR_FILE}: fit it with `tfi2i style-prior --workdir "
                              f"{workdir}` (the GRIT recipe writes it at the end of training)")
    try:
        with np.load(path) as f:
            prior = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise StylePriorError(f"{path} is not a readable style prior ({exc}); fit it again with "
                              f"`tfi2i style-prior --workdir {workdir}`") from None
    missing = {"mean", "scale"} - set(prior)
    if missing:
        raise StylePriorError(f"{path} lacks {sorted(missing)}; fit it again with `tfi2i style-prior`")
    return prior


def fit_run(workdir, limit=None, progress=True, model=None, cfg=None, checkpoint="") -> dict:
    """Fits run ``workdir``'s style prior on its training split and writes ``W/style_prior.npz``; returns the prior.

    ``model`` / ``cfg``: an already-loaded model and its config (the end of
    training); default: `tfi2i.runs.load_model` (the latest checkpoint).
    """
    from tfi2i.data.open import open_data

    if model is None:
        from tfi2i.runs import load_model

        cfg, model, checkpoint = load_model(workdir)
    style_encoder_of(model)  # fail before opening the data
    train_source, _, data_cfg = open_data(cfg)
    prior = fit_gaussian(encode_styles(model, train_source, data_cfg, limit=limit, progress=progress))
    prior["checkpoint"] = np.asarray(os.path.basename(str(checkpoint)))
    save(Path(workdir) / STYLE_PRIOR_FILE, prior)
    return prior


def with_sampled_style(model, workdir):
    """Run ``workdir``'s ``model`` drawing its style from the run's fitted prior (`GRIT.with_sampled_style`)."""
    style_encoder_of(model)
    prior = load(workdir)
    if not hasattr(model, "with_sampled_style"):
        raise StylePriorError(f"{model.name} ({type(model).__name__}) cannot sample its style")
    return model.with_sampled_style(prior)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``tfi2i style-prior``."""
    p = subparsers.add_parser(
        "style-prior", help="fit the Gaussian that sampled styles are drawn from (GRIT) on a run's training targets",
        description="Encode every training target of a run with its trained style encoder and fit N(mean, cov) "
        "(shrunk towards its mean variance): W/style_prior.npz, used by `tfi2i translate --style sampled` and "
        "`tfi2i export --style sampled`.")
    p.add_argument("--workdir", required=True, metavar="W", help="a training run directory with a style encoder")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="first N training images (default all)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run_cli)
    return p


def _run_cli(args) -> int:
    from tfi2i.runs import RunError

    try:
        prior = fit_run(args.workdir, limit=args.limit, progress=not args.no_progress)
    except (StylePriorError, RunError, ValueError, OSError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(f"style prior of {int(prior['count'])} codes (dim {prior['mean'].shape[0]}, shrinkage "
          f"{float(prior['shrinkage']):.3f}) written to {Path(args.workdir) / STYLE_PRIOR_FILE}")
    return 0


__all__ = ["STYLE_PRIOR_FILE", "StylePriorError", "encode_styles", "fit_gaussian", "fit_run", "load", "save",
           "shrinkage", "style_encoder_of", "with_sampled_style"]
