"""The q* sidecar: a fitted q*(z) saved next to the file it was fitted for.

``model.safetensors`` -> ``model.qstar.safetensors``. The tensors are the QStar fields (float64,
(H,)); the metadata records what the fit used (the source file's SHA-256, data spec, split, N,
variant), so `vaetool mi rank` reuses a sidecar only when it matches the request exactly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from vaetool.analysis.qstar import QStar
from vaetool.errors import CheckpointError
from vaetool.store.atomic import write_atomic

SUFFIX = ".qstar.safetensors"
FORMAT = "vaetool.qstar"
_TENSORS = ("mean", "s2", "mean_mu2", "mean_var", "mean_logvar", "var_mu")


@dataclass(frozen=True)
class FitRecord:
    """What a q* fit was computed on; two fits with equal records are interchangeable."""

    source_sha256: str  # SHA-256 of the checkpoint or posterior file
    source_name: str  # its file name, for messages
    data: str  # dataset spec, or "posterior file"
    split: str  # train, val, test, or "all" for a posterior file
    samples: int  # points requested (the fit used min(samples, split size))
    variant: str  # zero_mean or free_mean
    latents: int  # H
    n: int  # points actually used


def sidecar_path(source: str | Path) -> Path:
    """Where the sidecar of ``source`` lives: same folder, ``<stem>.qstar.safetensors``."""
    source = Path(source)
    return source.with_name(source.stem + SUFFIX)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_sidecar(path: str | Path, qstar: QStar, record: FitRecord) -> Path:
    """Write ``qstar`` and ``record`` atomically to ``path`` (overwriting an older fit)."""
    tensors = {
        k: getattr(qstar, k).detach().to("cpu", torch.float64).contiguous() for k in _TENSORS
    }
    meta = {"format": FORMAT, "record": asdict(record), "variant": qstar.variant, "n": qstar.n}
    return write_atomic(path, safetensors_bytes(tensors, metadata={"vaetool": json.dumps(meta)}))


def load_sidecar(path: str | Path, device: torch.device | str = "cpu") -> tuple[QStar, FitRecord]:
    """Read a sidecar; :class:`CheckpointError` (one line) if it is not one."""
    target = Path(path)
    if not target.is_file():
        raise CheckpointError(f"{target}: no such q* sidecar file")
    try:
        with safe_open(str(target), framework="pt", device="cpu") as handle:
            meta: dict[str, Any] = json.loads((handle.metadata() or {}).get("vaetool", "{}"))
            if meta.get("format") != FORMAT:
                raise ValueError("no vaetool q* metadata")
            tensors = {k: handle.get_tensor(k).to(device) for k in _TENSORS}
        record = FitRecord(**meta["record"])
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"{target}: not a q* sidecar ({err}); expected a file written by `vaetool mi fit`"
        ) from None
    return QStar(**tensors, n=int(meta["n"]), variant=str(meta["variant"])), record


def check_sidecar_matches(record: FitRecord, sha256: str, latents: int, path: Path) -> None:
    """Raise if a sidecar given explicitly belongs to another file or another H."""
    if record.latents != latents:
        raise CheckpointError(
            f"{path}: q* sidecar has H = {record.latents} factors but the model has H = {latents}"
        )
    if record.source_sha256 != sha256:
        raise CheckpointError(
            f"{path}: q* sidecar was fitted for another file ({record.source_name}, "
            f"sha256 {record.source_sha256[:12]}…); run `vaetool mi fit` on this one"
        )


Q_SUFFIX = ".vmi.safetensors"
Q_FORMAT = "vaetool.analysis.vmi-q"


@dataclass(frozen=True)
class QRecord:
    """What a fitted VMI network Q was trained for and how (paper 001; vaetool.analysis.vmi)."""

    source_sha256: str
    source_name: str
    steps: int
    batch_size: int
    lr: float
    seed: int
    last_gain: float  # the last window's mean bound minus the one before, nats (≈ 0: plateau)


def q_sidecar_path(source: str | Path) -> Path:
    """``model.safetensors`` -> ``model.vmi.safetensors`` (the fitted Q, beside the q* one)."""
    source = Path(source)
    return source.with_name(source.stem + Q_SUFFIX)


def save_q_sidecar(
    path: str | Path, state: dict[str, torch.Tensor], curve: torch.Tensor, record: QRecord
) -> Path:
    """Q's weights (``q.*``) and training curve, with ``record``, written atomically."""
    tensors = {f"q.{k}": v.detach().cpu().contiguous() for k, v in state.items()}
    tensors["curve"] = curve.detach().to("cpu", torch.float64).contiguous()
    meta = {"format": Q_FORMAT, "record": asdict(record)}
    return write_atomic(path, safetensors_bytes(tensors, metadata={"vaetool": json.dumps(meta)}))


def load_q_sidecar(path: str | Path) -> tuple[dict[str, torch.Tensor], torch.Tensor, QRecord]:
    """(Q's state dict, curve, record) from a Q sidecar; CheckpointError if it is not one."""
    target = Path(path)
    try:
        with safe_open(str(target), framework="pt", device="cpu") as handle:
            meta: dict[str, Any] = json.loads((handle.metadata() or {}).get("vaetool", "{}"))
            if meta.get("format") != Q_FORMAT:
                raise ValueError("no vaetool VMI metadata")
            state = {k[2:]: handle.get_tensor(k) for k in handle.keys() if k.startswith("q.")}  # noqa: SIM118
            curve = handle.get_tensor("curve")
        record = QRecord(**meta["record"])
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"{target}: not a VMI sidecar ({err}); delete it and rank again"
        ) from None
    return state, curve, record
