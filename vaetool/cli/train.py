"""`vaetool train` and `vaetool quickstart`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vaetool.cli._options import DeviceOpt, ForceOpt

DataOpt = Annotated[
    str,
    typer.Option(help="Dataset: mnist5k, idx:DIR, npz:FILE, folder:DIR, dsprites, dsprites:FILE."),
]
QUICKSTART_DIR = Path("vaetool-quickstart")


def train(
    data: DataOpt = "mnist5k",
    latents: Annotated[int, typer.Option(help="H, the number of latent factors.")] = 128,
    beta: Annotated[float, typer.Option(help="KL weight; 1 is the plain VAE.")] = 1.0,
    likelihood: Annotated[
        str, typer.Option(help="bernoulli or gaussian (fixed σ²).")
    ] = "bernoulli",
    sigma2: Annotated[float, typer.Option(help="σ² of the gaussian likelihood.")] = 1.0,
    epochs: Annotated[int, typer.Option(help="Passes over the training split.")] = 20,
    batch_size: Annotated[int, typer.Option(help="Minibatch size (paper: 100).")] = 100,
    lr: Annotated[
        float | None, typer.Option(help="Adam learning rate (default: paper's, by architecture)")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of weights, shuffling and noise.")] = 0,
    split_seed: Annotated[int, typer.Option(help="Seed of the 0.6/0.2/0.2 split.")] = 0,
    subset: Annotated[
        int | None, typer.Option(help="Train on a seeded sample of N images.")
    ] = None,
    device: DeviceOpt = "auto",
    out: Annotated[
        Path, typer.Option(help="Run folder for model.safetensors + history.csv.")
    ] = Path("vaetool-run"),
    force: ForceOpt = False,
) -> None:
    """Train a β-VAE with the papers' architecture for the data's image shape."""
    from vaetool.cli._training_view import run_training

    run_training(
        out,
        force,
        device,
        data=data,
        latents=latents,
        beta=beta,
        likelihood=likelihood,
        sigma2=sigma2,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        split_seed=split_seed,
        subset=subset,
    )


def quickstart(
    out: Annotated[Path, typer.Option(help="Run folder.")] = QUICKSTART_DIR,
    epochs: Annotated[int, typer.Option(help="Passes over the training split.")] = 30,
    beta: Annotated[float, typer.Option(help="KL weight; 1 is the plain VAE.")] = 1.0,
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
) -> None:
    """Train on the embedded MNIST digits; rank the factors, prune, traverse, write a report."""
    from vaetool.cli._quickstart_view import run_quickstart

    run_quickstart(out, force, device, beta=beta, epochs=epochs)
