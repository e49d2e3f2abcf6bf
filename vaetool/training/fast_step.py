"""The training step as the device runs it fastest: captured once as a CUDA graph, replayed.

At the papers' batch sizes (64-100) a step of these small networks is bound by ~60 kernel
launches, not by arithmetic. On CUDA, :class:`GraphedStep` runs the objective's whole step —
forward, backward, every optimiser (Adam built ``capturable`` and ``fused`` there) and the step
counter — a few times eagerly on a side stream (real steps: they train), then captures it once
into a ``torch.cuda.CUDAGraph`` and thereafter copies each batch into the graph's static input
and replays it: one launch per step, no host sync. The reparameterisation noise comes from the
CUDA generator, which graphs advance correctly on each replay. A batch of another size (the
epoch's last) runs eagerly. If capture fails (an objective with a host sync in its step) the
step says so once and stays eager.

``precision = "bf16"`` (vaetool.device.autocast, applied by the objective) runs the forward in
bfloat16 matmuls and convolutions; the loss terms and every reduction of them stay float32 and
the epoch sums float64.

:func:`make_step` is the one place that chooses: the graphed step on CUDA in one process, the
plain ``objective.train_step`` everywhere else (CPU, torchrun, or ``graph = False``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from vaetool import distributed
from vaetool.errors import VaetoolWarning
from vaetool.objectives import Objective

Step = Callable[[Tensor], dict[str, Tensor]]
WARMUP_STEPS = 3  # eager steps on a side stream before capture (allocator and cuBLAS warm-up)


def make_step(objective: Objective, device: torch.device, graph: bool = True) -> Step:
    """The step function the training loop calls for each batch."""
    if graph and device.type == "cuda" and not distributed.active():
        return GraphedStep(objective)
    return objective.train_step


class GraphedStep:
    """``objective.train_step`` replayed from a CUDA graph for batches of the captured shape."""

    def __init__(self, objective: Objective) -> None:
        self.objective = objective
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_x: Tensor | None = None
        self.static_terms: dict[str, Tensor] | None = None
        self.eager_steps = 0
        self.failed = False

    def __call__(self, x: Tensor) -> dict[str, Tensor]:
        if self.graph is not None and self.static_x is not None:
            if x.shape == self.static_x.shape:
                self.static_x.copy_(x)
                self.graph.replay()
                assert self.static_terms is not None
                return self.static_terms
            return self.objective.train_step(x)
        if self.failed:
            return self.objective.train_step(x)
        if self.eager_steps < WARMUP_STEPS:
            self.eager_steps += 1
            return self._side_stream_step(x)
        return self._capture_and_replay(x)

    def _side_stream_step(self, x: Tensor) -> dict[str, Tensor]:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            terms = self.objective.train_step(x)
        torch.cuda.current_stream().wait_stream(stream)
        return terms

    def _capture_and_replay(self, x: Tensor) -> dict[str, Tensor]:
        static_x = x.clone()
        graph = torch.cuda.CUDAGraph()
        step_before = self.objective.step.clone()
        try:
            for optimizer in self.objective.optimizers().values():
                optimizer.zero_grad(set_to_none=True)
            with torch.cuda.graph(graph):
                terms = self.objective.train_step(static_x)
        except Exception as err:  # any capture failure: stay eager, say why
            self.failed = True
            self.objective.step.copy_(step_before)
            warnings.warn(
                f"the {type(self.objective).__name__} step could not be captured as a CUDA "
                f"graph ({type(err).__name__}); training continues with the plain step",
                VaetoolWarning,
                stacklevel=3,
            )
            return self.objective.train_step(x)
        self.graph, self.static_x, self.static_terms = graph, static_x, terms
        graph.replay()  # capture records without running: this is the batch's real step
        return terms
