"""The q* sidecar: a fitted q*(z) saved next to the file it was fitted for.

``model.safetensors`` -> ``model.qstar.safetensors``. The tensors are the QStar fields (float64,
(H,)); the metadata records what the fit used (the source file's SHA-256, data spec, split, N,
variant), so `vaetool mi rank` reuses a sidecar only when it matches the request exactly, and
the SHA-256 of the tensors (:func:`payload_sha256`). Nothing read back is trusted: a sidecar
whose checksum is absent or wrong, or whose values cannot be a q* fit (shapes, dtypes, NaN,
non-positive variances, N < 2, s² not the variant's closed form), raises
:class:`DamagedSidecar`; `mi rank` then fits q* again with a warning (the workflows).
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

from vaetool.analysis.encode import LOGVAR_LIMIT
from vaetool.analysis.qstar import QSTAR_VARIANTS, PosteriorMoments, QStar
from vaetool.errors import CheckpointError
from vaetool.store.atomic import write_atomic

SUFFIX = ".qstar.safetensors"
FORMAT = "vaetool.qstar"
_TENSORS = ("mean", "s2", "mean_mu2", "mean_var", "mean_logvar", "var_mu")
_REFIT = "run `vaetool mi fit` to fit it again"
_Q_REFIT = "rank again with ‹vmi_refit› to fit Q again"


class DamagedSidecar(CheckpointError):
    """A sidecar file that exists but cannot be trusted (checksum or values): fit it again.
    ``what`` is the problem alone (the message adds how to fit it again)."""

    def __init__(self, what: str, refit: str = _REFIT) -> None:
        super().__init__(f"{what}; {refit}")
        self.what = what


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


def payload_sha256(tensors: dict[str, torch.Tensor], document: dict[str, Any] | None = None) -> str:
    """SHA-256 of tensors as stored (each name, dtype, shape and raw bytes, in name order) and
    of ``document`` as read back from JSON (keys sorted; its own ``sha256`` key left out)."""
    digest = hashlib.sha256()
    if document is not None:
        plain = json.loads(json.dumps(document))  # as read back: tuples are lists, keys strings
        plain.pop("sha256", None)
        digest.update(json.dumps(plain, sort_keys=True).encode() + b"\0")
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        shape = ",".join(map(str, tensor.shape))
        digest.update(f"{name}\0{tensor.dtype}\0{shape}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())  # no copy
    return digest.hexdigest()


def verify_payload(
    path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any], what: str,
    refit: str = _REFIT,
) -> None:  # fmt: skip
    """:class:`DamagedSidecar` unless ``meta["sha256"]`` is the :func:`payload_sha256` of
    ``tensors`` and ``meta``."""
    stored = meta.get("sha256")
    if not isinstance(stored, str):
        raise DamagedSidecar(f"{path}: {what} has no checksum (written by an older vaetool, or "
                             "altered), so it cannot be trusted", refit)  # fmt: skip
    if payload_sha256(tensors, meta) != stored:
        raise DamagedSidecar(f"{path}: {what} is damaged (its tensors or record do not match "
                             "their checksum)", refit)  # fmt: skip


def save_sidecar(path: str | Path, qstar: QStar, record: FitRecord) -> Path:
    """Write ``qstar`` and ``record`` atomically to ``path`` (overwriting an older fit)."""
    tensors = {
        k: getattr(qstar, k).detach().to("cpu", torch.float64).contiguous() for k in _TENSORS
    }
    meta = {"format": FORMAT, "record": asdict(record), "variant": qstar.variant, "n": qstar.n}
    meta["sha256"] = payload_sha256(tensors, meta)
    return write_atomic(path, safetensors_bytes(tensors, metadata={"vaetool": json.dumps(meta)}))


def load_sidecar(path: str | Path, device: torch.device | str = "cpu") -> tuple[QStar, FitRecord]:
    """Read a sidecar; :class:`CheckpointError` (one line) if it is not one, and
    :class:`DamagedSidecar` if its checksum or values say it cannot be trusted."""
    target = Path(path)
    if not target.is_file():
        raise CheckpointError(f"{target}: no such q* sidecar file")
    try:
        with safe_open(str(target), framework="pt", device="cpu") as handle:
            meta: dict[str, Any] = json.loads((handle.metadata() or {}).get("vaetool", "{}"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError("no vaetool q* metadata")
            tensors = {k: handle.get_tensor(k) for k in _TENSORS}
        record = FitRecord(**meta["record"])
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RecursionError) as err:
        raise DamagedSidecar(f"{target}: not a q* sidecar ({err})") from None
    verify_payload(target, tensors, meta, "q* sidecar")
    problem = _fit_problem(tensors, meta, record)
    if problem is not None:
        raise DamagedSidecar(f"{target}: q* sidecar cannot be right ({problem})")
    qstar = QStar(**{k: v.to(device) for k, v in tensors.items()}, n=record.n,
                  variant=record.variant)  # fmt: skip
    return qstar, record


def _fit_problem(
    tensors: dict[str, torch.Tensor], meta: dict[str, Any], record: FitRecord
) -> str | None:
    """What makes stored q* statistics impossible for a fit of ``record``, or None (O(H))."""
    latents, n = record.latents, record.n
    if not isinstance(latents, int) or isinstance(latents, bool) or latents < 1:
        return f"H = {latents!r}; expected a positive integer"
    if not isinstance(n, int) or isinstance(n, bool) or n < 2 or meta.get("n") != n:
        return f"N = {meta.get('n')!r} points (record {n!r}); expected one integer >= 2"
    if record.variant not in QSTAR_VARIANTS.names() or meta.get("variant") != record.variant:
        return f"variant {meta.get('variant')!r} (record {record.variant!r})"
    for name, tensor in tensors.items():
        if tensor.dtype != torch.float64 or tuple(tensor.shape) != (latents,):
            return (f"{name!r} is {str(tensor.dtype).removeprefix('torch.')} "
                    f"{tuple(tensor.shape)}; expected float64 ({latents},)")  # fmt: skip
        if not bool(torch.isfinite(tensor).all()):
            return f"{name!r} holds NaN or inf"
    t = tensors
    if not bool((t["s2"] > 0).all() and (t["mean_var"] > 0).all() and (t["var_mu"] >= 0).all()):
        return "a variance (s2, mean_var or var_mu) is not positive"
    if bool((t["mean_logvar"].abs() > LOGVAR_LIMIT).any()):
        return f"a mean log-variance is outside ±{LOGVAR_LIMIT:g}"
    if bool((t["mean_mu2"] < t["var_mu"] * (1 - 1e-9)).any()):
        return "mean_mu2 below var_mu (E mu² >= Var mu)"
    fit = QSTAR_VARIANTS.get(record.variant)
    mean, s2 = fit(PosteriorMoments(t["mean"], t["var_mu"], t["mean_mu2"], t["mean_var"],
                                    t["mean_logvar"], n))  # fmt: skip
    if not (torch.allclose(s2, t["s2"], rtol=1e-9, atol=0.0) and torch.equal(mean, t["mean"])):
        return f"s2 and mean are not the {record.variant} q* of the stored moments"
    jensen = t["mean_var"].log() + 1e-9 * (1.0 + t["mean_var"].log().abs())
    if bool((t["mean_logvar"] > jensen).any()):
        return "mean log-variance above the log of the mean variance (Jensen)"
    return None


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
    meta["sha256"] = payload_sha256(tensors, meta)
    return write_atomic(path, safetensors_bytes(tensors, metadata={"vaetool": json.dumps(meta)}))


def load_q_sidecar(path: str | Path) -> tuple[dict[str, torch.Tensor], torch.Tensor, QRecord]:
    """(Q's state dict, curve, record) from a Q sidecar; :class:`DamagedSidecar` if it is not
    one, or its checksum is absent or wrong, or a weight is NaN or inf (then fit Q again)."""
    target = Path(path)
    try:
        with safe_open(str(target), framework="pt", device="cpu") as handle:
            meta: dict[str, Any] = json.loads((handle.metadata() or {}).get("vaetool", "{}"))
            if not isinstance(meta, dict) or meta.get("format") != Q_FORMAT:
                raise ValueError("no vaetool VMI metadata")
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        curve = tensors["curve"]
        record = QRecord(**meta["record"])
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RecursionError) as err:
        raise DamagedSidecar(f"{target}: not a VMI sidecar ({err})", _Q_REFIT) from None
    verify_payload(target, tensors, meta, "VMI sidecar", _Q_REFIT)
    state = {k[2:]: v for k, v in tensors.items() if k.startswith("q.")}
    if not all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point()):
        raise DamagedSidecar(f"{target}: VMI sidecar holds NaN or inf weights", _Q_REFIT)
    return state, curve, record
