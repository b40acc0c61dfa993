"""MSG U-Net against pix2pixHD: FLOPs, inference time and memory, one MSG U-Net training step.

MSG U-Net (Laxman et al.; ``../shared/papers/msg_unet.md``) claims, at
2048x1024: 1.28 TFLOPs against pix2pixHD's 3.32, half the inference memory
(4 GB of GPU memory against 8 GB) and an inference "nearly 2.5 times" faster.
This script measures those three things on our networks, on the machine it
runs on, and prints one JSON object (`bench_pix2pix.report`'s shape).

Models (``--models``, comma-separated):

* ``msg``: `tfi2i.networks.msg_unet.msg_unet_generator` with the recipe's
  defaults (`tfi2i.msg_unet.MSGSection`: widths ``default_widths(32, 5, 4, 512)``
  = 32, 64, 128, 256, 512, 512, 512, 512, 512; 5 scales, depth 4, decoder
  kernel 4, 2 encoder blocks per input level, batch norm) on a 3-channel
  segmented-RGB input. The timed function takes ``x`` only and makes
  ``x_2`` .. ``x_16`` with `tfi2i.data.augment.downscale` (what the model's
  contract does for translate / export), so its time includes the pyramid;
  ``flops`` counts the generator (the pooling is not a counted layer);
* ``hd_global3``: ``global_generator({"x": 3}, ngf=64, n_downsample=3)``
  (9 blocks): the network whose FLOPs at 2048x1024 are the paper's 3.32
  TFLOPs for pix2pixHD (3,325,915,299,840 with `tfi2i.flops.count_flops`);
* ``hd_global``: ``global_generator({"x": 35, "instances": 1}, ngf=64,
  n_downsample=4)``, pix2pixHD's 512p Cityscapes model (35 one-hot labels +
  the instance edge map);
* ``hd_local`` (optional): ``local_enhancer({"x": 35, "instances": 1},
  ngf=32)``, pix2pixHD's 1024p model.

Every configuration (model x size, and the training step) runs in its own
subprocess (this script with ``--one``), so its ``peak_host_mb`` is that
configuration's ``ru_maxrss``. The parent kills a child that runs past
``--timeout`` seconds, whose resident memory passes ``--max-rss-gb`` or
while the host's available memory is under ``--min-free-gb`` (both polled
from ``/proc`` every 0.2 s; the machine's guard, not a measurement),
and reports it with its error, as it does a child that fails.

    python benchmarks/bench_msg_unet.py --sizes 512x256,1024x512 --repeats 3
    python benchmarks/bench_msg_unet.py --models msg,hd_global3,hd_global --sizes 512x256,1024x512,2048x1024 \\
        --repeats 5,3,2
    python benchmarks/bench_msg_unet.py --models msg --sizes none --train 1024x512      # one training step
    python benchmarks/bench_msg_unet.py --models msg,hd_global3 --sizes 2048x1024 --mixed-precision --xla  # GPU

Output: ``results.configurations`` (one entry per child: ``model``, ``task``,
``size``, ``load_average_1m`` before and after, and the child's numbers under
``run``, or ``run.error``), ``results.ratios`` and
``results.paper_claims_2048x1024``. Fields of an inference ``run``:

* ``params``: the generator's parameter count; ``flops``: one forward pass at
  batch 1 (2 x MACs, `tfi2i.flops.count_flops`), ``tflops`` the same / 1e12;
* ``median_s`` / ``min_s`` / ``times_s``: wall time of one call of the
  generator (a ``tf.function``, ``training=False``, ``jit_compile`` with
  ``--xla``) at ``batch``, after ``--warmup`` untimed calls (the first traces),
  over ``repeats`` timed calls, the output copied to the host (``.numpy()``);
  ``achieved_gflops_per_s``: ``flops * batch / median_s``;
* ``baseline_host_mb``: ``ru_maxrss`` once the model and inputs are built,
  before the first call; ``peak_host_mb``: ``ru_maxrss`` at the end, so
  ``run_host_mb`` = the difference is what running it added (activations,
  the graph, the thread pools); ``peak_gpu_mb``: TensorFlow's GPU allocator
  peak (``get_memory_info("GPU:0")["peak"]``; null without a GPU), the
  number to hold against the paper's 4 GB / 8 GB; ``peak_tensor_mb`` (with
  ``--tensor-peak``): the same allocator's peak on a CPU (TF's BFC allocator
  serves the CPU's tensors, ``TF_CPU_ALLOCATOR_USE_BFC``): the bytes of
  tensors live at once, what a GPU would hold of them (without cuDNN's
  workspaces and the CUDA context); ``memory_profile`` (training, with
  ``--memory-profile DIR``): one more step profiled, the tensors live at
  that peak by the op that made them (`memory_profile.summary`);
* ``mixed_precision`` / ``xla``: the ``mixed_float16`` policy (set before
  building) and XLA (both for GPU runs; on a CPU float16 is slower).

``ratios`` (for each size, every ``hd_*`` model measured against ``msg`` in the
same run, ``hd / msg``): ``time`` (medians), ``min_time``, ``flops``,
``params``, ``peak_host_mb``, ``run_host_mb`` and, on a GPU, ``peak_gpu_mb``.
The paper's claim reads ``hd_global3 / msg`` (or ``hd_global / msg``)
``time >= 2.5`` at 2048x1024 and ``peak_gpu_mb`` about 2.

``--train WxH`` adds one MSG U-Net training step at that size, batch 1,
float32 (``--mixed-precision`` and ``--xla`` are honoured there too): the real
model, `tfi2i.msg_unet.build` on ``recipes/msg_unet_cityscapes.py``'s
``config()`` (``config_source`` says whether that recipe was used; when it is
missing or fails, an `MSGUNetConfig` with LSGAN and ``g_gan`` 1, ``g_feat``
10, ``g_vgg`` 0.25, ``d_real`` / ``d_fake`` 0.5), VGG-19 with random weights
in either case, compiled with `tfi2i.train.make_optimizers` (the run's two
Adams), and ``model.train_step`` in a ``tf.function``
(`tfi2i.train.make_distributed_step`, the step training runs) on
``{"x": [1, H, W, 3], "y": [1, H, W, 3]}``: the model makes the input and
target pyramids itself, runs G, all five PatchGANs (three passes each: D on
the detached fake, on the real pair, on the fake for G) and the 16-layer
VGG-19 on output and target at every scale, then both Adam updates. Its
fields: ``median_s`` / ``min_s`` / ``times_s`` (one step, after ``--warmup``
steps), ``params`` (G), ``d_params`` (the five Ds), ``forward_flops`` (G, the
five Ds once, VGG once, all at batch 1) and ``forward_flops_total`` (G + 3 x D
+ 2 x VGG: the forward passes of one step, no backward), ``losses`` (the
step's logged terms, to show it ran), the memory fields as above. The
training size needs ``H >= 512`` (``W`` likewise): the 70x70 PatchGAN on the
1/16 scale needs 32 pixels per side (at 512x256 ``D_y_16`` fails with a
negative dimension), so 1024x512 is the smallest.
"""

