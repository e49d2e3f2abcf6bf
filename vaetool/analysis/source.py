"""What an analysis runs on: a vaetool checkpoint (encode its data) or a posterior file.

``open_source`` tells the two apart; ``source_posterior`` returns the (mu, logvar) of the
requested split, encoding with the model when the source is a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vaetool.analysis.encode import Posterior, ProgressCallback, encode
from vaetool.analysis.qstar import QStarAccumulator
from vaetool.checkpoint import CheckpointInfo, load_checkpoint
from vaetool.data import ImageData, load_dataset, split_indices
from vaetool.data.feed import DeviceFeed
from vaetool.errors import DataError
from vaetool.models import VAE
from vaetool.posterior_file import is_posterior_file, load_posterior_file
from vaetool.sidecar import file_sha256

POSTERIOR_DATA = "posterior file"


@dataclass(frozen=True, eq=False)
class Source:
    """A checkpoint (``model`` and ``info`` set) or a posterior file (``posterior`` set)."""

    path: Path
    sha256: str
    latents: int
    model: VAE | None = None
    info: CheckpointInfo | None = None
    posterior: Posterior | None = None

    @property
    def is_checkpoint(self) -> bool:
        return self.model is not None

    @property
    def device(self) -> torch.device:
        """Where the model's weights (or the posterior file's tensors) live."""
        if self.model is not None:
            return next(self.model.parameters()).device
        assert self.posterior is not None
        return self.posterior.mu.device


def open_source(path: str | Path, device: torch.device) -> Source:
    """Load ``path`` as a posterior file (.npz, or .safetensors with mu/logvar) or a checkpoint."""
    target = Path(path)
    if target.is_file() and is_posterior_file(target):
        posterior = load_posterior_file(target, device)
        return Source(target, file_sha256(target), posterior.num_factors, posterior=posterior)
    model, info = load_checkpoint(target, device)
    return Source(target, file_sha256(target), info.model.latents, model=model, info=info)


def split_rows(data: ImageData, source: Source, split: str, samples: int) -> np.ndarray:
    """The first ``samples`` indices of the checkpoint's seeded ``split`` (itself random order)."""
    if samples < 2:
        raise DataError(f"--samples {samples}: expected at least 2 points")
    assert source.info is not None
    cfg = source.info.data
    rows = split_indices(len(data), cfg.split_seed, cfg.fractions).get(split)
    if len(rows) < 2:
        raise DataError(f"split {split!r} of {data.spec} has {len(rows)} images; need at least 2")
    return rows[:samples]


def source_posterior(
    source: Source,
    *,
    data_spec: str | None = None,
    split: str = "test",
    samples: int = 10_000,
    keep: bool = True,
    accumulator: QStarAccumulator | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[Posterior | None, str, int]:
    """(posterior or None, data description, points used) for ``source``.

    For a checkpoint: load ``data_spec`` (default: the checkpoint's own data, subset and split
    seed), take the first ``samples`` images of ``split``, and encode them on the model's device.
    For a posterior file: all of its rows, ``data_spec`` and ``split`` do not apply.
    """
    if source.posterior is not None:
        if accumulator is not None:
            accumulator.update(source.posterior.mu, source.posterior.logvar)
        return source.posterior, POSTERIOR_DATA, source.posterior.num_points
    data = source_data(source, data_spec)
    feed = source_feed(source, data, split, samples)
    assert source.model is not None
    posterior = encode(
        source.model, feed, keep=keep, accumulator=accumulator, on_progress=on_progress
    )
    return posterior, data.spec if data_spec else _own_spec(source), len(feed)


def _own_spec(source: Source) -> str:
    assert source.info is not None
    return source.info.data.spec


def source_data(source: Source, data_spec: str | None = None) -> ImageData:
    """The checkpoint's own data (spec, subset, split seed) or ``data_spec``, shape-checked."""
    if source.info is None:
        raise DataError(f"{source.path}: a posterior file has no images; pass a vaetool checkpoint")
    cfg = source.info.data
    spec = data_spec or cfg.spec
    data = load_dataset(spec, subset=cfg.subset if data_spec is None else None, seed=cfg.split_seed)
    if tuple(data.shape) != tuple(source.info.model.image_shape):
        raise DataError(
            f"--data {spec}: images are {tuple(data.shape)} but {source.path.name} was trained on "
            f"{tuple(source.info.model.image_shape)}"
        )
    return data


def source_feed(source: Source, data: ImageData, split: str, samples: int) -> DeviceFeed:
    """The first ``samples`` images of ``split``, on the model's device."""
    assert source.model is not None
    rows = split_rows(data, source, split, samples)
    return DeviceFeed(data, rows, next(source.model.parameters()).device)
