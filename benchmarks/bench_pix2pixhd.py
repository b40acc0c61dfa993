"""pix2pixHD speed, memory and FLOPs: our generators beside NVIDIA's PyTorch ones, on the same machine.

Prints one JSON object (`bench_pix2pix.report`'s shape). For each generator
and size: the median inference time after warm-up, peak memory and the
FLOPs of one forward pass (`tfi2i.flops.count_flops`), beside NVIDIA's
PyTorch generator rebuilt in the same run (`reference_torch_pix2pixhd.py`)
and the ratio ``tf / torch`` (time and peak memory).

* ``global``: ``global_generator({"x": 35, "instances": 1}, ngf=64,
  n_downsample=4)``, pix2pixHD's 512p Cityscapes model (36 input channels:
  35 one-hot labels + the edge map);
* ``local``: ``local_enhancer({"x": 35, "instances": 1}, ngf=32)``, the 1024p
  model (global part ngf 64, 4 downsamplings, on the input pooled once).

Every configuration runs in its own subprocess (this script with ``--one``,
or the PyTorch reference under ``--torch-python``), so ``peak_host_mb`` is
that configuration's ``ru_maxrss`` (``baseline_host_mb``: the same after the
model and inputs are built, before the first call; the difference is what
running it took) and, on a GPU, ``peak_gpu_mb`` TF's / torch's allocator peak.
With ``--tensor-peak`` the TF children take their CPU tensors from TF's BFC
allocator (the one TF uses on a GPU) and report its peak, ``peak_tensor_mb``:
the bytes of tensors live at once, without the process's other memory.
``--memory-profile DIR`` adds, for training, one profiled step: its
``memory_profile`` (`memory_profile.summary`) names the ops whose outputs are
live at that peak.
A configuration that fails or runs past ``--timeout`` is reported with its error.

    python benchmarks/bench_pix2pixhd.py                                   # all sizes, both models
    python benchmarks/bench_pix2pixhd.py --models global --sizes 512x256,1024x512 --repeats 3
    python benchmarks/bench_pix2pixhd.py --models local --sizes 1024x512,2048x1024 --repeats 3,2 \\
        --torch-python /path/to/venv-with-torch/bin/python
    python benchmarks/bench_pix2pixhd.py --train 2048x1024 --models local --sizes none   # does training fit 11 GB?

``--train WxH`` adds one training step per model at that size: G, the
two-scale multi-scale D (``num_D 2``, ``getIntermFeat``), LSGAN + D feature
matching (10) + VGG (10, random VGG-19 weights) losses and both Adam updates,
i.e. `tfi2i.pix2pixhd.Pix2PixHD.train_step` through `tfi2i.train`'s step,
in float32 at batch 1. On a GPU its ``peak_gpu_mb`` answers whether
2048x1024 training fits an 11 GB card.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench_pix2pix import peak_gpu_mb, peak_host_mb, peak_tensor_mb, report, time_calls  # noqa: E402
import memory_profile  # noqa: E402
from machine import child_json  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
INPUTS = {"x": 35, "instances": 1}  # Cityscapes: 35 labelIds one-hot + the instance edge map
SIZES = "512x256,1024x512,2048x1024"


def parse_size(text):
    """``"WxH"`` -> ``(W, H)``."""
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def build_generator(model):
    from tfi2i.networks import pix2pixhd as nets

    if model == "global":
        return nets.global_generator(INPUTS, ngf=64, n_downsample=4, n_blocks=9)
    if model == "local":
        return nets.local_enhancer(INPUTS, ngf=32)
    raise ValueError(f"unknown model {model!r}: global or local")


def generator_flops(g, w, h, batch=1):
    from tfi2i.flops import count_flops

    return count_flops(g, {name: (h, w, c) for name, c in INPUTS.items()}, batch=batch)


def make_inputs(w, h, batch, one_hot=True):
    """Random Cityscapes-like inputs: label ids (one-hot when `one_hot`), a sparse edge map, a target image."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    ids = rng.integers(0, INPUTS["x"], (batch, h, w, 1)).astype(np.int32)
    x = tf.one_hot(ids[..., 0], INPUTS["x"]) if one_hot else tf.constant(ids)
    edges = tf.constant((rng.uniform(size=(batch, h, w, 1)) > 0.9).astype(np.float32))
    y = tf.constant(rng.uniform(-1, 1, (batch, h, w, 3)).astype(np.float32))
    return {"x": x, "instances": edges}, y