import argparse
import dataclasses
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

from bench_pix2pix import peak_gpu_mb, peak_host_mb, peak_tensor_mb, report, time_calls  # noqa: E402
import memory_profile  # noqa: E402
from machine import child_json  # noqa: E402

MODELS = ("msg", "hd_global3", "hd_global", "hd_local")
SIZES = "512x256,1024x512,2048x1024"
HD_INPUTS = {"x": 35, "instances": 1}  # Cityscapes: 35 labelIds one-hot + the instance edge map
SCALES = 5  # MSG U-Net's input / output scales (the recipe's msg.scales)
RECIPE = os.path.join(ROOT, "recipes", "msg_unet_cityscapes.py")


def parse_size(text):
    """``"WxH"`` -> ``(W, H)``."""
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


# ----------------------------------------------------------------- inference
def input_channels(model):
    """``{input name: channels}`` of the generator's raw inputs (MSG U-Net: ``x`` only, the pyramid is made)."""
    if model == "msg":
        return {"x": 3}
    if model == "hd_global3":
        return {"x": 3}
    return dict(HD_INPUTS)


def build_generator(model):
    from tfi2i.msg_unet import MSGSection
    from tfi2i.networks import msg_unet as msg_nets
    from tfi2i.networks import pix2pixhd as hd_nets

    if model == "msg":
        s = MSGSection()
        return msg_nets.msg_unet_generator(3, 3, s.level_widths, s.scales, s.depth, s.decoder_kernel,
                                           s.encoder_blocks, s.top_blocks_only, s.norm)
    if model == "hd_global3":
        return hd_nets.global_generator({"x": 3}, ngf=64, n_downsample=3, n_blocks=9)
    if model == "hd_global":
        return hd_nets.global_generator(HD_INPUTS, ngf=64, n_downsample=4, n_blocks=9)
    if model == "hd_local":
        return hd_nets.local_enhancer(HD_INPUTS, ngf=32)
    raise ValueError(f"unknown model {model!r}: one of {', '.join(MODELS)}")


