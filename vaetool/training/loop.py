"""A training run from start to finish, with no printing: resolve the configs and open a
:class:`~vaetool.training.session.Session` (data split and fed, model and objective built from
the seed), run its epochs (vaetool.training.fit, the one loop), and describe the kept weights.

A session holds everything a run needs, so its state can be saved at an epoch's end and a run
resumed bit-identically (vaetool.training.run_state). Progress goes through optional callbacks
so the CLI can draw a bar and notebooks can log.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import torch

from vaetool import distributed
from vaetool._version import __version__
from vaetool.analysis.encode import encode
from vaetool.analysis.indicators import INFLUENTIAL_THRESHOLD_NATS, factor_information
from vaetool.analysis.qstar import QStarAccumulator
from vaetool.config import DataConfig, ModelConfig, TrainConfig
from vaetool.data import SPLIT_NAMES, ImageData, Split, load_dataset, split_indices
from vaetool.data.feed import DeviceFeed
from vaetool.device import check_bytes, resolve_device
from vaetool.errors import ConfigError, DataError, VaetoolWarning
from vaetool.models import VAE, architecture_for_shape, build_model, check_choice, default_lr
from vaetool.objectives import TrainContext, build_objective, resolve_options
from vaetool.store.checkpoint import CheckpointInfo
from vaetool.training.fast_step import make_step
from vaetool.training.fit import fit
from vaetool.training.session import (
    BatchCallback,
    Diverged,
    EpochCallback,
    Interrupted,
    Session,
    TrainResult,
    kept_epoch,
)

MIN_SPLIT = 10  # images per split below which training is refused
WARN_SPLIT = 100  # images per split below which it warns


def start_session(
    data_config: DataConfig,
    train_config: TrainConfig,
    model: ModelConfig | None = None,
    device: str = "auto",
) -> Session:
    """Resolve every config (architecture and shape from the data, lr, the objective's
    options), check sizes, and open a session at epoch 0."""
    model = model or ModelConfig()
    check_choice(model)  # unknown names fail before the data is loaded
    options = resolve_options(train_config.objective, train_config.options)
    data = load_dataset(data_config.spec, subset=data_config.subset, seed=data_config.split_seed)
    shape = tuple(data.shape)
    model_config = model.for_data(architecture_for_shape(shape), shape)
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
    model: ModelConfig | None = None,
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


def information_check(model: VAE, feed: DeviceFeed) -> dict[str, float | int]:
    """q* I_h on the validation split (MATH.md §1): how many factors are influential and the
    largest I_h (nats); warns on posterior collapse (none above 0.5 nats), or that no check
    was possible when the posterior is implausible (analysis.encode.check_plausible): the
    trained weights are saved either way. One encoder pass."""
    accumulator = QStarAccumulator(model.config.latents)
    try:
        encode(model, feed, keep=False, accumulator=accumulator)
    except DataError as error:  # an implausible posterior: the run is still saved, and said
        warnings.warn(f"no information check: {error}", VaetoolWarning, stacklevel=2)
        return {}
    qstar = accumulator.finalize()
    mi = factor_information(qstar.s2, qstar.mean_logvar)
    influential, largest = int((mi > INFLUENTIAL_THRESHOLD_NATS).sum()), float(mi.max())
    if influential == 0:
        warnings.warn(
            f"posterior collapse: no factor carries more than {INFLUENTIAL_THRESHOLD_NATS} nats "
            f"on the validation split (largest I_h {largest:.2f}); train longer or with more "
            "steps (‹batch_size› 25), or lower ‹beta› (docs/training.md)",
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
            f"(0.6/0.2/0.2 of the data: use at least {5 * MIN_SPLIT} images, ‹subset›)"
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
    what = f"‹latents› {config.latents}: training a model of {params / 1e9:.3g} GB of weights"
    check_bytes(4 * params, device, what)
