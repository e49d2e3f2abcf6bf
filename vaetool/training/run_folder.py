"""A run folder on disk, held for one training run:

- ``history.csv``: one row appended and flushed per epoch (the objective's terms, train_* and
  val_*), so a crash keeps the epochs done;
- ``resume.safetensors``: the run's whole state, written atomically after every epoch
  (vaetool.training.run_state), removed when the run finishes;
- ``model.safetensors``: written atomically when the run finishes (``model.partial.safetensors``:
  the last finished epoch of a run that stopped);
- ``.vaetool-train.lock``: held while a process trains it.
"""

from __future__ import annotations

import contextlib
import csv
from pathlib import Path
from typing import IO

from vaetool.errors import CheckpointError
from vaetool.store.atomic import cannot_write
from vaetool.store.checkpoint import save_checkpoint
from vaetool.store.locks import try_hold
from vaetool.training.session import EpochRecord, TrainResult

CHECKPOINT_NAME = "model.safetensors"
PARTIAL_NAME = "model.partial.safetensors"  # the last finished epoch of a stopped run
RESUME_NAME = "resume.safetensors"
HISTORY_NAME = "history.csv"
LOCK_NAME = ".vaetool-train.lock"


class RunFolder:
    """A run folder held for one training run.

    Entering checks it (a file, or a run there without ``force``: refused; with ``resume``, a
    resumable state is required instead), creates it and takes an exclusive lock (a second
    `vaetool train` into the same folder is refused while the first runs). The first finished
    epoch replaces an old run's files (with ``force``) and starts history.csv; each later epoch
    appends a flushed row. Leaving releases the lock and, if no epoch finished, removes what it
    created.
    """

    def __init__(self, out: Path, force: bool = False, resume: bool = False) -> None:
        self.folder, self.force, self.resume = Path(out), force, resume
        self._created: list[Path] = []
        self._lock: IO[bytes] | None = None
        self._history: IO[str] | None = None
        self._columns: list[str] | None = None

    def check(self) -> None:
        """The refusals of :meth:`__enter__`, read-only (torchrun ranks that do not write)."""
        self._check()

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
            if not self.resume:
                for name in (CHECKPOINT_NAME, PARTIAL_NAME):
                    (self.folder / name).unlink(missing_ok=True)
            self._open_history([epoch])
        else:
            self._write(epoch)

    def rewrite_history(self, history: list[EpochRecord]) -> None:
        """history.csv from a resumed state's records (a kill between the state and the row
        may have left it one epoch short)."""
        if history:
            self._open_history(history)

    def _open_history(self, records: list[EpochRecord]) -> None:
        path = self.folder / HISTORY_NAME
        try:
            self._history = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115
            self._columns = list(records[0].row())
            csv.writer(self._history).writerow(self._columns)
        except OSError as err:
            raise cannot_write(path, err) from None
        for record in records:
            self._write(record)

    def _write(self, epoch: EpochRecord) -> None:
        assert self._history is not None and self._columns is not None
        row = epoch.row()
        try:
            csv.writer(self._history).writerow([_cell(row[c]) for c in self._columns])
            self._history.flush()
        except OSError as err:  # a full disk: the row is lost, the resumable state is kept
            raise cannot_write(self.folder / HISTORY_NAME, err) from None

    def save(self, result: TrainResult, name: str) -> Path:
        """Write ``result`` as ``name``; refuses if another process put a checkpoint there."""
        target = self.folder / name
        if target.exists() and not (self.resume and name == PARTIAL_NAME):
            raise CheckpointError(
                f"‹out› {self.folder}: {name} appeared while training (another process writes "
                "this folder); nothing was overwritten"
            )
        return save_checkpoint(
            target, result.model, result.info, objective=result.objective, overwrite=True
        )

    def _check(self) -> None:
        folder = self.folder
        if folder.exists() and not folder.is_dir():
            raise CheckpointError(f"‹out› {folder}: is a file; expected a folder for the run")
        if self.resume:
            self._check_resumable()
            return
        taken = [n for n in (CHECKPOINT_NAME, HISTORY_NAME) if (folder / n).exists()]
        if taken and not self.force:
            raise CheckpointError(
                f"‹out› {folder}: already holds a run ({', '.join(taken)}); pass ‹force› to "
                "overwrite it, ‹resume› to continue it, or choose another folder"
            )

    def _check_resumable(self) -> None:
        folder = self.folder
        if (folder / CHECKPOINT_NAME).exists():
            raise CheckpointError(f"‹resume› {folder}: the run finished; nothing to resume")
        if not (folder / RESUME_NAME).is_file():
            raise CheckpointError(
                f"‹resume› {folder}: no {RESUME_NAME} (a run saves it after each epoch); "
                "expected the ‹out› folder of an unfinished run"
            )

    def _create(self) -> None:
        missing = [p for p in (self.folder, *self.folder.parents) if not p.exists()]
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            reason = f"cannot create the folder ({err.strerror})"
            raise CheckpointError(f"‹out› {self.folder}: {reason}") from None
        self._created = list(reversed(missing))


def _acquire(path: Path) -> IO[bytes]:
    """The run folder's lock, held until the returned handle closes."""
    handle = try_hold(path)
    if handle is None:
        raise CheckpointError(
            f"‹out› {path.parent}: another `vaetool train` is writing this run folder; wait for "
            "it or choose another ‹out›"
        )
    return handle


def _cell(value: object) -> object:
    return f"{value:.6g}" if isinstance(value, float) else value
