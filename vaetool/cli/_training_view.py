"""Glue between the CLI and vaetool.training: progress bar, epoch lines, final summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.progress import Progress, TextColumn

from vaetool.cli import _console


def run_training(out: Path, force: bool, device: str, **options: Any) -> Path:
    """Validate options, check the run folder, train with a progress bar, save; return ckpt path."""
    from vaetool.config import DataConfig, TrainConfig
    from vaetool.run import prepare_run_dir, save_run
    from vaetool.training import train

    data = DataConfig(
        options.pop("data"), options.pop("split_seed", 0), subset=options.pop("subset", None)
    )
    train_keys = ("beta", "epochs", "batch_size", "seed", "lr")
    config = TrainConfig(**{k: options.pop(k) for k in train_keys if k in options})
    prepare_run_dir(out, force)
    with _progress() as progress:
        task = progress.add_task("epoch 1", total=None, stats="")

        def on_batch(epoch: int, batch: int, total: int, means: dict[str, float] | None) -> None:
            stats = None if means is None else _stats_text(means)
            kwargs = {} if stats is None else {"stats": stats}
            progress.update(task, description=f"epoch {epoch}/{config.epochs}", completed=batch,
                            total=total, **kwargs)  # fmt: skip

        def on_epoch(record: Any) -> None:
            progress.console.print(
                f"epoch {record.epoch:>3}  train ELBO {record.train_elbo:9.2f}  "
                f"val ELBO {record.val_elbo:9.2f}  recon {record.val_recon:8.2f}  "
                f"KL {record.val_kl:7.2f}  {record.images_per_s:8.0f} img/s"
            )

        result = train(data, config, device=device, on_batch=on_batch, on_epoch=on_epoch, **options)
    checkpoint = save_run(result, out, force=True)
    _console.out.print(f"checkpoint  {checkpoint}\nhistory     {checkpoint.parent / 'history.csv'}")
    return checkpoint


def _stats_text(means: dict[str, float]) -> str:
    return f"loss {means['loss']:.2f}  recon {means['recon']:.2f}  KL {means['kl']:.2f}"


def _progress() -> Progress:
    return _console.progress_bar(TextColumn("{task.fields[stats]}"))