def generator_flops(model, g, w, h, batch=1):
    from tfi2i.flops import count_flops
    from tfi2i.networks import msg_unet as msg_nets

    if model == "msg":
        shapes = {msg_nets.input_name(k): (h >> k, w >> k, 3) for k in range(SCALES)}
    else:
        shapes = {name: (h, w, c) for name, c in input_channels(model).items()}
    return count_flops(g, shapes, batch=batch)


def make_inputs(model, w, h, batch):
    """Random inputs: a segmented-RGB-like map in [-1, 1] (3-channel models) or one-hot labels + sparse edges."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    if input_channels(model) == {"x": 3}:
        # piecewise-constant colours (a segmented map), 16x16 blocks of 35 palette colours
        palette = rng.uniform(-1, 1, (35, 3)).astype(np.float32)
        ids = rng.integers(0, 35, (batch, h // 16 + 1, w // 16 + 1))
        ids = np.repeat(np.repeat(ids, 16, 1), 16, 2)[:, :h, :w]
        return {"x": tf.constant(palette[ids])}
    ids = rng.integers(0, HD_INPUTS["x"], (batch, h, w)).astype(np.int32)
    edges = (rng.uniform(size=(batch, h, w, 1)) > 0.9).astype(np.float32)
    return {"x": tf.one_hot(ids, HD_INPUTS["x"]), "instances": tf.constant(edges)}


def forward_fn(model, g, xla):
    """A ``tf.function`` of the raw inputs -> the full-size output ``y`` (MSG U-Net: pyramid made inside)."""
    import tensorflow as tf

    if model == "msg":
        from tfi2i.data.augment import downscale
        from tfi2i.networks import msg_unet as msg_nets

        def call(inputs):
            x = inputs["x"]
            pyramid = {msg_nets.input_name(k): downscale(x, 2**k) for k in range(SCALES)}
            return g(pyramid, training=False)["y"]
    else:
        def call(inputs):
            return g(inputs, training=False)["y"]
    return tf.function(call, jit_compile=xla)


def run_infer(model, w, h, batch, xla, warmup, repeats):
    g = build_generator(model)
    inputs = make_inputs(model, w, h, batch)
    fn = forward_fn(model, g, xla)
    baseline = peak_host_mb()
    median, times = time_calls(lambda: fn(inputs).numpy(), warmup, repeats)
    flops = generator_flops(model, g, w, h, batch=1)
    return {"params": g.count_params(), "flops": flops, "tflops": flops / 1e12, "baseline_host_mb": baseline,
            "median_s": median, "min_s": min(times), "times_s": times,
            "achieved_gflops_per_s": flops * batch / median / 1e9}


# ----------------------------------------------------------------- training
def train_config(recompute=False):
    """``(config, source)``: the recipe's ``config()``, VGG-19 weights random (same cost as ImageNet's)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("msg_unet_cityscapes_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = module.config()
    cfg = dataclasses.replace(cfg, msg=dataclasses.replace(cfg.msg, vgg_weights="random", recompute=recompute))
    return cfg, ("recipes/msg_unet_cityscapes.py:config() (msg.vgg_weights=random, msg.recompute="
                 + ("true)" if recompute else "false)"))


def build_train_model(cfg):
    import keras

    from tfi2i.msg_unet import build
    from tfi2i.train import make_optimizers

    keras.utils.set_random_seed(0)
    model = build(cfg)
    try:
        g_opt, d_opt = make_optimizers(cfg, 1)
        optimizers = f"tfi2i.train.make_optimizers (optim.adam={cfg.optim.adam})"
    except Exception as e:  # noqa: BLE001
        g_opt, d_opt = keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5)
        optimizers = f"keras.optimizers.Adam(2e-4, beta_1=0.5) (make_optimizers failed: {type(e).__name__}: {e})"
    model.compile(g_opt, d_opt)
    return model, optimizers


