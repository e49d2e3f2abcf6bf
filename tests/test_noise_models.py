"""Paper 002's decoder noise models (MATH.md §11, §14): the learned Gaussian variance in closed
form and by gradient, the mixture's EM, and what a training run stores and reports."""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import pytest
import torch

from vaetool.config import ModelConfig
from vaetool.likelihoods import (
    build_likelihood,
    closed_form_sigma2,
    em_step,
    gaussian_nll,
    mixture_log_density,
    mixture_start,
)


def _likelihood(name: str, **options: object):
    config = ModelConfig(
        "conv28", (1, 28, 28), latents=2, likelihood=name, likelihood_options=options
    )
    return build_likelihood(config)


def _mixture_loglik(r: torch.Tensor, log_pi: torch.Tensor, sigma2: torch.Tensor) -> float:
    return float(torch.logsumexp(mixture_log_density(r, log_pi, sigma2), -1).sum())


@pytest.mark.parametrize("per_pixel", [False, True])
def test_closed_form_sigma2_is_the_mean_squared_residual(per_pixel: bool) -> None:
    x = torch.rand(50, 1, 28, 28)
    params = torch.rand(50, 1, 28, 28)
    likelihood = _likelihood("gaussian_learned", noise_per_pixel=per_pixel, noise_warmup=0)
    likelihood.fit_noise(params, x)
    r2 = (x - params).double().square()
    expected = r2.mean(0) if per_pixel else r2.mean()
    assert torch.allclose(likelihood.sigma2.double(), expected, rtol=1e-6)
    # at σ̂² the Gaussian term is (D/2)(log 2πσ̂² + 1) per image on average (MATH.md §14)
    if not per_pixel:
        d = 28 * 28
        value = gaussian_nll(x - params, likelihood.variance()).double().mean()
        assert math.isclose(float(value), d / 2 * (math.log(2 * math.pi * float(expected)) + 1),
                            rel_tol=1e-5)  # fmt: skip
    assert float(closed_form_sigma2(torch.zeros(3, 4), False)) == 1e-6  # the floor


