"""Checkpoints: one ``.safetensors`` file, weights plus a JSON config in its metadata.

The metadata key ``vaetool`` holds a JSON document with the model, data and training configs, the
vaetool version and a training summary: enough to rebuild the model with no other file. Loading
never unpickles anything (safetensors stores raw tensors) and is strict about weight names/shapes.

Format 2 namespaces the tensors: ``model.*`` (the VAE), ``objective.*`` (an objective's own
modules: FactorVAE's discriminator …), and in a resumable run state (training.run_state) also
``optim.*`` and ``rng.*``. Format 1 (the first release: unprefixed VAE tensors, ``train.beta``) is
read and migrated; a newer format is refused with a line saying to upgrade vaetool.
"""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from vaetool._version import __version__
from vaetool.analysis.posterior_checks import all_finite
from vaetool.config import DataConfig, ModelConfig, TrainConfig
from vaetool.data import DATASETS
from vaetool.device import check_bytes
from vaetool.errors import CheckpointError, VaetoolError, marked
from vaetool.models import VAE, build_model
from vaetool.objectives import OBJECTIVES, check_fits, resolve_options
from vaetool.store.atomic import write_atomic
from vaetool.store.model_document import model_document, model_from_document

METADATA_KEY = "vaetool"
FORMAT = "vaetool.vae"
FORMAT_VERSION = 2
MODEL_PREFIX = "model."
OBJECTIVE_PREFIX = "objective."
# a resumable run state's own tensors (training.run_state): optimisers, generators, best weights
RUN_STATE_PREFIXES = ("optim.", "rng.", "best.")
# the document's top-level keys (``resume``: a run state's history and optimisers' scalars)
DOCUMENT_KEYS = ("format", "format_version", "vaetool_version", "model", "data", "train",
                 "summary", "extra", "resume")  # fmt: skip


@dataclass(frozen=True)
class CheckpointInfo:
    """Everything a checkpoint's metadata says, parsed and validated."""

    model: ModelConfig
    data: DataConfig
    train: TrainConfig
    summary: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. pruning provenance
    version: str = __version__
    format_version: int = FORMAT_VERSION  # as read (1: migrated from the first release)

    def to_document(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "vaetool_version": self.version,
            "model": model_document(self.model),
            "data": self.data.to_dict(),
            "train": self.train.to_dict(),
            "summary": self.summary,
            "extra": self.extra,
        }


