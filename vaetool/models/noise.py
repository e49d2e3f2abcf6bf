"""Where the training noise comes from: every random draw a model or objective makes goes through
:func:`normal` or :func:`uniform`.

Normally these are ``torch.randn`` / ``torch.rand`` on torch's global generator. To train K
models as one batched model (``vaetool train --seeds``) each model's draws must be the ones its
separate run would make, so the draws are made outside ``torch.func.vmap`` and handed in:

* :func:`recording` returns zeros and notes each draw's kind and shape — the *plan* of one step
  (found once per batch size by a dry run, no generator touched);
* :func:`draw_plan` makes a plan's draws from one generator per model, in the separate run's
  order, and stacks them (K, ...);
* :func:`replaying` hands those tensors (slices, under vmap) back to the model, in order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch
from torch import Tensor

Draw = tuple[str, tuple[int, ...]]  # ("normal" | "uniform", shape)


@dataclass
class _Recorder:
    plan: list[Draw] = field(default_factory=list)


@dataclass
class _Replay:
    draws: Sequence[Tensor]
    next: int = 0


_SOURCE: ContextVar[_Recorder | _Replay | None] = ContextVar("vaetool_noise", default=None)


def _draw(kind: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
    source = _SOURCE.get()
    if source is None:
        make = torch.randn if kind == "normal" else torch.rand
        return make(shape, dtype=like.dtype, device=like.device)
    if isinstance(source, _Recorder):
        source.plan.append((kind, shape))
        return torch.zeros(shape, dtype=like.dtype, device=like.device)
    if source.next >= len(source.draws):
        raise RuntimeError("a step drew more noise than its recorded plan")
    value = source.draws[source.next]
    source.next += 1
    if tuple(value.shape) != shape:
        raise RuntimeError(f"noise draw {source.next}: shape {tuple(value.shape)}, planned {shape}")
    return value.to(like.dtype)


def normal(shape: tuple[int, ...], like: Tensor) -> Tensor:
    """ε ~ N(0, I) of ``shape`` with ``like``'s dtype and device."""
    return _draw("normal", tuple(shape), like)


def uniform(shape: tuple[int, ...], like: Tensor) -> Tensor:
    """u ~ U[0, 1) of ``shape`` with ``like``'s dtype and device."""
    return _draw("uniform", tuple(shape), like)


@contextmanager
def recording() -> Iterator[list[Draw]]:
    """Inside: draws are zeros; the list yielded fills with each draw's (kind, shape)."""
    recorder = _Recorder()
    token = _SOURCE.set(recorder)
    try:
        yield recorder.plan
    finally:
        _SOURCE.reset(token)


@contextmanager
def replaying(draws: Sequence[Tensor]) -> Iterator[None]:
    """Inside: the draws are ``draws``, in order (each must match its planned shape)."""
    token = _SOURCE.set(_Replay(draws))
    try:
        yield
    finally:
        _SOURCE.reset(token)


def draw_plan(
    plan: Sequence[Draw], generators: Sequence[torch.Generator] | int, device: torch.device
) -> list[Tensor]:
    """The plan's draws for K models, one (K, *shape) float32 tensor per draw.

    With one generator per model, model k's draws come from ``generators[k]`` in the plan's
    order — what its separate run draws (a loop over K: the price of that equality, paid only
    on the CPU). With an int K, each draw is one (K, *shape) call on the global generator
    (CUDA: the same distribution, no per-model loop).
    """
    out = []
    for kind, shape in plan:
        make = torch.randn if kind == "normal" else torch.rand
        if isinstance(generators, int):
            out.append(make((generators, *shape), device=device))
            continue
        gdev = generators[0].device
        out.append(torch.stack([make(shape, generator=g, device=gdev) for g in generators]))
    return [t.to(device) for t in out]
