"""PAN vs pix2pix: the cost of the feature pyramid and its six discriminators.

Prints one JSON object. Builds the networks of ``recipes/pan_cityscapes.py``
(U-Net-256 with instance norm, 70x70 PatchGANs) for each ``--variants`` entry
(``complete`` = 3 conditional high-frequency + 3 low-frequency discriminators
and the perceptual term; ``pix2pix`` = one conditional PatchGAN, same
networks) and times the training step `tfi2i.train` runs, on synthetic tensors
(no input pipeline). ``pyramid_s`` times `PAN.prepare` alone: the pyramids of
x, y and G(x), built once per step and shared by both objectives.

    python benchmarks/bench_pan.py                                  # 256x256, batch 1, XLA off
    python benchmarks/bench_pan.py --variants complete,no_low,cnn,pix2pix --xla off,on
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "recipes")]
import pan_cityscapes as recipe  # noqa: E402
from bench_pix2pix import report, time_calls  # noqa: E402

from tfi2i.pan import PAN  # noqa: E402
from tfi2i.train import make_distributed_step  # noqa: E402


def bench(variant, size, batch, xla, warmup, steps):
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    gan = recipe.build(recipe.config(variant))
    gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5))
    rng = np.random.default_rng(0)
    data = {k: tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)), tf.float32) for k in ("x", "y")}
    step = make_distributed_step(gan, tf.distribute.get_strategy(), jit=xla)
    median, times = time_calls(lambda: {k: v.numpy() for k, v in step(data).items()}, warmup, steps)
    out = {"variant": variant, "size": size, "batch": batch, "xla": xla, "median_s": median, "min_s": min(times),
           "steps_per_s": 1 / median, "images_per_s": batch / median,
           "discriminators": len(gan.discriminator) if isinstance(gan.discriminator, list) else 1,
           "parameters": int(sum(np.prod(v.shape) for v in gan.trainable_variables))}
    if isinstance(gan, PAN):
        prep = tf.function(lambda d: tf.nest.flatten(gan.prepare(d, d["y"])), jit_compile=xla)
        out["pyramid_s"], _ = time_calls(lambda: [t.numpy() for t in prep(data)], warmup, steps)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default="complete,pix2pix", help=f"comma-separated, of {','.join(recipe.VARIANTS)}")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--xla", default="off", help="off, on or off,on")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args()
    flag = {"off": False, "on": True}
    results = [bench(v, args.size, args.batch, flag[x], args.warmup, args.steps)
               for x in args.xla.split(",") for v in args.variants.split(",")]
    base = {r["xla"]: r["median_s"] for r in results if r["variant"] == "pix2pix"}
    for r in results:
        if r["xla"] in base:
            r["vs_pix2pix"] = r["median_s"] / base[r["xla"]]
    report("PAN (recipes/pan_cityscapes.py) training step vs pix2pix, same networks", results)


if __name__ == "__main__":
    main()
