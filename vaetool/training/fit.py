"""The one training loop: epochs of steps over device-resident batches, validation, records.

What differs between the ways vaetool trains is a :class:`Stepper`: one model, eager or
replayed from a CUDA graph, alone or data-parallel under torchrun (:class:`SessionStepper`), or
K seeds trained at once as one stacked model (vaetool.training.ensemble.StackStepper). The loop
itself — epoch bounds, running means for the progress display, the divergence checks, Ctrl-C,
timing, each model's record and kept weights — is written once, here, and knows nothing about
the objective beyond the names of the terms its steps return.

Seeds: weights come from each session's seed; shuffling uses its CPU generator; validation
noise uses its own seed (``seed + 1``) so it never shifts training noise. A NaN or inf term —
checked where the progress display syncs anyway, and at each epoch's end — raises
:class:`Diverged`; Ctrl-C anywhere (the epoch callback included) raises :class:`Interrupted`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Protocol

import torch
from torch import Tensor

from vaetool import distributed
from vaetool.config import TrainConfig
from vaetool.data.feed import DeviceFeed
from vaetool.objectives import Objective
from vaetool.training.session import (
    BatchCallback,
    Diverged,
    EpochCallback,
    EpochRecord,
    Interrupted,
    Session,
    diverged_message,
    end_epoch,
)

REFRESH_EVERY = 10  # batches between host syncs for the progress display
ModelEpochCallback = Callable[[int, EpochRecord], None]  # (model index k, its record)


class Stepper(Protocol):
    """How one execution mode trains its K ≥ 1 sessions (``sessions[0]`` leads: its configs
    and feeds are every model's)."""

    sessions: list[Session]

    def batches(self) -> Iterator[Tensor]:
        """The epoch's training batches (shuffled by the sessions' generators)."""
        ...

    def step(self, x: Tensor) -> Tensor:
        """One step of every model on ``x``: (K, terms) float64, the batch's terms."""
        ...

    def batch_size(self, x: Tensor) -> int: ...

    def reduce(self, sums: Tensor) -> Tensor:
        """The epoch's sums over every process (torchrun), or as they are."""
        ...

    def validate(self) -> Tensor:
        """Every model's mean terms on the validation split: (K, terms) float64."""
        ...

    def sync(self) -> None:
        """Bring the sessions up to date with the trained state before their records."""
        ...


def fit_models(
    stepper: Stepper,
    on_batch: BatchCallback | None = None,
    on_epoch: ModelEpochCallback | None = None,
) -> None:
    """The epochs not yet done; after each, every session keeps its record and weights and
    ``on_epoch(k, record)`` runs (a resumable run saves its state there)."""
    lead = stepper.sessions[0]
    names = lead.objective.terms()
    epoch = len(lead.history)
    try:
        for epoch in range(len(lead.history) + 1, lead.train_config.epochs + 1):
            start = time.perf_counter()
            train = _train_epoch(stepper, epoch, names, on_batch)
            val = stepper.validate()
            _check_finite(stepper, val, epoch, None)
            seconds = time.perf_counter() - start
            stepper.sync()
            rate = len(lead.train_feed) / seconds
            for k, session in enumerate(stepper.sessions):
                record = EpochRecord(epoch, _named(train[k], names), _named(val[k], names),
                                     seconds, rate)  # fmt: skip
                end_epoch(session, record, None if on_epoch is None else _bind(on_epoch, k))
    except KeyboardInterrupt:  # finished records stand
        raise Interrupted(f"stopped by Ctrl-C in epoch {epoch}") from None


def _train_epoch(
    stepper: Stepper, epoch: int, names: tuple[str, ...], on_batch: BatchCallback | None
) -> Tensor:
    """One pass of steps; every model's mean terms (K, terms)."""
    lead = stepper.sessions[0]
    n_batches = lead.train_feed.num_batches(lead.train_config.batch_size)
    sums = torch.zeros(len(stepper.sessions), len(names), dtype=torch.float64,
                       device=lead.train_feed.device)  # fmt: skip
    seen = 0
    for i, x in enumerate(stepper.batches()):
        size = stepper.batch_size(x)
        sums += stepper.step(x) * size
        seen += size
        if on_batch is not None:
            refresh = (i + 1) % REFRESH_EVERY == 0 or i + 1 == n_batches
            means = sums / seen if refresh else None
            if means is not None and not distributed.active():
                _check_finite(stepper, means, epoch, i + 1)
            on_batch(epoch, i + 1, n_batches, None if means is None else _named(means[0], names))
    means = stepper.reduce(sums) / len(lead.train_feed)
    _check_finite(stepper, means, epoch, n_batches)
    return means


def _check_finite(stepper: Stepper, means: Tensor, epoch: int, batch: int | None) -> None:
    """Diverged, naming the first model (its seed, when several train) whose terms are not
    finite."""
    finite = torch.isfinite(means).all(1).tolist()
    for session, ok in zip(stepper.sessions, finite, strict=True):
        if not ok:
            message = diverged_message(epoch, batch, session.train_config)
            if len(stepper.sessions) > 1:
                message = f"seed {session.train_config.seed}: {message}"
            raise Diverged(message)


def _bind(on_epoch: ModelEpochCallback, k: int) -> EpochCallback:
    return lambda record: on_epoch(k, record)


def _named(values: Tensor, names: tuple[str, ...]) -> dict[str, float]:
    return dict(zip(names, values.tolist(), strict=True))


def stacked_terms(terms: dict[str, Tensor], names: tuple[str, ...]) -> Tensor:
    """A step's terms {name: 0-dim or (K,)} as one float64 tensor (K, len(names))."""
    return torch.stack([terms[k].detach() for k in names], -1).to(torch.float64).reshape(
        -1, len(names))  # fmt: skip


class SessionStepper:
    """One model: ``session.step`` (eager, or the CUDA graph of vaetool.training.fast_step),
    its batch split between ranks under torchrun (the sums all-reduced)."""

    def __init__(self, session: Session) -> None:
        self.sessions = [session]
        self.session = session
        self.names = session.objective.terms()

    def batches(self) -> Iterator[Tensor]:
        session = self.session
        session.objective.train()
        return session.train_feed.batches(session.train_config.batch_size, session.shuffle)

    def step(self, x: Tensor) -> Tensor:
        return stacked_terms(self.session.step(x), self.names)

    def batch_size(self, x: Tensor) -> int:
        return int(x.shape[0])

    def reduce(self, sums: Tensor) -> Tensor:
        return distributed.all_reduce_sum(sums)

    def validate(self) -> Tensor:
        session = self.session
        config = session.train_config
        means = evaluate(session.objective, session.val_feed, config, config.seed + 1)
        return torch.tensor([[means[n] for n in self.names]], dtype=torch.float64)

    def sync(self) -> None:
        pass


def fit(
    session: Session, on_batch: BatchCallback | None = None, on_epoch: EpochCallback | None = None
) -> list[EpochRecord]:
    """One session's remaining epochs (:func:`fit_models` with a :class:`SessionStepper`)."""
    hook = None if on_epoch is None else (lambda k, record: on_epoch(record))
    fit_models(SessionStepper(session), on_batch, hook)
    return session.history


@torch.no_grad()
def evaluate(
    objective: Objective, feed: DeviceFeed, config: TrainConfig, seed: int = 0
) -> dict[str, float]:
    """Mean terms over a split, one seeded reparameterisation sample per image; the global
    generator is restored afterwards, so validation never shifts the training noise."""
    objective.eval()
    names = objective.terms()
    devices = [feed.device] if feed.device.type == "cuda" else []
    sums = torch.zeros(len(names), dtype=torch.float64, device=feed.device)
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for x in feed.batches(config.batch_size):
            sums += stacked_terms(objective.eval_terms(x), names)[0] * x.shape[0]
    values = distributed.all_reduce_sum(sums) / max(len(feed), 1)
    return _named(values, names)
