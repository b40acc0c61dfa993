"""The benchmarks run as documented and print JSON that says what they ran on (not their timings: no timing
assertions in tests)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def bench(script, *args, timeout=300):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    for key in ("cpu_model", "isa", "cpus", "thread_env", "tensorflow", "intra_op_threads", "onednn", "results"):
        assert key in out, key
    # what TensorFlow says it runs, not the variable: unset, TF decides from the CPU (off on AVX2, on with VNNI/AMX)
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS") in ("0", "1"):
        assert out["onednn"] is (os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1")
    else:
        assert out["onednn"] in (True, False)
    assert "avx2" in out["isa"] or not pathlib.Path("/proc/cpuinfo").exists() or "avx2" not in open(
        "/proc/cpuinfo").read()
    return out


def test_optimizer_benchmark():
    out = bench("bench_optimizer.py", "--variables", "6", "--steps", "1")
    res = out["results"]
    assert res["variables"] == 6 and set(res) >= {"fused", "per_variable", "keras_adam"}
    assert all(res[k]["trace_s"] > 0 and res[k]["step_ms"] > 0 for k in ("fused", "per_variable", "keras_adam"))


@pytest.mark.slow
def test_pix2pix_inference_benchmark_and_profile_both_decoder_forms():
    out = bench("bench_pix2pix.py", "--tasks", "infer", "--sizes", "256", "--infer-batches", "1", "--xla", "off",
                "--transposed", "native,subpixel", "--steps", "1", "--warmup", "0", "--width", "8")
    assert [r["transposed"] for r in out["results"]] == ["native", "subpixel (frozen)"]
    assert all(r["width"] == 8 for r in out["results"])
    assert all(r["task"] == "inference" and r["median_s"] > 0 for r in out["results"])
    prof = bench("profile_pix2pix.py", "--task", "infer", "--size", "256", "--steps", "1", "--warmup", "1",
                 "--transposed", "subpixel", "--width", "8")["results"][0]
    types = {row["type"] for row in prof["by_type"]}
    # the frozen sub-pixel decoder ran: forward convolutions only (with oneDNN, TF's default on AVX-512 CPUs, they
    # are named _MklNativeConv2D, _MklNativePadWithConv2D)
    assert any(t.endswith("Conv2D") for t in types) and not any("Conv2DBackpropInput" in t for t in types), types
    assert prof["total_self_ms_per_step"] > 0 and 0.9 < sum(r["share"] for r in prof["by_type"]) <= 1.0001


def test_conv_layers_benchmark_times_each_kernel_and_the_decoder_forms():
    out = bench("bench_conv_layers.py", "--layers", "D conv5,G up8", "--steps", "1", "--warmup", "0")
    rows = {r["layer"]: r for r in out["results"]}
    assert set(rows) == {"D conv5", "G up8"} and out["batch"] == 1
    assert all(r[f"{k}_ms"] > 0 for r in rows.values() for k in ("forward", "input_grad", "filter_grad"))
    assert rows["G up8"]["train_native_ms"] > 0 and rows["G up8"]["train_matmul_ms"] > 0
    assert "train_subpixel_ms" not in rows["D conv5"]  # the decoder forms: transposed layers only
    # a 1-filter convolution: its tap forms, not im2col (30x30 output)
    assert all(rows["D conv5"][f"train_{f}_ms"] > 0 for f in ("native", "taps", "shift_add"))
    assert "train_matmul_ms" not in rows["D conv5"]


def test_watch_measures_a_childs_peak_and_kills_past_the_guard():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from machine import watch

    grow = [sys.executable, "-c", "import time; x = bytearray(300 * 2**20); x[::4096] = b'1' * len(x[::4096]); "
                                  "time.sleep(0.5); print('done')"]
    run = watch(grow, poll_s=0.05)
    assert run["returncode"] == 0 and run["stdout"].strip() == "done" and run["killed"] is None
    assert run["peak_rss_mb"] >= 300
    run = watch(grow, max_rss_mb=100, poll_s=0.05)
    assert run["killed"] and "guard" in run["killed"] and run["returncode"] != 0


def test_memory_profile_replay_finds_the_peak_and_who_holds_it():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from memory_profile import MB, replay, summary

    def ev(t, alloc, addr, mb, in_use_mb, op="A"):
        return {"t_ps": t, "alloc": alloc, "addr": addr, "bytes": int(mb * MB), "in_use": int(in_use_mb * MB),
                "op": op, "region": "output", "shape": "[2]", "allocator": "bfc"}

    # 10 MB held before the call; the call makes a (4), b (2), frees a, makes c (5): peak 17 MB with b and c live,
    # not 16 MB with a and b; a buffer from before (addr 99) freed at the end
    events = [ev(1, True, 1, 4, 14, "a"), ev(2, True, 2, 2, 16, "b"), ev(3, False, 1, 4, 12, "a"),
              ev(4, True, 3, 5, 17, "gradient_tape/c/Conv2DBackpropInput"), ev(5, False, 99, 3, 14, "w")]
    peak, live = replay(events)
    assert peak == 17 * MB and sorted(e["op"] for e in live) == ["b", "gradient_tape/c/Conv2DBackpropInput"]
    s = summary(events)
    assert s["peak_mb"] == 17 and s["in_use_at_start_mb"] == 10
    assert s["made_by_the_call_live_at_peak_mb"] == 7 and s["held_from_before_mb"] == 10
    assert [o["op"] for o in s["live_at_peak_top_ops"]] == ["gradient_tape/c/Conv2DBackpropInput", "b"]
    assert s["live_at_peak_by_scope_mb"] == {"c": 5, "b": 2}  # a gradient counts under its forward op's scope


def test_memory_profile_of_a_real_call_names_its_ops():
    """In a child with TF's BFC allocator on the CPU: a [512, 512] float32 product (1 MiB) live at the peak."""
    code = (
        "import json, sys; sys.path.insert(0, 'benchmarks')\n"
        "import tensorflow as tf\n"
        "from memory_profile import profile, summary\n"
        "x = tf.ones([512, 512])\n"
        "f = tf.function(lambda x: tf.reduce_sum(tf.matmul(x, x) * 2.0))\n"
        "f(x)\n"
        "s = summary(profile(lambda: f(x).numpy(), sys.argv[1]))\n"
        "print(json.dumps(s))\n")
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([sys.executable, "-c", code, tmp], capture_output=True, text=True, cwd=REPO,
                              timeout=120, env={**os.environ, "TF_CPU_ALLOCATOR_USE_BFC": "true"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = json.loads(proc.stdout.strip().splitlines()[-1])
    assert s["events"] > 0 and s["held_from_before_mb"] >= 1.0  # x, made before the call
    top = s["live_at_peak_top_ops"][0]
    assert "MatMul" in top["op"] and abs(top["mb"] - 1.0) < 0.01 and "[512,512]" in top["shapes"]
