"""The one encoder pass: images -> posterior statistics (mu, logvar), on the device.

Every analysis of a checkpoint starts here. The pass runs under ``torch.no_grad`` in eval mode,
keeps batches on the device, and can feed a streaming q* accumulator as it goes, so the q* fit
costs no second pass and no O(N) memory when the posterior itself is not kept.

Every posterior that enters analysis (the encoder pass, a posterior file, arrays) is bounded by
:data:`LIMITS` (docs/mi.md, "Plausible posteriors"): beyond them no estimate means anything (a
mean bias of 1e30 ranks every factor at ~69 nats while Var μ = 0; logvar = −1e30 gives
I_h = 5e29 nats), so such a posterior is refused with one line naming the value and where.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from vaetool.analysis.categorical import CodeAccumulator
from vaetool.analysis.posterior_checks import check_posterior
from vaetool.analysis.qstar import QStarAccumulator
from vaetool.data.feed import DeviceFeed
from vaetool.device import inference_batch_size
from vaetool.errors import ConfigError, DataError
from vaetool.models import VAE
from vaetool.progress import Progress

MU_LIMIT = float(2**24)
"""|mu| ≤ 2²⁴ ≈ 1.7e7: beyond it float32's spacing exceeds 1, the prior's standard deviation, so a
float32 encoder's means keep none of the unit-scale variation that information is measured on
(and KL to the prior exceeds 1.4e14 nats per point): such a mean is a damaged or diverged model."""
LOGVAR_LIMIT = 87.0
"""|logvar| ≤ 87: exp(logvar) stays a normal float32 number (1.2e-38 .. 3.4e38), the variances any
float32 encoder can produce and use; logvar = −1e30 would alone make I_h = 5e29 nats."""
LIMITS = {"mu": (-MU_LIMIT, MU_LIMIT), "logvar": (-LOGVAR_LIMIT, LOGVAR_LIMIT)}
_EXPECTED = {
    "mu": f"|mu| <= 2**24 = {MU_LIMIT:.0f} (float32 resolves the prior's unit scale only below it)",
    "logvar": f"a log-variance within ±{LOGVAR_LIMIT:g} (exp(logvar) a normal float32 number)",
}


def implausible(name: str, values: Tensor) -> Tensor:
    """bool mask of ``values`` (posterior ``name``: "mu" or "logvar") that are NaN, inf or
    outside :data:`LIMITS`."""
    low, high = LIMITS[name]
    return ~((values >= low) & (values <= high))  # NaN fails both comparisons


def plausible(name: str, low: Tensor, high: Tensor) -> Tensor:
    """bool tensor (no sync): ``low`` and ``high`` (extremes of posterior ``name``) in range."""
    bound_low, bound_high = LIMITS[name]
    return ((low >= bound_low) & (high <= bound_high)).all()


def check_plausible(name: str, values: Tensor, where: str, first_row: int = 0) -> None:
    """DataError naming the first [row, col] of ``values`` (posterior ``name``, rows counted
    from ``first_row``) outside :data:`LIMITS`; ``where`` starts the message. One sync."""
    low, high = torch.aminmax(values)
    if bool(plausible(name, low, high)):
        return
    row, col = (int(i) for i in implausible(name, values).nonzero()[0])
    value = float(values[row, col])
    raise DataError(
        f"{where}{name}[{first_row + row}, {col}] = {value:.6g} cannot be right; expected "
        f"{_EXPECTED[name]}"
    )


@dataclass(frozen=True, eq=False)
class Posterior:
    """Posterior statistics of N points: ``mu`` and ``logvar`` (N, H) on one device, floating
    point (float32 from an encoder; a float64 posterior file stays float64)."""

    mu: Tensor
    logvar: Tensor

    def __post_init__(self) -> None:
        check_posterior(self.mu, self.logvar)
        check_plausible("mu", self.mu, "posterior ")
        check_plausible("logvar", self.logvar, "posterior ")

    @property
    def num_points(self) -> int:
        return int(self.mu.shape[0])

    @property
    def num_factors(self) -> int:
        return int(self.mu.shape[1])


@torch.no_grad()
def encode(
    model: VAE,
    feed: DeviceFeed,
    *,
    batch_size: int | None = None,
    keep: bool = True,
    accumulator: QStarAccumulator | None = None,
    code: CodeAccumulator | None = None,
    on_progress: Progress | None = None,
) -> Posterior | None:
    """Encode every image of ``feed`` in order; return the :class:`Posterior` if ``keep``.

    ``accumulator`` (optional) receives each batch's (mu, logvar) for a streaming q* fit;
    ``code`` (optional) each batch's categorical-code logits (a model with a code).
    ``batch_size`` defaults to :func:`vaetool.device.inference_batch_size` for the feed's device.
    """
    if keep and feed.part[1] > 1:
        raise ConfigError("an estimator that keeps the whole posterior (mixture, Fano, prune) "
                          "does not run under torchrun yet; run it in one process")  # fmt: skip
    model.eval()
    batch_size = batch_size or inference_batch_size(feed.device)
    mus: list[Tensor] = []
    logvars: list[Tensor] = []
    extremes: Tensor | None = None  # (4, H): min mu, max mu, min logvar, max logvar so far
    done = 0
    for x in feed.batches(batch_size):
        mu, logvar, logits = model.encode_all(x)  # (B, H) each, (B, K)
        batch = torch.stack([*torch.aminmax(mu, dim=0), *torch.aminmax(logvar, dim=0)])
        extremes = batch if extremes is None else _widen(extremes, batch)
        if code is not None:
            code.update(logits)
        if accumulator is not None:
            accumulator.update(mu, logvar)
        if keep:
            mus.append(mu)
            logvars.append(logvar)
        done += x.shape[0]
        if on_progress is not None:
            on_progress(done, len(feed))
    if accumulator is not None:
        accumulator.all_reduce()  # torchrun: every rank's points (a no-op in one process)
    if extremes is not None:  # after the collective: a rank that raises leaves none waiting
        _check_extremes(extremes, feed)
    return Posterior(torch.cat(mus), torch.cat(logvars)) if keep else None


def _widen(extremes: Tensor, batch: Tensor) -> Tensor:
    """Running per-factor extremes (4, H); a NaN stays (torch.minimum/maximum propagate it)."""
    return torch.stack(
        [
            torch.minimum(extremes[0], batch[0]),
            torch.maximum(extremes[1], batch[1]),
            torch.minimum(extremes[2], batch[2]),
            torch.maximum(extremes[3], batch[3]),
        ]
    )


def _check_extremes(extremes: Tensor, feed: DeviceFeed) -> None:
    """One sync after the pass: DataError naming the factor whose mu or logvar left
    :data:`LIMITS` (or was NaN or inf) on the feed's images."""
    ok = plausible("mu", extremes[0], extremes[1]) & plausible("logvar", extremes[2], extremes[3])
    if bool(ok):
        return
    spec = getattr(feed.data, "spec", "the data")
    for name, low, high in (("mu", *extremes[:2]), ("logvar", *extremes[2:])):
        bad = implausible(name, low) | implausible(name, high)
        if bool(bad.any()):
            h = int(bad.nonzero()[0])
            value = float(low[h]) if bool(implausible(name, low[h])) else float(high[h])
            reaches = f"reaches {value:.6g}" if math.isfinite(value) else f"is {value}"
            raise DataError(
                f"the encoder's posterior {name} of factor {h} {reaches} on {spec}: "
                f"the model's weights cannot be right (damaged or diverged); expected "
                f"{_EXPECTED[name]}"
            )
