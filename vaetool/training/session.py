"""A training session's state and records: what a run holds while it trains (configs, split,
feeds, model, objective, generators, the epochs done), one epoch's record (a history.csv row),
the result a finished or stopped run yields, and the two ways a run stops early.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from vaetool.config import DataConfig, ModelConfig, TrainConfig
from vaetool.data import Split
from vaetool.data.feed import DeviceFeed
from vaetool.errors import VaetoolError
from vaetool.errors import field as named
from vaetool.models import VAE
from vaetool.objectives import Objective
from vaetool.store.checkpoint import CheckpointInfo
from vaetool.training.fast_step import Step

# on_batch(epoch, batch, batches_per_epoch, running means or None between refreshes)
BatchCallback = Callable[[int, int, int, "dict[str, float] | None"], None]
EpochCallback = Callable[["EpochRecord"], None]


@dataclass(frozen=True)
class EpochRecord:
    """One epoch: the objective's terms (nats per image) on the training split (running means
    over the epoch's steps) and the validation split; the ELBO is the β = 1 bound."""

    epoch: int
    train: dict[str, float]
    val: dict[str, float]
    seconds: float
    images_per_s: float

    @property
    def val_elbo(self) -> float:
        return self.val["elbo"]

    def row(self) -> dict[str, float | int]:
        """The flat history.csv row: epoch, train_<term>…, val_<term>…, seconds, images_per_s."""
        return {
            "epoch": self.epoch,
            **{f"train_{k}": v for k, v in self.train.items()},
            **{f"val_{k}": v for k, v in self.val.items()},
            "seconds": self.seconds,
            "images_per_s": self.images_per_s,
        }

    @classmethod
    def from_row(cls, row: dict[str, float]) -> EpochRecord:
        train = {k[6:]: float(v) for k, v in row.items() if k.startswith("train_")}
        val = {k[4:]: float(v) for k, v in row.items() if k.startswith("val_")}
        return cls(int(row["epoch"]), train, val, float(row["seconds"]), float(row["images_per_s"]))


@dataclass(frozen=True)
class TrainResult:
    """The fitted model (the weights ``config.keep`` chose), its objective, its description,
    every epoch."""

    model: VAE
    objective: Objective
    info: CheckpointInfo
    history: list[EpochRecord]

    @property
    def kept_epoch(self) -> int:
        return int(self.info.summary["kept_epoch"])


@dataclass(eq=False)
class Session:
    """A run in progress: configs, split, feeds, model, objective, shuffling generator, and the
    epochs done with the weights of the last and (``keep = "best"``) the best one."""

    model_config: ModelConfig
    data_config: DataConfig
    train_config: TrainConfig
    split: Split
    device: torch.device
    train_feed: DeviceFeed
    val_feed: DeviceFeed
    model: VAE
    objective: Objective
    shuffle: torch.Generator
    step: Step  # the objective's step as the device runs it (vaetool.training.fast_step)
    history: list[EpochRecord] = field(default_factory=list)
    last: dict[str, torch.Tensor] | None = None
    best: dict[str, torch.Tensor] | None = None
    noise: torch.Generator | None = None  # training noise: None = torch's global generator

    def noise_state(self) -> torch.Tensor:
        """The training-noise generator's state (what a resumed run restores)."""
        return self.noise.get_state() if self.noise is not None else torch.get_rng_state()


class TrainingStopped:
    """Mixin of :class:`Diverged` and :class:`Interrupted`: ``partial`` is a TrainResult
    holding the last finished epoch's weights (None when no epoch finished)."""

    partial: TrainResult | None = None


class Diverged(TrainingStopped, VaetoolError):
    """The loss became NaN or inf: the run stopped (the message names the epoch and a cause)."""


class Interrupted(TrainingStopped, VaetoolError):
    """Ctrl-C during training (turned into an error that says what was kept); exit 130."""

    exit_code = 130


def end_epoch(session: Session, record: EpochRecord, on_epoch: EpochCallback | None) -> None:
    """Keep the finished epoch: its record, a copy of its weights (and of the best's), then
    ``on_epoch`` (which saves a resumable run's state)."""
    session.last = {k: v.detach().clone() for k, v in session.model.state_dict().items()}
    session.history.append(record)
    if session.train_config.keep == "best" and kept_epoch(session.history, "best") == record.epoch:
        session.best = session.last
    if on_epoch is not None:
        on_epoch(record)


def diverged_message(epoch: int, batch: int | None, config: TrainConfig) -> str:
    """One line: where the loss stopped being finite and the likeliest cause."""
    where = f"by batch {batch}" if batch is not None else "on the validation split"
    lr = config.lr or 0.0
    large = {k: v for k, v in config.options.items() if isinstance(v, int | float) and v > 1e3}
    if lr > 1e-2:
        cause = f"the learning rate {lr:g} is too large (the papers use 1e-3 or 1e-4; ‹lr›)"
    elif large:
        name, value = next(iter(large.items()))
        cause = f"{named(name)} {value:g} is extreme"
    else:
        cause = "lower ‹lr›, or check the data and ‹sigma2› for extreme values"
    return f"training diverged in epoch {epoch}: the loss became NaN or inf {where}; {cause}"


def kept_epoch(history: list[EpochRecord], keep: str) -> int:
    """The epoch (1-based) whose weights ``keep`` chooses: the last, or the best val ELBO
    (the earliest of ties)."""
    if keep == "last":
        return len(history)
    elbos = [record.val_elbo for record in history]
    return elbos.index(max(elbos)) + 1
