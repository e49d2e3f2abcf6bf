"""Data parallelism under ``torchrun`` (the one place that knows about process groups).

``torchrun --nproc_per_node N -m vaetool train …`` starts N processes with RANK, WORLD_SIZE and
LOCAL_RANK set; :func:`init_from_env` joins them into a process group (NCCL on CUDA, gloo on a
CPU). Then every minibatch of the global batch size is split between the ranks (rank r takes rows
r, r + N, … of it: :func:`part`), gradients are averaged over the ranks before each optimiser
step (:func:`average_gradients`, what DDP does), and the summed terms and q*'s sufficient
statistics are all-reduced (:func:`all_reduce_sum`). Only rank 0 writes files (:func:`is_main`).
Outside torchrun every function is a no-op for one process.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from vaetool.errors import ConfigError


def init_from_env(device: torch.device) -> None:
    """Join the torchrun process group if the environment names one (idempotent)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend)


def env_rank() -> int:
    """This process's rank from torchrun's environment (0 outside it), before any group."""
    return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def part() -> tuple[int, int]:
    """(rank, world size): (0, 1) outside torchrun."""
    return (dist.get_rank(), dist.get_world_size()) if active() else (0, 1)


def is_main() -> bool:
    return part()[0] == 0


def local_device(name: str) -> str:
    """Under torchrun a CUDA device is this process's own (cuda:LOCAL_RANK)."""
    if name in ("auto", "cuda") and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return name


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Σ over the ranks, in place (a no-op in one process)."""
    if active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast(tensor: torch.Tensor) -> torch.Tensor:
    """Rank 0's tensor on every rank, in place."""
    if active():
        dist.broadcast(tensor, src=0)
    return tensor


def average_gradients(params: list[torch.Tensor]) -> None:
    """Each gradient averaged over the ranks: one flat all-reduce."""
    if not active():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def refuse(what: str) -> None:
    """One clear error for what does not run data-parallel yet."""
    if active():
        raise ConfigError(f"{what} does not run under torchrun; run it in one process")