def run_train(model_name, w, h, batch, xla, warmup, repeats, recompute=False, profile_dir=None):
    import numpy as np
    import tensorflow as tf

    from tfi2i.flops import count_flops
    from tfi2i.train import make_distributed_step

    if model_name != "msg":
        raise ValueError(f"--train is MSG U-Net's training step (model msg), not {model_name!r}")
    cfg, source = train_config(recompute)
    model, optimizers = build_train_model(cfg)
    scales = cfg.msg.scales
    x = make_inputs("msg", w, h, batch)["x"]
    y = tf.constant(np.random.default_rng(1).uniform(-1, 1, (batch, h, w, 3)).astype(np.float32))
    data = {"x": x, "y": y}
    step = make_distributed_step(model, tf.distribute.get_strategy(), jit=xla)
    baseline = peak_host_mb()
    logs = {}

    def one():
        logs.update({k: float(v.numpy()) for k, v in step(data).items()})

    median, times = time_calls(one, warmup, repeats)
    profiled = {}
    if profile_dir:  # one more step, under the profiler
        profiled["memory_profile"] = memory_profile.summary(memory_profile.profile(one, profile_dir))
    c_in = cfg.generator.input_channels + cfg.generator.output_channels
    d_flops = [count_flops(d, (h >> k, w >> k, c_in), batch=1) for k, d in enumerate(model.discriminators)]
    vgg_flops = [count_flops(model.vgg, (h >> k, w >> k, 3), batch=1) for k in range(len(model.discriminators))
                 if min(h >> k, w >> k) >= 16] if model.vgg is not None else []
    forward = {"G": generator_flops("msg", model.generator, w, h), "D_one_pass": sum(d_flops),
               "VGG_one_pass": sum(vgg_flops)}
    return {"config_source": source, "optimizers": optimizers, "loss_weights": dict(cfg.loss.weights),
            "judged": cfg.msg.judged, "vgg_layers": cfg.msg.vgg_layers,
            "params": model.generator.count_params(),
            "d_params": sum(d.count_params() for d in model.discriminators),
            "forward_flops": forward,
            "forward_flops_total": forward["G"] + 3 * forward["D_one_pass"] + 2 * forward["VGG_one_pass"],
            "baseline_host_mb": baseline, "median_s": median, "min_s": min(times), "times_s": times,
            "losses": logs, "scales": scales, **profiled}


def run_one(args):
    """The ``--one-model`` child: one configuration in this process; prints its JSON on the last line."""
    import keras

    if args.mixed_precision:
        keras.mixed_precision.set_dtype_policy("mixed_float16")
    import tensorflow as tf

    w, h = parse_size(args.one_size)
    if args.one_task == "infer":
        result = run_infer(args.one_model, w, h, args.batch, args.xla, args.warmup, args.one_repeats)
    else:
        result = run_train(args.one_model, w, h, args.batch, args.xla, args.warmup, args.one_repeats,
                           recompute=args.recompute, profile_dir=args.memory_profile)
    result.update({"tensorflow": tf.__version__, "model": args.one_model, "task": args.one_task, "width": w,
                   "height": h, "batch": args.batch, "xla": args.xla, "mixed_precision": args.mixed_precision,
                   "warmup": args.warmup, "repeats": args.one_repeats, "peak_host_mb": peak_host_mb(),
                   "peak_gpu_mb": peak_gpu_mb(), "peak_tensor_mb": peak_tensor_mb()})
    result["run_host_mb"] = result["peak_host_mb"] - result["baseline_host_mb"]
    print(json.dumps(result))


# ----------------------------------------------------------------- parent
def measure(model, task, w, h, repeats, args):
    load_before = os.getloadavg()[0]
    cmd = [sys.executable, os.path.abspath(__file__), "--one-model", model, "--one-task", task,
           "--one-size", f"{w}x{h}", "--one-repeats", str(repeats), "--warmup", str(args.warmup),
           "--batch", str(args.batch)]
    cmd += ["--xla"] * args.xla + ["--mixed-precision"] * args.mixed_precision + ["--recompute"] * args.recompute
    if task == "train" and args.memory_profile:
        cmd += ["--memory-profile", os.path.join(args.memory_profile, f"{model}_{w}x{h}")]
    env = memory_profile.child_env(args)
    run = child_json(cmd, timeout=args.timeout, max_rss_mb=args.max_rss_gb * 1024,
                     min_free_mb=args.min_free_gb * 1024, env=env)
    print(f"[bench_msg_unet] {model} {task} {w}x{h}: "
          f"{run.get('median_s', run.get('error'))} s, peak {run.get('peak_host_mb', run.get('max_rss_seen_mb'))} MB",
          file=sys.stderr, flush=True)
    # other processes on the host distort the timings: the 1-minute load average before and after
    return {"model": model, "task": task, "size": f"{w}x{h}", "batch": args.batch, "run": run,
            "load_average_1m": [load_before, os.getloadavg()[0]]}


