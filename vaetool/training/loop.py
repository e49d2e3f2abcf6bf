"""Fitting a VAE: the objective's steps over device-resident batches, with no printing.

A :class:`Session` holds everything a run needs — data feeds, model, objective (with its
optimisers), the shuffling generator and the epochs done — so that its state can be saved at an
epoch's end and a run resumed bit-identically (vaetool.training.run_state). The loop knows nothing
about the objective beyond ``train_step`` / ``eval_terms`` and the names of the terms they return.
Progress goes through optional callbacks so the CLI can draw a bar and notebooks can log.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from vaetool import __version__, distributed
from vaetool.analysis.encode import encode
from vaetool.analysis.indicators import INFLUENTIAL_THRESHOLD_NATS, factor_information
from vaetool.analysis.qstar import QStarAccumulator
from vaetool.config import DataConfig, ModelChoice, ModelConfig, TrainConfig
from vaetool.data import SPLIT_NAMES, ImageData, Split, load_dataset, split_indices
from vaetool.data.feed import DeviceFeed
from vaetool.device import check_bytes, resolve_device
from vaetool.errors import ConfigError, VaetoolError, VaetoolWarning
from vaetool.models import VAE, architecture_for_shape, build_model, default_lr
from vaetool.objectives import Objective, TrainContext, build_objective, resolve_options
from vaetool.store.checkpoint import CheckpointInfo
from vaetool.training.fast_step import Step, make_step

# on_batch(epoch, batch, batches_per_epoch, running means or None between refreshes)
BatchCallback = Callable[[int, int, int, "dict[str, float] | None"], None]
EpochCallback = Callable[["EpochRecord"], None]
REFRESH_EVERY = 10  # batches between host syncs for the progress display
MIN_SPLIT = 10  # images per split below which training is refused
WARN_SPLIT = 100  # images per split below which it warns


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


def start_session(
    data_config: DataConfig,
    train_config: TrainConfig,
    model: ModelChoice | None = None,
    device: str = "auto",
) -> Session:
    """Resolve every config (architecture and shape from the data, lr, the objective's
    options), check sizes, and open a session at epoch 0."""
    model = model or ModelChoice()
    model.check_names()  # unknown names fail before the data is loaded
    options = resolve_options(train_config.objective, train_config.options)
    data = load_dataset(data_config.spec, subset=data_config.subset, seed=data_config.split_seed)
    shape = tuple(data.shape)
    model_config = model.resolve(architecture_for_shape(shape), shape)
    lr = train_config.lr or default_lr(model_config.architecture)
    train_config = replace(train_config, lr=lr, options=options)  # the checkpoint records these
    return open_session(model_config, data_config, train_config, device, data)


def open_session(
    model_config: ModelConfig,
    data_config: DataConfig,
    train_config: TrainConfig,
    device: str,
    data: ImageData | None = None,
) -> Session:
    """A session at epoch 0 for resolved configs: data split and fed, the model and objective
    built from the seed. A resumed run opens the same session, then loads its saved state."""
    target = resolve_device(distributed.local_device(device))
    distributed.init_from_env(target)
    if data is None:
        spec, subset, seed = data_config.spec, data_config.subset, data_config.split_seed
        data = load_dataset(spec, subset=subset, seed=seed)
    split = split_indices(len(data), data_config.split_seed, data_config.fractions)
    check_split_sizes(split, data.spec)
    check_model_fits(model_config, target)
    torch.manual_seed(train_config.seed)
    vae = build_model(model_config).to(target)
    part = distributed.part()
    feeds = DeviceFeed(data, split.train, target, part), DeviceFeed(data, split.val, target, part)
    steps = feeds[0].num_batches(train_config.batch_size)
    assert train_config.lr is not None
    context = TrainContext(len(split.train), steps, train_config.lr, target,
                           train_config.precision)  # fmt: skip
    objective = build_objective(train_config.objective, train_config.options, vae, context)
    shuffle = torch.Generator().manual_seed(train_config.seed)  # the same order on every rank
    if part[0] > 0:  # torchrun: the same weights, each rank its own training noise
        torch.manual_seed(train_config.seed + 7919 * part[0])
    step = make_step(objective, target, train_config.graph)
    return Session(model_config, data_config, train_config, split, target, *feeds, vae,
                   objective, shuffle, step)  # fmt: skip


def train(
    data_config: DataConfig,
    train_config: TrainConfig,
    model: ModelChoice | None = None,
    *,
    device: str = "auto",
    on_batch: BatchCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Start a session and run it to the end (see :func:`run_session`)."""
    session = start_session(data_config, train_config, model, device)
    return run_session(session, on_batch, on_epoch)


