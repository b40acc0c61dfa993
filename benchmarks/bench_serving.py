"""The paths users wait on after training: the exported SavedModel's signatures and ``tfi2i translate``.

Exports a pix2pix generator (U-Net-256, batch norm; random weights: speed does
not depend on them) with `tfi2i.export.export_model`, loads it as TF Serving
does (``tf.saved_model.load``) and times:

* ``serving_default`` (float tensors) and ``translate_bytes`` (PNG bytes in
  and out, decoded and encoded inside the graph) at each ``--sizes`` x
  ``--batches``: images/s and p50/p99 latency; the bytes signature's extra
  time over the float one is its decode + encode cost;
* ``tfi2i translate`` (the command, one child process per setting) on a folder
  of ``--photos`` (default: the 2048x1024 Cityscapes photos of
  ``../shared/data/cityscapes_fullres``), whole images and in tiles:
  images/s and the child's peak resident memory.

``--transposed auto,native`` exports once per decoder form (auto: sub-pixel on
a CPU, `tfi2i.layers.transposed`). Prints one JSON object.

    python benchmarks/bench_serving.py --sizes 256,1024 --batches 1,8 --repeats 10
"""

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench_pix2pix import report, time_calls, use_transposed  # noqa: E402
from machine import watch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO.parent / "shared" / "data" / "cityscapes_fullres" / "train_img"


def export_pix2pix(root, transposed):
    """A full-size pix2pix export (random weights) written under ``root``; returns its version folder."""
    sys.path.insert(0, str(REPO / "recipes"))
    import pix2pix_facades as recipe

    from tfi2i import export

    use_transposed(transposed)
    model = recipe.build(recipe.config())
    return export.export_model(model, root, max_pixels=2048 * 2048)


def summary(times, batch):
    p50 = statistics.median(times)
    return {"p50_s": p50, "p99_s": float(np.percentile(times, 99)), "images_per_s": batch / p50, "repeats": len(times)}


def smooth_png(size, seed):
    """A smooth test photo's PNG bytes (noise would make PNG decoding unrepresentatively slow)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return cv2.imencode(".png", cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC))[1].tobytes()


def bench_signatures(version_dir, sizes, batches, warmup, repeats):
    loaded = tf.saved_model.load(str(version_dir))
    floats, png = loaded.signatures["serving_default"], loaded.signatures["translate_bytes"]
    rows = []
    for size in sizes:
        for batch in batches:
            x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)), tf.float32)
            images = tf.constant([smooth_png(size, i) for i in range(batch)])
            t_float = summary(time_calls(lambda: floats(x=x)["y"].numpy(), warmup, repeats)[1], batch)
            t_bytes = summary(time_calls(lambda: png(images=images)["image_bytes"].numpy(), warmup, repeats)[1], batch)
            rows.append({"size": size, "batch": batch, "serving_default": t_float, "translate_bytes": t_bytes,
                         "bytes_overhead_share": t_bytes["p50_s"] / t_float["p50_s"] - 1.0})
    return rows


def bench_translate(version_dir, photos, tiles, batch_size):
    files = sorted(p for p in Path(photos).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        return {"skipped": f"no photos in {photos}"}
    h, w = cv2.imread(str(files[0])).shape[:2]
    rows = []
    for tile in tiles:
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "-m", "tfi2i.cli", "translate", "--model", str(version_dir), "--input", str(photos),
                   "--output", out, "--batch-size", str(batch_size), "--no-progress"]
            if tile:
                cmd += ["--tile", str(tile)]
            run = watch(cmd, cwd=REPO)
            if run["returncode"]:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{run['stderr'][-2000:]}")
            seconds, peak = run["wall_s"], run["peak_rss_mb"]
        rows.append({"photos": len(files), "size": [w, h], "tile": tile or "whole image", "batch_size": batch_size,
                     "seconds_with_startup": seconds, "images_per_s_with_startup": len(files) / seconds,
                     "peak_host_mb": peak})
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="256,1024")
    p.add_argument("--batches", default="1,8")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--transposed", default="auto", help="auto, native or auto,native (one export each)")
    p.add_argument("--photos", default=str(PHOTOS), help="folder of photos for tfi2i translate ('' to skip)")
    p.add_argument("--tiles", default="0,512", help="translate tile sizes; 0 = whole image")
    p.add_argument("--translate-batch", type=int, default=1)
    args = p.parse_args()
    sizes, batches = [int(v) for v in args.sizes.split(",")], [int(v) for v in args.batches.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as root:
        for tr in args.transposed.split(","):
            version_dir = export_pix2pix(Path(root) / tr, tr)
            row = {"transposed": tr, "export_mb": sum(f.stat().st_size for f in version_dir.rglob("*") if f.is_file())
                   / 2**20, "signatures": bench_signatures(version_dir, sizes, batches, args.warmup, args.repeats)}
            if args.photos and Path(args.photos).is_dir():
                row["translate"] = bench_translate(version_dir, args.photos, [int(t) for t in args.tiles.split(",")],
                                                   args.translate_batch)
            results.append(row)
    report("serving: exported pix2pix signatures and tfi2i translate", results)


if __name__ == "__main__":
    main()
