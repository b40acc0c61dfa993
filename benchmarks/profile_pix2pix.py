"""Where a pix2pix training step (or generator inference) spends its time, op by op, from TensorFlow's profiler.

Traces ``--steps`` calls after ``--warmup`` with ``tf.profiler.experimental``
and prints one JSON object: self time per op type (summed over the ops of
that type, per step) and the top op instances, from the profiler's
``framework_op_stats`` tool. The networks and step are `bench_pix2pix`'s (the
step `tfi2i.train` runs). The PyTorch side of the same table:
``python benchmarks/reference_torch_pix2pix.py --profile train``.

    python benchmarks/profile_pix2pix.py --task train --batch 1 --steps 3
    python benchmarks/profile_pix2pix.py --task infer --batch 1 --transposed native,subpixel
"""

import argparse
import glob
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.profiler.internal import _pywrap_profiler_plugin  # noqa: E402

import bench_pix2pix  # noqa: E402
from bench_pix2pix import build, report, use_transposed  # noqa: E402
from tfi2i.layers.transposed import freeze_for_inference, freezing_pays  # noqa: E402
from tfi2i.train import make_distributed_step  # noqa: E402


def op_stats(logdir):
    """Rows of the profiler's ``framework_op_stats`` (one per op, host side; IDLE dropped) for the trace in ``logdir``.

    The tool answers Google-Charts JSON (a table with ``cols`` ids and ``rows``
    of ``{"c": [{"v": value}, ...]}``); times are microseconds over the trace.
    """
    paths = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")))
    if not paths:
        raise SystemExit(f"no profile written under {logdir}")
    data, ok = _pywrap_profiler_plugin.xspace_to_tools_data(paths[-1:], "framework_op_stats", {})
    if not ok:
        raise SystemExit(f"the profiler could not convert {paths[-1]}")
    table = json.loads(data)[0]
    ids = [c["id"] for c in table["cols"]]
    rows = [dict(zip(ids, (cell.get("v") if cell else None for cell in row["c"]))) for row in table["rows"]]
    return [r for r in rows if r["type"] != "IDLE"]


def summarize(rows, steps, top=25):
    """Self time (ms per step) per op type and for the largest ops, with shares of the total."""
    def ms(row):
        return float(row["total_self_time"] or 0) / 1e3 / steps

    by_type = {}
    for r in rows:
        by_type[r["type"]] = by_type.get(r["type"], 0.0) + ms(r)
    total = sum(by_type.values())
    return {
        "total_self_ms_per_step": total,
        "by_type": [{"type": t, "self_ms_per_step": v, "share": v / total}
                    for t, v in sorted(by_type.items(), key=lambda kv: -kv[1])[:top]],
        "top_ops": [{"op": r["operation"], "type": r["type"], "calls_per_step": float(r["occurrences"]) / steps,
                     "self_ms_per_step": ms(r), "share": ms(r) / total}
                    for r in sorted(rows, key=lambda r: -ms(r))[:top]],
    }


def profiled(fn, warmup, steps):
    for _ in range(warmup):
        fn()
    logdir = tempfile.mkdtemp(prefix="tfi2i_profile_")
    tf.profiler.experimental.start(logdir)
    for _ in range(steps):
        fn()
    tf.profiler.experimental.stop()
    return op_stats(logdir)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=("train", "infer"), default="train")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--transposed", default="auto", help="auto, native, subpixel or a comma list (one profile each)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--width", type=int, default=64, help="ngf = ndf (64: the paper's networks; smaller for a smoke run)")
    args = p.parse_args()
    bench_pix2pix.WIDTH = args.width
    results = []
    rng = np.random.default_rng(0)
    for tr in args.transposed.split(","):
        use_transposed(tr)
        gan = build(False)
        if args.task == "train":
            data = {k: tf.constant(rng.uniform(-1, 1, (args.batch, args.size, args.size, 3)), tf.float32)
                    for k in ("x", "y")}
            step = make_distributed_step(gan, tf.distribute.get_strategy(), jit=False)

            def fn():
                return {k: v.numpy() for k, v in step(data).items()}
        else:
            freeze_for_inference(gan.generator)
            g = tf.function(lambda x: gan.generator({"x": x}, training=False)["y"])
            x = tf.constant(rng.uniform(-1, 1, (args.batch, args.size, args.size, 3)), tf.float32)

            def fn():
                return g(x).numpy()
        rows = profiled(fn, args.warmup, args.steps)
        results.append({"task": args.task, "size": args.size, "batch": args.batch, "steps": args.steps,
                        "transposed": tr if args.task == "train" else
                        ("subpixel (frozen)" if freezing_pays() else "native"),
                        **summarize(rows, args.steps, args.top)})
    report("pix2pix profile (tf.profiler framework_op_stats)", results)


if __name__ == "__main__":
    main()
