"""Starting distributed programs: from a notebook (`launch`) and inside each worker
(`init_distributed`).

torchrun (`python -m torch.distributed.run`) starts nproc_per_node copies of a program and tells each
one who it is through environment variables: RANK (0 .. WORLD_SIZE - 1, across all machines),
LOCAL_RANK (which process on this machine: which GPU it should use), WORLD_SIZE, and MASTER_ADDR and
MASTER_PORT, where rank 0 waits for the others to check in (the rendezvous). The same program then
runs unchanged on one laptop (gloo over the loopback interface, one CPU process per worker), on the
GPUs of one machine or on many machines (NCCL, one process per GPU): only the torchrun command
changes.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

from dlbook._validation import require_int

__all__ = ["DistributedContext", "free_port", "init_distributed", "launch"]


def free_port() -> int:
    """A TCP port on this machine that no program is listening on now (the operating system's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_TORCHRUN_LOG = re.compile(r"^[IWE]\d{4} [\d:.]+ \d+ torch/distributed/elastic/\S+\] ")  # torchrun's log lines
_TORCHRUN_STOPS = ("failed (exitcode", "death signal")  # its report of a failed or interrupted run


def _workers_errors(stderr: str, lines: int) -> str:
    """The last lines the workers wrote before torchrun's own report of their failure or of its
    interruption (its traceback and summary, which say only which rank failed), without torchrun's
    log lines, then the report's first line."""
    text = stderr.strip().splitlines()
    report = next((i for i, line in enumerate(text) if any(stop in line for stop in _TORCHRUN_STOPS)), len(text))
    workers = "\n".join([line for line in text[:report] if not _TORCHRUN_LOG.match(line)][-lines:])
    return workers + (f"\n[torchrun] {_TORCHRUN_LOG.sub('', text[report]).strip()}" if report < len(text) else "")


def _stop(process: subprocess.Popen) -> tuple[str, str]:
    """Stop torchrun and its workers: SIGTERM, on which torchrun terminates the workers it started
    (they run in sessions of their own, out of reach of a signal to torchrun's), then SIGKILL if it
    has not finished within 60 s. Returns what it wrote."""
    process.terminate()
    try:
        return process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()


def launch(
    module: str, nproc: int, args: Sequence[str] = (), timeout: float = 300.0, tail_lines: int = 40
) -> subprocess.CompletedProcess:
    """Run `python -m torch.distributed.run --nproc-per-node nproc -m module *args` in a subprocess
    and wait for it: nproc workers on this machine, meeting at 127.0.0.1 on a free port, each with
    one thread (OMP_NUM_THREADS=1). Returns the CompletedProcess, its output captured as text.

    If a worker fails, raises RuntimeError with the command and the last `tail_lines` lines of the
    workers' error output, the traceback included. If the run takes longer than `timeout` seconds
    (or the caller is interrupted), stops torchrun and all its workers first, so that none is left
    running, and raises RuntimeError with the end of their output.
    """
    if not isinstance(module, str) or not module:
        raise TypeError(f"module must be a module name such as 'dlbook.distributed.train', got {module!r}")
    nproc = require_int("nproc", nproc, minimum=1)
    args = [str(a) for a in args]
    command = [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes", "1", "--nproc-per-node", str(nproc),
        "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
        "-m", module, *args,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    shown = f"python {' '.join(command[1:])}"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _, stderr = _stop(process)
        raise RuntimeError(
            f"{shown} did not finish within {timeout:.0f} s and was stopped, its workers with it; the end of "
            f"the workers' error output:\n{_workers_errors(stderr, tail_lines)}"
        ) from None
    except BaseException:  # KeyboardInterrupt (a notebook's interrupt button): leave no worker behind
        _stop(process)
        raise
    if process.returncode != 0:
        raise RuntimeError(
            f"{shown} failed with exit status {process.returncode}; the end of the workers' error output:\n"
            f"{_workers_errors(stderr, tail_lines)}"
        )
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@dataclass(frozen=True)
class DistributedContext:
    """Who this process is: rank of world_size (local_rank on its machine), where it computes, and
    the backend of its process group ("gloo", "nccl", or None when it runs alone)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that prints and saves."""
        return self.rank == 0


def init_distributed() -> DistributedContext:
    """Join the process group that torchrun set up, if any: NCCL and the GPU cuda:LOCAL_RANK when
    CUDA is available, gloo and the CPU otherwise. Without torchrun's environment (RANK and
    WORLD_SIZE unset), the process runs alone: rank 0 of 1, no process group."""
    cuda = torch.cuda.is_available()
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        device = torch.device("cuda" if cuda else "cpu")
        return DistributedContext(0, 1, 0, device, None)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if cuda else "gloo"
    if cuda:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return DistributedContext(dist.get_rank(), dist.get_world_size(), local_rank, device, backend)
