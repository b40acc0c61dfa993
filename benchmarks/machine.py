"""What a benchmark ran on, recorded in every JSON it prints, so figures from two machines are never compared blind.

No framework is imported here: the TensorFlow benchmarks and the PyTorch
references both call `machine_info` and add their own library's versions and
thread counts.
"""

import os
import platform

ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16",
             "amx_tile", "amx_bf16", "amx_int8")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                    "TF_ENABLE_ONEDNN_OPTS", "TFI2I_TRANSPOSED_CONV")


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
