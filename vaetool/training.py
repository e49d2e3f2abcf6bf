"""Fitting a VAE: a plain Adam loop over device-resident batches, with no printing.

Progress goes through an optional callback so the CLI can draw a bar and notebooks can log.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial

import torch

from vaetool import __version__
from vaetool.analysis.encode import encode
from vaetool.analysis.indicators import INFLUENTIAL_THRESHOLD_NATS, factor_information
from vaetool.analysis.qstar import QStarAccumulator
from vaetool.checkpoint import CheckpointInfo
from vaetool.config import DataConfig, ModelConfig, TrainConfig
from vaetool.data import SPLIT_NAMES, Split, load_dataset, split_indices
from vaetool.data.feed import DeviceFeed
from vaetool.device import check_bytes, resolve_device
from vaetool.errors import ConfigError, VaetoolError, VaetoolWarning
from vaetool.likelihoods import LIKELIHOODS
from vaetool.models import VAE, architecture_for_shape, build_model, default_lr
from vaetool.objectives import OBJECTIVES, LossTerms

# on_batch(epoch, batch, batches_per_epoch, running means or None between refreshes)
BatchCallback = Callable[[int, int, int, "dict[str, float] | None"], None]
EpochCallback = Callable[["EpochRecord"], None]
_REFRESH_EVERY = 10  # batches between host syncs for the progress display
MIN_SPLIT = 10  # images per split below which training is refused
WARN_SPLIT = 100  # images per split below which it warns


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
    OBJECTIVES.get(train_config.objective)  # fail on unknown names before loading data
    LIKELIHOODS.get(likelihood)
    data = load_dataset(data_config.spec, subset=data_config.subset, seed=data_config.split_seed)
    split = split_indices(len(data), data_config.split_seed, data_config.fractions)
    check_split_sizes(split, data.spec)
    shape = tuple(data.shape)
    model_config = ModelConfig(architecture_for_shape(shape), shape, latents, likelihood, sigma2)
    if train_config.lr is None:  # resolved here so the checkpoint records the rate used
        train_config = replace(train_config, lr=default_lr(model_config.architecture))
    check_model_fits(model_config, target)
    torch.manual_seed(train_config.seed)
    model = build_model(model_config).to(target)
    feeds = DeviceFeed(data, split.train, target), DeviceFeed(data, split.val, target)
    describe = partial(_describe, model_config, data_config, train_config, split, target)
    try:
        history = fit(model, feeds[0], feeds[1], train_config, on_batch, on_epoch)
    except (Diverged, Interrupted) as stop:
        if stop.last_finite is not None:
            model.load_state_dict(stop.last_finite)
            status = "diverged" if isinstance(stop, Diverged) else "interrupted"
            info = describe(stop.history, len(stop.history), status)
            stop.partial = TrainResult(model.eval(), info, stop.history)
        raise
    info = describe(history, kept_epoch(history, train_config.keep), "finished")
    info.summary.update(information_check(model, feeds[1]))
    return TrainResult(model.eval(), info, history)


def information_check(model: VAE, feed: DeviceFeed) -> dict[str, float | int]:
    """q* I_h on the validation split (MATH.md §1): how many factors are influential and the
    largest I_h (nats); warns on posterior collapse (none above 0.5 nats). One encoder pass."""
    accumulator = QStarAccumulator(model.config.latents)
    encode(model, feed, keep=False, accumulator=accumulator)
    qstar = accumulator.finalize()
    mi = factor_information(qstar.s2, qstar.mean_logvar)
    influential, largest = int((mi > INFLUENTIAL_THRESHOLD_NATS).sum()), float(mi.max())
    if influential == 0:
        warnings.warn(
            f"posterior collapse: no factor carries more than {INFLUENTIAL_THRESHOLD_NATS} nats "
            f"on the validation split (largest I_h {largest:.2f}); train longer or with more "
            "steps (--batch-size 25), or lower --beta (docs/training.md)",
            VaetoolWarning,
            stacklevel=2,
        )
    return {"val_influential": influential, "val_max_mi": round(largest, 6)}


def _describe(
    model_config: ModelConfig,
    data_config: DataConfig,
    train_config: TrainConfig,
    split: Split,
    device: torch.device,
    history: list[EpochRecord],
    kept: int,
    status: str,
) -> CheckpointInfo:
    """The checkpoint's description of a run: configs, split sizes, kept and final epochs."""
    summary = {
        "status": status,  # finished, diverged or interrupted
        "device": str(device),
        "n_train": len(split.train),
        "n_val": len(split.val),
        "n_test": len(split.test),
        "kept_epoch": kept,
        "kept": asdict(history[kept - 1]),
        "final": asdict(history[-1]),
        "seconds": round(sum(r.seconds for r in history), 3),
        "torch_version": torch.__version__,
    }
    return CheckpointInfo(model_config, data_config, train_config, summary, {}, __version__)


def check_split_sizes(split: Split, spec: str) -> None:
    """Refuse splits too small to mean anything (< MIN_SPLIT images); warn below WARN_SPLIT."""
    sizes = {name: len(split.get(name)) for name in SPLIT_NAMES}
    small = {name: n for name, n in sizes.items() if n < MIN_SPLIT}
    if small:
        name, n = next(iter(small.items()))
        raise ConfigError(
            f"{spec}: the {name} split has {n} images; every split needs at least {MIN_SPLIT} "
            f"(0.6/0.2/0.2 of the data: use at least {5 * MIN_SPLIT} images, --subset)"
        )
    few = [f"{name} {n}" for name, n in sizes.items() if n < WARN_SPLIT]
    if few:
        warnings.warn(
            f"{spec}: small splits ({', '.join(few)} images): the validation ELBO and the "
            f"information estimates will be noisy (fewer than {WARN_SPLIT})",
            VaetoolWarning,
            stacklevel=2,
        )


