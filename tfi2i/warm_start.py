"""Warm starts: initialise a new run's networks from another run's trained weights, layer by layer, by name.

``train.init_from = W`` (pix2pixHD's ``--load_pretrain``): before step 1, every
layer of the new generator and discriminators whose name and weight shapes
equal a layer of run ``W``'s (its latest checkpoint, rebuilt with
`tfi2i.runs.load_model`) gets that layer's weights; every other layer keeps its
fresh initialisation and is listed, as NVIDIA's ``BaseModel.load_network``
prints "The following are not initialized". pix2pixHD's layer names follow the
reference's state-dict keys (`tfi2i.networks.pix2pixhd`), so a finished
1024x512 global run initialises the global part (``model_*``) of a 2048x1024
local enhancer, and its two discriminator scales (``scale0_*``, ``scale1_*``)
the first two of three, exactly as NVIDIA's ``train_1024p_24G.sh`` does.

The warm start happens only at the start of a run: a resumed run restores its
own checkpoint (which holds the warm-started weights, trained further); a run
killed before its first checkpoint is warm-started again.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger("tfi2i")


class WarmStartError(ValueError):
    """The warm-start source cannot initialise this model (no run, no checkpoint, nothing in common)."""


def _weighted_layers(models):
    """``{layer name: layer}`` of every layer with weights in `models` (nested models flattened)."""
    out = {}
    for model in models:
        for layer in model._flatten_layers(include_self=False):
            if layer.weights and not hasattr(layer, "layers"):
                out[layer.name] = layer
    return out


def copy_by_name(targets, sources):
    """Copies weights from the layers of `sources` into the same-named, same-shaped layers of `targets`.

    Args:
      targets, sources: lists of Keras models.

    Returns:
      ``(copied, skipped)``: the layer names copied, and ``{name: reason}``
      for the target layers left as they were (absent from the source, or
      of another shape).
    """
    src = _weighted_layers(sources)
    copied, skipped = [], {}
    for name, layer in _weighted_layers(targets).items():
        other = src.get(name)
        if other is None:
            skipped[name] = "not in the source"
            continue
        shapes = [tuple(w.shape) for w in layer.weights]
        theirs = [tuple(w.shape) for w in other.weights]
        if shapes != theirs:
            skipped[name] = f"shapes {shapes} here, {theirs} in the source"
            continue
        for w, v in zip(layer.weights, other.weights):
            w.assign(np.asarray(v))
        copied.append(name)
    return copied, skipped


def warm_start(model, source_dir):
    """Initialises `model`'s generator and discriminators from run `source_dir` (see the module docstring).

    Returns:
      ``{"generator": (copied, skipped), "discriminators": (copied, skipped), "checkpoint": path}``.

    Raises:
      WarmStartError: `source_dir` is not a run with a checkpoint, or not a
        single generator layer matches (the wrong run).
    """
    from tfi2i.runs import RunError, load_model

    try:
        source = load_model(source_dir)
    except RunError as exc:
        raise WarmStartError(f"train.init_from={source_dir!r}: {exc}") from None
    g = copy_by_name([model.generator], [source.model.generator])
    d = copy_by_name(list(model.discriminators), list(source.model.discriminators))
    if not g[0]:
        raise WarmStartError(f"train.init_from={source_dir!r}: no generator layer of {source.cfg.builder} "
                             f"({source.model.generator.name}) matches this run's {model.generator.name} by name "
                             "and shape; is it the right run?")
    for what, (copied, skipped) in (("generator", g), ("discriminators", d)):
        log.info("warm start from %s: %s: %d layers initialised from the source, %d not%s", source.checkpoint, what,
                 len(copied), len(skipped), (": " + ", ".join(sorted(skipped)[:12]) + (" ..." if len(skipped) > 12
                                                                                        else "")) if skipped else "")
    return {"generator": g, "discriminators": d, "checkpoint": source.checkpoint}


__all__ = ["WarmStartError", "copy_by_name", "warm_start"]
