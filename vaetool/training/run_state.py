"""A resumable run state: everything a training session needs to continue exactly where it stopped.

One safetensors file in checkpoint format 2, written atomically at the end of every epoch:

- ``model.*`` the VAE, ``objective.*`` the objective's modules and step counter;
- ``optim.<name>.<param>.<key>`` every optimiser's state tensors (Adam's moments and step), with
  the non-tensor parts (hyperparameters, scalar entries) in the JSON document;
- ``rng.torch`` (and ``rng.cuda.<i>``) the global generators, ``rng.shuffle`` the data order;
- ``best.*`` the best epoch's weights (``--keep best``);
- the document's ``resume`` entry: the epochs done, as history rows, and ``sha256``, the checksum
  of the tensors and the rest of the document (:func:`state_sha256`).

Nothing is unpickled, and nothing read back is trusted: a state whose checksum does not match
(flipped bytes, an edited setting), whose resume entry is not the shape written here, or that
has done more epochs than its ``train.epochs`` is refused with one line naming the file (a
state written before the checksum existed is checked for shape only). Restoring opens the
same session the run started with (same configs, data, split and seed) and loads these states
into it, so on a CPU a resumed run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from vaetool.errors import CheckpointError, field
from vaetool.store.checkpoint import (
    MODEL_PREFIX,
    OBJECTIVE_PREFIX,
    prefixed,
    read_info,
    read_tensors,
    write_state,
)
from vaetool.store.sidecar import payload_sha256
from vaetool.training.loop import describe, open_session
from vaetool.training.session import EpochRecord, Session, kept_epoch

OPTIM_PREFIX = "optim."
BEST_PREFIX = "best."


def save_run_state(path: Path, session: Session) -> Path:
    """Write the session's state (after a finished epoch) atomically to ``path``."""
    tensors = prefixed(MODEL_PREFIX, session.model.state_dict())
    tensors.update(prefixed(OBJECTIVE_PREFIX, session.objective.state_dict()))
    optim_doc = {}
    for name, optimizer in session.objective.optimizers().items():
        state_tensors, state_doc = _flatten_optimizer(optimizer.state_dict())
        tensors.update(prefixed(f"{OPTIM_PREFIX}{name}.", state_tensors))
        optim_doc[name] = state_doc
    tensors.update(_rng_tensors(session))
    if session.best is not None:
        tensors.update(prefixed(BEST_PREFIX, session.best))
    history = session.history
    document = describe(session, kept_epoch(history, "last"), "running").to_document()
    document["resume"] = {"history": [r.row() for r in history], "optimizers": optim_doc}
    document["resume"]["sha256"] = state_sha256(tensors, document)
    return write_state(path, tensors, document)


def state_sha256(tensors: dict[str, torch.Tensor], document: dict[str, Any]) -> str:
    """SHA-256 of a run state: its tensors (:func:`payload_sha256`) and its document as JSON
    (keys sorted, ``resume.sha256`` itself left out)."""
    plain = json.loads(json.dumps(document))  # a copy, as read back
    plain.get("resume", {}).pop("sha256", None)
    return payload_sha256(tensors, plain)


def load_run_state(path: Path, device: str = "auto") -> Session:
    """The session saved in ``path``, ready to run its remaining epochs; CheckpointError (one
    line naming the file) for a damaged state, checked before the session is opened."""
    info = read_info(path)
    document, resume = _resume_entry(path)
    tensors = read_tensors(path)
    stored = resume.get("sha256")
    if stored is not None and stored != state_sha256(tensors, document):
        raise CheckpointError(f"{path}: the run state is damaged (its tensors or settings do not "
                              "match its checksum); it cannot be resumed")  # fmt: skip
    _check_entry(path, resume)
    history = _history(path, resume["history"])
    if len(history) > info.train.epochs:
        raise CheckpointError(
            f"{path}: the run state has done {len(history)} epochs but its {field('epochs')} is "
            f"{info.train.epochs}; the state was altered and cannot be resumed"
        )
    session = open_session(info.model, info.data, info.train, device)
    try:
        session.model.load_state_dict(_section(tensors, MODEL_PREFIX), strict=True)
        session.objective.load_state_dict(_section(tensors, OBJECTIVE_PREFIX), strict=True)
        for name, optimizer in session.objective.optimizers().items():
            state = _section(tensors, f"{OPTIM_PREFIX}{name}.")
            optimizer.load_state_dict(_unflatten_optimizer(state, resume["optimizers"][name]))
        _restore_rng(session, tensors)
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError, IndexError) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: the run state does not match its config ({detail})"
        ) from None
    session.history = history
    session.last = {k: v.clone() for k, v in session.model.state_dict().items()}
    best = _section(tensors, BEST_PREFIX)
    session.best = {k: v.to(session.device) for k, v in best.items()} or None
    return session


def _resume_entry(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the document, its ``resume`` entry)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        document = json.loads((handle.metadata() or {}).get("vaetool", "{}"))
    entry = document.get("resume")
    if not isinstance(entry, dict) or "history" not in entry or "optimizers" not in entry:
        raise CheckpointError(f"{path}: not a resumable run state (no 'resume' entry)")
    return document, entry


def _check_entry(path: Path, entry: dict[str, Any]) -> None:
    """The entry's shape: ``history`` a list, ``optimizers`` a mapping of {"param_groups": list,
    "scalars": mapping}, ``sha256`` a string when present; else CheckpointError."""
    optimizers = entry["optimizers"]
    problem = None
    if not isinstance(entry["history"], list):
        problem = f"'history' is {type(entry['history']).__name__}, not a list of epochs"
    elif not isinstance(optimizers, dict) or not all(
        isinstance(doc, dict)
        and isinstance(doc.get("param_groups"), list)
        and isinstance(doc.get("scalars"), dict)
        for doc in optimizers.values()
    ):
        problem = "'optimizers' is not a mapping of optimiser states"
    elif not isinstance(entry.get("sha256", ""), str):
        problem = "'sha256' is not a string"
    if problem is not None:
        raise CheckpointError(f"{path}: the run state's resume entry is damaged ({problem}); it "
                              "cannot be resumed")  # fmt: skip


def _history(path: Path, rows: list[Any]) -> list[EpochRecord]:
    """The epochs done, 1, 2, … in order; CheckpointError naming the first bad row."""
    history = []
    for number, row in enumerate(rows, 1):  # one row per epoch done, not per data point
        try:
            record = EpochRecord.from_row(row)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise CheckpointError(
                f"{path}: the run state's history row {number} is damaged "
                f"({type(err).__name__}: {err}); it cannot be resumed"
            ) from None
        if record.epoch != number:
            raise CheckpointError(f"{path}: the run state's history row {number} is epoch "
                                  f"{record.epoch}; it cannot be resumed")  # fmt: skip
        history.append(record)
    return history


def _section(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimiser's state_dict as tensors ``<param>.<key>`` and a JSON-safe rest."""
    tensors, scalars = {}, {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], doc: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in [*tensors.items(), *doc["scalars"].items()]:
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": doc["param_groups"]}


def _rng_tensors(session: Session) -> dict[str, torch.Tensor]:
    tensors = {"rng.torch": session.noise_state(), "rng.shuffle": session.shuffle.get_state()}
    if session.device.type == "cuda":
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    return tensors


def _restore_rng(session: Session, tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    session.shuffle.set_state(tensors["rng.shuffle"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
