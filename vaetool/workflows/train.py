"""`vaetool train` as typed request -> result functions: a run folder on disk
(vaetool.training.run_folder: history.csv per epoch, resume.safetensors after every epoch, so
a kill loses at most the epoch in progress, model.safetensors at the end).

The folder is checked and locked before any data is loaded, so a refusal costs nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from vaetool import distributed
from vaetool.config import ModelConfig
from vaetool.device import configure_threads
from vaetool.errors import CheckpointError, ConfigError
from vaetool.options import option_names
from vaetool.store.checkpoint import read_info
from vaetool.training.ensemble import StackEpochCallback, fit_stack, stack_sessions
from vaetool.training.loop import (
    finish_session,
    open_session,
    run_session,
    start_session,
    stopped_result,
)
from vaetool.training.run_folder import (
    CHECKPOINT_NAME,
    HISTORY_NAME,
    PARTIAL_NAME,
    RESUME_NAME,
    RunFolder,
)
from vaetool.training.run_state import load_run_state, save_run_state
from vaetool.training.session import (
    BatchCallback,
    Diverged,
    EpochRecord,
    Interrupted,
    Session,
    TrainResult,
)
from vaetool.workflows.train_settings import (
    DATA_KEYS,
    MODEL_ALIASES,
    RUN_KEYS,
    TRAIN_KEYS,
    TrainRequest,
    check_objective_fits,
    parse_seeds,
    train_request,
)

__all__ = [  # train_settings' names re-exported: the settings' route (train_request)
    "DATA_KEYS",
    "MODEL_ALIASES",
    "RUN_KEYS",
    "TRAIN_KEYS",
    "TrainOutcome",
    "TrainRequest",
    "check_objective_fits",
    "finished_run",
    "parse_seeds",
    "resume_run",
    "resume_seeds",
    "seed_folder",
    "train_request",
    "train_run",
    "train_seeds",
]


@dataclass(frozen=True, eq=False)
class TrainOutcome:
    result: TrainResult
    checkpoint: Path
    history: Path


EpochHook = Callable[[EpochRecord], None]


def train_run(
    request: TrainRequest, on_batch: BatchCallback | None = None, on_epoch: EpochHook | None = None
) -> TrainOutcome:
    """Check and lock the run folder, train (history and resumable state each epoch), save.

    A run that diverges or is interrupted keeps the weights of its last finished epoch in
    ``model.partial.safetensors`` (and raises, saying so); a run that fails before its first
    epoch leaves the folder as it was (and removes it if it created it).
    """
    if request.seeds:
        raise ConfigError("train_run: the request has seeds; use train_seeds")
    configure_threads(request.threads)
    if distributed.env_rank() > 0:  # torchrun: rank 0 writes the run folder, the others train
        RunFolder(request.out, request.force).check()
        session = start_session(request.data, request.train, request.model, request.device)
        return _unwritten(session, request.out, on_batch)
    with RunFolder(request.out, request.force) as run:
        session = start_session(request.data, request.train, request.model, request.device)
        return _run(session, run, on_batch, on_epoch)


def _unwritten(session: Session, out: Path, on_batch: BatchCallback | None) -> TrainOutcome:
    """A torchrun rank other than 0: the same steps, nothing written (rank 0 writes ``out``)."""
    result = run_session(session, on_batch)
    return TrainOutcome(result, Path(out) / CHECKPOINT_NAME, Path(out) / HISTORY_NAME)


def seed_folder(out: Path, seed: int) -> Path:
    """Where seed ``seed`` of a ``--seeds`` run lives: ``out/seed-<seed>``."""
    return Path(out) / f"seed-{seed}"


def train_seeds(
    request: TrainRequest,
    on_batch: BatchCallback | None = None,
    on_epoch: StackEpochCallback | None = None,
) -> list[TrainOutcome]:
    """Train ``request.seeds`` at once as one batched model (vaetool.training.ensemble) into
    ``out/seed-<s>``: each an ordinary run folder (history, resumable state, checkpoint), the
    checkpoint equal on a CPU to a separate run's with ``--seed s``."""
    configure_threads(request.threads)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("‹seeds› does not run under torchrun: each process trains the whole "
                          "stack on one device; start one process per device instead")  # fmt: skip
    _check_stackable(request.model, request.train.objective)
    seeds = request.seeds
    with contextlib.ExitStack() as held:
        runs = [held.enter_context(RunFolder(seed_folder(request.out, s), request.force))
                for s in seeds]  # fmt: skip
        lead = start_session(request.data, replace(request.train, seed=seeds[0]), request.model,
                             request.device)  # fmt: skip
        sessions = [_own_noise(lead)]
        data = lead.train_feed.data
        for s in seeds[1:]:
            config = replace(lead.train_config, seed=s)
            opened = open_session(lead.model_config, lead.data_config, config, request.device, data)
            sessions.append(_own_noise(opened))
        return _run_stack(sessions, runs, on_batch, on_epoch)


