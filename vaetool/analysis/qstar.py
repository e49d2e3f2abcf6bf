"""The closed-form factorized Gaussian q*(z), fitted from streamed posterior batches.

MATH.md §1 (paper 000, Algorithm 1 line 2 and eq. 18; paper 002, Defs. 2-3 and eq. 10): q*(z) is
the factorized Gaussian minimizing (1/N) Σ_n KL(q(z|x_n) ‖ q(z)). Setting the derivative to zero
gives it in closed form, so no gradient descent is needed:

- ``zero_mean``: m_h = 0,              s²_h = mean_n (mu[n,h]² + sigma²[n,h])
- ``free_mean``: m_h = mean_n mu[n,h], s²_h = mean_n (sigma²[n,h] + (mu[n,h] − m_h)²)

Only O(H) float64 sufficient statistics are kept, so N may be millions of points.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from vaetool.analysis.posterior_checks import check_posterior, check_posterior_layout
from vaetool.device import REDUCE_DTYPE
from vaetool.errors import ConfigError, DataError
from vaetool.registry import Registry


@dataclass(frozen=True, eq=False)
class QStar:
    """A fitted q*(z) = N(mean, diag(s2)) and the per-factor posterior moments it came from.

    All tensors are float64 with shape (H,), on the device the posterior batches were on.
    Fields: ``mean`` (m_h; zeros for ``zero_mean``), ``s2`` (s²_h), ``mean_mu2`` (mean_n mu²),
    ``mean_var`` (mean_n sigma², the mean posterior variance), ``mean_logvar`` (mean_n logvar),
    ``var_mu`` (Var_n mu, population variance with 1/N), ``n`` (number of points N) and
    ``variant`` (``"zero_mean"`` or ``"free_mean"``).
    """

    mean: Tensor
    s2: Tensor
    mean_mu2: Tensor
    mean_var: Tensor
    mean_logvar: Tensor
    var_mu: Tensor
    n: int
    variant: str


@dataclass(frozen=True, eq=False)
class PosteriorMoments:
    """Per-factor float64 moments over N points, each shape (H,): the inputs of every q*."""

    mean_mu: Tensor
    var_mu: Tensor
    mean_mu2: Tensor
    mean_var: Tensor
    mean_logvar: Tensor
    n: int


QSTAR_VARIANTS: Registry[Callable[[PosteriorMoments], tuple[Tensor, Tensor]]] = Registry(
    "q* variant", "‹variant›"
)


@QSTAR_VARIANTS.register("zero_mean")
def zero_mean_qstar(moments: PosteriorMoments) -> tuple[Tensor, Tensor]:
    """(m_h, s²_h) = (0, mean(mu²) + mean(sigma²)). MATH.md §1; paper 000, Algorithm 1 line 2."""
    return torch.zeros_like(moments.mean_mu), moments.mean_mu2 + moments.mean_var


@QSTAR_VARIANTS.register("free_mean")
def free_mean_qstar(moments: PosteriorMoments) -> tuple[Tensor, Tensor]:
    """(m_h, s²_h) = (mean(mu), Var(mu) + mean(sigma²)). MATH.md §1, optional variant.

    Never a looser bound than ``zero_mean``: its KL to each posterior is minimized over m_h too.
    """
    return moments.mean_mu.clone(), moments.var_mu + moments.mean_var


class QStarAccumulator:
    """Streaming sufficient statistics of posterior batches for a closed-form q*.

    Keeps one float64 (4H,) vector of sums: Σ(mu − K), Σ(mu − K)², Σ exp(logvar), Σ logvar, where
    the shift K (H,) is the first batch's mean of mu. Shifting makes the variance of mu from sums
    numerically stable however far the means are from 0 (the "shifted data" algorithm), and one
    concatenated reduction per batch keeps the per-batch cost to a handful of kernel launches
    with no device-to-host sync (a NaN or inf anywhere makes the sums non-finite; that is
    reported once, by :meth:`moments`). Memory is O(H) whatever the number of points.

    Args:
        num_factors: H, the number of latent factors every batch must have.
        device: where the statistics live; ``None`` takes the device of the first batch.
    """

    def __init__(self, num_factors: int, device: torch.device | str | None = None) -> None:
        if num_factors < 1:
            raise ConfigError(f"num_factors must be >= 1; got {num_factors}")
        self.num_factors = num_factors
        self.device = None if device is None else torch.device(device)
        self.count = 0
        self._shift: Tensor | None = None  # K, (H,)
        self._sums: Tensor | None = None  # (4H,): Σd, Σd², Σ exp(logvar), Σ logvar; d = mu − K

    def update(self, mu: Tensor, logvar: Tensor) -> None:
        """Add one batch: ``mu`` and ``logvar`` of shape (B, H), B >= 1, any float dtype."""
        check_posterior_layout(mu, logvar, min_rows=1)
        if mu.shape[1] != self.num_factors:
            raise DataError(
                f"posterior batch has H = {mu.shape[1]} factors; expected {self.num_factors}"
            )
        if self.device is None:
            self.device = mu.device
        mu64 = mu.to(self.device, REDUCE_DTYPE)
        logvar64 = logvar.to(self.device, REDUCE_DTYPE)
        if self._shift is None:
            self._shift = mu64.mean(dim=0)
        d = mu64 - self._shift  # (B, H)
        batch = torch.cat([d, d * d, logvar64.exp(), logvar64], dim=1).sum(dim=0)  # (4H,)
        self._sums = batch if self._sums is None else self._sums + batch
        self.count += mu64.shape[0]

    def moments(self) -> PosteriorMoments:
        """The per-factor moments so far; :class:`DataError` if fewer than 2 points were seen
        or the batches held NaN or inf (or a logvar so large that exp overflows)."""
        if self._sums is None or self._shift is None or self.count < 2:
            raise DataError(f"q* needs at least 2 posterior points; the batches held {self.count}")
        n, h = self.count, self.num_factors
        sum_d, sum_d2, sum_var, sum_logvar = self._sums.view(4, h)
        _raise_if_nonfinite(sum_d + sum_d2, "mu", n * h)
        _raise_if_nonfinite(sum_var + sum_logvar, "logvar", n * h)
        mean_d = sum_d / n
        var_mu = (sum_d2 / n - mean_d.square()).clamp_min(0.0)
        mean_mu = self._shift + mean_d
        return PosteriorMoments(
            mean_mu=mean_mu,
            var_mu=var_mu,
            mean_mu2=var_mu + mean_mu.square(),
            mean_var=sum_var / n,
            mean_logvar=sum_logvar / n,
            n=n,
        )

    def all_reduce(self) -> None:
        """Under torchrun: the statistics of every rank's points, on every rank. Each rank's
        sums are moved to rank 0's shift K₀ (Σ(mu−K₀) = Σd + nδ, Σ(mu−K₀)² = Σd² + 2δΣd + nδ²,
        δ = K − K₀), then summed; a rank that saw no point contributes zeros."""
        from vaetool import distributed

        if not distributed.active():
            return
        device = self.device or torch.device("cpu")
        H = self.num_factors
        shift = self._shift if self._shift is not None else torch.zeros(H, dtype=REDUCE_DTYPE,
                                                                         device=device)  # fmt: skip
        sums = self._sums if self._sums is not None else torch.zeros(4 * H, dtype=REDUCE_DTYPE,
                                                                     device=device)  # fmt: skip
        common = distributed.broadcast(shift.clone())
        n = torch.tensor([float(self.count)], dtype=REDUCE_DTYPE, device=device)
        delta = shift - common
        d, d2 = sums[:H], sums[H : 2 * H]
        moved = torch.cat([d + n * delta, d2 + 2 * delta * d + n * delta * delta, sums[2 * H :]])
        total = distributed.all_reduce_sum(torch.cat([moved, n]))
        self._shift, self._sums, self.count = common, total[:-1], int(total[-1].item())
        self.device = device

    def finalize(self, variant: str = "zero_mean") -> QStar:
        """The fitted :class:`QStar` of ``variant`` (see :data:`QSTAR_VARIANTS`); reusable."""
        fit = QSTAR_VARIANTS.get(variant)
        moments = self.moments()
        mean, s2 = fit(moments)
        return QStar(
            mean=mean,
            s2=s2,
            mean_mu2=moments.mean_mu2,
            mean_var=moments.mean_var,
            mean_logvar=moments.mean_logvar,
            var_mu=moments.var_mu,
            n=moments.n,
            variant=variant,
        )


def _raise_if_nonfinite(sums: Tensor, name: str, size: int) -> None:
    """One host sync at the end of a stream: non-finite sums mean non-finite inputs."""
    if not bool(torch.isfinite(sums).all()):
        raise DataError(
            f"posterior {name} has NaN or inf entries among its {size} values (or exp(logvar) "
            "overflows); expected finite values"
        )


def fit_qstar(mu: Tensor, logvar: Tensor, variant: str = "zero_mean") -> QStar:
    """Closed-form q* from a whole posterior: ``mu``, ``logvar`` of shape (N, H), N >= 2."""
    QSTAR_VARIANTS.get(variant)
    check_posterior(mu, logvar)
    accumulator = QStarAccumulator(mu.shape[1], device=mu.device)
    accumulator.update(mu, logvar)
    return accumulator.finalize(variant)


def fit_qstar_streaming(
    batches: Iterable[tuple[Tensor, Tensor]], variant: str = "zero_mean"
) -> QStar:
    """Closed-form q* from an iterable of ``(mu, logvar)`` batches, each (B, H), in O(H) memory.

    Equal to :func:`fit_qstar` on the concatenated batches up to float64 rounding.
    """
    QSTAR_VARIANTS.get(variant)
    accumulator: QStarAccumulator | None = None
    for mu, logvar in batches:
        check_posterior_layout(mu, logvar, min_rows=1)
        if accumulator is None:
            accumulator = QStarAccumulator(mu.shape[1], device=mu.device)
        accumulator.update(mu, logvar)
    if accumulator is None:
        raise DataError("q* needs at least 2 posterior points; the batch iterable was empty")
    return accumulator.finalize(variant)
