"""The fast step (issue 12): bf16 autocast trains to the fp32 losses' neighbourhood on a CPU; the
CPU falls back to the plain step; on CUDA the graphed step gives the plain step's losses for
every objective (skipped without CUDA)."""

from __future__ import annotations

import copy

import pytest
import torch

from vaetool.config import DataConfig, ModelConfig, TrainConfig
from vaetool.models import build_model
from vaetool.objectives import OBJECTIVES, TrainContext, build_objective
from vaetool.training.fast_step import GraphedStep, make_step
from vaetool.training.loop import run_session, start_session

CPU = torch.device("cpu")


def test_cpu_takes_the_plain_step() -> None:
    model = build_model(ModelConfig("mlp", (1, 8, 8), latents=3))
    objective = build_objective("beta_vae", {}, model, TrainContext(10, 1, 1e-3, CPU))
    assert make_step(objective, CPU, graph=True) == objective.train_step


def test_bf16_autocast_trains_near_fp32() -> None:
    data = DataConfig("mnist5k", subset=400)
    runs = {}
    for precision in ("fp32", "bf16"):
        config = TrainConfig(epochs=2, batch_size=50, precision=precision)
        session = start_session(data, config, ModelConfig(latents=4, hidden=64), "cpu")
        runs[precision] = run_session(session).history[-1].val["elbo"]
    assert runs["bf16"] == pytest.approx(runs["fp32"], rel=0.03)
    assert runs["bf16"] != runs["fp32"]  # autocast really changed the arithmetic


def test_bad_precision_is_refused(fails) -> None:
    assert "--precision 'fp8'" in fails("train", "--precision", "fp8")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_graphed_step_gives_the_plain_losses(name: str) -> None:
    device = torch.device("cuda")
    torch.manual_seed(0)
    config = ModelConfig("conv28", (1, 28, 28), latents=10)
    x = (torch.rand(12, 100, 1, 28, 28, device=device) > 0.5).float()
    losses = {}
    base = build_model(config).to(device)
    for graphed in (False, True):
        model = copy.deepcopy(base)
        objective = build_objective(name, {}, model, TrainContext(1200, 12, 1e-3, device))
        step = GraphedStep(objective) if graphed else objective.train_step
        torch.cuda.manual_seed(1)
        losses[graphed] = torch.stack([step(batch)["loss"].clone() for batch in x]).cpu()
        if graphed:
            assert step.graph is not None and not step.failed
    torch.testing.assert_close(losses[True], losses[False], rtol=1e-4, atol=1e-3)