def _check_stackable(model: ModelConfig, objective: str) -> None:
    """A likelihood that updates its noise from each batch (σ̂², EM) holds per-model buffers a
    stack of models cannot share, and an objective with two passes per step (vmi) is not one
    vmapped forward: both refused before anything is written."""
    from vaetool.likelihoods import LIKELIHOODS, options_of
    from vaetool.objectives import OBJECTIVES

    if model.temperature_rate > 0:
        raise ConfigError(
            "‹seeds› with ‹temperature_rate›: the annealed temperature is a buffer each step "
            "updates, which models trained as one stack do not share; train the seeds as "
            "separate runs, or keep τ fixed"
        )
    if not OBJECTIVES.get(objective).stackable:
        raise ConfigError(
            f"‹seeds› with ‹objective› {objective}: its step is two passes (Q, then the VAE), "
            "which models trained as one stack do not share; train the seeds as separate runs "
            "(a study plan with stack_seeds = false)"
        )

    kind = LIKELIHOODS.get(model.likelihood)
    if kind(options_of(model), (1, 1, 1)).fits_noise:
        other = ", or ‹noise_fit› gradient" if "noise_fit" in option_names(kind.Options) else ""
        raise ConfigError(
            f"‹seeds› with ‹likelihood› {model.likelihood}: its noise is fitted from each batch "
            "in closed form, which models trained as one stack cannot share; train the seeds "
            f"as separate runs (a study plan with stack_seeds = false){other}"
        )


def resume_seeds(
    out: Path,
    *,
    device: str = "auto",
    threads: int | None = None,
    on_batch: BatchCallback | None = None,
    on_epoch: StackEpochCallback | None = None,
) -> list[TrainOutcome]:
    """Continue a ``--seeds`` run: its unfinished ``out/seed-*`` folders, at once."""
    configure_threads(threads)
    folders = sorted(p.parent for p in Path(out).glob(f"seed-*/{RESUME_NAME}"))
    if not folders:
        raise CheckpointError(f"‹resume› {out}: no seed-*/{RESUME_NAME}; nothing to resume")
    with contextlib.ExitStack() as held:
        runs = [held.enter_context(RunFolder(f, resume=True)) for f in folders]
        sessions = []
        for run in runs:
            session = load_run_state(run.folder / RESUME_NAME, device)  # sets the global RNG
            run.rewrite_history(session.history)
            sessions.append(_own_noise(session))
        return _run_stack(sessions, runs, on_batch, on_epoch)


def _own_noise(session: Session) -> Session:
    """Move the session's training noise to its own generator, in the global one's state."""
    if session.device.type == "cpu":
        session.noise = torch.Generator()
        session.noise.set_state(torch.get_rng_state())
    return session


