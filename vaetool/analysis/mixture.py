"""A consistent mutual-information estimator under the empirical data distribution (MATH.md §3).

With p_data the empirical distribution of N points, the aggregate posterior is the exact mixture
q(z) = (1/N) Σ_k q(z|x_k), so

    I(x; z_h) = E_n E_{z~q(z_h|x_n)} [log q(z_h|x_n) − log (1/N) Σ_k q(z_h|x_k)]
    I(x; z)   = E_n E_{z~q(z|x_n)}   [log q(z|x_n)   − log (1/N) Σ_k q(z|x_k)]
    TC(z)     = Σ_h I(x; z_h) − I(x; z)        (paper 003, Theorem 2; q(z|x) factorizes)

Monte Carlo covers the outer expectations only (S samples at each of M' evaluation points, drawn
without replacement); the inner mixture runs over all N components. Each estimate is at most
log N. Standard errors are two-stage: points, then samples within a point (Cochran 1977, ch. 10).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from vaetool.analysis.mixture_kernels import (
    SHIFT_SAFE_NATS,
    Components,
    chunk_terms,
    components,
    draw_samples,
)
from vaetool.analysis.posterior_checks import check_posterior
from vaetool.device import REDUCE_DTYPE, check_bytes
from vaetool.errors import ConfigError
from vaetool.progress import Progress

DEFAULT_MAX_EVAL_POINTS = 10_000
DEFAULT_TIME_BUDGET_S = 120.0
# The time budget never shrinks M' below this (or below the default M' when that is smaller):
# fewer points leave the between-point variance, and so the standard error, poorly estimated.
MIN_BUDGET_EVAL_POINTS = 100
# An estimate >= CAP_WARN_RATIO · log N is limited by N (flags near_cap, tc_biased, mi_near_cap).
CAP_WARN_RATIO = 0.8
# Float64 work per chunk of rows (auto_chunk_size). CUDA holds the whole (chunk, N, H) block; the
# CPU streams it through a cache-sized tile of _CPU_TILE_ELEMENTS (4 MiB), so its budget bounds
# the work per chunk (about 1-2 s on one core), not the memory.
_CHUNK_BUDGET_BYTES = {"cuda": 512 * 1024**2, "cpu": 2 * 1024**3}
_CPU_TILE_ELEMENTS = 2**19


@dataclass(frozen=True, eq=False)
class MixtureEstimate:
    """MATH.md §3 estimates, in nats, with their two-stage Monte Carlo standard errors.

    Fields: ``mi`` (H,) float64 per-factor I(x; z_h); ``mi_joint`` I(x; z); ``tc`` = Σ_h mi −
    mi_joint (total correlation); ``mi_stderr`` (H,), ``mi_joint_stderr``, ``tc_stderr`` (standard
    errors over the draw of points and samples, see :func:`mixture_information`); ``log_n_cap`` =
    log N, the most any estimate can be; ``cap_ratio`` = mi_joint / log N; ``near_cap``
    (cap_ratio >= CAP_WARN_RATIO = 0.8: the joint estimate is limited by N and understates the
    encoder's information); ``n`` = N; ``eval_points`` = M' used; ``samples`` = S;
    ``mi_cap_ratio`` (H,) = mi / log N; ``mi_near_cap`` (H,) bool, mi_cap_ratio >= 0.8;
    ``tc_biased`` = near_cap (an understated I(x; z) biases TC upward); ``eval_points_requested``
    = M' asked for (the default before the time budget, or the explicit value); ``shrunk`` =
    eval_points < eval_points_requested (the time budget cut the default M').
    """

    mi: Tensor
    mi_joint: float
    tc: float
    mi_stderr: Tensor
    mi_joint_stderr: float
    tc_stderr: float
    log_n_cap: float
    cap_ratio: float
    near_cap: bool
    n: int
    eval_points: int
    samples: int
    mi_cap_ratio: Tensor
    mi_near_cap: Tensor
    tc_biased: bool
    eval_points_requested: int
    shrunk: bool


def _check_options(
    n: int, samples: int, eval_points: int | None, chunk: int | None, budget: float | None
) -> int:
    """Validate the sampling options; return M' (None -> min(N, DEFAULT_MAX_EVAL_POINTS))."""
    if samples < 1:
        raise ConfigError(f"samples must be >= 1; got {samples}")
    if chunk is not None and chunk < 1:
        raise ConfigError(f"chunk_size must be >= 1 or None (automatic); got {chunk}")
    if budget is not None and not budget >= 0:
        raise ConfigError(f"time_budget_s must be >= 0 seconds or None (no limit); got {budget}")
    if eval_points is None:
        return min(n, DEFAULT_MAX_EVAL_POINTS)
    if not 2 <= eval_points <= n:
        raise ConfigError(f"eval_points must be in [2, N = {n}]; got {eval_points}")
    return eval_points


def auto_chunk_size(n: int, h: int, device: torch.device) -> int:
    """Rows (samples) per chunk: 8·N·(H + 1) float64 bytes of work per row under a budget.

    Per row the work is the (N, H) block of per-factor log-densities and the (N,) joint row. On
    CUDA both are held (one preallocated (chunk, N, H) buffer and one (chunk, N)): budget
    512 MiB. On the CPU only the (chunk, N) joint buffer and a 4 MiB tile of the block are held;
    the 2 GiB budget bounds the work per chunk (progress and time-budget granularity, about 1-2 s
    on one core). Not counted: the (chunk, H) reductions and the (M', H + 2) per-point sums. At
    least 1 row (a single row may exceed the budget when N·H is huge).
    """
    budget = _CHUNK_BUDGET_BYTES["cuda" if device.type == "cuda" else "cpu"]
    return max(1, budget // (8 * n * (h + 1)))


def _add_to_points(point_sums: Tensor, terms: Tensor, first_row: int, samples: int) -> None:
    """Add the rows' terms (c, H + 2) to their points' sums (M', H + 2) in place.

    Row r belongs to point r // S; a chunk may start or end inside a point, so the rows are padded
    with zero rows to whole points and summed in groups of S (deterministic: no atomics).
    """
    offset = first_row % samples
    after = -(offset + terms.shape[0]) % samples
    padded = torch.nn.functional.pad(terms, (0, 0, offset, after))  # (k·S, H + 2)
    per_point = padded.view(-1, samples, terms.shape[1]).sum(1)  # (k, H + 2)
    first = first_row // samples
    point_sums[first : first + per_point.shape[0]] += per_point


@dataclass(frozen=True)
class _Plan:
    """How the rows run: S ``samples`` per point, ``requested`` = M' points, ``chunk`` rows at a
    time; with ``budget`` seconds (None: M' is fixed) M' may shrink (:func:`_points_within_budget`).
    """

    samples: int
    requested: int
    chunk: int
    budget: float | None


def _clock(device: torch.device) -> float:
    """Seconds on a monotonic clock once the device's queued work is done (a sync on CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _points_within_budget(elapsed: float, rows_done: int, plan: _Plan) -> int:
    """M'' that fits ``plan.budget`` seconds at the rate so far: budget / (S · elapsed/rows_done).

    Clamped to [floor, M'] with floor = min(MIN_BUDGET_EVAL_POINTS, M'), and never below the
    points already begun, ceil(rows_done / S): work done is kept, and every point is whole.
    """
    s, budget = plan.samples, plan.budget or 0.0
    floor = max(min(MIN_BUDGET_EVAL_POINTS, plan.requested), -(-rows_done // s))
    if budget == 0.0:
        fit = 0
    elif elapsed <= 0.0:
        fit = plan.requested
    else:
        fit = int(budget * rows_done / (elapsed * s))
    return min(plan.requested, max(fit, floor))


def _tile_buffer(width: int, n: int, h: int, like: Tensor) -> Tensor:
    """The preallocated (width, T, H) float64 tile of the per-factor block on ``like``'s device.

    T = all N components on CUDA (within its 512 MiB budget); on the CPU a 4 MiB tile that stays
    in cache across the in-place passes (measured 1.4-2x faster than the whole block).
    """
    cuda = like.device.type == "cuda"
    elements = _CHUNK_BUDGET_BYTES["cuda"] // 8 if cuda else _CPU_TILE_ELEMENTS
    t = max(1, min(n, elements // (width * h)))
    return torch.empty(width, t, h, dtype=like.dtype, device=like.device)


def _accumulate(
    comp: Components, z: Tensor, log_own: Tensor, plan: _Plan, on_progress: Progress | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-point sums (M'', H + 2) and the sum of squares (H + 2,) of the per-row terms less
    ``origin`` (H + 2,), the first row's terms (against cancellation in the variances); float64.

    Rows run in point order, ``plan.chunk`` at a time, through buffers allocated once. With a
    budget M'' is re-planned after each chunk from the time so far; else M'' = M'.
    """
    (rows, h), n, s = z.shape, comp.scale.shape[0], plan.samples
    width = min(plan.chunk, rows)
    quad = torch.empty(width * n, dtype=z.dtype, device=z.device)
    buffers = (_tile_buffer(width, n, h, z), quad)
    shifted = bool((log_own - comp.peak).amin() < -SHIFT_SAFE_NATS)  # one sync per call
    point_sums = torch.zeros(plan.requested, h + 2, dtype=z.dtype, device=z.device)
    sum_sq = torch.zeros(h + 2, dtype=z.dtype, device=z.device)
    target, done, origin = plan.requested, 0, None
    start = _clock(z.device) if plan.budget is not None else 0.0
    while done < target * s:
        stop = min(done + width, target * s)
        terms = chunk_terms(z[done:stop], log_own[done:stop], comp, buffers, shifted)
        origin = terms[0].clone() if origin is None else origin
        terms.sub_(origin)
        _add_to_points(point_sums, terms, done, s)
        sum_sq += terms.square().sum(0)
        done = stop
        if plan.budget is not None:
            target = _points_within_budget(_clock(z.device) - start, done, plan)
        if on_progress is not None:
            on_progress(done, target * s)
    assert origin is not None  # M'·S >= 2 rows ran
    return point_sums[:target], sum_sq, origin


def _two_stage_stderr(point_sums: Tensor, sum_sq: Tensor, samples: int, n: int) -> Tensor:
    """Two-stage standard errors (H + 2,) of the means of the per-row terms, nats.

    With f = M'/N, ȳ_m the mean of point m's S terms, s1² the variance of the ȳ_m (ddof 1) and
    s2² the pooled within-point variance (ddof 1 in each point): var = (1 − f)·s1²/M' +
    f·s2²/(M'·S) (Cochran, Sampling Techniques, 1977, ch. 10: two stages, equal units, the
    second stage infinite). With S = 1 the within part
    cannot be told from the between part; s1²/M' is returned, the i.i.d. formula, an upper bound.
    """
    m = point_sums.shape[0]
    point_means = point_sums / samples
    s1 = point_means.var(0)  # ddof 1
    if samples == 1:
        return (s1 / m).sqrt()
    within = sum_sq - samples * point_means.square().sum(0)  # Σ_m Σ_s (t − ȳ_m)²
    s2 = (within / (m * (samples - 1))).clamp_min(0.0)
    f = m / n
    return ((1.0 - f) * s1 / m + f * s2 / (m * samples)).sqrt()


def _estimate(
    means: Tensor, stderr: Tensor, n: int, plan: _Plan, eval_points: int, device: torch.device
) -> MixtureEstimate:
    """The :class:`MixtureEstimate` from the means and standard errors (H + 2,) on the CPU."""
    h, log_n = means.shape[0] - 2, math.log(n)
    mi_joint = float(means[h])
    mi_cap_ratio = means[:h] / log_n
    near_cap = mi_joint >= CAP_WARN_RATIO * log_n
    return MixtureEstimate(
        mi=means[:h].to(device),
        mi_joint=mi_joint,
        tc=float(means[h + 1]),
        mi_stderr=stderr[:h].to(device),
        mi_joint_stderr=float(stderr[h]),
        tc_stderr=float(stderr[h + 1]),
        log_n_cap=log_n,
        cap_ratio=mi_joint / log_n,
        near_cap=near_cap,
        n=n,
        eval_points=eval_points,
        samples=plan.samples,
        mi_cap_ratio=mi_cap_ratio.to(device),
        mi_near_cap=(mi_cap_ratio >= CAP_WARN_RATIO).to(device),
        tc_biased=near_cap,
        eval_points_requested=plan.requested,
        shrunk=eval_points < plan.requested,
    )


def mixture_information(
    mu: Tensor,
    logvar: Tensor,
    *,
    samples: int = 1,
    eval_points: int | None = None,
    seed: int = 0,
    chunk_size: int | None = None,
    time_budget_s: float | None = DEFAULT_TIME_BUDGET_S,
    on_progress: Progress | None = None,
) -> MixtureEstimate:
    """Per-factor I(x; z_h), joint I(x; z) and TC(z) under the empirical distribution (MATH.md §3).

    Args:
        mu, logvar: posterior means and log-variances, (N, H), any float dtype, on any device;
            the work runs there in float64.
        samples: S >= 1 reparameterised samples per evaluation point.
        eval_points: M' in [2, N] points drawn without replacement for the outer expectation;
            None uses min(N, 10 000), shrunk to fit ``time_budget_s``. Never shrunk if given.
        seed: seeds the CPU generator of points and noise (same draws on every device).
        chunk_size: rows (of the M'·S samples) per chunk; None picks it from a budget
            (:func:`auto_chunk_size`). Results do not depend on it beyond float64 rounding.
        time_budget_s: seconds >= 0 for the default M' (None: no limit). The rows run point by
            point; after each chunk M' is re-planned to budget / (time per point so far), never
            below min(100, default M') nor the points begun, so a run may overrun by about one
            chunk (1-2 s on a CPU). The points used are the first M' of the default's random
            order (a uniform subset: no bias); which M' depends on timing. On CUDA the clock
            synchronises once per chunk.
        on_progress: called as (rows done, rows planned) after each chunk, no device sync;
            rows planned = M'·S and can change while the time budget re-plans M'.

    Standard errors are two-stage (:func:`_two_stage_stderr`): var = (1 − M'/N)·s1²/M' +
    (M'/N)·s2²/(M'·S), s1² the variance of the point means, s2² the pooled within-point variance.
    With S = 1 s2² cannot be separated from s1², so s1²/M' (the i.i.d. formula) is reported:
    unbiased for M' ≪ N, an upper bound as M' -> N, where only the within-point part remains
    (for q(z|x) = N(a x, s²), x ~ N(0, 1), M' = N: sqrt((a² + s²)/(a²/2 + s²)) = 1.15-1.41x too
    large). S >= 2 gives the two-stage form.

    Cost O(M'·S·N·H). Memory: about seven (N, H) float64 arrays (inputs and components), the
    draws (M'·S, H), the (chunk, N) joint buffer and the (chunk, N, H) block on CUDA (a 4 MiB
    tile of it on the CPU).
    """
    check_posterior(mu, logvar)
    n, h = mu.shape
    requested = _check_options(n, samples, eval_points, chunk_size, time_budget_s)
    draws = 8 * requested * samples * (2 * h + 1) + 8 * requested * (h + 2)
    what = f"the mixture's {requested} points × {samples} samples (‹mc_points›, ‹mc_samples›)"
    check_bytes(draws, mu.device, what)
    chunk = chunk_size or auto_chunk_size(n, h, mu.device)
    budget = time_budget_s if eval_points is None else None
    plan = _Plan(samples=samples, requested=requested, chunk=chunk, budget=budget)
    mu64, logvar64 = mu.to(REDUCE_DTYPE), logvar.to(REDUCE_DTYPE)
    z, log_own = draw_samples(mu64, logvar64, requested, samples, seed)
    comp = components(mu64, logvar64)
    point_sums, sum_sq, origin = _accumulate(comp, z, log_own, plan, on_progress)
    used = point_sums.shape[0]
    means = point_sums.sum(0) / (used * samples) + origin
    stderr = _two_stage_stderr(point_sums, sum_sq, samples, n)
    return _estimate(means.cpu(), stderr.cpu(), n, plan, used, mu.device)