def run_infer(model, w, h, batch, xla, warmup, repeats):
    import tensorflow as tf

    g = build_generator(model)
    inputs, _ = make_inputs(w, h, batch)
    fn = tf.function(lambda i: g(i, training=False), jit_compile=xla)
    baseline = peak_host_mb()
    median, times = time_calls(lambda: fn(inputs)["y"].numpy(), warmup, repeats)
    flops = generator_flops(g, w, h, batch)
    return {"params": g.count_params(), "flops": flops, "baseline_host_mb": baseline,
            "median_s": median, "min_s": min(times), "times_s": times, "achieved_gflops_per_s": flops / median / 1e9}


def build_train_model(model, d_channels=39):
    """`tfi2i.pix2pixhd.Pix2PixHD` with pix2pixHD's defaults: num_D 2, lambda_feat 10 for both feature terms."""
    import keras

    from tfi2i.contract import Contract, InputSpec, OutputSpec
    from tfi2i.networks import pix2pixhd as nets
    from tfi2i.networks.vgg import vgg19_features
    from tfi2i.pix2pixhd import Pix2PixHD

    keras.utils.set_random_seed(0)
    g = build_generator(model)
    contract = Contract(inputs=(InputSpec("x", "labels", num_classes=INPUTS["x"]), InputSpec("instances", "instances")),
                        outputs=(OutputSpec("y", 3),), multiple=16 * (2 if model == "local" else 1), tileable=False,
                        why_not_tileable="instance norm")
    gan = Pix2PixHD(g, nets.multiscale_discriminator(d_channels, 64, 3, 2),
                    {"g_gan": 1.0, "g_feat": 10.0, "g_vgg": 10.0, "d_real": 0.5, "d_fake": 0.5}, n_layers_d=3,
                    vgg_factory=lambda: vgg19_features(None), local_prefix=nets.local_prefix(1), contract=contract)
    gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5))
    return gan


def run_train(model, w, h, batch, xla, warmup, repeats, profile_dir=None):
    import tensorflow as tf

    from tfi2i.flops import count_flops
    from tfi2i.train import make_distributed_step

    gan = build_train_model(model)
    inputs, y = make_inputs(w, h, batch, one_hot=False)
    data = {**inputs, "y": y}
    step = make_distributed_step(gan, tf.distribute.get_strategy(), jit=xla)
    baseline = peak_host_mb()
    median, times = time_calls(lambda: {k: v.numpy() for k, v in step(data).items()}, warmup, repeats)
    profiled = {}
    if profile_dir:  # one more step, under the profiler
        profiled["memory_profile"] = memory_profile.summary(memory_profile.profile(
            lambda: {k: v.numpy() for k, v in step(data).items()}, profile_dir))
    d_flops = [count_flops(d, (h >> k, w >> k, 39), batch=batch) for k, d in enumerate(gan.discriminators)]
    forward = {"G": generator_flops(gan.generator, w, h, batch), "D_one_pass": sum(d_flops),
               "VGG_one_pass": count_flops(gan.vgg, (h, w, 3), batch=batch)}
    return {"params": gan.generator.count_params(), "d_params": sum(d.count_params() for d in gan.discriminators),
            "forward_flops": forward,
            "forward_flops_total": forward["G"] + 3 * forward["D_one_pass"] + 2 * forward["VGG_one_pass"],
            "baseline_host_mb": baseline, "median_s": median, "min_s": min(times), "times_s": times, **profiled}


def run_one(args):
    """The ``--one`` child: one configuration in this process; prints its JSON on the last line."""
    import tensorflow as tf

    w, h = parse_size(args.one_size)
    run = (run_infer if args.one_task == "infer" else
           lambda *a: run_train(*a, profile_dir=args.memory_profile))
    result = run(args.one_model, w, h, args.batch, args.xla == "on", args.warmup, args.one_repeats)
    result.update({"framework": "tf", "tensorflow": tf.__version__, "model": args.one_model, "task": args.one_task,
                   "width": w, "height": h, "batch": args.batch, "xla": args.xla == "on", "warmup": args.warmup,
                   "repeats": args.one_repeats, "peak_host_mb": peak_host_mb(), "peak_gpu_mb": peak_gpu_mb(),
                   "peak_tensor_mb": peak_tensor_mb()})
    print(json.dumps(result))


