"""Training objectives (MATH.md §9) against the known answers of MATH.md §14, and every registered
objective taking real steps."""

from __future__ import annotations

import math

import pytest
import torch

from vaetool.analysis.mixture import mixture_information
from vaetool.config import ModelConfig
from vaetool.models import ENCODERS, build_model
from vaetool.models.latents import DiagonalGaussian, marginal_log_density_pairs
from vaetool.objectives import OBJECTIVES, TrainContext, build_objective
from vaetool.objectives.annealed import capacity_at
from vaetool.objectives.dip import dip_penalty, mean_covariance
from vaetool.objectives.factor_vae import density_ratio_tc, permute_dims
from vaetool.objectives.tcvae import (
    TC_ESTIMATORS,
    log_importance_weights,
    standard_normal_log_density,
    tc_decomposition,
)

F64 = torch.float64
CPU = torch.device("cpu")


def _posterior(m: int, h: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(m, h, generator=g, dtype=F64) * torch.linspace(0.2, 2.0, h, dtype=F64)
    logvar = -2.0 + torch.rand(m, h, generator=g, dtype=F64)
    z = mu + (0.5 * logvar).exp() * torch.randn(m, h, generator=g, dtype=F64)
    return mu, logvar, z


def _decompose(mu, logvar, z, log_w):
    per_factor = marginal_log_density_pairs(z, mu, logvar)
    family = DiagonalGaussian(ModelConfig("mlp", (1, 1, 1)))
    log_qzx = family.log_density(z, mu, logvar)
    return tc_decomposition(per_factor, per_factor.sum(2), log_qzx,
                            standard_normal_log_density(z), log_w)  # fmt: skip


@pytest.mark.parametrize("kind", TC_ESTIMATORS)
def test_tcvae_terms_add_up_to_the_single_sample_kl(kind: str) -> None:
    """MI + TC + DWKL = mean [log q(z_i|x_i) − log p(z_i)] for any weights (MATH.md §14)."""
    mu, logvar, z = _posterior(32, 5)
    log_w = log_importance_weights(kind, 32, 1000, CPU, F64)
    mi, tc, dwkl = _decompose(mu, logvar, z, log_w)
    family = DiagonalGaussian(ModelConfig("mlp", (1, 1, 1)))
    expected = family.log_density(z, mu, logvar) - standard_normal_log_density(z)
    torch.testing.assert_close(mi + tc + dwkl, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", TC_ESTIMATORS)
def test_a_one_row_batch_has_the_weight_one_over_n(kind: str, batch) -> None:
    """An epoch's last batch may hold one row (55 images at batch 32): every estimator's weight
    is then W_11 = 1/N, finite, and a β-TCVAE step on that row is finite (issue 24's
    ZeroDivisionError)."""
    log_w = log_importance_weights(kind, 1, 1000, CPU, F64)
    torch.testing.assert_close(log_w, torch.full((1, 1), -math.log(1000), dtype=F64))
    torch.manual_seed(0)
    model = build_model(ModelConfig("mlp", (1, 8, 8), latents=3, hidden=16))
    objective = build_objective("beta_tcvae", {"tc_estimator": kind}, model,
                                TrainContext(1000, 1, 1e-3, CPU))  # fmt: skip
    terms = objective.train_step(batch[:1])
    assert all(bool(torch.isfinite(v)) for v in terms.values())


def test_full_batch_weights_give_the_empirical_information_and_mws_its_offsets() -> None:
    """M = N, W ≡ 1/N: MI and TC equal MATH.md §3's I(x; z) and Σ_h I(x; z_h) − I(x; z) on the
    same samples; MWS (W ≡ 1/(N·N)) shifts them by exactly log N, (H − 1) log N, −H log N."""
    n, h = 40, 3
    mu, logvar, z = _posterior(n, h, seed=1)
    exact = torch.full((n, n), -math.log(n), dtype=F64)
    mi, tc, dwkl = (t.mean() for t in _decompose(mu, logvar, z, exact))
    # §3 from its definition, on these samples: per point, log q(z_i|x_i) − log mean_k q(z_i|x_k)
    per_factor = marginal_log_density_pairs(z, mu, logvar)
    own = per_factor.diagonal(dim1=0, dim2=1).T  # (N, H): log q(z_ih | x_i)
    joint_i = own.sum(1) - (torch.logsumexp(per_factor.sum(2), 1) - math.log(n))
    factor_i = own - (torch.logsumexp(per_factor, 1) - math.log(n))
    assert float(mi) == pytest.approx(float(joint_i.mean()), abs=1e-12)
    assert float(tc) == pytest.approx(float(factor_i.sum(1).mean() - joint_i.mean()), abs=1e-12)
    mws = log_importance_weights("mws", n, n, CPU, F64)
    mi2, tc2, dwkl2 = (t.mean() for t in _decompose(mu, logvar, z, mws))
    assert float(mi2 - mi) == pytest.approx(math.log(n), abs=1e-10)
    assert float(tc2 - tc) == pytest.approx((h - 1) * math.log(n), abs=1e-10)
    assert float(dwkl2 - dwkl) == pytest.approx(-h * math.log(n), abs=1e-10)


def test_importance_weight_matrices() -> None:
    intended = log_importance_weights("mss", 6, 100, CPU).exp()
    torch.testing.assert_close(intended.sum(1), torch.ones(6), rtol=0, atol=1e-6)
    reference = log_importance_weights("mss_reference", 6, 100, CPU).exp()
    row = torch.tensor([0.01, 0.19, 0.2, 0.2, 0.2, 0.2])
    expected = row.expand(6, 6).clone()
    expected[4] = torch.tensor([0.19, 0.19, 0.2, 0.2, 0.2, 0.2])  # tcvae's stray write (§9)
    torch.testing.assert_close(reference, expected, rtol=0, atol=1e-6)
    assert float(reference[4].sum()) == pytest.approx(1 + 1 / 5 - 2 / 100, abs=1e-6)


def _correlated_gaussian(r: float, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    cov = torch.tensor([[1.0, r], [r, 1.0]], dtype=F64)
    return torch.randn(n, 2, generator=g, dtype=F64) @ torch.linalg.cholesky(cov).T


def test_exact_density_ratio_logit_averages_to_the_total_correlation() -> None:
    """q(z) = N(0, [[1, r], [r, 1]]): logit −½ log(1 − r²) − ½ zᵀ(Σ⁻¹ − I)z averages to TC."""
    r = 0.8
    z = _correlated_gaussian(r, 200_000, seed=2)
    inv = torch.linalg.inv(torch.tensor([[1.0, r], [r, 1.0]], dtype=F64)) - torch.eye(2, dtype=F64)
    l0 = -0.5 * math.log(1 - r * r) - 0.5 * torch.einsum("ni,ij,nj->n", z, inv, z)
    tc = density_ratio_tc(torch.stack([l0, torch.zeros_like(l0)], 1))
    # sd of the mean of the logit ≈ 0.8/√N = 0.002: 0.01 is 5 sd
    assert float(tc) == pytest.approx(-0.5 * math.log(1 - r * r), abs=0.01)  # 0.5108


def test_a_discriminator_learns_the_total_correlation() -> None:
    """Logistic regression on (z1², z2², z1 z2, z1, z2, 1) — a family holding the optimal logit —
    trained on real vs dimension-permuted codes recovers TC = 0.5108 within 0.02 (§14)."""
    torch.manual_seed(3)

    def features(z: torch.Tensor) -> torch.Tensor:
        return torch.stack([z[:, 0] ** 2, z[:, 1] ** 2, z[:, 0] * z[:, 1], z[:, 0], z[:, 1]], 1)

    real = features(_correlated_gaussian(0.8, 100_000, seed=11))
    fake = features(permute_dims(_correlated_gaussian(0.8, 100_000, seed=12)))
    head = torch.nn.Linear(5, 2, dtype=F64)
    optimizer = torch.optim.LBFGS(head.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = -0.5 * (torch.log_softmax(head(real), 1)[:, 0].mean()
                       + torch.log_softmax(head(fake), 1)[:, 1].mean())  # fmt: skip
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():  # on fresh codes: 10⁵ samples give ±0.003 of sampling error
        tc = density_ratio_tc(head(features(_correlated_gaussian(0.8, 100_000, seed=7))))
    assert float(tc) == pytest.approx(0.5108, abs=0.02)


def test_permuting_dimensions_keeps_each_column_and_breaks_the_dependence() -> None:
    torch.manual_seed(4)
    z = _correlated_gaussian(0.9, 20_000, seed=5)
    permuted = permute_dims(z)
    for h in range(2):
        torch.testing.assert_close(permuted[:, h].sort().values, z[:, h].sort().values)
    correlation = torch.corrcoef(permuted.T)[0, 1]
    assert abs(float(correlation)) < 0.03  # 1/√N = 0.007: 4 sd


def test_capacity_schedule() -> None:
    at = [float(capacity_at(torch.tensor(t), 25.0, 1000)) for t in (0, 500, 1000, 5000)]
    assert at == [0.0, 12.5, 25.0, 25.0]


def test_dip_penalties() -> None:
    a, b = 1.3, 0.4
    c = torch.tensor([[a, b], [b, a]], dtype=F64)
    assert float(dip_penalty(c, 2.0, 5.0)) == pytest.approx(
        2 * 2.0 * b * b + 2 * 5.0 * (a - 1) ** 2
    )
    g = torch.Generator().manual_seed(6)
    mu = torch.randn(500, 3, generator=g, dtype=F64)
    centred = mu - mu.mean(0)
    white = centred @ torch.linalg.inv(torch.linalg.cholesky(centred.T @ centred / 500)).T
    assert float(dip_penalty(mean_covariance(white), 10.0, 100.0)) == pytest.approx(0, abs=1e-20)


def test_mws_information_is_biased_and_mixture_is_not() -> None:
    """MWS's MI at M = N is I(x; z) + log N exactly, so its terms are never reported as
    information; the §3 estimator on the same posterior is not shifted."""
    n = 60
    mu, logvar, z = _posterior(n, 2, seed=8)
    mws = log_importance_weights("mws", n, n, CPU, F64)
    mi = float(_decompose(mu, logvar, z, mws)[0].mean())
    consistent = mixture_information(mu, logvar, samples=20, time_budget_s=None).mi_joint
    assert mi - consistent == pytest.approx(math.log(n), abs=0.2)


@pytest.fixture()
def batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(9)
    return (torch.rand(64, 1, 8, 8, generator=g) > 0.5).float()


def _fast_first(names: list[str], fast: str, keep: tuple[str, ...] = ()) -> list:
    """Every registered name; all but ``fast`` (and ``keep``) run in the slow lane."""
    quick = {fast, *keep}
    return [n if n in quick else pytest.param(n, marks=pytest.mark.slow) for n in names]


@pytest.mark.parametrize("encoder", _fast_first(ENCODERS.names(), "paper"))
@pytest.mark.parametrize(
    "name", _fast_first(OBJECTIVES.names(), "beta_vae", keep=("dip_vae_i", "beta_tcvae"))
)
def test_every_objective_lowers_its_loss_and_reports_its_terms(
    name: str, encoder: str, batch
) -> None:
    torch.manual_seed(10)
    wide = {"split_width": 16} if encoder == "split" else {}
    config = ModelConfig("mlp", (1, 8, 8), latents=4, hidden=32, encoder=encoder,
                         encoder_options=wide)  # fmt: skip
    model = build_model(config)
    objective = build_objective(name, {}, model, TrainContext(64, 1, 3e-3, CPU))
    losses = [float(objective.train_step(batch)["loss"]) for _ in range(40)]
    assert sum(losses[-5:]) < sum(losses[:5]), losses
    terms = objective.eval_terms(batch)
    assert set(terms) == set(objective.terms()) and all(torch.isfinite(v) for v in terms.values())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    objective.eval_terms(batch)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert int(objective.step) == 40


CODED = [n for n in OBJECTIVES.names() if OBJECTIVES.get(n).supports_code]


@pytest.mark.parametrize("name", _fast_first(CODED, "vmi"))
def test_every_objective_with_a_code_trains_it_and_reports_its_kl(name: str, batch) -> None:
    """A categorical code's KL is part of ``kl`` and reported alone as ``kl_code``."""
    torch.manual_seed(11)
    config = ModelConfig("mlp", (1, 8, 8), latents=3, hidden=32, categories=4)
    model = build_model(config)
    objective = build_objective(name, {}, model, TrainContext(64, 1, 3e-3, CPU))
    for _ in range(3):
        objective.train_step(batch)
    terms = objective.eval_terms(batch)
    assert "kl_code" in terms and set(terms) == set(objective.terms())
    assert 0.0 <= float(terms["kl_code"]) <= float(terms["kl"]) + 1e-6
    assert float(terms["kl_code"]) <= math.log(4) + 1e-6


def test_options_that_do_not_apply_are_refused() -> None:
    from vaetool.errors import ConfigError

    model = build_model(ModelConfig("mlp", (1, 8, 8), latents=4))
    with pytest.raises(ConfigError, match="gamma does not apply to objective beta_vae"):
        build_objective("beta_vae", {"gamma": 1.0}, model, TrainContext(64, 1, 1e-3, CPU))
    with pytest.raises(ConfigError, match="tc_estimator 'exact'"):
        build_objective("beta_tcvae", {"tc_estimator": "exact"}, model,
                        TrainContext(64, 1, 1e-3, CPU))  # fmt: skip


def test_a_code_capacity_replaces_the_code_kl_by_its_distance_to_the_schedule(batch) -> None:
    """With --code-capacity C (Dupont 2018, beyond paper 001) the VMI loss is recon + KL_z +
    γ_c |KL_c − C_c(t)| − λ·MI, C_c(t) = min(C, C·t/T); without it, recon + KL − λ·MI; the
    reported kl and elbo stay the model's own; a capacity above log K, or without a code, is
    refused before training."""
    from vaetool.errors import ConfigError

    torch.manual_seed(12)
    config = ModelConfig("mlp", (1, 8, 8), latents=3, hidden=32, categories=4)
    model = build_model(config)
    options = {"code_capacity": 1.0, "code_gamma": 7.0, "code_capacity_steps": 10}
    objective = build_objective("vmi", options, model, TrainContext(64, 1, 3e-3, CPU))
    objective.step.fill_(4)  # C_c(4) = 0.4 nats
    objective.eval()
    with torch.no_grad():
        torch.manual_seed(0)
        terms = objective.losses(batch)
        kl_code = objective._kl_code
    kl_z = terms["kl"] - kl_code
    expected = terms["recon"] + kl_z + 7.0 * (kl_code - 0.4).abs() - terms["mi_vmi"]
    assert float(terms["loss"]) == pytest.approx(float(expected), rel=1e-6)
    assert float(terms["elbo"]) == pytest.approx(-float(terms["recon"] + terms["kl"]), rel=1e-6)
    for bad, message in [({"code_capacity": 1.5}, "cannot exceed log K = 1.3863"),
                         ({"code_capacity": -1.0}, "expected 0 \\(off\\)")]:  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            OBJECTIVES.get("vmi").check_model(bad, config)
            build_objective("vmi", bad, model, TrainContext(64, 1, 3e-3, CPU))
    plain = ModelConfig("mlp", (1, 8, 8), latents=3, hidden=32)
    with pytest.raises(ConfigError, match="no categorical code"):
        OBJECTIVES.get("vmi").check_model({"code_capacity": 1.0, "vmi_factors": "0"}, plain)
