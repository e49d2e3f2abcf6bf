"""What an analysis runs on, opened once: a vaetool checkpoint (and its data) or a posterior file.

A :class:`Source` loads the weights once, hashes the file at most once, and loads each data set
it is asked for at most once, so a workflow that ranks, prunes and traverses (``report``) reads
everything a single time. :class:`Points` says which points an analysis uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaetool import distributed
from vaetool.analysis.categorical import CodeAccumulator
from vaetool.analysis.encode import Posterior, encode
from vaetool.analysis.qstar import QStarAccumulator
from vaetool.data import SPLIT_NAMES, ImageData, load_dataset, split_indices
from vaetool.data.feed import DeviceFeed
from vaetool.device import inference_batch_size, resolve_device
from vaetool.errors import CheckpointError, ConfigError, DataError, field
from vaetool.models import VAE
from vaetool.progress import Progress, StageProgress
from vaetool.store.checkpoint import CheckpointInfo, check_checkpoint, load_checkpoint, read_info
from vaetool.store.posterior_file import PosteriorFile, is_posterior_file, open_posterior_file
from vaetool.store.sidecar import file_sha256

POSTERIOR_DATA = "posterior file"
DEFAULT_SPLIT = "test"
DEFAULT_SAMPLES = 10_000  # paper 000 estimates I_h on 10,000 points


@dataclass(frozen=True)
class Points:
    """Which points an analysis of a checkpoint uses; None means the default.

    ``data``: a dataset spec (default: the checkpoint's own data, subset and split seed);
    ``split``: train, val or test (default test); ``samples``: the first N points of the
    split (default 10,000, all of them when the split is smaller). A posterior file has its
    own points, so none of these may be given for one.
    """

    data: str | None = None
    split: str | None = None
    samples: int | None = None

    def check_for_posterior_file(self, path: Path) -> None:
        given = [field(k) for k, v in vars(self).items() if v is not None]
        if given:
            raise ConfigError(
                f"{', '.join(given)}: {path.name} is a posterior file with its own points; "
                "these options choose images for a checkpoint to encode"
            )

    @property
    def resolved_split(self) -> str:
        split = self.split or DEFAULT_SPLIT
        if split not in SPLIT_NAMES:
            raise ConfigError(f"‹split› {split!r}: expected one of {', '.join(SPLIT_NAMES)}")
        return split

    @property
    def resolved_samples(self) -> int:
        samples = DEFAULT_SAMPLES if self.samples is None else self.samples
        if samples < 2:
            raise ConfigError(f"‹samples› {samples}: expected at least 2 points")
        return samples


class Source:
    """An opened checkpoint (``model``, ``info``) or posterior file (``posterior_file``)."""

    def __init__(
        self,
        path: Path,
        device: torch.device,
        model: VAE | None = None,
        info: CheckpointInfo | None = None,
        posterior_file: PosteriorFile | None = None,
    ) -> None:
        self.path = path
        self.device = device
        self.model = model
        self.info = info
        self.posterior_file = posterior_file
        self._data: dict[str | None, ImageData] = {}
        # the encoding passes made over it, by (points, q* variant): workflows that share an
        # opened source (report, quickstart) encode each set of points once (workflows.mi)
        self.passes: dict[tuple[Points, str], Any] = {}

    @property
    def is_checkpoint(self) -> bool:
        return self.model is not None

    @property
    def latents(self) -> int:
        if self.info is not None:
            return self.info.model.latents
        assert self.posterior_file is not None
        return self.posterior_file.num_factors

    @cached_property
    def sha256(self) -> str:
        """SHA-256 of the file, computed on first use (sidecars key on it)."""
        return file_sha256(self.path)

    def checkpoint(self, what: str) -> tuple[VAE, CheckpointInfo]:
        """(model, info), or a ConfigError saying that ``what`` needs a vaetool checkpoint."""
        if self.model is None or self.info is None:
            raise ConfigError(
                f"{self.path}: {what} needs a vaetool checkpoint (a decoder), not a posterior file"
            )
        return self.model, self.info

    def data(self, spec: str | None = None) -> ImageData:
        """The checkpoint's own data (spec, subset, split seed) or ``spec``; loaded once."""
        if spec not in self._data:
            self._data[spec] = self._load_data(spec)
        return self._data[spec]

    def _load_data(self, spec: str | None) -> ImageData:
        _, info = self.checkpoint("reading images")
        cfg = info.data
        data = load_dataset(
            spec or cfg.spec, subset=None if spec else cfg.subset, seed=cfg.split_seed
        )
        if spec == cfg.spec and cfg.subset is not None and cfg.subset > len(data):
            # the full set asked for by name (metrics): its stored subset must still fit it,
            # as it must for every command that reads the checkpoint's own sample
            raise DataError(
                f"{self.path.name}: its data subset {cfg.subset} exceeds the {len(data)} images "
                f"of {cfg.spec}; expected an integer from 1 to {len(data)}"
            )
        if tuple(data.shape) != tuple(info.model.image_shape):
            raise DataError(
                f"‹data› {spec or cfg.spec}: images are {tuple(data.shape)} but {self.path.name} "
                f"was trained on {tuple(info.model.image_shape)}"
            )
        return data

    def rows(self, points: Points) -> np.ndarray:
        """The first ``samples`` indices (int64) of the checkpoint's seeded split."""
        _, info = self.checkpoint("choosing images")
        data, split = self.data(points.data), points.resolved_split
        cfg = info.data
        rows = split_indices(len(data), cfg.split_seed, cfg.fractions).get(split)
        if len(rows) < 2:
            raise DataError(f"split {split!r} of {data.spec} has {len(rows)} images; need 2")
        return rows[: points.resolved_samples]

    def feed(self, points: Points) -> DeviceFeed:
        """The chosen points' images, batched on the model's device."""
        part = distributed.part()  # torchrun: each rank encodes its share of every batch
        return DeviceFeed(self.data(points.data), self.rows(points), self.device, part)

    def describe(self, points: Points) -> tuple[str, str]:
        """(data description, split) for outputs: ``("mnist5k", "test")`` or a posterior file."""
        if not self.is_checkpoint:
            return POSTERIOR_DATA, "all"
        assert self.info is not None
        return points.data or self.info.data.spec, points.resolved_split


def inspect_checkpoint(path: str | Path) -> tuple[CheckpointInfo, CheckpointError | None]:
    """What `vaetool info` shows: the checkpoint's metadata (a CheckpointError when that does not
    read), and why its weights cannot be loaded — the validation every command runs — or None."""
    info = read_info(path)
    try:
        check_checkpoint(path)
    except CheckpointError as err:
        return info, err
    return info, None


def open_source(path: str | Path, device: str | torch.device = "auto") -> Source:
    """Open ``path``: a posterior file (.npz, or .safetensors holding mu and logvar) or a vaetool
    checkpoint (weights loaded onto ``device``)."""
    target = Path(path)
    if isinstance(device, str):
        resolved = resolve_device(distributed.local_device(device))
        distributed.init_from_env(resolved)
    else:
        resolved = device
    if is_posterior_file(target):
        return Source(target, resolved, posterior_file=open_posterior_file(target))
    model, info = load_checkpoint(target, resolved)
    return Source(target, resolved, model=model, info=info)


def posterior_pass(
    source: Source,
    points: Points,
    *,
    keep: bool,
    accumulator: QStarAccumulator | None = None,
    code: CodeAccumulator | None = None,
    progress: StageProgress | None = None,
) -> tuple[Posterior | None, int]:
    """One pass over the source's points: (posterior if ``keep``, number of points).

    A checkpoint encodes its chosen images on its device; a posterior file is read whole when
    ``keep``, else streamed in batches. ``accumulator`` sees every batch (the streamed q* fit),
    ``code`` every batch's categorical-code logits (a checkpoint with a code).
    """
    if source.posterior_file is not None:
        points.check_for_posterior_file(source.path)
        return _read_posterior_file(source, keep, accumulator, progress)
    model, _ = source.checkpoint("encoding")
    feed = source.feed(points)
    report = _stage(progress, "encoding")
    posterior = encode(
        model, feed, keep=keep, accumulator=accumulator, code=code, on_progress=report
    )
    return posterior, len(feed)


def _read_posterior_file(
    source: Source,
    keep: bool,
    accumulator: QStarAccumulator | None,
    progress: StageProgress | None,
) -> tuple[Posterior | None, int]:
    file = source.posterior_file
    assert file is not None
    report = _stage(progress, "reading the posterior file")
    if keep:
        posterior = file.load(source.device)
        if accumulator is not None:
            accumulator.update(posterior.mu, posterior.logvar)
        report(file.num_points, file.num_points)
        return posterior, file.num_points
    done = 0
    for mu, logvar in file.batches(inference_batch_size(source.device) * 8, source.device):
        if accumulator is not None:
            accumulator.update(mu, logvar)
        done += mu.shape[0]
        report(done, file.num_points)
    return None, file.num_points


def _stage(progress: StageProgress | None, stage: str) -> Progress:
    """A (done, total) callback that reports under ``stage`` (or does nothing)."""
    if progress is None:
        return lambda done, total: None
    return lambda done, total: progress(stage, done, total)
