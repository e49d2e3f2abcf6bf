"""Traversal latent grids (MATH.md §6) on synthetic seeds, and the request's checks."""

from __future__ import annotations

import pytest
import torch

from vaetool.analysis.traversal import (
    factor_latents,
    pair_latents,
    sweep_change,
    traversal_values,
    traverse_factors,
)
from vaetool.analysis.traversal_plan import TraversalPlan, select_factors
from vaetool.config import ModelConfig
from vaetool.errors import ConfigError
from vaetool.models import build_model


def _mu(seeds: int = 3, latents: int = 5) -> torch.Tensor:
    return torch.randn(seeds, latents, generator=torch.Generator().manual_seed(0))


class _FirstFactorImage(torch.nn.Module):
    """A decoder whose 1-pixel image is z_0 itself: decoding shows exactly what was swept."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, :1].reshape(-1, 1, 1, 1)


def test_decoded_traversal_shows_the_swept_values() -> None:
    """Known answer: with image = z_0 (Gaussian mean, clamped to [0, 1] for display), sweeping
    factor 0 over [-0.5, 1.5] shows the clamped values; sweeping factor 1 changes nothing."""
    config = ModelConfig("mlp", (1, 1, 1), latents=2, likelihood="gaussian")
    model = build_model(config)
    model.decoder = _FirstFactorImage()
    mu = torch.tensor([[0.25, 0.0], [0.75, 3.0]])
    values = traversal_values(-0.5, 1.5, 5)  # -0.5, 0, 0.5, 1, 1.5
    images = traverse_factors(model, mu, [0, 1], values)  # (2, 2, 5, 1, 1, 1)
    assert torch.equal(images[0, :, :, 0, 0, 0], values.clamp(0, 1).expand(2, 5))
    assert torch.equal(images[1, :, :, 0, 0, 0], mu[:, :1].expand(2, 5))
    assert sweep_change(images)[1] == 0 and sweep_change(images)[0] > 0.3


@pytest.mark.parametrize(
    ("lo", "hi", "steps", "message"),
    [
        (-3, 3, 1, "steps 1"),
        (-3, 3, 0, "steps 0"),
        (3, -3, 10, "range 3 -3"),
        (1, 1, 5, "LO < HI"),
    ],
)
def test_bad_values_are_refused(lo: float, hi: float, steps: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        traversal_values(lo, hi, steps)


def test_factor_latents_sweep_one_factor_and_keep_the_rest() -> None:
    mu, values = _mu(), traversal_values(-3, 3, 4)
    z, swept = factor_latents(mu, [4, 1], values)
    assert z.shape == (2, 3, 4, 5) and swept.shape == (2, 3, 4)
    assert torch.equal(z[0, :, :, 4], values.expand(3, 4))
    assert torch.equal(z[1, :, :, 1], values.expand(3, 4))
    keep = [0, 1, 2, 3]
    assert torch.equal(z[0][..., keep], mu[:, None, keep].expand(3, 4, 4))


def test_relative_values_are_centred_on_each_seeds_mu() -> None:
    mu, values = _mu(), traversal_values(-3, 3, 7)
    z, swept = factor_latents(mu, [2], values, relative=True)
    assert torch.allclose(swept[0].mean(dim=1), mu[:, 2], atol=1e-6)
    assert torch.allclose(swept[0] - mu[:, 2:3], values.expand(3, 7), atol=1e-6)
    assert torch.equal(z[0, :, :, 2], swept[0])


def test_pair_latents_rows_and_columns() -> None:
    mu, values = _mu(), traversal_values(-2, 2, 3)
    z, v1, v2 = pair_latents(mu, 0, 3, values)
    assert z.shape == (3, 3, 3, 5)
    assert torch.equal(z[:, :, 1, 0], v1) and torch.equal(z[:, 1, :, 3], v2)
    assert torch.equal(z[..., 1], mu[:, None, None, 1].expand(3, 3, 3))
    _, r1, _ = pair_latents(mu, 0, 3, values, relative=True)
    assert torch.allclose(r1.mean(dim=1), mu[:, 0], atol=1e-6)
    with pytest.raises(ConfigError, match="two different"):
        pair_latents(mu, 2, 2, values)


def test_sweep_change_is_zero_for_a_constant_sweep() -> None:
    images = torch.rand(1, 2, 1, 1, 4, 4).expand(2, 2, 5, 1, 4, 4).clone()
    images[1, :, 2] += 0.5
    change = sweep_change(images)
    assert change[0] < 1e-7 and change[1] > 0.1


def test_selection_orders_by_information() -> None:
    mi = torch.tensor([0.1, 2.0, 0.7, 0.7, 0.0], dtype=torch.float64)
    assert select_factors(mi, TraversalPlan()) == [1, 2, 3]  # I_h > 0.5 by default
    assert select_factors(mi, TraversalPlan(top=2)) == [1, 2]
    assert select_factors(mi, TraversalPlan(factors=(0, 3, 1, 3))) == [1, 3, 0]
    assert select_factors(mi, TraversalPlan(min_mi=0.05)) == [1, 2, 3, 0]
    with pytest.raises(ConfigError, match=r"largest is 2 nats, factor 1"):
        select_factors(mi, TraversalPlan(min_mi=3.0))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"top": 2, "factors": (1,)}, "give one"),
        ({"min_mi": 0.1, "top": 2}, "give one"),
        ({"pair": (1, 2), "top": 3}, "pair"),
        ({"pair": (1, 2), "min_mi": 0.2}, "pair"),
        ({"pair": (4, 4)}, "two different"),
        ({"top": 0}, "top 0"),
        ({"seeds": 0}, "seeds 0"),
        ({"seeds": 3, "seed_indices": (1,)}, "seed_index"),
        ({"steps": 1}, "steps 1"),
        ({"value_range": (2.0, -2.0)}, "LO < HI"),
    ],
)
def test_request_conflicts_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TraversalPlan(**options)


def test_request_checks_indices_against_h() -> None:
    with pytest.raises(ConfigError, match="from 0 to 4"):
        TraversalPlan(factors=(5,)).check_latents(5)
    with pytest.raises(ConfigError, match="from 0 to 4"):
        TraversalPlan(pair=(0, -1)).check_latents(5)
    with pytest.raises(ConfigError, match="top 6"):
        TraversalPlan(top=6).check_latents(5)
