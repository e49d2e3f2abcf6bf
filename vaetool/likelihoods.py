"""Decoder likelihoods p(x|z) as modules: negative log-likelihood per image, mean and sample.

MATH.md §7, §11. The decoder network outputs ``params`` shaped like the images (B, C, H, W); each
likelihood says how to score data against them, how to turn them into a displayable mean and how
to draw an image. A likelihood is an ``nn.Module`` so that one may hold parameters or buffers
(a learned noise variance; mixture weights) saved with the model under ``likelihood.*``.

Noise models that learn (paper 002 §7, App. A) do it in one of two ways: a parameter trained by
the VAE's optimiser with the networks (``gaussian_learned --noise-fit gradient``), or a
closed-form update from each training batch's residuals before the networks' gradient step
(:meth:`Likelihood.fit_noise`: the Gaussian's σ̂², the mixture's EM step). Their current values
are reported as terms (history.csv columns ``train_sigma2`` …) by :meth:`Likelihood.noise`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from vaetool.config import ModelConfig, check_finite
from vaetool.errors import ConfigError
from vaetool.options import NoOptions, make_options, option
from vaetool.registry import Registry


class Likelihood(nn.Module):
    """Base class: ``nll`` (B,) nats per image, ``mean`` and ``sample`` (B, C, H, W).

    Built from its ``Options`` (a frozen dataclass, :mod:`vaetool.options`; stored resolved in
    the model config's ``likelihood_options``) and the image shape. ``noise_names``: the
    learned noise values :meth:`noise` reports (empty for fixed noise); ``fits_noise``: whether
    :meth:`fit_noise` updates buffers from training batches.
    """

    Options: ClassVar[type] = NoOptions
    noise_names: tuple[str, ...] = ()
    fits_noise: ClassVar[bool] = False
    sigma2_from_config: ClassVar[bool] = False  # a σ² buffer that must equal options.sigma2

    def __init__(self, options: Any, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.options = options

    def fit_noise(self, params: torch.Tensor, x: torch.Tensor) -> None:
        """Update the noise from a training batch's decoder output (detached) and images."""

    @classmethod
    def variance_of(cls, options: Any, noise: dict[str, float]) -> float | None:
        """The one Gaussian noise variance σ² of a trained model with these ``options``
        (``noise``: its learned values, checkpoint summary), or None when its noise is not one
        Gaussian (paper 002 §7.2.1's normalised variance is β·σ²)."""
        return None

    def noise(self) -> dict[str, torch.Tensor]:
        """The learned noise values by ``noise_names``, 0-dim tensors (none when fixed)."""
        return {}

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        """x ~ p(x|z) given the decoder's ``params`` (torch's global generator)."""
        raise NotImplementedError

    def decoder_output(self, params: torch.Tensor) -> torch.Tensor:
        """x̃ for paper 001's regulariser (MATH.md §12): a draw differentiable in the decoder —
        the mean plus noise for additive noise models (this default)."""
        return self.sample(params)


LIKELIHOODS: Registry[type[Likelihood]] = Registry("likelihood", "‹likelihood›")


def likelihood_options(name: str, raw: dict[str, Any]) -> Any:
    """The likelihood ``name``'s Options from ``raw`` (defaults for what is absent), checked."""
    return make_options("likelihood", name, LIKELIHOODS.get(name).Options, raw)


def resolve_likelihood_options(name: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The same, as the plain dict a model config stores."""
    return asdict(likelihood_options(name, raw))


def options_of(config: ModelConfig) -> Any:
    """The Options of a model config's likelihood."""
    return likelihood_options(config.likelihood, config.likelihood_options)


def build_likelihood(config: ModelConfig) -> Likelihood:
    """The likelihood a model config names, with its options, for its image shape."""
    if config.image_shape is None:
        raise ConfigError("a likelihood needs the image shape: call ModelConfig.for_data first")
    return LIKELIHOODS.get(config.likelihood)(options_of(config), config.image_shape)


@LIKELIHOODS.register("bernoulli")
class Bernoulli(Likelihood):
    """Bernoulli pixels; ``params`` are logits. nll = binary cross-entropy summed over pixels."""

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(params, x, reduction="none")
        return bce.flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(params))

    def decoder_output(self, params: torch.Tensor) -> torch.Tensor:
        """The mean image: a Bernoulli draw is not reparameterisable (MATH.md §12)."""
        return self.mean(params)


@dataclass(frozen=True)
class GaussianOptions:
    sigma2: float = option(0.01, "σ², the decoder's fixed noise variance (paper 002 §7)")

    def __post_init__(self) -> None:
        check_finite("‹sigma2›", self.sigma2, positive=True)


@LIKELIHOODS.register("gaussian")
class FixedGaussian(Likelihood):
    """Gaussian with fixed variance σ²; ``params`` are the means (MATH.md §7).

    −log p = ‖x − G(z)‖² / (2σ²) + D/2 log(2πσ²); a fixed σ² acts like β = 2σ² (paper 002, §7.2.1).
    """

    Options = GaussianOptions
    sigma2_from_config = True

    @classmethod
    def variance_of(cls, options: GaussianOptions, noise: dict[str, float]) -> float | None:
        return float(options.sigma2)

    def __init__(self, options: GaussianOptions, image_shape: tuple[int, int, int]) -> None:
        super().__init__(options, image_shape)
        # A buffer, saved as model.likelihood.sigma2: a checkpoint whose metadata names another
        # likelihood (or another σ²) than its tensors hold is refused when read.
        self.register_buffer("sigma2", torch.tensor(float(options.sigma2)))

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return gaussian_nll(x - params, self.sigma2)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        return params + self.sigma2.sqrt() * torch.randn_like(params)


SIGMA2_FLOOR = 1e-6  # floor of every learned variance and mixing weight (MATH.md §11)


def gaussian_nll(residual: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    """−log N(r; 0, σ²) summed over each image's pixels (B,): ‖r‖²/(2σ²) + ½ Σ_d log(2πσ²_d).

    ``sigma2`` is a scalar or per pixel (C, H, W) (MATH.md §7; paper 002 App. A.1).
    """
    per_pixel = residual.square() / (2 * sigma2) + 0.5 * torch.log(2 * math.pi * sigma2)
    return per_pixel.flatten(1).sum(1)


def gaussian_sse(recon: float, sigma2: float, d: int) -> float:
    """The mean ‖r‖² per image behind a Gaussian recon term (one σ² for all D pixels):
    recon = SSE/(2σ²) + (D/2) log 2πσ²  ⇒  SSE = 2σ² (recon − (D/2) log 2πσ²)."""
    return 2 * sigma2 * (recon - 0.5 * d * math.log(2 * math.pi * sigma2))


def evlb(sse: float, kl: float, sigma2: float, d: int) -> float:
    """Paper 002 eq. 13 (MATH.md §11): the β = 1 ELBO of a Gaussian decoder at variance σ²,
    −SSE/(2σ²) − (D/2) log 2πσ² − KL, nats per image, from the mean SSE and KL per image."""
    return -sse / (2 * sigma2) - 0.5 * d * math.log(2 * math.pi * sigma2) - kl


def closed_form_sigma2(residual: torch.Tensor, per_pixel: bool) -> torch.Tensor:
    """Paper 002 App. A.1 (MATH.md §11): the batch maximiser of the Gaussian likelihood in σ²,
    σ̂² = Σ_m ‖x_m − G(z_m)‖² / (M·D) (shared) or the batch mean of r²_d per pixel, ≥ 1e−6."""
    squares = residual.detach().to(torch.float64).square()
    sigma2 = squares.mean(0) if per_pixel else squares.mean()
    return sigma2.clamp_min(SIGMA2_FLOOR)


NOISE_FITS = ("closed", "gradient")  # how gaussian_learned learns σ²


@dataclass(frozen=True)
class LearnedGaussianOptions:
    sigma2: float = option(0.01, "σ² at the start, before it is learned")
    noise_fit: str = option(
        "closed", "closed (the batch optimum σ̂², App. A.1) or gradient (Adam on log σ²)"
    )
    noise_per_pixel: bool = option(False, "one σ² per pixel instead of one for all")
    noise_warmup: int = option(50, "closed: steps at the start σ² before fitting it")

    def __post_init__(self) -> None:
        check_finite("‹sigma2›", self.sigma2, positive=True)
        if self.noise_fit not in NOISE_FITS:
            raise ConfigError(
                f"‹noise_fit› {self.noise_fit!r}: expected one of {', '.join(NOISE_FITS)}"
            )
        if self.noise_warmup < 0:
            raise ConfigError(f"‹noise_warmup› {self.noise_warmup}: expected 0 or more steps")


@LIKELIHOODS.register("gaussian_learned")
class LearnedGaussian(Likelihood):
    """Gaussian with a learned variance, shared or per pixel (paper 002 §7, App. A.1).

    ``noise_fit = "closed"``: σ² is a buffer set to the batch optimum σ̂² from each training
    batch's residuals before the gradient step (coordinate ascent; MATH.md §11), after
    ``noise_warmup`` steps at the start value: fitted from the first batches of an
    untrained decoder σ̂² is large, which weighs the KL term up and can collapse the posterior
    for good (measured in docs/training.md). ``"gradient"``: log σ² is a parameter trained by
    the VAE's Adam with the networks. ``sigma2`` is the starting value. History reports
    σ² (the mean over pixels).
    """

    Options = LearnedGaussianOptions
    noise_names = ("sigma2",)

    def __init__(self, options: LearnedGaussianOptions, image_shape: tuple[int, int, int]) -> None:
        super().__init__(options, image_shape)
        shape = tuple(image_shape) if options.noise_per_pixel else ()
        start = torch.full(shape, float(options.sigma2))
        self.closed = options.noise_fit == "closed"
        if self.closed:
            self.register_buffer("sigma2", start)
            self.register_buffer("fits", torch.zeros((), dtype=torch.long))
            self.warmup = options.noise_warmup
        else:
            self.log_sigma2 = nn.Parameter(start.log())
        self.per_pixel = options.noise_per_pixel

    @property
    def fits_noise(self) -> bool:  # type: ignore[override]
        return self.closed

    @classmethod
    def variance_of(cls, options: Any, noise: dict[str, float]) -> float | None:
        return noise.get("sigma2")  # per pixel: their mean

    def variance(self) -> torch.Tensor:
        """σ² (scalar or (C, H, W)), floored at 1e−6."""
        sigma2 = self.sigma2 if self.closed else self.log_sigma2.exp()
        return sigma2.clamp_min(SIGMA2_FLOOR)

    def fit_noise(self, params: torch.Tensor, x: torch.Tensor) -> None:
        if self.closed:  # no host sync: the warm-up is a where on a step counter
            self.fits += 1
            fitted = closed_form_sigma2(x - params, self.per_pixel).to(self.sigma2.dtype)
            self.sigma2.copy_(torch.where(self.fits > self.warmup, fitted, self.sigma2))

    def noise(self) -> dict[str, torch.Tensor]:
        return {"sigma2": self.variance().detach().mean()}

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return gaussian_nll(x - params, self.variance())

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        return params + self.variance().sqrt() * torch.randn_like(params)


def mixture_log_density(
    residual: torch.Tensor, log_pi: torch.Tensor, sigma2: torch.Tensor
) -> torch.Tensor:
    """log π_k + log N(r; 0, σ²_k) for every residual and component: (..., K) (paper 002
    eq. 15, MATH.md §11)."""
    r2 = residual.unsqueeze(-1).square()
    return log_pi - 0.5 * torch.log(2 * math.pi * sigma2) - r2 / (2 * sigma2)


def em_step(
    residual: torch.Tensor, log_pi: torch.Tensor, sigma2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One EM iteration for zero-mean Gaussian mixture noise on residuals (any shape), in
    float64 (paper 002 App. A.2 eqs. 23 and 26; MATH.md §11):

        E: γ_k = π_k N(r; 0, σ²_k) / Σ_k' π_k' N(r; 0, σ²_k')     (log domain)
        M: N_k = Σ γ_k,  π_k = N_k / n,  σ²_k = Σ γ_k r² / N_k     (floored at 1e−6)

    Returns the new (log π (K,), σ² (K,)).
    """
    r = residual.detach().to(torch.float64).reshape(-1)
    log_p = mixture_log_density(r, log_pi.to(torch.float64), sigma2.to(torch.float64))
    gamma = torch.softmax(log_p, dim=-1)  # (n, K)
    counts = gamma.sum(0)
    pi = (counts / r.numel()).clamp_min(SIGMA2_FLOOR)
    var = (gamma * r.square().unsqueeze(-1)).sum(0) / counts.clamp_min(SIGMA2_FLOOR)
    return (pi / pi.sum()).log(), var.clamp_min(SIGMA2_FLOOR)


def mixture_start(residual: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The proposal start (MATH.md §11): π_k = 1/K, σ²_k spread geometrically from v/2 to 2v
    (K = 2: (v/2, 2v)), v the mean squared residual; K = 1: σ² = v. float64 on the residual's
    device (made there: nothing is copied from the host while a CUDA graph is captured)."""
    r = residual.detach().to(torch.float64)
    v = r.square().mean().clamp_min(SIGMA2_FLOOR)
    powers = torch.linspace(-1.0, 1.0, k, dtype=torch.float64, device=r.device) if k > 1 else (
        torch.zeros(1, dtype=torch.float64, device=r.device))  # fmt: skip
    log_pi = torch.full((k,), -math.log(k), dtype=torch.float64, device=r.device)
    return log_pi, v * torch.pow(2.0, powers)


@dataclass(frozen=True)
class MixtureOptions:
    sigma2: float = option(0.01, "each component's σ² before the first batch sets the start")
    components: int = option(2, "K, mixture components per pixel (paper 002 App. A.2)")

    def __post_init__(self) -> None:
        check_finite("‹sigma2›", self.sigma2, positive=True)
        if self.components < 1:
            raise ConfigError(f"‹components› {self.components}: expected a positive integer")


@LIKELIHOODS.register("mog2")
class MixtureGaussian(Likelihood):
    """Per-pixel mixture of K zero-mean Gaussians (K = 2 by default: "MoG-2"; paper 002 App.
    A.2): r_d ~ Σ_k π_k N(0, σ²_k), Π and σ² shared by all pixels and images.

    Each training batch runs one EM iteration (:func:`em_step`) on its residuals before the
    gradient step, which descends the marginal −Σ_d log Σ_k π_k N(r_d; 0, σ²_k) with the new
    Π, σ² held fixed (MATH.md §11: its gradient in G is eq. 25's with the responsibilities at
    the new parameters). The first batch sets the start (:func:`mixture_start`). History
    reports components sorted by variance: ``sigma2_1`` ≤ ``sigma2_2`` …, with ``pi_k``.
    """

    Options = MixtureOptions
    fits_noise = True

    def __init__(self, options: MixtureOptions, image_shape: tuple[int, int, int]) -> None:
        super().__init__(options, image_shape)
        k = options.components
        self.register_buffer("log_pi", torch.full((k,), -math.log(k), dtype=torch.float64))
        self.register_buffer("sigma2", torch.full((k,), float(options.sigma2), dtype=torch.float64))
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))
        self.noise_names = tuple(f"{n}_{i + 1}" for i in range(k) for n in ("sigma2", "pi"))

    def fit_noise(self, params: torch.Tensor, x: torch.Tensor) -> None:
        residual = x - params
        start_pi, start_var = mixture_start(residual, len(self.sigma2))
        first = ~self.started
        log_pi = torch.where(first, start_pi, self.log_pi)
        sigma2 = torch.where(first, start_var, self.sigma2)
        new_pi, new_var = em_step(residual, log_pi, sigma2)
        self.log_pi.copy_(new_pi)
        self.sigma2.copy_(new_var)
        self.started.fill_(True)

    def noise(self) -> dict[str, torch.Tensor]:
        order = torch.argsort(self.sigma2)
        out = {}
        for i in range(len(order)):
            out[f"sigma2_{i + 1}"] = self.sigma2[order[i]].float()
            out[f"pi_{i + 1}"] = self.log_pi[order[i]].exp().float()
        return out

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        log_p = mixture_log_density(x - params, self.log_pi.to(x.dtype), self.sigma2.to(x.dtype))
        return -torch.logsumexp(log_p, dim=-1).flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        pick = torch.multinomial(self.log_pi.exp().float(), params.numel(), replacement=True)
        scale = self.sigma2.float().sqrt()[pick].reshape(params.shape)
        return params + scale * torch.randn_like(params)