def ratios(results):
    """``hd / msg`` per size for every ``hd_*`` model measured beside ``msg``."""
    infer = {(e["model"], e["size"]): e["run"] for e in results if e["task"] == "infer" and "median_s" in e["run"]}
    out = []
    for (model, size), hd in infer.items():  # the order measured: by size, then model
        msg = infer.get(("msg", size))
        if model == "msg" or msg is None:
            continue
        entry = {"size": size, "ratio": f"{model} / msg", "time": hd["median_s"] / msg["median_s"],
                 "min_time": hd["min_s"] / msg["min_s"], "flops": hd["flops"] / msg["flops"],
                 "params": hd["params"] / msg["params"], "peak_host_mb": hd["peak_host_mb"] / msg["peak_host_mb"],
                 "run_host_mb": hd["run_host_mb"] / max(msg["run_host_mb"], 1e-9)}
        if hd.get("peak_gpu_mb") and msg.get("peak_gpu_mb"):
            entry["peak_gpu_mb"] = hd["peak_gpu_mb"] / msg["peak_gpu_mb"]
        out.append(entry)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="msg,hd_global3,hd_global", help=f"comma-separated: {', '.join(MODELS)}")
    p.add_argument("--sizes", default=SIZES, help="comma-separated W x H inference sizes ('none': no inference)")
    p.add_argument("--repeats", default="5,3,2", help="timed calls after warm-up: one number, or one per size")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls first (the first one traces)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--xla", action="store_true", help="jit_compile the inference function / the training step")
    p.add_argument("--mixed-precision", action="store_true",
                   help="mixed_float16 policy set before building (GPU runs; slower on a CPU)")
    p.add_argument("--train", default=None, metavar="WxH", help="also time one MSG U-Net training step at this size")
    p.add_argument("--train-repeats", type=int, default=2)
    p.add_argument("--recompute", action="store_true",
                   help="training with msg.recompute=true (G's and VGG-19's blocks recomputed in the backward pass)")
    memory_profile.add_arguments(p)
    p.add_argument("--timeout", type=int, default=900, help="seconds per configuration (one subprocess)")
    p.add_argument("--max-rss-gb", type=float, default=18.0,
                   help="kill a configuration whose resident memory passes this (0: no limit)")
    p.add_argument("--min-free-gb", type=float, default=6.0,
                   help="kill a configuration when the host's available memory falls under this (0: no limit)")
    # one configuration in this process (what the parent starts)
    p.add_argument("--one-model", default=None, help=argparse.SUPPRESS)
    p.add_argument("--one-task", default="infer", help=argparse.SUPPRESS)
    p.add_argument("--one-size", default=None, help=argparse.SUPPRESS)
    p.add_argument("--one-repeats", type=int, default=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one_model:
        return run_one(args)
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        p.error(f"--models: unknown {', '.join(unknown)} (valid: {', '.join(MODELS)})")
    sizes = [] if args.sizes == "none" else [parse_size(s) for s in args.sizes.split(",")]
    repeats = [int(r) for r in args.repeats.split(",")]
    if len(repeats) == 1:
        repeats = repeats * len(sizes)
    if sizes and len(repeats) != len(sizes):
        p.error(f"--repeats: one number or one per size ({len(sizes)}), got {args.repeats}")
    results = []
    for (w, h), r in zip(sizes, repeats):
        for model in models:
            results.append(measure(model, "infer", w, h, r, args))
    if args.train:
        w, h = parse_size(args.train)
        results.append(measure("msg", "train", w, h, args.train_repeats, args))
    report_args = {"paper_claims_2048x1024": {"msg_tflops": 1.28, "pix2pixhd_tflops": 3.32, "msg_gpu_gb": 4,
                                              "pix2pixhd_gpu_gb": 8, "speedup": 2.5},
                   "ratios": ratios(results)}
    report("MSG U-Net vs pix2pixHD generators: FLOPs, inference time and memory (+ MSG U-Net training step)",
           {"configurations": results, **report_args})


if __name__ == "__main__":
    main()
