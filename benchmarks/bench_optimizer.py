"""TorchAdam's fused update against Keras' per-variable loop: graph-building, first-call and step time.

Prints one JSON object (`bench_pix2pix.report`'s shape). The variables are
``--variables`` 3x3x8x8 tensors (264 is the count of a pix2pix GAN's
generator plus discriminator); the update is traced inside one
``tf.function`` as in a training step.

    python benchmarks/bench_optimizer.py --variables 264 --steps 20
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras.src.backend.tensorflow.optimizer import TFOptimizer  # noqa: E402

from bench_pix2pix import report  # noqa: E402
from tfi2i.optimizers import TorchAdam  # noqa: E402


class PerVariableTorchAdam(TorchAdam):
    """TorchAdam through Keras' loop over `update_step` (the form before the fused kernel)."""

    _distributed_tf_update_step = TFOptimizer._distributed_tf_update_step


def measure(opt, n, steps):
    variables = [keras.Variable(np.full((3, 3, 8, 8), 0.1, "float32")) for _ in range(n)]
    opt.build(variables)

    @tf.function
    def step():
        opt.apply([tf.ones_like(v) * 0.01 for v in variables], variables)

    t = time.perf_counter()
    step.get_concrete_function()
    trace = time.perf_counter() - t
    t = time.perf_counter()
    step()
    first = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return {"trace_s": round(trace, 3), "first_call_s": round(first, 3),
            "step_ms": round(1000 * (time.perf_counter() - t) / steps, 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variables", type=int, default=264)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    results = {}
    for name, cls in (("fused", TorchAdam), ("per_variable", PerVariableTorchAdam),
                      ("keras_adam", keras.optimizers.Adam)):
        results[name] = measure(cls(2e-4, beta_1=0.5, beta_2=0.999), args.variables, args.steps)
    results["build_ratio_fused_vs_per_variable"] = round(
        (results["fused"]["trace_s"] + results["fused"]["first_call_s"])
        / (results["per_variable"]["trace_s"] + results["per_variable"]["first_call_s"]), 3)
    report("optimizer", {"variables": args.variables, **results})


if __name__ == "__main__":
    main()
