"""A training run on disk: ``OUT/model.safetensors`` and ``OUT/history.csv``.

The run folder is checked before training starts, so a refusal to overwrite costs nothing, and
both files are written atomically at the end.
"""

from __future__ import annotations

import io
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from vaetool.atomic import write_atomic
from vaetool.checkpoint import save_checkpoint
from vaetool.errors import CheckpointError
from vaetool.training import TrainResult

CHECKPOINT_NAME = "model.safetensors"
HISTORY_NAME = "history.csv"


def prepare_run_dir(out: str | Path, force: bool = False) -> Path:
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


def history_frame(result: TrainResult) -> pd.DataFrame:
    return pd.DataFrame([asdict(r) for r in result.history])


def save_run(result: TrainResult, out: str | Path, force: bool = False) -> Path:
    """Write the checkpoint and the per-epoch history CSV; returns the checkpoint path."""
    folder = prepare_run_dir(out, force)
    buffer = io.StringIO()
    history_frame(result).to_csv(buffer, index=False, float_format="%.6g")
    checkpoint = save_checkpoint(
        folder / CHECKPOINT_NAME, result.model, result.info, overwrite=True
    )
    write_atomic(folder / HISTORY_NAME, buffer.getvalue().encode())
    return checkpoint