@pytest.mark.parametrize("per_pixel", [False, True])
def test_the_gradient_path_reaches_the_closed_form(per_pixel: bool) -> None:
    """With the decoder fixed, descending the NLL in log σ² converges to σ̂² (rel. 1e-6)."""
    torch.manual_seed(0)
    x = torch.rand(64, 1, 28, 28, dtype=torch.float64)
    params = x + 0.1 * torch.randn_like(x)
    likelihood = _likelihood("gaussian_learned", noise_fit="gradient",
                             noise_per_pixel=per_pixel).double()  # fmt: skip
    assert not likelihood.fits_noise and [n for n, _ in likelihood.named_parameters()] == [
        "log_sigma2"
    ]
    optimizer = torch.optim.LBFGS(
        likelihood.parameters(),
        max_iter=200,
        tolerance_grad=1e-14,
        tolerance_change=1e-16,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = likelihood.nll(params, x).mean()
        loss.backward()
        return loss

    for _ in range(5):
        optimizer.step(closure)
    expected = closed_form_sigma2(x - params, per_pixel)
    assert torch.allclose(likelihood.variance(), expected, rtol=1e-6)


def test_the_warm_up_holds_the_start_then_fits() -> None:
    """--noise-warmup N: the first N training batches leave σ² at its start (--sigma2); the
    next one sets it to σ̂² (the untrained decoder's large σ̂² can collapse the posterior)."""
    likelihood = _likelihood("gaussian_learned", noise_warmup=3, sigma2=0.02)
    x, params = torch.rand(10, 1, 28, 28), torch.rand(10, 1, 28, 28)
    for _ in range(3):
        likelihood.fit_noise(params, x)
        assert float(likelihood.sigma2) == pytest.approx(0.02)
    likelihood.fit_noise(params, x)
    expected = float((x - params).double().square().mean())
    assert float(likelihood.sigma2) == pytest.approx(expected, rel=1e-6)
    assert int(likelihood.fits) == 4  # saved with the model: a resumed run keeps counting


def _celeba_residuals(n: int) -> torch.Tensor:
    """n residuals from paper 002 Fig. 15's mixture 0.63 N(0, 0.003) + 0.37 N(0, 0.029)."""
    gen = torch.Generator().manual_seed(0)
    first = torch.rand(n, generator=gen, dtype=torch.float64) < 0.63
    scale = torch.where(first, math.sqrt(0.003), math.sqrt(0.029))
    return scale * torch.randn(n, generator=gen, dtype=torch.float64)


@pytest.mark.slow
def test_em_recovers_paper_002s_celeba_mixture() -> None:
    """MATH.md §14's check: 10⁶ residuals, from the proposal start, 50 EM iterations give π and
    σ² within 1 % and a log-likelihood that never falls."""
    _check_em(_celeba_residuals(1_000_000), rtol=0.01)


def test_em_recovers_the_mixture_from_fewer_residuals() -> None:
    """The same on 10⁵ residuals (the fast lane's version), within 3 %."""
    _check_em(_celeba_residuals(100_000), rtol=0.03)


def _check_em(r: torch.Tensor, rtol: float) -> None:
    log_pi, sigma2 = mixture_start(r, 2)
    v = float(r.square().mean())
    assert torch.allclose(sigma2, torch.tensor([v / 2, 2 * v], dtype=torch.float64))
    assert torch.allclose(log_pi.exp(), torch.tensor([0.5, 0.5], dtype=torch.float64))
    loglik = [_mixture_loglik(r, log_pi, sigma2)]
    for _ in range(50):
        log_pi, sigma2 = em_step(r, log_pi, sigma2)
        loglik.append(_mixture_loglik(r, log_pi, sigma2))
    assert all(b >= a - 1e-6 * abs(a) for a, b in itertools.pairwise(loglik))
    pi = log_pi.exp()
    assert torch.allclose(pi, torch.tensor([0.63, 0.37], dtype=torch.float64), rtol=rtol)
    assert torch.allclose(sigma2, torch.tensor([0.003, 0.029], dtype=torch.float64), rtol=rtol)


def test_em_with_one_component_is_the_closed_form() -> None:
    r = torch.randn(1000, dtype=torch.float64) * 0.2
    log_pi, sigma2 = em_step(r, *mixture_start(r, 1))
    assert torch.allclose(sigma2, r.square().mean().reshape(1))
    assert float(log_pi.exp()) == pytest.approx(1.0)


def test_mixture_module_starts_fits_and_reports_sorted() -> None:
    likelihood = _likelihood("mog2", components=3)
    assert likelihood.noise_names == ("sigma2_1", "pi_1", "sigma2_2", "pi_2", "sigma2_3", "pi_3")
    x = torch.rand(20, 1, 28, 28)
    params = x + 0.05 * torch.randn_like(x)
    likelihood.fit_noise(params, x)
    r = (x - params).double()
    expected = em_step(r, *mixture_start(r, 3))  # the first batch starts from the proposal
    assert torch.allclose(likelihood.sigma2, expected[1]) and bool(likelihood.started)
    likelihood.fit_noise(params, x)  # later batches start from the stored values
    assert torch.allclose(likelihood.sigma2, em_step(r, *expected)[1])
    noise = likelihood.noise()
    values = [float(noise[f"sigma2_{i}"]) for i in (1, 2, 3)]
    assert values == sorted(values)
    assert sum(float(noise[f"pi_{i}"]) for i in (1, 2, 3)) == pytest.approx(1.0, abs=1e-6)
    # the NLL is the marginal mixture density, per image
    nll = likelihood.nll(params, x)
    manual = -torch.logsumexp(mixture_log_density(r, likelihood.log_pi, likelihood.sigma2), -1)
    assert torch.allclose(nll.double(), manual.flatten(1).sum(1), rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gaussian_learned", "mog2"])
def test_learned_noise_trains_is_saved_and_reported(cli, tmp_path: Path, name: str) -> None:
    """A few epochs on mnist5k: σ² falls from its start, history has it per epoch, the
    checkpoint holds it (and says so in its summary), and loading restores it."""
    import vaetool

    out = tmp_path / "run"
    warmup = ["--noise-warmup", "0"] if name == "gaussian_learned" else []
    code, _, err = cli("train", "--data", "mnist5k", "--subset", "1500", "--latents", "8",
                       "--epochs", "3", "--batch-size", "50", "--likelihood", name, "--sigma2",
                       "1", *warmup, "--device", "cpu", "--out", str(out))  # fmt: skip
    assert code == 0, err
    rows = list(csv.DictReader((out / "history.csv").open()))
    column = "train_sigma2" if name == "gaussian_learned" else "train_sigma2_1"
    falling = [float(r[column]) for r in rows]
    assert falling[-1] < falling[0] < 1.0  # from the start σ² = 1 downwards
    model = vaetool.load(out / "model.safetensors")
    stored = {k: float(v) for k, v in model.likelihood.noise().items()}
    summary = vaetool.read_info(out / "model.safetensors").summary["noise"]
    assert summary == pytest.approx(stored, rel=1e-6)
    assert float(rows[-1]["val_" + column[6:]]) == pytest.approx(stored[column[6:]], rel=1e-5)


@pytest.mark.slow
def test_gradient_noise_is_learned_by_the_optimiser(cli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, _, err = cli("train", "--data", "mnist5k", "--subset", "600", "--latents", "4",
                       "--epochs", "2", "--likelihood", "gaussian_learned", "--noise-fit",
                       "gradient", "--noise-per-pixel", "--device", "cpu",
                       "--out", str(out))  # fmt: skip
    assert code == 0, err
    import vaetool

    variance = vaetool.load(out / "model.safetensors").likelihood.variance()
    assert variance.shape == (1, 28, 28) and float(variance.max()) < 1.0


def test_noise_options_of_another_likelihood_are_refused(fails, tmp_path: Path) -> None:
    line = fails("train", "--components", "3", "--out", str(tmp_path / "r"))
    assert "--components does not apply to --likelihood bernoulli" in line
    line = fails("train", "--likelihood", "gaussian_learned", "--noise-fit", "newton",
                 "--out", str(tmp_path / "r"))  # fmt: skip
    assert "--noise-fit 'newton'" in line
    line = fails("train", "--likelihood", "mog2", "--seeds", "0,1", "--out", str(tmp_path / "s"))
    assert "cannot share" in line and not (tmp_path / "s").exists()


@pytest.mark.slow
def test_a_stack_learns_gradient_noise_per_model(cli, tmp_path: Path) -> None:
    """--noise-fit gradient is a parameter, so K seeds stack: each model learns its own σ²."""
    import vaetool

    out = tmp_path / "stack"
    code, _, err = cli("train", "--data", "mnist5k", "--subset", "400", "--latents", "4",
                       "--epochs", "1", "--likelihood", "gaussian_learned", "--noise-fit",
                       "gradient", "--seeds", "0,1", "--device", "cpu",
                       "--out", str(out))  # fmt: skip
    assert code == 0, err
    values = [float(vaetool.load(out / f"seed-{s}" / "model.safetensors").likelihood.variance())
              for s in (0, 1)]  # fmt: skip
    assert values[0] != values[1] and max(values) < 1.0


def test_normal_variance_count() -> None:
    """Paper 002 Fig. 5b as MATH.md §11 defines it: |s²_h − 1| ≤ 0.1, ignored factors count."""
    from vaetool.analysis.indicators import normal_variance

    s2 = torch.tensor([1.0, 0.95, 1.09, 0.85, 2.0, 1e-3], dtype=torch.float64)
    assert normal_variance(s2).tolist() == [True, True, True, False, False, False]


@pytest.mark.parametrize(
    ("likelihood", "objective", "extra", "expected"),
    [
        ("gaussian", "beta_vae", ["--sigma2", "0.01", "--beta", "4"], 0.04),
        ("gaussian", "beta_tcvae", ["--sigma2", "0.01"], None),  # its β weighs TC, not KL
        ("bernoulli", "beta_vae", [], None),
        ("mog2", "beta_vae", [], None),
    ],
)
def test_normalised_variance_and_evlb_in_the_ranking(
    cli, trained_tiny, likelihood: str, objective: str, extra: list[str], expected: float | None
) -> None:
    out = trained_tiny(likelihood, objective, extra)
    code, text, err = cli("mi", "rank", str(out / "model.safetensors"), "--format", "json")
    assert code == 0, err
    import json

    summary = json.loads(text)["summary"]
    if expected is None:
        assert "normalised_variance" not in summary
    else:
        assert summary["normalised_variance"] == pytest.approx(expected)
    history = list(csv.DictReader((out / "history.csv").open()))
    assert summary["evlb"] == pytest.approx(float(history[-1]["val_elbo"]))
    assert 0 <= summary["n_normal_variance"] <= 4
    assert ("evlb_normalised" in summary) == (expected is not None)


def test_learned_normalised_variance_is_beta_times_the_learned_sigma2(cli, trained_tiny) -> None:
    import json

    import vaetool

    for beta, extra in ((3.0, ["--beta", "3"]), (1.0, [])):
        out = trained_tiny("gaussian_learned", "beta_vae", extra)
        code, text, err = cli("mi", "rank", str(out / "model.safetensors"), "--format", "json")
        assert code == 0, err
        summary = json.loads(text)["summary"]
        learned = float(vaetool.load(out / "model.safetensors").likelihood.variance())
        assert summary["normalised_variance"] == pytest.approx(beta * learned)
        if beta == 1.0:  # at β = 1 the normalised variance is the model's own: the same bound
            assert summary["evlb_normalised"] == pytest.approx(summary["evlb"], rel=1e-6)


def test_evlb_from_the_recon_term_is_the_gaussian_bound() -> None:
    """Paper 002 eq. 13 from (SSE, KL): the SSE recovered from a recon term is ‖r‖², and the
    bound at the same σ² is −(recon + KL); at another σ² it is the NLL computed there."""
    from vaetool.likelihoods import evlb, gaussian_sse

    r = torch.randn(200, 1, 4, 4, dtype=torch.float64) * 0.3
    d, kl = 16, 2.5
    for sigma2 in (0.01, 0.5):
        recon = float(gaussian_nll(r, torch.tensor(sigma2, dtype=torch.float64)).mean())
        sse = gaussian_sse(recon, sigma2, d)
        assert sse == pytest.approx(float(r.square().flatten(1).sum(1).mean()), rel=1e-9)
        assert evlb(sse, kl, sigma2, d) == pytest.approx(-(recon + kl), rel=1e-12)
        other = float(gaussian_nll(r, torch.tensor(4 * sigma2, dtype=torch.float64)).mean())
        assert evlb(sse, kl, 4 * sigma2, d) == pytest.approx(-(other + kl), rel=1e-9)


@pytest.fixture()
def trained_tiny(cli, tmp_path: Path):
    def train(likelihood: str, objective: str, extra: list[str]) -> Path:
        out = tmp_path / "-".join([likelihood, objective, *extra])
        code, _, err = cli("train", "--data", "mnist5k", "--subset", "300", "--latents", "4",
                           "--epochs", "1", "--likelihood", likelihood, "--objective", objective,
                           *extra, "--device", "cpu", "--out", str(out))  # fmt: skip
        assert code == 0, err
        return out

    return train


@pytest.mark.slow
def test_the_report_shows_the_noise_per_epoch_and_paper_002s_indicators(
    cli, trained_tiny, tmp_path: Path
) -> None:
    out = trained_tiny("gaussian_learned", "beta_vae", ["--beta", "2"])
    code, _, err = cli("report", str(out / "model.safetensors"), "--out", str(tmp_path / "rep"),
                       "--device", "cpu")  # fmt: skip
    assert code == 0, err
    page = (tmp_path / "rep" / "index.html").read_text()
    assert (tmp_path / "rep" / "history.png").stat().st_size > 0
    assert "Training" in page and "history.png" in page
    assert "normalised variance β·σ²" in page and "normal-variance factors" in page


def test_a_fixed_variance_is_a_beta() -> None:
    """Paper 002 §7.2.1 (MATH.md §14): the VAE loss at σ² = β·σ²_pre is 1/β × the β-VAE loss
    at σ²_pre up to a constant, so on the same batch and noise the β-VAE's gradient is β times
    the VAE's (and Adam, blind to a gradient's scale, takes the same steps up to its ε)."""
    from vaetool.models import build_model

    def gradients(sigma2: float, beta: float) -> list[torch.Tensor]:
        config = ModelConfig(
            latents=4, likelihood="gaussian", likelihood_options={"sigma2": sigma2}
        )
        torch.manual_seed(0)
        model = build_model(config.for_data("conv28", (1, 28, 28))).double()
        x = torch.rand(
            16, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
        )
        torch.manual_seed(2)  # the same reparameterisation noise
        out = model(x)
        recon = model.likelihood.nll(out.params, x).mean()
        kl = model.latent.kl(out.mu, out.logvar).mean()
        (recon + beta * kl).backward()
        return [p.grad.clone() for p in model.parameters()]

    vae = gradients(0.04, 1.0)
    beta_vae = gradients(0.01, 4.0)
    assert all(
        torch.allclose(b, 4.0 * v, rtol=1e-9, atol=1e-12)
        for v, b in zip(vae, beta_vae, strict=True)
    )
    other = gradients(0.01, 1.0)
    assert not all(torch.allclose(o, 4.0 * v, rtol=1e-3) for v, o in zip(vae, other, strict=True))
