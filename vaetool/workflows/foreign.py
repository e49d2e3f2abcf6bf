"""Models and posteriors across tools: `vaetool import` and `vaetool encode` (docs/foreign.md).

    request = ImportRequest("pythae", Path("final_model"), Path("m.safetensors"), data="mnist5k")
    import_model(request)                     # vaetool.workflows.foreign
    encode_posterior(EncodeRequest(Path("m.safetensors"), Path("post.npz")))

An import builds the registered foreign network, fills it from the mapped source tensors (every
key and shape accounted for), checks that it runs on the named data's images, and writes an
ordinary vaetool checkpoint recording the source framework, the weights' SHA-256, its config and
what was left behind. An encode writes the posterior file `mi rank` and `metrics` read.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaetool.config import DataConfig, TrainConfig
from vaetool.data import factor_classes, load_dataset
from vaetool.errors import CheckpointError, ConfigError, DataError
from vaetool.importers import IMPORTERS, ForeignModel, cast_state, check_against
from vaetool.models import build_model
from vaetool.progress import StageProgress
from vaetool.store.atomic import is_special, write_atomic
from vaetool.store.checkpoint import CheckpointInfo, save_checkpoint
from vaetool.store.sidecar import file_sha256
from vaetool.workflows.source import Points, open_source, posterior_pass


@dataclass(frozen=True)
class ImportRequest:
    """Import ``source`` (a folder, or its weights file) in ``format`` into ``out``; ``data``
    names the data set (required when the source does not say which)."""

    format: str
    source: Path
    out: Path
    data: str | None = None
    force: bool = False


@dataclass(frozen=True, eq=False)
class ImportResult:
    out: Path
    info: CheckpointInfo
    foreign: ForeignModel


def _check_out(out: Path, force: bool, suffix: str) -> None:
    if out.suffix.lower() != suffix:
        raise ConfigError(f"‹out› {out}: expected a file name ending in {suffix}")
    if out.is_dir():
        raise ConfigError(f"‹out› {out}: is a folder; expected a {suffix} file name")
    if not out.parent.is_dir():
        raise ConfigError(f"‹out› {out}: folder {out.parent} does not exist; create it first")
    if out.exists() and not force and not is_special(out):
        raise ConfigError(f"‹out› {out}: exists; pass ‹force› to overwrite it")


def import_model(request: ImportRequest) -> ImportResult:
    """Read, map, check and write (see the module docstring); nothing is written on error."""
    _check_out(Path(request.out), request.force, ".safetensors")
    foreign = IMPORTERS.get(request.format)(Path(request.source))
    spec = request.data or foreign.dataset
    if spec is None:
        raise ConfigError(_name_the_data(foreign, request))
    model = build_model(foreign.config)
    own = {k: v for k, v in model.state_dict().items() if k.startswith("likelihood.")}
    state = {**own, **foreign.state}  # the likelihood's noise comes from the config (σ²)
    check_against(state, model.state_dict(), foreign.weights)
    state = cast_state(state, model.state_dict(), foreign.weights)
    model.load_state_dict(state, strict=True)
    model.eval()
    data = load_dataset(spec)
    if tuple(data.shape) != tuple(foreign.config.image_shape):
        raise DataError(f"‹data› {spec}: images are {tuple(data.shape)} but the imported model "
                        f"takes {tuple(foreign.config.image_shape)}")  # fmt: skip
    _check_runs(model, data)
    info = CheckpointInfo(
        model=foreign.config,
        data=DataConfig(spec=spec),
        train=TrainConfig(options={"beta": 1.0}, epochs=1),
        summary={"status": "imported"},
        extra={"imported": _provenance(foreign, request)},
    )
    return ImportResult(save_checkpoint(request.out, model, info, overwrite=request.force), info,
                        foreign)  # fmt: skip


def _name_the_data(foreign: ForeignModel, request: ImportRequest) -> str:
    """Why ‹data› is needed: the source names no data set, or one vaetool has no spec for."""
    shape = "×".join(str(n) for n in foreign.config.image_shape or ())
    if foreign.source_dataset is None:
        return (f"‹data›: {request.format} does not record which data set {request.source} was "
                "trained on; name it (e.g. ‹data› mnist5k, npz:FILE, folder:DIR)")  # fmt: skip
    return (f"‹data›: {request.source}'s config names data set {foreign.source_dataset!r} "
            f"({shape} images), which vaetool cannot load by that name; name the images it was "
            f"trained on with ‹data› ({foreign.data_hint})")  # fmt: skip


def _check_runs(model: torch.nn.Module, data: Any) -> None:
    """The imported network encodes and decodes a few of the named data's images to finite
    numbers (a damaged source fails here, before anything is written)."""
    with torch.no_grad():
        x = data.images(np.arange(min(4, len(data))))
        mu, logvar = model.encode(x)
        images = model.decode_mean(mu)
    if not all(bool(torch.isfinite(t).all()) for t in (mu, logvar, images)):
        raise CheckpointError("the imported network gives NaN or inf on the data's images; "
                              "its weights are damaged")  # fmt: skip


def _provenance(foreign: ForeignModel, request: ImportRequest) -> dict[str, Any]:
    return {
        "framework": foreign.framework,
        "source": str(request.source),
        "weights_sha256": file_sha256(foreign.weights),
        "source_config": foreign.source_config,
        "files_read": list(foreign.read),
        "files_left": list(foreign.left),
        "data_named_by": "‹data›" if request.data else "the source's config",
        "train_note": "trained elsewhere: the train section holds vaetool's defaults, the "
        "source's training settings are in source_config",
        **foreign.notes,
    }


@dataclass(frozen=True)
class EncodeRequest:
    """Write the posterior of ``checkpoint`` on the chosen points to ``out`` (.npz)."""

    checkpoint: Path
    out: Path
    points: Points = field(default_factory=Points)
    force: bool = False
    device: str = "auto"


@dataclass(frozen=True, eq=False)
class EncodeResult:
    out: Path
    points: int
    arrays: tuple[str, ...]


def encode_posterior(request: EncodeRequest, progress: StageProgress | None = None) -> EncodeResult:
    """An .npz with ``mu`` and ``logvar`` (N, H) float32, and ``labels`` (N,) and ``factors``
    (N, K) int64 class indices when the data has them: the posterior file `mi rank` reads and
    the CODES file `metrics` reads."""
    _check_out(Path(request.out), request.force, ".npz")
    source = open_source(request.checkpoint, request.device)
    source.checkpoint("encode")
    posterior, n = posterior_pass(source, request.points, keep=True, progress=progress)
    assert posterior is not None
    rows = source.rows(request.points)
    data = source.data(request.points.data)
    arrays: dict[str, np.ndarray] = {
        "mu": posterior.mu.float().cpu().numpy(),
        "logvar": posterior.logvar.float().cpu().numpy(),
    }
    if data.labels is not None:
        arrays["labels"] = np.asarray(data.labels)[rows].astype(np.int64)
    classes = factor_classes(data)
    if classes is not None and classes.shape[1]:
        arrays["factors"] = classes[rows]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(request.out, buffer.getvalue())
    return EncodeResult(Path(request.out), n, tuple(arrays))
