"""The tf.data input pipeline alone at the sizes the full-resolution papers use: would a GPU wait on data?

Streams `tfi2i.data.pipeline.train_dataset` (decode, one-hot of the label map,
instance boundaries, resize, crop, flip, every pyramid level) of a recipe's
default configuration over real pairs (default: the 8 Cityscapes triples of
``../shared/data/cityscapes_fullres``, 2048x1024) and reports images/s, and
separately the cost of decoding alone (``source.load``), so the share a
decoded-file cache could save is visible. Prints one JSON object.

    python benchmarks/bench_pipeline.py --recipes msg_unet_cityscapes,pix2pixhd_cityscapes --batches 32
"""

import argparse
import importlib.util
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from bench_pix2pix import report  # noqa: E402
from tfi2i.config import replace  # noqa: E402
from tfi2i.data import pipeline  # noqa: E402
from tfi2i.data.open import open_data  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "cityscapes_fullres"
CONFIGS = {  # recipe -> arguments of its config(): the full-resolution defaults
    "msg_unet_cityscapes": {"task": "cityscapes"},
    "pix2pixhd_cityscapes": {"task": "1024p"},
}


def recipe_config(name, data):
    spec = importlib.util.spec_from_file_location(name, REPO / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = module.config(**CONFIGS[name])
    return replace(cfg, data={"path": str(data)})


def timed_stream(iterator, warmup, batches):
    """Seconds per batch over ``batches`` batches after ``warmup``: the total over the count, not a median of
    single waits (the prefetch buffer answers some of those at once)."""
    for _ in range(warmup):
        next(iterator)
    t0 = time.perf_counter()
    for _ in range(batches):
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, next(iterator))
    return (time.perf_counter() - t0) / batches


def bench(name, data, warmup, batches):
    cfg = recipe_config(name, data)
    train_src, _, data_cfg = open_data(cfg)
    ds, _ = pipeline.train_dataset(train_src, data_cfg, seed=0)
    per_batch = timed_stream(iter(ds), warmup, batches)
    batch = data_cfg.batch_size
    first = next(iter(ds))
    shapes = {k: list(v.shape) if hasattr(v, "shape") else [list(t.shape) for t in v] for k, v in first.items()}
    decode = []
    for i in range(min(len(train_src), batches)):
        t0 = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, train_src.load(i))
        decode.append(time.perf_counter() - t0)
    return {"recipe": name, "pairs": len(train_src), "batch": batch, "batches": batches,
            "s_per_batch": per_batch, "images_per_s": batch / per_batch,
            "decode_only_median_s_per_example": statistics.median(decode),
            "batch_shapes": shapes}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", default=",".join(CONFIGS))
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--batches", type=int, default=32, help="batches timed (several epochs of the 8 pairs)")
    p.add_argument("--warmup", type=int, default=2)
    args = p.parse_args()
    if not Path(args.data).is_dir():
        raise SystemExit(f"{args.data}: no such folder (the real Cityscapes pairs; see ../shared/data/README)")
    report("input pipeline (tf.data) at full resolution",
           [bench(name, args.data, args.warmup, args.batches) for name in args.recipes.split(",")])


if __name__ == "__main__":
    main()
