"""Time per training step of every objective and encoder, relative to β-VAE (issue 11).

    python benchmarks/bench_objectives.py [--device auto] [--batch 64] [--steps 20]

Paper 003's setting: 64×64 dSprites images (procedural), H = 10, batch 64, conv64 network. Each
cell is the median over ``--steps`` repetitions of one ``objective.train_step`` on the same
batch (forward, backward, optimiser steps, an objective's auxiliary step included), after a
warm-up. Not a test: prints markdown.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from timing import device_name, timed

from vaetool.config import ModelConfig
from vaetool.data import load_dataset
from vaetool.device import resolve_device
from vaetool.models import ENCODERS, build_model
from vaetool.objectives import OBJECTIVES, TrainContext, build_objective


def step_seconds(objective: str, encoder: str, x: torch.Tensor, steps: int) -> float:
    torch.manual_seed(0)
    config = ModelConfig("conv64", (1, 64, 64), latents=10, encoder=encoder)
    model = build_model(config).to(x.device)
    context = TrainContext(442_368, 6_912, 1e-4, x.device)
    objective_ = build_objective(objective, {}, model, context)
    return timed(lambda: objective_.train_step(x), x.device, repeats=steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    device = resolve_device(args.device)
    encoders, objectives = ENCODERS.names(), OBJECTIVES.names()
    data = load_dataset("dsprites")
    x = data.images(np.arange(args.batch) * 997 % len(data)).to(device)
    print(f"device: {device_name(device)}; torch {torch.__version__}; batch {args.batch}\n")
    print("| objective | " + " | ".join(f"{e} encoder: ms/step (× β-VAE)" for e in encoders)
          + " |")  # fmt: skip
    print("| --- |" + " ---: |" * len(encoders))
    step_seconds("beta_vae", "paper", x, args.steps)  # warm-up of the whole process
    seconds = {(o, e): step_seconds(o, e, x, args.steps) for o in objectives
               for e in encoders}  # fmt: skip
    base = seconds["beta_vae", "paper"]
    for objective in objectives:
        cells = [f"{1000 * seconds[objective, e]:.1f} ({seconds[objective, e] / base:.2f}×)"
                 for e in encoders]  # fmt: skip
        print(f"| {objective} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