def _run_stack(
    sessions: list[Session],
    runs: list[RunFolder],
    on_batch: BatchCallback | None,
    on_epoch: StackEpochCallback | None,
) -> list[TrainOutcome]:
    stack = stack_sessions(sessions)

    def record(k: int, epoch: EpochRecord) -> None:
        save_run_state(runs[k].folder / RESUME_NAME, sessions[k])
        runs[k].append(epoch)
        if on_epoch is not None:
            on_epoch(k, epoch)

    try:
        fit_stack(stack, on_batch, record)
    except (Diverged, Interrupted) as stop:
        kept = []
        for session, run in zip(sessions, runs, strict=True):
            partial = stopped_result(session, stop)
            if partial is not None:
                kept.append(str(run.save(partial, PARTIAL_NAME)))
        what = (f"the weights of epoch {len(sessions[0].history)} are in " + ", ".join(kept)
                if kept else "no epoch finished, nothing was kept")  # fmt: skip
        if kept and isinstance(stop, Interrupted):
            what += f"; continue with `vaetool train ‹resume› {runs[0].folder.parent}`"
        raise type(stop)(f"{stop.args[0]}; {what}") from None
    outcomes = []
    for session, run in zip(sessions, runs, strict=True):
        result = finish_session(session)
        checkpoint = run.save(result, CHECKPOINT_NAME)
        (run.folder / RESUME_NAME).unlink(missing_ok=True)
        outcomes.append(TrainOutcome(result, checkpoint, run.folder / HISTORY_NAME))
    return outcomes


def resume_run(
    out: Path,
    *,
    device: str = "auto",
    threads: int | None = None,
    on_batch: BatchCallback | None = None,
    on_epoch: EpochHook | None = None,
) -> TrainOutcome:
    """Continue the run in ``out`` from its last finished epoch (``resume.safetensors``)."""
    configure_threads(threads)
    if distributed.env_rank() > 0:
        RunFolder(out, resume=True).check()
        return _unwritten(load_run_state(Path(out) / RESUME_NAME, device), Path(out), on_batch)
    with RunFolder(out, resume=True) as run:
        session = load_run_state(run.folder / RESUME_NAME, device)
        run.rewrite_history(session.history)
        return _run(session, run, on_batch, on_epoch)


def finished_run(out: Path) -> list[tuple[Path, int]]:
    """(checkpoint, epochs) of the run in ``out`` when it finished and has nothing to resume,
    one per seed for a ``--seeds`` run whose seeds all finished; [] otherwise."""
    out = Path(out)
    if (out / CHECKPOINT_NAME).is_file():
        found = [out / CHECKPOINT_NAME]
    elif (out / RESUME_NAME).exists() or any(out.glob(f"seed-*/{RESUME_NAME}")):
        return []
    else:
        found = sorted(out.glob(f"seed-*/{CHECKPOINT_NAME}"))
    return [(path, read_info(path).train.epochs) for path in found]


def _run(
    session: Session, run: RunFolder, on_batch: BatchCallback | None, on_epoch: EpochHook | None
) -> TrainOutcome:
    def record(epoch: EpochRecord) -> None:
        save_run_state(run.folder / RESUME_NAME, session)  # first: the state knows the history
        run.append(epoch)
        if on_epoch is not None:
            on_epoch(epoch)

    try:
        result = run_session(session, on_batch, record)
    except (Diverged, Interrupted) as stop:
        raise _stopped(stop, run) from None
    checkpoint = run.save(result, CHECKPOINT_NAME)
    (run.folder / RESUME_NAME).unlink(missing_ok=True)
    return TrainOutcome(result, checkpoint, run.folder / HISTORY_NAME)


def _stopped(stop: Diverged | Interrupted, run: RunFolder) -> Diverged | Interrupted:
    """The same stop, its message saying what was kept and how to go on."""
    if stop.partial is None:
        kept = "no epoch finished, nothing was kept"
    else:
        path = run.save(stop.partial, PARTIAL_NAME)
        epochs = len(stop.partial.history)
        kept = (f"{run.folder / HISTORY_NAME} has epochs 1-{epochs} and {path} the weights of "
                f"epoch {epochs}")  # fmt: skip
        if isinstance(stop, Interrupted):
            kept += f"; continue with `vaetool train ‹resume› {run.folder}`"
    return type(stop)(f"{stop.args[0]}; {kept}")
