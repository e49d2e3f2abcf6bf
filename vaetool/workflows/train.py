"""`vaetool train` as a typed request -> result function: a run folder on disk.

``OUT/model.safetensors`` (written atomically at the end) and ``OUT/history.csv`` (one row
appended and flushed per epoch, so a crash keeps the epochs done). The folder is checked before
any data is loaded, so a refusal to overwrite costs nothing.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import IO

from vaetool.checkpoint import save_checkpoint
from vaetool.config import DataConfig, TrainConfig
from vaetool.device import configure_threads
from vaetool.errors import CheckpointError
from vaetool.training import BatchCallback, Diverged, EpochRecord, Interrupted, TrainResult, train

CHECKPOINT_NAME = "model.safetensors"
PARTIAL_NAME = "model.partial.safetensors"  # the last finished epoch of a stopped run
HISTORY_NAME = "history.csv"
LOCK_NAME = ".vaetool-train.lock"
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
    """Check and lock the run folder, train (appending history.csv each epoch), save.

    A run that diverges or is interrupted keeps the weights of its last finished epoch in
    ``model.partial.safetensors`` (and raises, saying so); a run that fails before its first
    epoch leaves the folder as it was (and removes it if it created it).
    """
    configure_threads(request.threads)
    with RunFolder(request.out, request.force) as run:

        def record(epoch: EpochRecord) -> None:
            run.append(epoch)
            if on_epoch is not None:
                on_epoch(epoch)

        try:
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
        except (Diverged, Interrupted) as stop:
            raise _stopped(stop, run) from None
        checkpoint = run.save(result, CHECKPOINT_NAME)
        return TrainOutcome(result, checkpoint, run.folder / HISTORY_NAME)


def _stopped(stop: Diverged | Interrupted, run: RunFolder) -> Diverged | Interrupted:
    """The same stop, its message saying what was kept."""
    if stop.partial is None:
        kept = "no epoch finished, nothing was kept"
    else:
        path = run.save(stop.partial, PARTIAL_NAME)
        epochs = len(stop.partial.history)
        kept = (f"{run.folder / HISTORY_NAME} has epochs 1-{epochs} and {path} the weights of "
                f"epoch {epochs}; train again with --force (same --out) to start over")  # fmt: skip
    message = f"{stop.args[0]}; {kept}"
    return type(stop)(message, stop.history, stop.last_finite, stop.epoch)


class RunFolder:
    """A run folder held for one training run.

    Entering checks it (a file, or a run there without ``force``: refused), creates it and takes
    an exclusive lock (a second `vaetool train` into the same folder is refused while the first
    runs). The first finished epoch replaces an old run's files (with ``force``) and starts
    history.csv; each later epoch appends a flushed row. Leaving releases the lock and, if no
    epoch finished, removes what it created.
    """

    def __init__(self, out: Path, force: bool = False) -> None:
        self.folder, self.force = Path(out), force
        self._created: list[Path] = []
        self._lock: IO[bytes] | None = None
        self._history: IO[str] | None = None

    def __enter__(self) -> RunFolder:
        self._check()
        self._create()
        self._lock = _acquire(self.folder / LOCK_NAME)
        self._check()  # again: another run may have finished between the check and the lock
        return self

    def __exit__(self, *exc: object) -> None:
        if self._history is not None:
            self._history.close()
        if self._lock is not None:
            self._lock.close()
            (self.folder / LOCK_NAME).unlink(missing_ok=True)
        if self._history is None:
            for folder in reversed(self._created):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if empty

    def append(self, epoch: EpochRecord) -> None:
        """One history row, flushed; the first one clears an old run's files (``force``)."""
        if self._history is None:
            for name in (CHECKPOINT_NAME, PARTIAL_NAME):
                (self.folder / name).unlink(missing_ok=True)
            path = self.folder / HISTORY_NAME
            self._history = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115
            csv.writer(self._history).writerow(HISTORY_COLUMNS)
        csv.writer(self._history).writerow([_cell(v) for v in asdict(epoch).values()])
        self._history.flush()

    def save(self, result: TrainResult, name: str) -> Path:
        """Write ``result`` as ``name``; refuses if another process put a checkpoint there."""
        target = self.folder / name
        if target.exists():
            raise CheckpointError(
                f"--out {self.folder}: {name} appeared while training (another process writes "
                "this folder); nothing was overwritten"
            )
        return save_checkpoint(target, result.model, result.info)

    def _check(self) -> None:
        folder = self.folder
        if folder.exists() and not folder.is_dir():
            raise CheckpointError(f"--out {folder}: is a file; expected a folder for the run")
        taken = [n for n in (CHECKPOINT_NAME, HISTORY_NAME) if (folder / n).exists()]
        if taken and not self.force:
            raise CheckpointError(
                f"--out {folder}: already holds a run ({', '.join(taken)}); pass --force to "
                "overwrite it or choose another folder"
            )

    def _create(self) -> None:
        missing = [p for p in (self.folder, *self.folder.parents) if not p.exists()]
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            reason = err.strerror
            raise CheckpointError(
                f"--out {self.folder}: cannot create the folder ({reason})"
            ) from None
        self._created = list(reversed(missing))


def _acquire(path: Path) -> IO[bytes]:
    """An exclusive, non-blocking lock on ``path`` held until the returned handle closes."""
    handle = open(path, "ab")  # noqa: SIM115 (held for the run's life)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise CheckpointError(
            f"--out {path.parent}: another `vaetool train` is writing this run folder; wait for "
            "it or choose another --out"
        ) from None
    return handle


def _cell(value: object) -> object:
    return f"{value:.6g}" if isinstance(value, float) else value
