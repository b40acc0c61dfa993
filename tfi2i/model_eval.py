"""Running a model over an evaluation split and scoring what it generates.

`evaluate_model` is what training calls at the end (``W/eval.json``), what
``tfi2i evaluate --workdir`` and the notebooks call. It uses only the model's
contract (`tfi2i.contract`): the batch's raw inputs are encoded by the model,
a stochastic model draws its noise from ``seed`` (so two evaluations of one
run give the same numbers), and every named output can be scored: ``"y"``
against the target, an output at ``1 / factor`` of the size against the
target downscaled to it (area averaging).
"""

from __future__ import annotations

import os
import sys

DEFAULT_METRICS = ("l1", "mse", "psnr", "ssim")


def target_for(y, factor):
    """The target an output at ``1 / factor`` of the input size is scored against (area downscaling)."""
    import tensorflow as tf

    if factor == 1:
        return y
    size = tf.shape(y)[1:3] // factor
    return tf.image.resize(y, size, method="area")


def evaluate_model(model, source, data_cfg, out_dir=None, metrics=DEFAULT_METRICS, progress=True, target_dir=None,
                   inception_weights="imagenet", on_batch=None, outputs=("y",), seed=0, mode="deterministic"):
    """Runs the model over an evaluation source (no jitter, inference mode) and averages the metrics.

    Values are on the [0, 1] scale (images mapped from [-1, 1]). With
    ``out_dir`` the predictions are also written as PNGs named after the pairs
    (``target_dir``: the targets too, as the model saw them), so a run can be
    re-scored with ``tfi2i evaluate --pred out_dir --target target_dir``;
    other outputs go to ``out_dir/<output name>/``. ``on_batch(batch, y_fake)``
    lets callers score more (e.g. the FCN score).

    Args:
      model: a `tfi2i.gan.PairedGAN` (``tfi2i.runs.load_model(W).model``).
      outputs: names of the outputs to score; ``"y"`` first. The result holds
        ``"y"``'s scores at the top level and every other output's under
        ``result["outputs"][name]``.
      seed: noise seed of a stochastic model (example i of the split gets
        ``seed + i``), and the dropout seed of ``mode="reference"`` (batch b
        gets ``seed + b``).
      mode: ``deterministic`` (dropout off, moving batch-norm statistics) or
        ``reference`` (the pix2pix test script: dropout on, batch statistics
        of each evaluation batch); see `tfi2i.config.EvalConfig`.
    """
    import tensorflow as tf
    from tqdm.auto import tqdm

    from tfi2i.data import pipeline
    from tfi2i.metrics import from_minus1_1
    from tfi2i.metrics.accumulator import MetricAccumulator
    from tfi2i.metrics.image import METRICS
    from tfi2i.visualize import save_png, to_uint8_image

    outputs = tuple(outputs)
    for name in outputs:
        model.contract.output(name)  # a clear error for an unknown name
    if not outputs or outputs[0] != "y":
        raise ValueError(f"outputs must start with 'y', got {outputs}")
    accs, skipped = {"y": MetricAccumulator(metrics, inception_weights=inception_weights)}, {}

    def accumulator(name, pred, target):
        """An extra output's accumulator: the metrics that apply to its size (SSIM needs >= 11 px, ...)."""
        if name not in accs:
            usable = []
            for m in metrics:
                try:
                    METRICS[m].fn(pred[:1], target[:1]) if METRICS[m].kind == "pair" else None
                    usable.append(m)
                except ValueError as exc:
                    skipped.setdefault(name, {})[m] = str(exc)
            accs[name] = MetricAccumulator(usable or ("l1",), inception_weights=inception_weights)
        return accs[name]
    # deterministic inference does not depend on the batch; reference mode normalises with the batch's statistics,
    # and the reference test script runs one image at a time (test.py: opt.batch_size = 1)
    batch_size = 1 if mode == "reference" else max(8, data_cfg.batch_size)
    ds = pipeline.eval_dataset(source, data_cfg, batch_size=batch_size)
    bar = tqdm(total=len(source), unit="img", desc="evaluate", disable=not progress, file=sys.stderr,
               mininterval=0.5 if sys.stderr.isatty() else 30)
    seen = 0
    for index, batch in enumerate(ds):
        names = [n.decode() for n in batch["name"].numpy()]
        seeds = tf.range(seed + seen, seed + seen + len(names), dtype=tf.int64)
        fake = model.generate(batch, training=False, seeds=seeds, mode=mode, seed=seed + index)
        for name in outputs:
            target = target_for(batch["y"], model.contract.output(name).factor)
            pred, target = from_minus1_1(fake[name]), from_minus1_1(target)
            acc = accs["y"] if name == "y" else accumulator(name, pred, target)
            acc.update(pred, target, names)
        folders = [(out_dir, fake["y"]), (target_dir, batch["y"])]
        folders += [(out_dir and os.path.join(out_dir, name), fake[name]) for name in outputs[1:]]
        for folder, images in folders:
            if folder:
                for name, img in zip(names, images.numpy()):
                    save_png(os.path.join(folder, f"{name}.png"), to_uint8_image(img))
        if on_batch is not None:
            on_batch(batch, fake["y"])
        seen += len(names)
        bar.update(len(names))
    bar.close()
    result = accs["y"].result()
    if len(outputs) > 1:
        result["outputs"] = {name: {**accs[name].result(), **({"skipped_metrics": skipped[name]} if name in skipped
                                                                  else {})} for name in outputs[1:]}
    return result


__all__ = ["DEFAULT_METRICS", "evaluate_model", "target_for"]
