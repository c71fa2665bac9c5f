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


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _workers_errors(stderr: str, lines: int) -> str:
    """The last lines the workers wrote before torchrun's own report of their failure (its
    traceback and summary, which say only which rank failed), then the report's first line."""
    text = stderr.strip().splitlines()
    report = next((i for i, line in enumerate(text) if "failed (exitcode" in line), len(text))
    workers = "\n".join(text[:report][-lines:])
    return workers + (f"\n[torchrun] {text[report].strip()}" if report < len(text) else "")


def launch(
    module: str, nproc: int, args: Sequence[str] = (), timeout: float = 300.0, tail_lines: int = 40
) -> subprocess.CompletedProcess:
    """Run `python -m torch.distributed.run --nproc-per-node nproc -m module *args` in a subprocess
    and wait for it: nproc workers on this machine, meeting at 127.0.0.1 on a free port, each with
    one thread (OMP_NUM_THREADS=1). Returns the CompletedProcess, its output captured as text.

    If a worker fails (or the run takes longer than `timeout` seconds), raises RuntimeError with the
    command and the last `tail_lines` lines of the workers' error output, the traceback included.
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
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as error:
        stderr = error.stderr.decode() if isinstance(error.stderr, bytes) else (error.stderr or "")
        raise RuntimeError(
            f"python {' '.join(command[1:])} did not finish within {timeout:.0f} s; the end of its error output:\n"
            f"{_tail(stderr, tail_lines)}"
        ) from None
    if result.returncode != 0:
        raise RuntimeError(
            f"python {' '.join(command[1:])} failed with exit status {result.returncode}; the end of the "
            f"workers' error output:\n{_workers_errors(result.stderr, tail_lines)}"
        )
    return result


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