def run_session(
    session: Session,
    on_batch: BatchCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Run the remaining epochs, then describe the kept weights. ``on_epoch`` is called after
    each epoch's record is in ``session.history`` (a resumable run saves its state there)."""
    try:
        fit(session, on_batch, on_epoch)
    except (Diverged, Interrupted) as stop:
        stop.partial = stopped_result(session, stop)
        raise
    return finish_session(session)


def stopped_result(session: Session, stop: Diverged | Interrupted) -> TrainResult | None:
    """The last finished epoch's weights of a stopped run (None if no epoch finished)."""
    if session.last is None:
        return None
    status = "diverged" if isinstance(stop, Diverged) else "interrupted"
    return _result(session, session.last, len(session.history), status)


def finish_session(session: Session) -> TrainResult:
    """The weights ``keep`` chose, described, with the information check (MATH.md §1)."""
    keep = session.train_config.keep
    kept = kept_epoch(session.history, keep)
    weights = session.best if keep == "best" else session.last
    result = _result(session, weights, kept, "finished")
    result.info.summary.update(information_check(session.model, session.val_feed))
    return result


def _result(
    session: Session, weights: dict[str, torch.Tensor] | None, kept: int, status: str
) -> TrainResult:
    if weights is not None:
        session.model.load_state_dict(weights)
    info = describe(session, kept, status)
    noise = session.model.likelihood.noise()
    if noise:  # the learned noise of the saved weights (history.csv has it per epoch)
        info.summary["noise"] = {k: float(f"{float(v):.8g}") for k, v in noise.items()}
    return TrainResult(session.model.eval(), session.objective, info, list(session.history))


def describe(session: Session, kept: int, status: str) -> CheckpointInfo:
    """The checkpoint's description of a run: configs, split sizes, kept and final epochs."""
    history, split = session.history, session.split
    summary = {
        "status": status,  # finished, diverged, interrupted or running (a resumable state)
        "device": str(session.device),
        "n_train": len(split.train),
        "n_val": len(split.val),
        "n_test": len(split.test),
        "kept_epoch": kept,
        "kept": history[kept - 1].row() if kept else None,
        "final": history[-1].row() if history else None,
        "seconds": round(sum(r.seconds for r in history), 3),
        "torch_version": torch.__version__,
    }
    configs = (session.model_config, session.data_config, session.train_config)
    return CheckpointInfo(*configs, summary, {}, __version__)


class TrainingStopped:
    """Mixin of :class:`Diverged` and :class:`Interrupted`: ``partial`` is a TrainResult
    holding the last finished epoch's weights (None when no epoch finished)."""

    partial: TrainResult | None = None


class Diverged(TrainingStopped, VaetoolError):
    """The loss became NaN or inf: the run stopped (the message names the epoch and a cause)."""


class Interrupted(TrainingStopped, VaetoolError):
    """Ctrl-C during training (turned into an error that says what was kept); exit 130."""

    exit_code = 130


def fit(
    session: Session, on_batch: BatchCallback | None = None, on_epoch: EpochCallback | None = None
) -> list[EpochRecord]:
    """The objective's steps for the epochs not yet done; one record per epoch.

    Seeds: weights come from the session's seed; shuffling uses the session's CPU generator;
    validation noise uses its own seed so it never shifts training noise. A copy of the last
    finished epoch's weights is kept on the device (and of the best validation ELBO's with
    ``keep = "best"``). A NaN or inf loss — checked where the progress display syncs anyway,
    and at each epoch's end — raises :class:`Diverged`; Ctrl-C raises :class:`Interrupted`.
    """
    epoch = len(session.history)
    try:
        for epoch in range(len(session.history) + 1, session.train_config.epochs + 1):
            _fit_epoch(session, epoch, on_batch, on_epoch)
    except KeyboardInterrupt:  # anywhere, the epoch callback included: finished records stand
        raise Interrupted(f"stopped by Ctrl-C in epoch {epoch}") from None
    return session.history


def _fit_epoch(
    session: Session, epoch: int, on_batch: BatchCallback | None, on_epoch: EpochCallback | None
) -> None:
    config = session.train_config
    start = time.perf_counter()
    try:
        train_means = _train_epoch(session, epoch, on_batch)
        val_means = evaluate(session.objective, session.val_feed, config, config.seed + 1)
    except _NonFinite as bad:
        raise Diverged(diverged_message(epoch, bad.batch, config)) from None
    if not all(math.isfinite(v) for v in val_means.values()):
        raise Diverged(diverged_message(epoch, None, config))
    seconds = time.perf_counter() - start
    record = EpochRecord(epoch, train_means, val_means, seconds, len(session.train_feed) / seconds)
    end_epoch(session, record, on_epoch)


def end_epoch(session: Session, record: EpochRecord, on_epoch: EpochCallback | None) -> None:
    """Keep the finished epoch: its record, a copy of its weights (and of the best's), then
    ``on_epoch`` (which saves a resumable run's state)."""
    session.last = {k: v.detach().clone() for k, v in session.model.state_dict().items()}
    session.history.append(record)
    if session.train_config.keep == "best" and kept_epoch(session.history, "best") == record.epoch:
        session.best = session.last
    if on_epoch is not None:
        on_epoch(record)


class _NonFinite(Exception):
    def __init__(self, batch: int) -> None:
        self.batch = batch


def _train_epoch(session: Session, epoch: int, on_batch: BatchCallback | None) -> dict[str, float]:
    """One pass of the objective's steps; the epoch's mean terms. Raises _NonFinite (with the
    batch) when the running sums stop being finite, checked only where a host sync happens."""
    objective, feed, config = session.objective, session.train_feed, session.train_config
    objective.train()
    names = objective.terms()
    n_batches = feed.num_batches(config.batch_size)
    sums = torch.zeros(len(names), dtype=torch.float64, device=feed.device)
    seen = 0
    for i, x in enumerate(feed.batches(config.batch_size, session.shuffle)):
        terms = session.step(x)
        sums += _stacked(terms, names) * x.shape[0]
        seen += x.shape[0]
        if on_batch is not None:
            refresh = (i + 1) % REFRESH_EVERY == 0 or i + 1 == n_batches
            means = _named(sums / seen, names) if refresh else None
            if means is not None and not math.isfinite(means["loss"]) and not distributed.active():
                raise _NonFinite(i + 1)
            on_batch(epoch, i + 1, n_batches, means)
    means = _named(distributed.all_reduce_sum(sums) / len(feed), names)
    if not all(math.isfinite(v) for v in means.values()):
        raise _NonFinite(n_batches)
    return means


def diverged_message(epoch: int, batch: int | None, config: TrainConfig) -> str:
    """One line: where the loss stopped being finite and the likeliest cause."""
    where = f"by batch {batch}" if batch is not None else "on the validation split"
    lr = config.lr or 0.0
    large = {k: v for k, v in config.options.items() if isinstance(v, int | float) and v > 1e3}
    if lr > 1e-2:
        cause = f"the learning rate {lr:g} is too large (the papers use 1e-3 or 1e-4; --lr)"
    elif large:
        name, value = next(iter(large.items()))
        cause = f"--{name.replace('_', '-')} {value:g} is extreme"
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
            sums += _stacked(objective.eval_terms(x), names) * x.shape[0]
    return _named(distributed.all_reduce_sum(sums) / max(len(feed), 1), names)


def _stacked(terms: dict[str, torch.Tensor], names: tuple[str, ...]) -> torch.Tensor:
    return torch.stack([terms[k].detach() for k in names]).to(torch.float64)


def _named(values: torch.Tensor, names: tuple[str, ...]) -> dict[str, float]:
    return dict(zip(names, values.tolist(), strict=True))


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
