"""A resumable run state: everything a training session needs to continue exactly where it stopped.

One safetensors file in checkpoint format 2, written atomically at the end of every epoch:

- ``model.*`` the VAE, ``objective.*`` the objective's modules and step counter;
- ``optim.<name>.<param>.<key>`` every optimiser's state tensors (Adam's moments and step), with
  the non-tensor parts (hyperparameters, scalar entries) in the JSON document;
- ``rng.torch`` (and ``rng.cuda.<i>``) the global generators, ``rng.shuffle`` the data order;
- ``best.*`` the best epoch's weights (``--keep best``);
- the document's ``resume`` entry: the epochs done, as history rows.

Nothing is unpickled. Restoring opens the same session the run started with (same configs, data,
split and seed) and loads these states into it, so on a CPU a resumed run ends bit-identical to
an uninterrupted one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from vaetool.errors import CheckpointError
from vaetool.store.checkpoint import (
    MODEL_PREFIX,
    OBJECTIVE_PREFIX,
    prefixed,
    read_info,
    read_tensors,
    write_state,
)
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
    return write_state(path, tensors, document)


def load_run_state(path: Path, device: str = "auto") -> Session:
    """The session saved in ``path``, ready to run its remaining epochs."""
    info = read_info(path)
    resume = _resume_entry(path)
    session = open_session(info.model, info.data, info.train, device)
    tensors = read_tensors(path)
    try:
        session.model.load_state_dict(_section(tensors, MODEL_PREFIX), strict=True)
        session.objective.load_state_dict(_section(tensors, OBJECTIVE_PREFIX), strict=True)
        for name, optimizer in session.objective.optimizers().items():
            state = _section(tensors, f"{OPTIM_PREFIX}{name}.")
            optimizer.load_state_dict(_unflatten_optimizer(state, resume["optimizers"][name]))
        _restore_rng(session, tensors)
    except (RuntimeError, KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: the run state does not match its config ({err})") from None
    session.history = [EpochRecord.from_row(row) for row in resume["history"]]
    session.last = {k: v.clone() for k, v in session.model.state_dict().items()}
    best = _section(tensors, BEST_PREFIX)
    session.best = {k: v.to(session.device) for k, v in best.items()} or None
    return session


def _resume_entry(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        document = json.loads((handle.metadata() or {}).get("vaetool", "{}"))
    entry = document.get("resume")
    if not isinstance(entry, dict) or "history" not in entry or "optimizers" not in entry:
        raise CheckpointError(f"{path}: not a resumable run state (no 'resume' entry)")
    return entry


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