def check_model_fits(config: ModelConfig, device: torch.device) -> None:
    """Refuse a model whose training state (weights, gradients, Adam's two moments: 4 copies)
    would not fit in the device's memory; sizes from a build on the meta device (no memory)."""
    with torch.device("meta"):
        params = sum(p.numel() * p.element_size() for p in build_model(config).parameters())
    what = f"--latents {config.latents}: training a model of {params / 1e9:.3g} GB of weights"
    check_bytes(4 * params, device, what)


class TrainingStopped:
    """What a stopped run leaves: the history so far and the weights of its last finite epoch
    (None when no epoch finished); :func:`train` adds ``partial``, a TrainResult holding those
    weights (None when no epoch finished). Carried by :class:`Diverged` and :class:`Interrupted`.
    """

    history: list[EpochRecord]
    last_finite: dict[str, torch.Tensor] | None
    epoch: int  # the epoch that was running
    partial: TrainResult | None = None


class Diverged(TrainingStopped, VaetoolError):
    """The loss became NaN or inf: the run stopped (the message names the epoch and a cause)."""

    def __init__(
        self, message: str, history: list[EpochRecord], last: dict | None, epoch: int
    ) -> None:
        VaetoolError.__init__(self, message)
        self.history, self.last_finite, self.epoch = history, last, epoch


class Interrupted(TrainingStopped, VaetoolError):
    """Ctrl-C during training (the KeyboardInterrupt, turned into an error that says what was
    kept); the CLI prints it and exits 130."""

    exit_code = 130

    def __init__(
        self, message: str, history: list[EpochRecord], last: dict | None, epoch: int
    ) -> None:
        VaetoolError.__init__(self, message)
        self.history, self.last_finite, self.epoch = history, last, epoch


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
    validation ELBO. A copy of the last finite epoch's weights is kept on the device: a NaN or
    inf loss (checked where the progress display syncs anyway, and at each epoch's end) raises
    :class:`Diverged`, Ctrl-C raises :class:`Interrupted`, both carrying that copy.
    """
    objective = OBJECTIVES.get(config.objective)
    lr = config.lr or default_lr(model.config.architecture)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    shuffle = torch.Generator().manual_seed(config.seed)
    history: list[EpochRecord] = []
    best = last = None
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        try:
            train_means = _train_epoch(
                model, objective, optimizer, train_feed, config, shuffle, epoch, on_batch
            )
            val_means = evaluate(model, val_feed, config, seed=config.seed + 1)
        except _NonFinite as bad:
            message = _diverged_message(epoch, bad.batch, config, lr)
            raise Diverged(message, history, last, epoch) from None
        except KeyboardInterrupt:
            raise Interrupted(f"stopped by Ctrl-C in epoch {epoch}", history, last, epoch) from None
        if not math.isfinite(val_means["elbo"]):
            raise Diverged(_diverged_message(epoch, None, config, lr), history, last, epoch)
        seconds = time.perf_counter() - start
        history.append(
            EpochRecord(epoch, train_means["loss"], train_means["recon"], train_means["kl"],
                        train_means["elbo"], val_means["recon"], val_means["kl"],
                        val_means["elbo"], seconds, len(train_feed) / seconds)
        )  # fmt: skip
        last = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if config.keep == "best" and kept_epoch(history, "best") == epoch:
            best = last
        if on_epoch is not None:
            on_epoch(history[-1])
    if best is not None:
        model.load_state_dict(best)
    return history


class _NonFinite(Exception):
    def __init__(self, batch: int) -> None:
        self.batch = batch


def _train_epoch(
    model: VAE,
    objective: Callable[..., LossTerms],
    optimizer: torch.optim.Optimizer,
    feed: DeviceFeed,
    config: TrainConfig,
    shuffle: torch.Generator,
    epoch: int,
    on_batch: BatchCallback | None,
) -> dict[str, float]:
    """One pass of Adam steps; the epoch's mean loss terms. Raises _NonFinite (with the batch)
    when the running sums stop being finite, checked only where a host sync happens anyway."""
    model.train()
    n_batches = feed.num_batches(config.batch_size)
    sums = torch.zeros(4, dtype=torch.float64, device=feed.device)
    for i, x in enumerate(feed.batches(config.batch_size, shuffle)):
        terms = objective(model, x, config.beta)
        optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        optimizer.step()
        sums += _stacked(terms).detach() * x.shape[0]
        if on_batch is not None:
            refresh = (i + 1) % _REFRESH_EVERY == 0 or i + 1 == n_batches
            means = _named(sums / _seen(i, config.batch_size, len(feed))) if refresh else None
            if means is not None and not math.isfinite(means["loss"]):
                raise _NonFinite(i + 1)
            on_batch(epoch, i + 1, n_batches, means)
    means = _named(sums / len(feed))
    if not all(math.isfinite(v) for v in means.values()):
        raise _NonFinite(n_batches)
    return means


def _diverged_message(epoch: int, batch: int | None, config: TrainConfig, lr: float) -> str:
    """One line: where the loss stopped being finite and the likeliest cause."""
    where = f"by batch {batch}" if batch is not None else "on the validation split"
    if lr > 1e-2:
        cause = f"the learning rate {lr:g} is too large (the papers use 1e-3 or 1e-4; --lr)"
    elif config.beta > 1e3:
        cause = f"β = {config.beta:g} is extreme (--beta)"
    else:
        cause = "lower --lr, or check the data and --sigma2 for extreme values"
    return f"training diverged in epoch {epoch}: the loss became NaN or inf {where}; {cause}"


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
