"""Paper 001's variational lower bound (MATH.md §4, §12, §14): known answers, the bracket with
q*, a factor the decoder ignores, the sidecar, and the regulariser's objective."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vaetool.analysis.vmi import (
    GAUSSIAN_ENTROPY,
    VMIOptions,
    evaluate_bounds,
    fit_q,
    gaussian_entropy,
    gaussian_log_q,
)
from vaetool.config import ModelConfig
from vaetool.models import VAE, build_model
from vaetool.workflows import rank_posterior

A, S = 2.0, 1.0  # x = a z_1 + s n: I(z_1; x) = ½ log(1 + a²/s²) = 0.8047 (MATH.md §14)
TRUE_MI = 0.5 * math.log1p(A * A / (S * S))
FAST = VMIOptions(steps=800, batch_size=512, lr=3e-2, eval_samples=20_000)


class LinearQ(nn.Module):
    """Q(z|x) = N(W x + b, exp(V x + c)) per factor: contains the exact posterior."""

    def __init__(self, latents: int) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 2 * latents)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.linear(x.flatten(1))
        h = out.shape[1] // 2
        return out[:, :h], out[:, h:], out.new_zeros(out.shape[0], 0)


def linear_gaussian_vae(weights: list[float]) -> VAE:
    """A VAE with a scalar Gaussian decoder x = Σ_h w_h z_h + s n (σ² = s²), float64."""
    config = ModelConfig("mlp", (1, 1, 1), latents=len(weights), likelihood="gaussian",
                         likelihood_options={"sigma2": S * S})  # fmt: skip
    vae = build_model(config).double()
    decoder = nn.Linear(len(weights), 1).double()
    with torch.no_grad():
        decoder.weight.copy_(torch.tensor([weights]))
        decoder.bias.zero_()
    vae.decoder = nn.Sequential(decoder, nn.Unflatten(1, (1, 1, 1)))
    return vae


@pytest.fixture(scope="module")
def linear_bounds():
    """Factor 0 drives x (a = 2), factor 1 is ignored by the decoder."""
    torch.manual_seed(0)
    vae = linear_gaussian_vae([A, 0.0])
    fitted = fit_q(vae, FAST, q=LinearQ(2).double())
    return vae, fitted, evaluate_bounds(vae, fitted.q, FAST)


def test_entropy_and_log_density_known_values() -> None:
    assert pytest.approx(1.4189385, abs=1e-7) == GAUSSIAN_ENTROPY
    assert gaussian_entropy(3) == pytest.approx(3 * 1.4189385, abs=1e-6)
    z = torch.tensor([[0.5]], dtype=torch.float64)
    expected = -0.5 * (0.5**2 / 2.0 + math.log(2.0) + math.log(2 * math.pi))
    assert float(gaussian_log_q(z, torch.zeros_like(z), torch.full_like(z, math.log(2.0)))) == (
        pytest.approx(expected, abs=1e-12))  # fmt: skip


def test_linear_gaussian_bound_reaches_the_true_information(linear_bounds) -> None:
    """A linear Q fitted by maximum likelihood attains ½ log(1 + a²/s²) = 0.8047 nats
    (tolerance: 0.02 nats plus 3 Monte Carlo standard errors)."""
    _, fitted, bounds = linear_bounds
    assert abs(float(bounds.mi[0]) - TRUE_MI) < 0.02 + 3 * float(bounds.mi_stderr[0])
    assert abs(fitted.last_gain) < 0.02  # plateaued


def test_a_factor_the_decoder_ignores_gets_a_bound_near_zero(linear_bounds) -> None:
    _, _, bounds = linear_bounds
    assert abs(float(bounds.mi[1])) < 0.01 + 3 * float(bounds.mi_stderr[1])
    joint, joint_se = bounds.joint
    assert joint == pytest.approx(float(bounds.mi.sum()), abs=1e-9)
    assert abs(joint - TRUE_MI) < 0.03 + 3 * joint_se


def test_the_prior_as_q_gives_zero_and_nothing_exceeds_the_truth() -> None:
    """Q ≡ N(0, 1) bounds I by 0 on average (MATH.md §14); the exact posterior by I itself."""
    torch.manual_seed(1)
    z = torch.randn(200_000, 1, dtype=torch.float64)
    x = A * z + S * torch.randn_like(z)
    prior = gaussian_log_q(z, torch.zeros_like(z), torch.zeros_like(z)) + GAUSSIAN_ENTROPY
    assert abs(float(prior.mean())) < 3 * float(prior.std()) / math.sqrt(len(z))
    post_mu = A * x / (A * A + S * S)
    post_lv = torch.full_like(z, math.log(S * S / (A * A + S * S)))
    exact = gaussian_log_q(z, post_mu, post_lv) + GAUSSIAN_ENTROPY
    assert float(exact.mean()) == pytest.approx(TRUE_MI, abs=3 * float(exact.std()) / 447)


def test_the_lower_bound_stays_below_the_qstar_upper_bound(linear_bounds) -> None:
    """From the encoder side (x ~ N(0, a² + s²), q(z|x) the exact posterior) q* gives the same
    I_h, so lower = upper in the limit, and the fitted Q stays below up to MC error."""
    _, _, bounds = linear_bounds
    torch.manual_seed(2)
    n = 20_000
    x = torch.randn(n, dtype=torch.float64) * math.sqrt(A * A + S * S)
    mu = torch.stack([A * x / (A * A + S * S), torch.zeros(n, dtype=torch.float64)], 1)
    logvar = torch.stack([torch.full((n,), math.log(S * S / (A * A + S * S))),
                          torch.zeros(n)], 1).double()  # fmt: skip
    upper = rank_posterior(mu, logvar).ranking.mi
    assert float(upper[0]) == pytest.approx(TRUE_MI, abs=0.02)
    assert bool((bounds.mi <= upper + 3 * bounds.mi_stderr).all())


def test_subset_bounds_are_sums_and_bad_subsets_are_refused(linear_bounds) -> None:
    from vaetool.errors import ConfigError

    _, _, bounds = linear_bounds
    value, se = bounds.subset([0])
    assert value == pytest.approx(float(bounds.mi[0])) and se == pytest.approx(
        float(bounds.mi_stderr[0]))  # fmt: skip
    for bad in ([], [0, 0], [2]):
        with pytest.raises(ConfigError):
            bounds.subset(bad)


def test_categorical_bound_reaches_log_k_when_the_decoder_writes_the_code() -> None:
    """A decoder writing c noiselessly into x (σ² tiny, class k at intensity k) → log K."""
    k = 4
    config = ModelConfig("mlp", (1, 1, 1), latents=1, likelihood="gaussian",
                         likelihood_options={"sigma2": 1e-4}, categories=k)  # fmt: skip
    torch.manual_seed(0)
    vae = build_model(config).double()
    decoder = nn.Linear(1 + k, 1).double()
    with torch.no_grad():
        decoder.weight.copy_(torch.tensor([[0.0, 0.0, 1.0, 2.0, 3.0]]))
        decoder.bias.zero_()
    vae.decoder = nn.Sequential(decoder, nn.Unflatten(1, (1, 1, 1)))

    class CodeQ(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(1, 32), nn.ReLU(), nn.Linear(32, 2 + k))

        def forward(self, x: torch.Tensor):
            out = self.net(x.flatten(1))
            return out[:, :1], out[:, 1:2], out[:, 2:]

    options = VMIOptions(steps=400, batch_size=256, lr=1e-2, eval_samples=5_000)
    fitted = fit_q(vae, options, q=CodeQ().double())
    code = evaluate_bounds(vae, fitted.q, options).code
    assert code is not None
    assert code[0] == pytest.approx(math.log(k), abs=0.05) and code[0] <= math.log(k) + 1e-9
