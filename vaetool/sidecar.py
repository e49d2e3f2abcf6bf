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
from vaetool.atomic import write_atomic
from vaetool.errors import CheckpointError

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
