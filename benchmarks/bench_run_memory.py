"""Peak host memory of real training runs, beside the benchmark processes and the PyTorch references.

A benchmark process holds the networks, one step's tensors and the optimizer
state; a real run adds the input pipeline, checkpoints, sample grids,
evaluation and the export. Each configuration runs in its own process
(`machine.watch`: the child's own ``VmHWM``), one after the other:

* ``pix2pix`` -- ``recipes/pix2pix_facades.py`` on the real facades pairs
  (256x256, batch 1, ``--steps``), once with evaluation and export at the end
  and once without them; ``bench_pix2pix.py --tasks train --batches 1``
  (networks and step only); the PyTorch reference's step
  (``reference_torch_pix2pix.py``, with ``--torch-python``).
* ``pix2pixhd`` -- ``recipes/pix2pixhd_cityscapes.py`` (its default task,
  512p: the global generator at 1024x512 with two discriminators, feature
  matching and VGG-19 with random weights, as no ImageNet file can be
  downloaded here; the cost is the same) on the 8 real Cityscapes triples,
  and NVIDIA's PyTorch step at the same size (``reference_torch_pix2pixhd.py
  --task train``).

    python benchmarks/bench_run_memory.py --torch-python /work/torchvenv/bin/python
    python benchmarks/bench_run_memory.py --runs pix2pix --steps 10

Prints one JSON object: per configuration the peak resident memory and wall
time, and the ratios ours / PyTorch.
"""

import argparse
import json
import os
import sys
import tempfile

from machine import machine_info, watch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DATA = os.environ.get("TFI2I_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))


def measure(name, cmd, timeout, max_rss_mb):
    run = watch(cmd, timeout=timeout, max_rss_mb=max_rss_mb, min_free_mb=1024, cwd=REPO)
    row = {"run": name, "command": " ".join(os.path.relpath(c, REPO) if c.startswith(REPO) else c for c in cmd),
           "peak_rss_mb": run["peak_rss_mb"], "wall_s": run["wall_s"]}
    if run["killed"] or run["returncode"]:
        row["error"] = run["killed"] or f"exit {run['returncode']}: {run['stderr'].strip()[-800:]}"
    print(f"[bench_run_memory] {name}: {row['peak_rss_mb']:.0f} MB, {row['wall_s']:.0f} s"
          + (f" ({row['error'][:200]})" if "error" in row else ""), file=sys.stderr, flush=True)
    return row


def pix2pix_runs(args, workroot):
    py, steps = sys.executable, str(args.steps)
    recipe = [py, os.path.join(REPO, "recipes", "pix2pix_facades.py"), "--data", os.path.join(DATA, "facades_train"),
              "--steps", steps, "--set", "train.log_every=1"]
    runs = [
        ("pix2pix run (train + eval + export)", recipe + ["--workdir", os.path.join(workroot, "p2p_full")]),
        ("pix2pix run (train only)", recipe + ["--workdir", os.path.join(workroot, "p2p_train"), "--set",
                                               "train.eval_at_end=false", "--set", "train.export_at_end=false"]),
        ("pix2pix benchmark step (networks + step)", [py, os.path.join(HERE, "bench_pix2pix.py"), "--tasks", "train",
                                                      "--batches", "1", "--xla", "off", "--steps", steps,
                                                      "--warmup", "1"]),
    ]
    if args.torch_python:
        runs.append(("pix2pix PyTorch reference step", [args.torch_python, os.path.join(HERE, "reference_torch_pix2pix.py"),
                                                        "--tasks", "train", "--batches", "1", "--steps", steps,
                                                        "--warmup", "1"]))
    return runs


def pix2pixhd_runs(args, workroot):
    py, steps = sys.executable, str(args.steps)
    runs = [("pix2pixHD 512p run (train only)", [
        py, os.path.join(REPO, "recipes", "pix2pixhd_cityscapes.py"), "--data", os.path.join(DATA, "cityscapes_fullres"),
        "--steps", steps, "--workdir", os.path.join(workroot, "hd"), "--set", "hd.vgg_weights=random",
        "--set", "train.eval_at_end=false", "--set", "train.export_at_end=false", "--set", "train.log_every=1"])]
    if args.torch_python:
        runs.append(("pix2pixHD 512p PyTorch reference step", [
            args.torch_python, os.path.join(HERE, "reference_torch_pix2pixhd.py"), "--model", "global",
            "--size", "1024x512", "--task", "train", "--warmup", "1", "--repeats", str(max(1, args.steps - 1))]))
    return runs


RUNS = {"pix2pix": pix2pix_runs, "pix2pixhd": pix2pixhd_runs}


def ratios(rows):
    """ours / PyTorch for each of our rows beside the reference row of the same model."""
    out = {}
    for model in ("pix2pix", "pix2pixHD 512p"):
        ours = [r for r in rows if r["run"].startswith(model + " ") and "error" not in r]
        ref = next((r for r in ours if "PyTorch" in r["run"]), None)
        if not ref:
            continue
        for r in ours:
            if r is not ref:
                out[f"{r['run']} / reference"] = r["peak_rss_mb"] / ref["peak_rss_mb"]
    return out


def versions(torch_python):
    """TensorFlow's and Keras' versions (without importing them) and, with a torch Python, torch's and its threads."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("tensorflow", "keras"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    if torch_python:
        run = watch([torch_python, "-c", "import torch; print(torch.__version__, torch.get_num_threads())"])
        if run["returncode"] == 0:
            out["torch"], out["torch_threads"] = run["stdout"].split()[:2]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", default="pix2pix,pix2pixhd", help=f"comma-separated: {', '.join(RUNS)}")
    p.add_argument("--steps", type=int, default=5, help="training steps of every run")
    p.add_argument("--torch-python", default=None, help="a Python with torch, for the references")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per run")
    p.add_argument("--max-rss-gb", type=float, default=20.0, help="kill a run whose resident memory passes this")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tfi2i_run_memory_") as workroot:
        for name in args.runs.split(","):
            for label, cmd in RUNS[name](args, workroot):
                rows.append(measure(label, cmd, args.timeout, args.max_rss_gb * 1024))
    print(json.dumps({"benchmark": "peak host memory of real runs", **machine_info(), **versions(args.torch_python), "steps": args.steps,
                      "results": rows, "peak_rss_ratios": ratios(rows)}, indent=2))


if __name__ == "__main__":
    main()
