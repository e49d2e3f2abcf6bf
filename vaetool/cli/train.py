"""`vaetool train` and `vaetool quickstart`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vaetool.cli import _console
from vaetool.cli._options import DeviceOpt, ForceOpt

if TYPE_CHECKING:
    from vaetool.training import EpochRecord

DataOpt = Annotated[
    str,
    typer.Option(help="Dataset: mnist5k, idx:DIR, npz:FILE, folder:DIR, dsprites, dsprites:FILE."),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(help="CPU threads for torch (fewer can be faster on a busy machine).",
                 show_default="torch's default"),
]  # fmt: skip
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
        float | None,
        typer.Option(help="Adam learning rate.", show_default="the paper's, by architecture"),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of weights, shuffling and noise.")] = 0,
    split_seed: Annotated[int, typer.Option(help="Seed of the 0.6/0.2/0.2 split.")] = 0,
    subset: Annotated[
        int | None, typer.Option(help="Train on a seeded sample of N images.")
    ] = None,
    keep: Annotated[
        str, typer.Option(help="Weights to save: last (epoch) or best (validation ELBO).")
    ] = "last",
    threads: ThreadsOpt = None,
    device: DeviceOpt = "auto",
    out: Annotated[
        Path, typer.Option(help="Run folder for model.safetensors + history.csv.")
    ] = Path("vaetool-run"),
    force: ForceOpt = False,
) -> None:
    """Train a β-VAE with the papers' architecture for the data's image shape.

    Example: vaetool train --data mnist5k --epochs 20 --batch-size 25 --out runs/mnist
    """
    from vaetool.config import DataConfig, TrainConfig
    from vaetool.workflows import TrainRequest, train_run

    request = TrainRequest(
        out,
        DataConfig(data, split_seed, subset=subset),
        TrainConfig(beta=beta, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, keep=keep),
        latents,
        likelihood,
        sigma2,
        threads,
        force,
        device,
    )
    with training_display(epochs) as (on_batch, on_epoch, _):
        outcome = train_run(request, on_batch, on_epoch)
    _console.result_line(f"checkpoint  {outcome.checkpoint}\nhistory     {outcome.history}")
    if keep == "best":
        _console.note(f"kept the weights of epoch {outcome.result.kept_epoch} (best val ELBO)")


def quickstart(
    out: Annotated[Path, typer.Option(help="Run folder.")] = QUICKSTART_DIR,
    epochs: Annotated[int, typer.Option(help="Passes over the training split.")] = 30,
    beta: Annotated[float, typer.Option(help="KL weight; 1 is the plain VAE.")] = 1.0,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
) -> None:
    """Train on the embedded MNIST digits; rank the factors, prune, traverse, write a report.

    Example: vaetool quickstart --out my-first-run
    """
    from vaetool.cli.mi import emit_ranking
    from vaetool.cli.prune import emit_prune
    from vaetool.workflows import QuickstartRequest, quickstart

    request = QuickstartRequest(out, epochs, beta, threads, force, device)
    with training_display(epochs) as (on_batch, on_epoch, progress):
        result = quickstart(request, on_batch, on_epoch, progress)
    _console.result_line(f"checkpoint       {result.trained.checkpoint}")
    emit_ranking(result.ranked, "table", None, rows=10)
    emit_prune(result.pruned, "table", None)
    sheet = result.report.parent / "traversals.png"
    _console.result_line(f"traversal sheet  {sheet}\nreport           {result.report}")
    _console.note(f"next: vaetool traverse {result.trained.checkpoint} --factor N")


@contextmanager
def training_display(
    epochs: int,
) -> Iterator[tuple[Callable[..., None], Callable[[EpochRecord], None], Callable[..., None]]]:
    """A progress bar over each epoch's batches, one printed line per epoch (stderr), and a
    stage callback on the same display for the analyses that follow (quickstart)."""
    from rich.progress import TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.fields[stats]}"), TimeRemainingColumn())
    with _console.progress_bar(*columns) as progress:
        task = progress.add_task("epoch 1", total=None, stats="")

        def on_batch(epoch: int, batch: int, total: int, means: dict[str, float] | None) -> None:
            stats = {} if means is None else {"stats": _stats_text(means)}
            progress.update(task, description=f"epoch {epoch}/{epochs}", completed=batch,
                            total=total, **stats)  # fmt: skip

        def on_epoch(record: EpochRecord) -> None:
            progress.console.print(
                f"epoch {record.epoch:>3}  train ELBO {record.train_elbo:9.2f}  "
                f"val ELBO {record.val_elbo:9.2f}  recon {record.val_recon:8.2f}  "
                f"KL {record.val_kl:7.2f}  {record.images_per_s:8.0f} img/s"
            )

        def on_stage(stage: str, done: int, total: int | None) -> None:
            progress.update(task, visible=False)
            stages(stage, done, total)

        stages = _console.stage_callback(progress)
        yield on_batch, on_epoch, on_stage


def _stats_text(means: dict[str, float]) -> str:
    return f"loss {means['loss']:.2f}  recon {means['recon']:.2f}  KL {means['kl']:.2f}"