def save_checkpoint(
    path: str | Path,
    model: VAE,
    info: CheckpointInfo,
    *,
    objective: torch.nn.Module | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model``'s weights (``model.*``), the objective's own modules (``objective.*``)
    and ``info`` atomically to ``path`` (.safetensors)."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise CheckpointError(f"{target} exists; pass ‹force› to overwrite it")
    tensors = prefixed(MODEL_PREFIX, model.state_dict())
    if objective is not None:
        tensors.update(prefixed(OBJECTIVE_PREFIX, objective.state_dict()))
    return write_state(target, tensors, info.to_document())


def prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous copies of ``state`` with names ``prefix + name``."""
    return {prefix + k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def write_state(path: Path, tensors: dict[str, torch.Tensor], document: dict[str, Any]) -> Path:
    """Tensors and a JSON document as one safetensors file, written atomically."""
    metadata = {METADATA_KEY: json.dumps(document)}
    return write_atomic(path, safetensors_bytes(tensors, metadata=metadata))


def read_info(path: str | Path) -> CheckpointInfo:
    """Parse a checkpoint's metadata without loading weights (for ``vaetool info``)."""
    return _parse_document(Path(path), _read_metadata(Path(path)))


def check_checkpoint(path: str | Path) -> tuple[CheckpointInfo, dict[str, torch.Tensor]]:
    """The one validation every command runs on a checkpoint before using it: (info, the VAE's
    tensors unprefixed), or one CheckpointError naming the file and what is wrong.

    The metadata: every field typed and ranged, every component a registered name with its
    options (the objective's included) resolved, no unknown key. The weights, measured on a
    model built on the meta device first (nothing allocated for a huge config): it fits in
    memory; every tensor is one the format knows; the model's are all present, no extra, each
    of the expected shape and dtype and finite. ``info`` shows a checkpoint that fails here and
    says it cannot be loaded; every other command refuses it."""
    target = Path(path)
    info = read_info(target)
    expected = _skeleton(target, info).state_dict()
    stored = read_tensors(target)
    if info.format_version >= 2:
        known = (MODEL_PREFIX, OBJECTIVE_PREFIX, *RUN_STATE_PREFIXES)
        strays = sorted(k for k in stored if not k.startswith(known))
        if strays:
            raise CheckpointError(
                f"{target}: unexpected tensor {strays[0]!r} ({len(strays)} outside the "
                f"format's {', '.join(p + '*' for p in known)}); the file was altered"
            )
    tensors = model_tensors(stored, info)
    _check_tensors(target, tensors, expected)
    return info, tensors


def _skeleton(path: Path, info: CheckpointInfo) -> VAE:
    """The model on the meta device (shapes only, no memory), once its size fits in memory."""
    try:
        with torch.device("meta"):  # shapes only: no memory, so a huge config is caught first
            skeleton = build_model(info.model)
        nbytes = sum(t.numel() * t.element_size() for t in skeleton.state_dict().values())
        check_bytes(nbytes, torch.device("cpu"), f"{path}: its model config")
    except (VaetoolError, ValueError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"{path}: its model config cannot be built ({marked(err)})") from None
    return skeleton


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[VAE, CheckpointInfo]:
    """Rebuild the model from ``path`` (strict weight matching) in eval mode on ``device``."""
    target = Path(path)
    info, tensors = check_checkpoint(target)
    try:
        model = build_model(info.model)
    except (VaetoolError, ValueError, TypeError, RuntimeError) as err:
        raise CheckpointError(
            f"{target}: its model config cannot be built ({marked(err)})"
        ) from None
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise CheckpointError(f"{target}: weights do not match its config ({first})") from None
    _check_buffers_match_config(target, model)
    return model.to(device).eval(), info


def _check_buffers_match_config(path: Path, model: VAE) -> None:
    """Settings stored twice (metadata and tensors) must agree: the Gaussian likelihood's σ²."""
    sigma2 = getattr(model.likelihood, "sigma2", None)
    if not model.likelihood.sigma2_from_config:
        return  # a learned σ²: the tensors hold the truth, the metadata only its start
    stated = model.likelihood.options.sigma2
    if isinstance(sigma2, torch.Tensor) and not math.isclose(float(sigma2), stated, rel_tol=1e-6):
        raise CheckpointError(
            f"{path}: its metadata says sigma2 = {stated:g} but its tensors hold "
            f"{float(sigma2):g}; the file was altered"
        )


def load_model(path: str | Path, device: str | torch.device = "cpu") -> VAE:
    """Rebuild a trained VAE from a vaetool checkpoint, in eval mode (``vaetool.load``).

    ``device`` is ``cpu``, ``cuda``, ``auto`` or a torch.device. The model's ``config`` attribute
    is its :class:`~vaetool.config.ModelConfig`; :func:`read_info` gives the rest.
    """
    from vaetool.device import resolve_device

    target = resolve_device(device) if isinstance(device, str) else device
    return load_checkpoint(path, device=target)[0]


def check_checkpoint_file(path: Path) -> None:
    """A CheckpointError unless ``path`` is a regular file, saying what it is instead: nothing
    else is opened (a FIFO would block, /dev/zero never ends)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot be read ({err.strerror})") from None
    if stat.S_ISDIR(mode):
        inside = path / "model.safetensors"
        hint = f" (a run folder? its model is {inside})" if inside.is_file() else ""
        raise CheckpointError(
            f"{path}: is a directory; expected a .safetensors checkpoint file{hint}"
        )
    if not stat.S_ISREG(mode):
        kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                 (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))  # fmt: skip
        kind = next((name for test, name in kinds if test(mode)), "not a file")
        raise CheckpointError(
            f"{path}: not a regular file ({kind}); expected a .safetensors checkpoint file"
        )


def _read_metadata(path: Path) -> dict[str, str]:
    check_checkpoint_file(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({_short(err)}); "
            "expected a vaetool checkpoint"
        ) from None


def _check_tensors(
    path: Path, tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]
) -> None:
    """The model's tensors are exactly those it expects, each of its shape and dtype with only
    finite values: a missing, extra or mis-shaped tensor, a NaN or inf weight (a diverged or
    damaged run) or an integer tensor is refused, never cast."""
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        what = f"missing tensor {missing[0]!r}" if missing else f"unexpected tensor {extra[0]!r}"
        count = f"{len(missing)} missing, {len(extra)} unexpected"
        raise CheckpointError(f"{path}: weights do not match its config ({what}; {count})")
    for name, tensor in tensors.items():
        want = expected[name]
        if tuple(tensor.shape) != tuple(want.shape):
            raise CheckpointError(
                f"{path}: weights do not match its config (tensor {name!r} has shape "
                f"{list(tensor.shape)}; the model needs {list(want.shape)})"
            )
        if tensor.dtype != want.dtype:
            raise CheckpointError(
                f"{path}: tensor {name!r} has dtype {str(tensor.dtype).removeprefix('torch.')}; "
                f"expected {str(want.dtype).removeprefix('torch.')}"
            )
        if tensor.is_floating_point() and tensor.numel() and not all_finite(tensor):
            raise CheckpointError(
                f"{path}: tensor {name!r} holds NaN or inf values; the weights are damaged "
                "(or come from a run that diverged)"
            )


def model_tensors(
    tensors: dict[str, torch.Tensor], info: CheckpointInfo
) -> dict[str, torch.Tensor]:
    """The VAE's tensors, unprefixed (format 1 stored only those, without a prefix); the
    objective's and a run state's tensors are left out: analysis needs only the model."""
    if info.format_version == 1:  # no prefix, and no likelihood buffer yet
        if info.model.likelihood == "gaussian":
            sigma2 = float(info.model.likelihood_options["sigma2"])
            return {**tensors, "likelihood.sigma2": torch.tensor(sigma2)}
        return tensors
    n = len(MODEL_PREFIX)
    return {k[n:]: v for k, v in tensors.items() if k.startswith(MODEL_PREFIX)}


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: corrupt or truncated weights ({_short(err)})") from None


def _parse_document(path: Path, metadata: dict[str, str]) -> CheckpointInfo:
    raw = metadata.get(METADATA_KEY)
    if raw is None:
        raise CheckpointError(
            f"{path}: a safetensors file without vaetool metadata; expected a checkpoint written "
            "by `vaetool train` (for a foreign model, pass a (mu, logvar) file instead)"
        )
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format') if isinstance(doc, dict) else doc!r}")
        unknown = sorted(set(doc) - set(DOCUMENT_KEYS))
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}; expected some of "
                             f"{', '.join(DOCUMENT_KEYS)}")  # fmt: skip
        version = doc.get("format_version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError(f"format_version {version!r}")
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: written by a newer vaetool (format {version}; this vaetool reads up to "
                f"{FORMAT_VERSION}, vaetool {__version__}); upgrade vaetool to read it"
            )
        return _info(doc, version)
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, VaetoolError) as err:
        raise CheckpointError(f"{path}: unreadable vaetool metadata ({_short(err)})") from None


def _info(doc: dict[str, Any], version: int) -> CheckpointInfo:
    """The configs of a document, format 1 migrated (its ``train.beta`` becomes the β-VAE
    objective's option); every field checked by the config classes."""
    for key in ("model", "data", "train"):
        if key not in doc or not isinstance(doc[key], dict):
            got = type(doc[key]).__name__ if key in doc else "nothing"
            raise ValueError(f"{key}: expected a mapping, got {got}")
    train = dict(doc["train"])
    if version == 1:
        train["options"] = {"beta": train.pop("beta", 1.0)}
    for key in ("summary", "extra"):
        if not isinstance(doc.get(key, {}), dict):
            raise ValueError(f"{key} is not a mapping")
    if not isinstance(doc.get("vaetool_version", ""), str):
        raise ValueError(f"vaetool_version {doc['vaetool_version']!r}: expected str")
    model = _section("model", model_from_document, doc["model"])
    data = _section("data", _data, doc["data"])
    return CheckpointInfo(
        model=model,
        data=data,
        train=_section("train", _train, train, model),
        summary=dict(doc.get("summary", {})),
        extra=dict(doc.get("extra", {})),
        version=str(doc.get("vaetool_version", "unknown")),
        format_version=version,
    )


def _section(name: str, parse: Any, *args: Any) -> Any:
    """``parse(*args)``, its error prefixed with the document's section ``name``."""
    try:
        return parse(*args)
    except (ValueError, KeyError, TypeError, AttributeError, VaetoolError) as err:
        raise ValueError(f"{name}: {_short(err)}") from None


def _data(raw: dict[str, Any]) -> DataConfig:
    data = DataConfig.from_dict(raw)
    if data.spec.partition(":")[0] not in DATASETS:
        raise ValueError(f"spec {data.spec!r}: expected one of {', '.join(DATASETS.names())}"
                         " (with ':PATH' where needed)")  # fmt: skip
    return data


def _train(raw: dict[str, Any], model: ModelConfig) -> TrainConfig:
    """The training config, its objective's options checked as training checks them: a
    registered objective, no option it does not have, every value of its type and range, and
    options that fit the model (an option an older writer left out takes its default)."""
    train = TrainConfig.from_dict(raw)
    if train.objective not in OBJECTIVES:
        raise ValueError(f"objective {train.objective!r}: expected one of "
                         f"{', '.join(OBJECTIVES.names())}")  # fmt: skip
    check_fits(train.objective, resolve_options(train.objective, train.options), model)
    return train


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