def compare(model, task, w, h, repeats, args):
    load_before = os.getloadavg()[0]
    tf_cmd = [sys.executable, os.path.abspath(__file__), "--one-model", model, "--one-task", task,
              "--one-size", f"{w}x{h}", "--one-repeats", str(repeats), "--warmup", str(args.warmup),
              "--batch", str(args.batch), "--xla", args.xla]
    if task == "train" and args.memory_profile:
        tf_cmd += ["--memory-profile", os.path.join(args.memory_profile, f"{model}_{w}x{h}")]
    env = memory_profile.child_env(args)
    entry = {"model": model, "task": task, "size": f"{w}x{h}", "batch": args.batch,
             "tf": child_json(tf_cmd, timeout=args.timeout, env=env)}
    print(f"[bench_pix2pixhd] {model} {task} {w}x{h} tf: {entry['tf'].get('median_s', entry['tf'].get('error'))}",
          file=sys.stderr, flush=True)
    if args.torch_python != "none":
        t_cmd = [args.torch_python, os.path.join(HERE, "reference_torch_pix2pixhd.py"), "--model", model,
                 "--task", task, "--size", f"{w}x{h}", "--repeats", str(repeats), "--warmup", str(args.warmup),
                 "--batch", str(args.batch)]
        entry["torch"] = child_json(t_cmd, timeout=args.timeout)
        print(f"[bench_pix2pixhd] {model} {task} {w}x{h} torch: "
              f"{entry['torch'].get('median_s', entry['torch'].get('error'))}", file=sys.stderr, flush=True)
        a, b = entry["tf"], entry["torch"]
        if "median_s" in a and "median_s" in b:
            entry["tf_over_torch"] = {
                "time": a["median_s"] / b["median_s"], "min_time": a["min_s"] / b["min_s"],
                "peak_host_mb": a["peak_host_mb"] / b["peak_host_mb"],
                # what running it added over the built model and inputs (the frameworks' own footprints differ)
                "run_host_mb": (a["peak_host_mb"] - a["baseline_host_mb"])
                / max(b["peak_host_mb"] - b["baseline_host_mb"], 1e-9),
                "params_equal": a["params"] == b["params"]}
            if a.get("peak_gpu_mb") and b.get("peak_gpu_mb"):
                entry["tf_over_torch"]["peak_gpu_mb"] = a["peak_gpu_mb"] / b["peak_gpu_mb"]
    # other processes on the host distort the timings: the 1-minute load average before and after
    entry["load_average_1m"] = [load_before, os.getloadavg()[0]]
    return entry


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="global,local", help="comma-separated: global, local")
    p.add_argument("--sizes", default=SIZES, help="comma-separated W x H inference sizes ('none': no inference)")
    p.add_argument("--repeats", default="3", help="timed runs after warm-up: one number, or one per size")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--xla", choices=("off", "on"), default="off")
    p.add_argument("--train", default=None, metavar="WxH", help="also time one training step per model at this size")
    p.add_argument("--train-repeats", type=int, default=2)
    p.add_argument("--torch-python", default=sys.executable,
                   help="python with torch for the reference ('none' skips it; default: this interpreter)")
    memory_profile.add_arguments(p)
    p.add_argument("--timeout", type=int, default=1800, help="seconds per configuration (one subprocess)")
    # one configuration in this process (what the parent starts)
    p.add_argument("--one-model", default=None, help=argparse.SUPPRESS)
    p.add_argument("--one-task", default="infer", help=argparse.SUPPRESS)
    p.add_argument("--one-size", default=None, help=argparse.SUPPRESS)
    p.add_argument("--one-repeats", type=int, default=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one_model:
        return run_one(args)
    models = [m for m in args.models.split(",") if m]
    sizes = [] if args.sizes == "none" else [parse_size(s) for s in args.sizes.split(",")]
    repeats = [int(r) for r in args.repeats.split(",")]
    if len(repeats) == 1:
        repeats = repeats * len(sizes)
    if len(repeats) != len(sizes):
        p.error(f"--repeats: one number or one per size ({len(sizes)}), got {args.repeats}")
    results = []
    for model in models:
        for (w, h), r in zip(sizes, repeats):
            results.append(compare(model, "infer", w, h, r, args))
        if args.train:
            w, h = parse_size(args.train)
            results.append(compare(model, "train", w, h, args.train_repeats, args))
    report("pix2pixHD generators (global ngf 64 / 4 down; local enhancer ngf 32), TF vs NVIDIA PyTorch", results)


if __name__ == "__main__":
    main()
