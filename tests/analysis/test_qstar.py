"""Closed-form q* (MATH.md §1): streaming = one-shot, variants, and input validation."""

from __future__ import annotations

import math

import pytest
import torch
from posteriors import random_posterior

from vaetool.analysis import (
    QSTAR_VARIANTS,
    QStarAccumulator,
    check_posterior,
    fit_qstar,
    fit_qstar_streaming,
)
from vaetool.errors import ConfigError, DataError

F64 = torch.float64


def test_variants_are_registered() -> None:
    assert QSTAR_VARIANTS.names() == ["free_mean", "zero_mean"]


@pytest.mark.parametrize("variant", ["zero_mean", "free_mean"])
def test_fit_matches_direct_formulas(variant: str) -> None:
    mu, logvar = random_posterior(500, 4, seed=1, shift=0.7)
    q = fit_qstar(mu, logvar, variant)
    mean = mu.mean(0) if variant == "free_mean" else torch.zeros(4, dtype=F64)
    s2 = ((mu - mean) ** 2 + logvar.exp()).mean(0)
    torch.testing.assert_close(q.mean, mean, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(q.s2, s2, rtol=1e-12, atol=0)
    torch.testing.assert_close(q.mean_mu2, (mu**2).mean(0), rtol=1e-12, atol=0)
    torch.testing.assert_close(q.mean_var, logvar.exp().mean(0), rtol=1e-12, atol=0)
    torch.testing.assert_close(q.mean_logvar, logvar.mean(0), rtol=1e-12, atol=0)
    torch.testing.assert_close(q.var_mu, mu.var(0, correction=0), rtol=1e-12, atol=0)
    assert q.n == 500 and q.variant == variant and q.s2.dtype == F64


@pytest.mark.parametrize("variant", ["zero_mean", "free_mean"])
def test_streaming_uneven_batches_equals_one_shot(variant: str) -> None:
    # Means shifted by 5 so that the running-variance merge (Chan et al.) is exercised.
    mu, logvar = random_posterior(1000, 3, seed=2, shift=5.0)
    sizes = [1, 7, 300, 2, 1, 689]
    batches = zip(mu.split(sizes), logvar.split(sizes), strict=True)
    streamed = fit_qstar_streaming(batches, variant)
    one_shot = fit_qstar(mu, logvar, variant)
    for field in ("mean", "s2", "mean_mu2", "mean_var", "mean_logvar", "var_mu"):
        torch.testing.assert_close(
            getattr(streamed, field), getattr(one_shot, field), rtol=1e-12, atol=1e-14
        )
    assert streamed.n == one_shot.n == 1000


def test_accumulator_accepts_float32_batches_and_finalizes_twice() -> None:
    mu, logvar = random_posterior(64, 2, seed=3)
    acc = QStarAccumulator(2)
    for mu_b, lv_b in zip(mu.float().split(10), logvar.float().split(10), strict=True):
        acc.update(mu_b, lv_b)
    first, second = acc.finalize("zero_mean"), acc.finalize("free_mean")
    assert first.s2.dtype == F64 and acc.count == 64
    ref = fit_qstar(mu.float().double(), logvar.float().double(), "free_mean")
    torch.testing.assert_close(second.s2, ref.s2, rtol=1e-12, atol=0)
    assert torch.all(second.s2 <= first.s2)


def test_ignored_factor_gives_unit_s2_exactly() -> None:
    zeros = torch.zeros(10, 1, dtype=F64)
    q = fit_qstar(zeros, zeros)
    assert q.s2.item() == 1.0 and q.var_mu.item() == 0.0


@pytest.mark.parametrize(
    ("mu", "logvar", "match"),
    [
        (torch.zeros(5), torch.zeros(5), r"mu must be 2-D .*got shape \(5,\)"),
        (torch.zeros(2, 3, 1), torch.zeros(2, 3, 1), r"mu must be 2-D"),
        (torch.zeros(5, 2), torch.zeros(5, 3), r"shapes differ: mu \(5, 2\), logvar \(5, 3\)"),
        (torch.zeros(1, 2), torch.zeros(1, 2), r"N = 1 points; need at least 2"),
        (torch.zeros(4, 0), torch.zeros(4, 0), r"no latent factors"),
        (torch.tensor([[0.0, math.nan], [math.nan, 1.0]]), torch.zeros(2, 2), r"mu has 2 NaN"),
        (torch.zeros(3, 2), torch.tensor([[math.inf, 0.0]] * 3), r"logvar has 0 NaN and 3 inf"),
        (torch.zeros(3, 2, dtype=torch.int64), torch.zeros(3, 2), r"mu must be a floating-point"),
        ([[0.0, 1.0]] * 3, torch.zeros(3, 2), r"mu must be a torch.Tensor; got list"),
    ],
)
def test_bad_posterior_raises_data_error(mu: object, logvar: object, match: str) -> None:
    with pytest.raises(DataError, match=match):
        check_posterior(mu, logvar)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=match):
        fit_qstar(mu, logvar)  # type: ignore[arg-type]


def test_unknown_variant_lists_valid_names() -> None:
    mu, logvar = random_posterior(10, 2, seed=4)
    with pytest.raises(ConfigError, match=r"unknown q\* variant 'median'.*free_mean, zero_mean"):
        fit_qstar(mu, logvar, "median")
    with pytest.raises(ConfigError, match="free_mean, zero_mean"):
        fit_qstar_streaming([(mu, logvar)], "median")


def test_streaming_errors() -> None:
    mu, logvar = random_posterior(10, 2, seed=5)
    with pytest.raises(DataError, match="iterable was empty"):
        fit_qstar_streaming([])
    with pytest.raises(DataError, match="batches held 1"):
        fit_qstar_streaming([(mu[:1], logvar[:1])])
    acc = QStarAccumulator(2)
    with pytest.raises(DataError, match="H = 3 factors; expected 2"):
        acc.update(torch.zeros(4, 3), torch.zeros(4, 3))
    acc.update(mu[:2], torch.tensor([[0.0, math.nan], [0.0, 0.0]]))  # counted, no device sync
    with pytest.raises(DataError, match=r"logvar has NaN or inf"):
        acc.finalize()
    with pytest.raises(ConfigError, match="num_factors must be >= 1"):
        QStarAccumulator(0)
