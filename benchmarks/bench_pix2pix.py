"""pix2pix speed and memory: training step (batch 1 and 4), generator inference, peak memory.

Prints one JSON object. Uses the real networks (U-Net-256 with batch norm,
70x70 PatchGAN, lambda_L1 = 100) and the training step `tfi2i.train` runs, on
synthetic tensors (no input pipeline in the timing).

    python benchmarks/bench_pix2pix.py                     # XLA off and on, batch 1 and 4, 256x256
    python benchmarks/bench_pix2pix.py --sizes 256,512,1024 --batches 1,max --xla off,on --mixed off,on

``max`` doubles the batch until the accelerator runs out of memory
(``ResourceExhaustedError``) or ``--max-batch`` is reached (on a CPU host the
cap is what stops it: the operating system, not TensorFlow, would end the
process). Each result carries ``ms_per_megapixel`` so the growth of step time
with pixel count can be read directly.
"""

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfi2i.gan import PairedGAN  # noqa: E402
from tfi2i.networks import patchgan_discriminator, unet_generator  # noqa: E402
from tfi2i.train import make_distributed_step  # noqa: E402


def peak_host_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def peak_gpu_mb():
    if not tf.config.list_physical_devices("GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def build(mixed):
    keras.backend.clear_session()  # free the previous configuration's networks
    gc.collect()
    keras.mixed_precision.set_dtype_policy("mixed_float16" if mixed else "float32")
    keras.utils.set_random_seed(0)
    gan = PairedGAN(unet_generator("unet_256", 64, "batch"), patchgan_discriminator(6, 64, 3, "batch"),
                    {"g_gan": 1.0, "l1": 100.0, "d_real": 0.5, "d_fake": 0.5})
    gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5))
    return gan


def report(benchmark, results):
    """Prints the JSON every benchmark here prints: results plus machine, versions and peak memory."""
    print(json.dumps({
        "benchmark": benchmark,
        "tensorflow": tf.__version__, "keras": keras.__version__, "machine": platform.machine(),
        "cpus": os.cpu_count(), "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "results": results, "peak_host_mb": peak_host_mb(), "peak_gpu_mb": peak_gpu_mb(),
    }, indent=2))


def time_calls(fn, warmup, steps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def largest_batch(size, xla, mixed, cap):
    """Doubles the batch until a training step fails with ResourceExhaustedError or `cap` is reached."""
    batch, ok = 1, 0
    while batch <= cap:
        try:
            bench_train(batch, size, xla, mixed, warmup=1, steps=1)
            ok = batch
            batch *= 2
        except tf.errors.ResourceExhaustedError:
            break
    return ok


def bench_train(batch, size, xla, mixed, warmup, steps):
    gan = build(mixed)
    rng = np.random.default_rng(0)
    data = {k: tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)), tf.float32) for k in ("x", "y")}
    step = make_distributed_step(gan, tf.distribute.get_strategy(), jit=xla)
    median, times = time_calls(lambda: {k: v.numpy() for k, v in step(data).items()}, warmup, steps)
    return {"task": "train_step", "size": size, "batch": batch, "xla": xla, "mixed_precision": mixed,
            "median_s": median, "min_s": min(times), "steps_per_s": 1 / median, "images_per_s": batch / median,
            "ms_per_megapixel": 1000 * median / (batch * size * size / 1e6)}


def bench_infer(batch, size, xla, mixed, warmup, steps):
    gan = build(mixed)
    g = tf.function(lambda x: gan.generator(x, training=False), jit_compile=xla)
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)), tf.float32)
    median, times = time_calls(lambda: g(x).numpy(), warmup, steps)
    return {"task": "inference", "size": size, "batch": batch, "xla": xla, "mixed_precision": mixed,
            "median_s": median, "min_s": min(times), "images_per_s": batch / median}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="256", help="comma-separated square image sizes")
    p.add_argument("--batches", default="1,4", help="comma-separated batch sizes; 'max' = largest that fits")
    p.add_argument("--max-batch", type=int, default=16, help="cap of the 'max' search")
    p.add_argument("--xla", default="off,on", help="off, on or off,on")
    p.add_argument("--mixed", default="off", help="off, on or off,on (float16 pays off on tensor-core GPUs only)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args()
    flag = {"off": False, "on": True}
    results = []
    for size in [int(v) for v in args.sizes.split(",")]:
        for mixed in [flag[m] for m in args.mixed.split(",")]:
            for xla in [flag[x] for x in args.xla.split(",")]:
                for b in args.batches.split(","):
                    batch = largest_batch(size, xla, mixed, args.max_batch) if b == "max" else int(b)
                    if batch:
                        results.append({**bench_train(batch, size, xla, mixed, args.warmup, args.steps),
                                        "largest_batch_search": b == "max"})
                results.append(bench_infer(1, size, xla, mixed, args.warmup, args.steps * 2))
    report("pix2pix unet_256 + 70x70 PatchGAN (batch norm)", results)


if __name__ == "__main__":
    main()
