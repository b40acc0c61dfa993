"""What a benchmark ran on, recorded in every JSON it prints, so figures from two machines are never compared blind.

No framework is imported here: the TensorFlow benchmarks and the PyTorch
references both call `machine_info` and add their own library's versions and
thread counts. `watch` runs a benchmark's child process and measures its peak
resident memory (one place for the /proc reading all benchmarks use).
"""

import json
import os
import platform
import subprocess
import threading
import time

ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16",
             "amx_tile", "amx_bf16", "amx_int8")
#: A child's environment for ``peak_tensor_mb`` (bench_pix2pix): TF's CPU tensors come from its BFC allocator, the
#: one TF uses on a GPU, which counts its peak (``get_memory_info("CPU:0")``); read only before TF is imported.
TENSOR_PEAK_ENV = {"TF_CPU_ALLOCATOR_USE_BFC": "true"}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                    "TF_ENABLE_ONEDNN_OPTS", "TFI2I_TRANSPOSED_CONV", "TFI2I_CONV", "TF_CPU_ALLOCATOR_USE_BFC")


def cpu_model_and_flags(cpuinfo="/proc/cpuinfo"):
    """``(model name, sorted ISA extensions of ISA_FLAGS present)`` from ``/proc/cpuinfo`` (Linux; else platform)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and value.strip():
                    model = value.strip()
                elif key == "flags":
                    flags = set(value.split())
                if key == "flags" and model:
                    break
    except OSError:
        pass
    return model, sorted(flag for flag in ISA_FLAGS if flag in flags)


def proc_status_mb(pid, field="VmRSS"):
    """A memory ``field`` of ``/proc/<pid>/status`` in MB (``VmRSS`` now, ``VmHWM`` peak); None where unreadable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def available_mb():
    """The host's ``MemAvailable`` in MB from ``/proc/meminfo`` (None where it cannot be read)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def watch(cmd, timeout=None, max_rss_mb=None, min_free_mb=0, cwd=None, env=None, poll_s=0.1):
    """Runs ``cmd`` to its end under time and memory guards; a dict of what happened.

    Keys: ``returncode``, ``stdout``, ``stderr``, ``wall_s``, ``peak_rss_mb`` (the
    child's own ``VmHWM``, polled while it runs: a child's ``ru_maxrss`` on Linux
    starts from the parent's at fork time), ``killed`` (None, or why it was
    killed: past ``timeout`` seconds, resident memory past ``max_rss_mb``, or the
    host's ``MemAvailable`` under ``min_free_mb``).
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
    out, err = [], []  # read in threads so a chatty child cannot block on a full pipe while we poll
    readers = [threading.Thread(target=lambda s=s, b=b: b.append(s.read()), daemon=True)
               for s, b in ((proc.stdout, out), (proc.stderr, err))]
    for r in readers:
        r.start()
    t0, killed, peak = time.monotonic(), None, 0.0
    while proc.poll() is None:
        rss = proc_status_mb(proc.pid, "VmRSS")
        peak = max(peak, proc_status_mb(proc.pid, "VmHWM") or 0.0, rss or 0.0)
        if timeout and time.monotonic() - t0 > timeout:
            killed = f"timed out after {timeout} s"
        elif max_rss_mb and rss is not None and rss > max_rss_mb:
            killed = f"killed: resident memory {rss:.0f} MB passed the {max_rss_mb / 1024:.1f} GB guard"
        elif min_free_mb and (free := available_mb()) is not None and free < min_free_mb:
            killed = (f"killed: host MemAvailable {free:.0f} MB fell under {min_free_mb / 1024:.1f} GB "
                      f"with the child at {rss or 0:.0f} MB resident")
        if killed:
            proc.kill()
            break
        time.sleep(poll_s)
    proc.wait()
    for r in readers:
        r.join(timeout=10)
    return {"returncode": proc.returncode, "stdout": "".join(out), "stderr": "".join(err),
            "wall_s": time.monotonic() - t0, "peak_rss_mb": peak or None, "killed": killed}


def child_json(cmd, **guards):
    """`watch` for a benchmark child that prints one JSON line: that JSON with ``wall_s``, or an error record."""
    run = watch(cmd, **guards)
    if run["killed"]:
        return {"error": run["killed"], "wall_s": run["wall_s"], "max_rss_seen_mb": run["peak_rss_mb"]}
    lines = [line for line in run["stdout"].splitlines() if line.startswith("{")]
    if run["returncode"] != 0 or not lines:
        return {"error": f"exit {run['returncode']}: {run['stderr'].strip()[-800:]}", "wall_s": run["wall_s"],
                "max_rss_seen_mb": run["peak_rss_mb"]}
    result = json.loads(lines[-1])
    result["wall_s"] = run["wall_s"]  # the whole child: import, build, trace, warm-up, timed calls
    return result


def time_calls(fn, warmup, steps):
    """``(median seconds, all times)`` of ``steps`` calls of ``fn`` after ``warmup`` untimed ones."""
    import statistics

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def tensorflow_onednn():
    """Whether TensorFlow runs its oneDNN kernels (convolutions, matmuls, ...) in this process; TF benchmarks only.

    Not the same as ``TF_ENABLE_ONEDNN_OPTS`` being unset: TensorFlow 2.21 decides the default from the CPU.
    On this project's AVX2 EPYC it is off unless the variable is 1 (then every convolution runs Eigen's
    contraction, which calls oneDNN only for small matrix products); on CPUs with AVX-512 VNNI / BF16 or AMX
    TensorFlow turns it on by itself (its 2.9 release notes). TF's own check, a private module: None if absent.
    """
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def machine_info():
    """CPU model, ISA extensions (AVX2 / AVX-512 / AMX), CPU count, thread settings, Python and NumPy versions."""
    import numpy

    model, isa = cpu_model_and_flags()
    return {
        "cpu_model": model, "isa": isa, "machine": platform.machine(), "cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "thread_env": {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ},
        "python": platform.python_version(), "numpy": numpy.__version__,
    }
