"""pix2pix speed and memory: training step (batch 1 and 4), generator inference, peak memory.

Prints one JSON object. Uses the real networks (U-Net-256 with batch norm,
70x70 PatchGAN, lambda_L1 = 100) and the training step `tfi2i.train` runs, on
synthetic tensors (no input pipeline in the timing).

    python benchmarks/bench_pix2pix.py                     # XLA off and on, batch 1 and 4, 256x256
    python benchmarks/bench_pix2pix.py --sizes 256,512,1024 --batches 1,max --xla off,on --mixed off,on
    python benchmarks/bench_pix2pix.py --tasks infer --sizes 256,512,1024 --infer-batches 1,8 --xla off \
        --transposed native,subpixel                      # the decoder's two forms, same weights

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
import resource

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from machine import machine_info, tensorflow_onednn, time_calls  # noqa: E402
from tfi2i.gan import PairedGAN  # noqa: E402
from tfi2i.layers.transposed import freeze_for_inference, freezing_pays, resolve_implementation  # noqa: E402
from tfi2i.optimizers import TorchAdam  # noqa: E402
from tfi2i.networks import patchgan_discriminator, unet_generator  # noqa: E402
from tfi2i.train import make_distributed_step  # noqa: E402


def peak_host_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def peak_gpu_mb():
    if not tf.config.list_physical_devices("GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def peak_tensor_mb():
    """The CPU tensor allocator's peak (MB) when it is TF's BFC allocator (`machine.TENSOR_PEAK_ENV`), else None.

    The bytes of tensors live at once, as the allocator a GPU uses counts them: without the host process's
    own overheads (libraries, thread stacks, glibc's freed-but-kept pages) that ``peak_host_mb`` includes.
    """
    if os.environ.get("TF_CPU_ALLOCATOR_USE_BFC", "").lower() not in ("1", "true"):
        return None
    return tf.config.experimental.get_memory_info("CPU:0")["peak"] / 2**20


#: Networks' width (U-Net ngf = PatchGAN ndf); 64 is the paper's, ``--width`` makes it smaller for smoke runs.
WIDTH = 64


def build(mixed):
    keras.backend.clear_session()  # free the previous configuration's networks
    gc.collect()
    keras.mixed_precision.set_dtype_policy("mixed_float16" if mixed else "float32")
    keras.utils.set_random_seed(0)
    gan = PairedGAN(unet_generator("unet_256", WIDTH, "batch"), patchgan_discriminator(6, WIDTH, 3, "batch"),
                    {"g_gan": 1.0, "l1": 100.0, "d_real": 0.5, "d_fake": 0.5})
    gan.compile(TorchAdam(2e-4, beta_1=0.5), TorchAdam(2e-4, beta_1=0.5))  # the recipe's optim.adam=torch
    return gan


def tf_info():
    """`machine.machine_info` plus TensorFlow's and Keras' versions, TF's thread pools, oneDNN and GPUs."""
    return {**machine_info(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "onednn": tensorflow_onednn(),
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]}


def report(benchmark, results):
    """Prints the JSON every benchmark here prints: results plus machine, versions and peak memory."""
    print(json.dumps({
        "benchmark": benchmark, **tf_info(),
        "results": results, "peak_host_mb": peak_host_mb(), "peak_gpu_mb": peak_gpu_mb(),
    }, indent=2))


def largest_batch(size, xla, mixed, cap, transposed="auto"):
    """Doubles the batch until a training step fails with ResourceExhaustedError or `cap` is reached."""
    batch, ok = 1, 0
    while batch <= cap:
        try:
            bench_train(batch, size, xla, mixed, warmup=1, steps=1, transposed=transposed)
            ok = batch
            batch *= 2
        except tf.errors.ResourceExhaustedError:
            break
    return ok


def use_transposed(implementation):
    """Makes the next traced function use ``implementation`` for the decoder (`tfi2i.layers.transposed`)."""
    os.environ["TFI2I_TRANSPOSED_CONV"] = implementation


def bench_train(batch, size, xla, mixed, warmup, steps, transposed="auto"):
    use_transposed(transposed)
    gan = build(mixed)
    rng = np.random.default_rng(0)
    data = {k: tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)), tf.float32) for k in ("x", "y")}
    step = make_distributed_step(gan, tf.distribute.get_strategy(), jit=xla)
    median, times = time_calls(lambda: {k: v.numpy() for k, v in step(data).items()}, warmup, steps)
    return {"task": "train_step", "size": size, "batch": batch, "xla": xla, "mixed_precision": mixed,
            "transposed": resolve_implementation(), "median_s": median, "min_s": min(times), "steps_per_s": 1 / median, "images_per_s": batch / median,
            "ms_per_megapixel": 1000 * median / (batch * size * size / 1e6)}


def bench_infer(batch, size, xla, mixed, warmup, steps, transposed="auto"):
    use_transposed(transposed)
    gan = build(mixed)
    freeze_for_inference(gan.generator)  # as translate and export do (sub-pixel with TFI2I_TRANSPOSED_CONV=subpixel)
    g = tf.function(lambda x: gan.generator({"x": x}, training=False)["y"], jit_compile=xla)
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)), tf.float32)
    median, times = time_calls(lambda: g(x).numpy(), warmup, steps)
    return {"task": "inference", "size": size, "batch": batch, "xla": xla, "mixed_precision": mixed,
            "transposed": "subpixel (frozen)" if freezing_pays() else "native", "median_s": median, "min_s": min(times), "images_per_s": batch / median}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="256", help="comma-separated square image sizes")
    p.add_argument("--batches", default="1,4", help="comma-separated batch sizes; 'max' = largest that fits")
    p.add_argument("--max-batch", type=int, default=16, help="cap of the 'max' search")
    p.add_argument("--xla", default="off,on", help="off, on or off,on")
    p.add_argument("--mixed", default="off", help="off, on or off,on (float16 pays off on tensor-core GPUs only)")
    p.add_argument("--infer-batches", default="1", help="comma-separated inference batch sizes")
    p.add_argument("--transposed", default="auto",
                   help="decoder transposed convolutions: auto, native, subpixel or a comma list (one run each)")
    p.add_argument("--tasks", default="train,infer", help="train, infer or train,infer")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--width", type=int, default=64, help="ngf = ndf (64: the paper's networks; smaller for a smoke run)")
    args = p.parse_args()
    global WIDTH
    WIDTH = args.width
    flag = {"off": False, "on": True}
    results = []
    tasks = args.tasks.split(",")
    for size in [int(v) for v in args.sizes.split(",")]:
        for mixed in [flag[m] for m in args.mixed.split(",")]:
            for xla in [flag[x] for x in args.xla.split(",")]:
                for tr in args.transposed.split(","):
                    for b in args.batches.split(",") if "train" in tasks else []:
                        batch = largest_batch(size, xla, mixed, args.max_batch, tr) if b == "max" else int(b)
                        if batch:
                            results.append({**bench_train(batch, size, xla, mixed, args.warmup, args.steps, tr),
                                            "largest_batch_search": b == "max"})
                    for b in args.infer_batches.split(",") if "infer" in tasks else []:
                        results.append(bench_infer(int(b), size, xla, mixed, args.warmup, args.steps * 2, tr))
    report(f"pix2pix unet_256 + 70x70 PatchGAN (batch norm, width {WIDTH})", [{**r, "width": WIDTH} for r in results])


if __name__ == "__main__":
    main()
