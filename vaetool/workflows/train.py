"""`vaetool train` as a typed request -> result function: a run folder on disk.

``OUT/model.safetensors`` (written atomically at the end) and ``OUT/history.csv`` (one row
appended and flushed per epoch, so a crash keeps the epochs done). The folder is checked before
any data is loaded, so a refusal to overwrite costs nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from vaetool.checkpoint import save_checkpoint
from vaetool.config import DataConfig, TrainConfig
from vaetool.device import configure_threads
from vaetool.errors import CheckpointError
from vaetool.training import BatchCallback, EpochRecord, TrainResult, train

CHECKPOINT_NAME = "model.safetensors"
HISTORY_NAME = "history.csv"
HISTORY_COLUMNS = tuple(f.name for f in fields(EpochRecord))


@dataclass(frozen=True)
class TrainRequest:
    """Train a β-VAE with the papers' architecture for the data's image shape into ``out``."""

    out: Path
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    latents: int = 128
    likelihood: str = "bernoulli"
    sigma2: float = 1.0
    threads: int | None = None  # CPU threads for torch (None: torch's default)
    force: bool = False
    device: str = "auto"


@dataclass(frozen=True, eq=False)
class TrainOutcome:
    result: TrainResult
    checkpoint: Path
    history: Path


def train_run(
    request: TrainRequest,
    on_batch: BatchCallback | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainOutcome:
    """Check the run folder, train (appending history.csv each epoch), save the checkpoint."""
    configure_threads(request.threads)
    folder = prepare_run_dir(request.out, request.force)
    history_path = folder / HISTORY_NAME
    with open(history_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, HISTORY_COLUMNS)
        writer.writeheader()

        def record(epoch: EpochRecord) -> None:
            writer.writerow({k: _cell(v) for k, v in asdict(epoch).items()})
            handle.flush()
            if on_epoch is not None:
                on_epoch(epoch)

        result = train(
            request.data,
            request.train,
            latents=request.latents,
            likelihood=request.likelihood,
            sigma2=request.sigma2,
            device=request.device,
            on_batch=on_batch,
            on_epoch=record,
        )
    checkpoint = save_checkpoint(
        folder / CHECKPOINT_NAME, result.model, result.info, overwrite=True
    )
    return TrainOutcome(result, checkpoint, history_path)


def prepare_run_dir(out: Path, force: bool = False) -> Path:
    """Create ``out`` if needed; refuse if it already holds a run, unless ``force``."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"--out {folder}: is a file; expected a folder for the run")
    taken = [name for name in (CHECKPOINT_NAME, HISTORY_NAME) if (folder / name).exists()]
    if taken and not force:
        raise CheckpointError(
            f"--out {folder}: already holds a run ({', '.join(taken)}); pass --force to overwrite "
            "it or choose another folder"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CheckpointError(
            f"--out {folder}: cannot create the folder ({err.strerror})"
        ) from None
    return folder


def _cell(value: object) -> object:
    return f"{value:.6g}" if isinstance(value, float) else value
