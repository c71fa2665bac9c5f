"""What the benchmark ran on: the processor, its cores, the libraries and the BLAS behind each of them."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np
import torch

import dlbook


def cpu_model() -> str:
    """The processor's name from /proc/cpuinfo (Linux), else what `platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int | None:
    """The cores this process may run on (a container or taskset may allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def numpy_blas() -> str:
    """The BLAS library NumPy calls for matrix products, with its version and kernel architecture."""
    from threadpoolctl import threadpool_info

    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            details = [pool.get("internal_api"), pool.get("version"), pool.get("architecture")]
            return " ".join(str(detail) for detail in details if detail)
    return "unknown"


def torch_backends() -> str:
    """The CPU math libraries PyTorch was built with: MKL for BLAS, oneDNN for convolutions and more."""
    backends = {"MKL": torch.backends.mkl, "oneDNN": torch.backends.mkldnn}
    return ", ".join(name for name, backend in backends.items() if backend.is_available()) or "none"


def load_average() -> str:
    try:
        return " ".join(f"{load:.2f}" for load in os.getloadavg())
    except OSError:
        return "unknown"


def describe() -> dict[str, str]:
    """The machine and software, as label -> value, in the order they are printed."""
    return {
        "CPU": cpu_model(),
        "cores": f"{os.cpu_count()} logical, {usable_cores() or '?'} usable by this process",
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "NumPy": f"{np.__version__} (BLAS: {numpy_blas()})",
        "PyTorch": f"{torch.__version__} (backends: {torch_backends()})",
        "dlbook": dlbook.__version__,
        "load average at start (1, 5, 15 min)": load_average(),
    }
