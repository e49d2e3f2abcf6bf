"""Fitting a VAE: a plain Adam loop over device-resident batches, with no printing.

Progress goes through an optional callback so the CLI can draw a bar and notebooks can log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch

from vaetool import __version__
from vaetool.checkpoint import CheckpointInfo
from vaetool.config import DataConfig, ModelConfig, TrainConfig
from vaetool.data import load_dataset, split_indices
from vaetool.data.feed import DeviceFeed
from vaetool.device import resolve_device
from vaetool.models import VAE, architecture_for_shape, build_model, default_lr
from vaetool.objectives import OBJECTIVES, LossTerms

# on_batch(epoch, batch, batches_per_epoch, running means or None between refreshes)
BatchCallback = Callable[[int, int, int, "dict[str, float] | None"], None]
EpochCallback = Callable[["EpochRecord"], None]
_REFRESH_EVERY = 10  # batches between host syncs for the progress display


@dataclass(frozen=True)
class EpochRecord:
    """Per-epoch means in nats per image; the ELBO columns are the β = 1 bound."""

    epoch: int
    train_loss: float
    train_recon: float
    train_kl: float
    train_elbo: float
    val_recon: float
    val_kl: float
    val_elbo: float
    seconds: float
    images_per_s: float


@dataclass(frozen=True)
class TrainResult:
    """The fitted model (the weights ``config.keep`` chose), its description, every epoch."""

    model: VAE
    info: CheckpointInfo
    history: list[EpochRecord]

    @property
    def kept_epoch(self) -> int:
        return int(self.info.summary["kept_epoch"])


def train(
    data_config: DataConfig,
    train_config: TrainConfig,
    *,
    latents: int = 128,
    likelihood: str = "bernoulli",
    sigma2: float = 1.0,
    device: str = "auto",
    on_batch: BatchCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Load the data, build the paper's architecture for its shape, fit it, and describe it."""
    target = resolve_device(device)
    OBJECTIVES.get(train_config.objective)  # fail on an unknown objective before loading data
    data = load_dataset(data_config.spec, subset=data_config.subset, seed=data_config.split_seed)
    split = split_indices(len(data), data_config.split_seed, data_config.fractions)
    shape = tuple(data.shape)
    model_config = ModelConfig(architecture_for_shape(shape), shape, latents, likelihood, sigma2)
    if train_config.lr is None:  # resolved here so the checkpoint records the rate used
        train_config = replace(train_config, lr=default_lr(model_config.architecture))
    torch.manual_seed(train_config.seed)
    model = build_model(model_config).to(target)
    feeds = DeviceFeed(data, split.train, target), DeviceFeed(data, split.val, target)
    history = fit(model, feeds[0], feeds[1], train_config, on_batch, on_epoch)
    kept = kept_epoch(history, train_config.keep)
    summary = {
        "device": str(target),
        "n_train": len(split.train),
        "n_val": len(split.val),
        "n_test": len(split.test),
        "kept_epoch": kept,
        "kept": asdict(history[kept - 1]),
        "final": asdict(history[-1]),
        "seconds": round(sum(r.seconds for r in history), 3),
        "torch_version": torch.__version__,
    }
    info = CheckpointInfo(model_config, data_config, train_config, summary, {}, __version__)
    return TrainResult(model.eval(), info, history)


def fit(
    model: VAE,
    train_feed: DeviceFeed,
    val_feed: DeviceFeed,
    config: TrainConfig,
    on_batch: BatchCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> list[EpochRecord]:
    """Adam on ``config.objective`` for ``config.epochs``; returns one record per epoch.

    Seeds: weights come from the caller's global seed; shuffling uses a CPU generator seeded
    with ``config.seed``; validation noise uses its own seed so it never shifts training noise.
    With ``config.keep == "best"`` the model ends with the weights of the epoch of the best
    validation ELBO (a copy kept on the device, replaced when it improves).
    """
    objective = OBJECTIVES.get(config.objective)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.lr or default_lr(model.config.architecture)
    )
    shuffle = torch.Generator().manual_seed(config.seed)
    n_batches = train_feed.num_batches(config.batch_size)
    history: list[EpochRecord] = []
    best: dict[str, torch.Tensor] | None = None
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        model.train()
        sums = torch.zeros(4, dtype=torch.float64, device=train_feed.device)
        for i, x in enumerate(train_feed.batches(config.batch_size, shuffle)):
            terms = objective(model, x, config.beta)
            optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
            optimizer.step()
            sums += _stacked(terms).detach() * x.shape[0]
            if on_batch is not None:
                refresh = (i + 1) % _REFRESH_EVERY == 0 or i + 1 == n_batches
                means = (
                    _named(sums / _seen(i, config.batch_size, len(train_feed))) if refresh else None
                )
                on_batch(epoch, i + 1, n_batches, means)
        train_means = _named(sums / len(train_feed))
        val_means = evaluate(model, val_feed, config, seed=config.seed + 1)
        seconds = time.perf_counter() - start
        history.append(
            EpochRecord(epoch, train_means["loss"], train_means["recon"], train_means["kl"],
                        train_means["elbo"], val_means["recon"], val_means["kl"],
                        val_means["elbo"], seconds, len(train_feed) / seconds)
        )  # fmt: skip
        if config.keep == "best" and kept_epoch(history, "best") == epoch:
            best = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if on_epoch is not None:
            on_epoch(history[-1])
    if best is not None:
        model.load_state_dict(best)
    return history


def kept_epoch(history: list[EpochRecord], keep: str) -> int:
    """The epoch (1-based) whose weights ``keep`` chooses: the last, or the best val ELBO
    (the earliest of ties)."""
    if keep == "last":
        return len(history)
    elbos = [record.val_elbo for record in history]
    return elbos.index(max(elbos)) + 1


@torch.no_grad()
def evaluate(model: VAE, feed: DeviceFeed, config: TrainConfig, seed: int = 0) -> dict[str, float]:
    """Mean loss terms over a split, one seeded reparameterisation sample per image."""
    objective = OBJECTIVES.get(config.objective)
    model.eval()
    devices = [feed.device] if feed.device.type == "cuda" else []
    sums = torch.zeros(4, dtype=torch.float64, device=feed.device)
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for x in feed.batches(config.batch_size):
            sums += _stacked(objective(model, x, config.beta)) * x.shape[0]
    return _named(sums / max(len(feed), 1))


_TERMS = ("loss", "recon", "kl", "elbo")


def _stacked(terms: LossTerms) -> torch.Tensor:
    return torch.stack([getattr(terms, k) for k in _TERMS]).to(torch.float64)


def _named(values: torch.Tensor) -> dict[str, float]:
    return dict(zip(_TERMS, values.tolist(), strict=True))


def _seen(batch_index: int, batch_size: int, n: int) -> int:
    return min((batch_index + 1) * batch_size, n)
