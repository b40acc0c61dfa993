"""Every convolution of the pix2pix training step, layer by layer: forward, input gradient, filter gradient.

The training-step profile (`profile_pix2pix.py`) says the gap to PyTorch is in
the convolution gradients; this says in which layers. For each convolution of
U-Net-256 and the 70x70 PatchGAN at 256x256 it times, separately, the three
kernels a training step runs (a transposed convolution's forward is a
backward-data convolution and its input gradient a forward one), with the
same shapes in TensorFlow (NHWC; oneDNN's kernels only where TF runs them, JSON ``onednn``) and, with ``--framework torch``
(needs a torch venv), in PyTorch (NCHW, ``aten.convolution_backward`` with one
output mask at a time). Prints JSON; ``--compare TORCH_JSON`` adds the ratio
tf / torch per layer and kernel.

    python benchmarks/bench_conv_layers.py --batch 1 > /tmp/tf.json
    /work/torchvenv/bin/python benchmarks/bench_conv_layers.py --framework torch --batch 1 > /tmp/torch.json
    python benchmarks/bench_conv_layers.py --batch 1 --compare /tmp/torch.json
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from machine import machine_info, tensorflow_onednn, time_calls  # noqa: E402

# (name, kind, in channels, out channels, input size, stride); 4x4 kernels, padding 1 (both networks). A step runs
# each G kernel once; D's forward three times (fake for D, real, fake for G), its filter gradient twice and its
# input gradient up to three times: the totals count each kernel once per layer.
def layers(ngf=64, ndf=64):
    enc = [(3, ngf), (ngf, 2 * ngf), (2 * ngf, 4 * ngf), (4 * ngf, 8 * ngf)] + [(8 * ngf, 8 * ngf)] * 4
    rows, size = [], 256
    for i, (cin, cout) in enumerate(enc):
        rows.append((f"G down{i + 1}", "conv", cin, cout, size, 2))
        size //= 2
    dec = [(8 * ngf, 8 * ngf)] + [(16 * ngf, 8 * ngf)] * 3 + [(16 * ngf, 4 * ngf), (8 * ngf, 2 * ngf),
                                                              (4 * ngf, ngf), (2 * ngf, 3)]
    for i, (cin, cout) in enumerate(dec):
        rows.append((f"G up{8 - i}", "transposed", cin, cout, size, 2))
        size *= 2
    size = 256
    for i, (cin, cout) in enumerate([(6, ndf), (ndf, 2 * ndf), (2 * ndf, 4 * ndf)]):
        rows.append((f"D conv{i + 1}", "conv", cin, cout, size, 2))
        size //= 2
    rows.append(("D conv4", "conv", 4 * ndf, 8 * ndf, size, 1))
    rows.append(("D conv5", "conv", 8 * ndf, 1, size - 1, 1))
    return rows


def out_size(kind, size, stride):
    if kind == "transposed":
        return size * stride
    return (size + 2 - 4) // stride + 1


def selected(names):
    """`layers` filtered by a comma-separated list of names (``"D conv5,G up8"``; empty: all)."""
    wanted = [n.strip() for n in names.split(",") if n.strip()] if names else []
    rows = [row for row in layers() if not wanted or row[0] in wanted]
    unknown = set(wanted) - {row[0] for row in rows}
    if unknown:
        raise SystemExit(f"unknown layers {sorted(unknown)}; valid: {', '.join(row[0] for row in layers())}")
    return rows


def bench_tf(batch, warmup, steps, names=""):
    import numpy as np
    import tensorflow as tf

    def same_pad(x):
        return tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])

    results = []
    rng = np.random.default_rng(0)
    for name, kind, cin, cout, size, stride in selected(names):
        osz = out_size(kind, size, stride)
        x = tf.constant(rng.standard_normal((batch, size, size, cin)), tf.float32)
        dy = tf.constant(rng.standard_normal((batch, osz, osz, cout)), tf.float32)
        if kind == "conv":  # as Keras runs ZeroPadding2D(1) + Conv2D(valid) (the padding's gradient is a slice)
            w = tf.constant(rng.standard_normal((4, 4, cin, cout)), tf.float32)
            xp = same_pad(x)
            fns = {
                "forward": tf.function(lambda: tf.nn.conv2d(xp, w, stride, "VALID")),
                "input_grad": tf.function(lambda: tf.raw_ops.Conv2DBackpropInput(
                    input_sizes=tf.shape(xp), filter=w, out_backprop=dy, strides=[1, stride, stride, 1],
                    padding="VALID")),
                "filter_grad": tf.function(lambda: tf.raw_ops.Conv2DBackpropFilter(
                    input=xp, filter_sizes=[4, 4, cin, cout], out_backprop=dy, strides=[1, stride, stride, 1],
                    padding="VALID")),
            }
        else:  # Keras Conv2DTranspose(4, 2, "same"): kernel (4, 4, out, in)
            w = tf.constant(rng.standard_normal((4, 4, cout, cin)), tf.float32)
            shape = [batch, osz, osz, cout]
            fns = {
                "forward": tf.function(lambda: tf.nn.conv2d_transpose(x, w, shape, stride, "SAME")),
                "input_grad": tf.function(lambda: tf.nn.conv2d(dy, w, stride, "SAME")),
                "filter_grad": tf.function(lambda: tf.raw_ops.Conv2DBackpropFilter(
                    input=dy, filter_sizes=[4, 4, cout, cin], out_backprop=x, strides=[1, stride, stride, 1],
                    padding="SAME")),
            }
        row = {"layer": name, "kind": kind, "in": cin, "out": cout, "size": size, "stride": stride}
        for task, fn in fns.items():
            row[f"{task}_ms"] = 1000 * median_time(lambda: fn().numpy(), warmup, steps)
        if kind == "transposed":  # the layer's whole training cost (forward, both gradients) in either form
            wv = tf.Variable(w)
            for form in ("native", "subpixel", "matmul"):
                row[f"train_{form}_ms"] = 1000 * median_time(
                    lambda fn=layer_train_fn(tf, x, wv, dy, shape, form): [t.numpy() for t in fn()], warmup, steps)
        else:  # the same for the forms of tfi2i.layers.conv that apply to this shape
            wv = tf.Variable(w)
            for form in conv_forms(osz, cout):
                row[f"train_{form}_ms"] = 1000 * median_time(
                    lambda fn=conv_train_fn(tf, xp, wv, dy, stride, form): [t.numpy() for t in fn()], warmup, steps)
        results.append(row)
    import keras
    return results, {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                     "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
                     "onednn": tensorflow_onednn()}


def layer_train_fn(tf, x, w, dy, shape, form):
    """Forward and both gradients of one transposed convolution: ``native``, ``subpixel`` (kernel rearranged each
    call) or ``matmul`` (`tfi2i.layers.transposed.matmul_conv2d_transpose`)."""
    from tfi2i.layers.transposed import matmul_conv2d_transpose, subpixel_conv2d_transpose

    @tf.function
    def fn():
        with tf.GradientTape() as tape:
            tape.watch(x)
            if form == "native":
                y = tf.nn.conv2d_transpose(x, w, shape, 2, "SAME")
            elif form == "subpixel":
                y = subpixel_conv2d_transpose(x, w, (2, 2), "same")
            else:
                y = matmul_conv2d_transpose(x, w, (2, 2), "same")
            loss = tf.reduce_sum(y * dy)
        return tape.gradient(loss, [x, w])
    return fn


def conv_forms(out_size, filters):
    """The `tfi2i.layers.conv` forms timed for a convolution: im2col + matmul for tiny outputs, the tap forms for
    few filters (the others' copies grow with the layer and cost more than they could save)."""
    return ("native",) + (("matmul",) if out_size <= 8 else ()) + (("taps", "shift_add") if filters <= 4 else ())


def conv_train_fn(tf, xp, w, dy, stride, form):
    """Forward and both gradients of one convolution (padded input, VALID) in one `tfi2i.layers.conv` form."""
    from tfi2i.layers import conv

    fns = {"native": lambda: tf.nn.conv2d(xp, w, stride, "VALID"),
           "matmul": lambda: conv.matmul_conv2d(xp, w, (stride, stride), "valid"),
           "taps": lambda: conv.taps_filter_gradient(xp, w, (stride, stride), "valid"),
           "shift_add": lambda: conv.shift_add_conv2d(xp, w, (stride, stride), "valid")}

    @tf.function
    def fn():
        with tf.GradientTape() as tape:
            tape.watch(xp)
            loss = tf.reduce_sum(fns[form]() * dy)
        return tape.gradient(loss, [xp, w])
    return fn


def bench_torch(batch, warmup, steps, names=""):
    import torch

    results = []
    g = torch.Generator().manual_seed(0)
    for name, kind, cin, cout, size, stride in selected(names):
        osz = out_size(kind, size, stride)
        x = torch.randn(batch, cin, size, size, generator=g)
        dy = torch.randn(batch, cout, osz, osz, generator=g)
        transposed = kind == "transposed"
        w = torch.randn((cin, cout, 4, 4) if transposed else (cout, cin, 4, 4), generator=g)
        conv = (lambda: torch.conv_transpose2d(x, w, None, stride, 1)) if transposed else (
            lambda: torch.conv2d(x, w, None, stride, 1))

        def backward(mask):
            return torch.ops.aten.convolution_backward(dy, x, w, None, [stride] * 2, [1, 1], [1, 1], transposed,
                                                       [0, 0], 1, mask)

        fns = {"forward": conv, "input_grad": lambda: backward([True, False, False]),
               "filter_grad": lambda: backward([False, True, False])}
        row = {"layer": name, "kind": kind, "in": cin, "out": cout, "size": size, "stride": stride}
        with torch.no_grad():
            for task, fn in fns.items():
                row[f"{task}_ms"] = 1000 * median_time(fn, warmup, steps)
        results.append(row)
    return results, {"torch": torch.__version__, "threads": torch.get_num_threads()}


def median_time(fn, warmup, steps):
    return time_calls(fn, warmup, steps)[0]


TASKS = ("forward", "input_grad", "filter_grad")


def compare(ours, theirs):
    """Per layer and kernel the ratio ours / theirs, and the totals (each kernel once per layer)."""
    by_layer = {r["layer"]: r for r in theirs}
    rows, totals = [], {t: [0.0, 0.0] for t in TASKS}
    for r in ours:
        t = by_layer[r["layer"]]
        row = {"layer": r["layer"]}
        for task in TASKS:
            row[f"{task}_ratio"] = r[f"{task}_ms"] / t[f"{task}_ms"]
            totals[task][0] += r[f"{task}_ms"]
            totals[task][1] += t[f"{task}_ms"]
        rows.append(row)
    return {"layers": rows, "totals": {task: {"ours_ms": a, "theirs_ms": b, "ratio": a / b}
                                       for task, (a, b) in totals.items()}}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--framework", choices=("tf", "torch"), default="tf")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--layers", default="", help='comma-separated layer names, e.g. "D conv5,G up8" (default: all)')
    p.add_argument("--compare", default=None, help="a JSON this script printed with --framework torch")
    args = p.parse_args()
    results, versions = (bench_tf if args.framework == "tf" else bench_torch)(args.batch, args.warmup, args.steps, args.layers)
    out = {"benchmark": f"pix2pix convolutions per layer ({args.framework})", **machine_info(), **versions,
           "batch": args.batch, "results": results}
    if args.compare:
        with open(args.compare) as f:
            out["tf_over_torch"] = compare(results, json.load(f)["results"])
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
