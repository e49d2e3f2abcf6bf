"""A categorical code beside the Gaussian factors (paper 001 §4.2; MATH.md §10).

q(c|x) = Cat(π(x)), log π = log_softmax(a(x)) from K encoder logits a; uniform prior U_K. The
decoder sees [z, y]: in training y is the Gumbel-softmax relaxation of c (paper 001 eq. 11; Jang
et al. 2017; Maddison et al. 2017) at temperature τ, fixed (default 0.67, jointvae) or annealed
τ_t = max(0.5, τ_0 exp(−r t)) over training steps t (Jang et al., who start at τ_0 = 1); at test
time y is the one-hot of argmax_k π_k (jointvae's eval mode). The KL is the discrete one,
KL(q(c|x) ‖ U_K) = log K + Σ_k π_k log π_k ∈ [0, log K] (paper 001 eq. 10).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaetool.config import ModelConfig
from vaetool.models import noise

GUMBEL_EPS = 1e-12  # u is clipped to [ε, 1 − ε] before −log(−log u) (jointvae models.py EPS)
MIN_TEMPERATURE = 0.5  # the floor of Jang et al.'s schedule


def gumbel_softmax(log_pi: Tensor, tau: Tensor | float, u: Tensor) -> Tensor:
    """y_k = softmax((log π_k + g_k)/τ), g_k = −log(−log u_k): paper 001 eq. 11 (MATH.md §10).

    ``log_pi`` (..., K) log-probabilities, ``u`` (..., K) uniform draws; returns (..., K) on the
    simplex. As τ → 0, y → one-hot(argmax_k (log π_k + g_k)), a draw of c (Gumbel-max)."""
    u = u.clamp(GUMBEL_EPS, 1.0 - GUMBEL_EPS)
    gumbel = -torch.log(-torch.log(u))
    return F.softmax((log_pi + gumbel) / tau, dim=-1)


def kl_to_uniform(log_pi: Tensor) -> Tensor:
    """KL(q(c|x) ‖ U_K) = log K + Σ_k π_k log π_k per row, (...,) nats in [0, log K]
    (paper 001 eq. 10's categorical part; jointvae ``_kl_discrete_loss``; MATH.md §10)."""
    k = log_pi.shape[-1]
    return math.log(k) + (log_pi.exp() * log_pi).sum(-1)


def entropy(log_pi: Tensor) -> Tensor:
    """H(π) = −Σ_k π_k log π_k per row, (...,) nats (0·log 0 = 0)."""
    return -(log_pi.exp() * log_pi).nan_to_num(0.0).sum(-1)


def one_hot_mode(logits: Tensor) -> Tensor:
    """The one-hot of argmax_k π_k, (..., K), in ``logits``' dtype: the code at test time."""
    return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)


def annealed_temperature(step: Tensor, start: float, rate: float) -> Tensor:
    """τ_t = max(0.5, τ_0 exp(−r t)) (Jang et al. 2017's schedule with start τ_0), 0-dim."""
    return (start * torch.exp(-rate * step.float())).clamp(min=MIN_TEMPERATURE)


class CategoricalCode(nn.Module):
    """The code's sampler and KL for K = ``config.categories`` classes; ``tau`` is a buffer the
    objective sets from its step counter when the temperature anneals (saved, so a resumed run
    goes on at its τ)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.categories = config.categories
        self.start = config.temperature
        self.rate = config.temperature_rate
        self.register_buffer("tau", torch.tensor(float(config.temperature)))

    def set_step(self, step: Tensor) -> None:
        """τ for training step ``step`` (a no-op at a fixed temperature); no host sync."""
        if self.rate > 0:
            self.tau.copy_(annealed_temperature(step, self.start, self.rate))

    def sample(self, logits: Tensor) -> Tensor:
        """The relaxed code y (B, K), reparameterised (noise from vaetool.models.noise)."""
        u = noise.uniform(tuple(logits.shape), logits)
        return gumbel_softmax(F.log_softmax(logits, dim=-1), self.tau, u)

    def kl(self, logits: Tensor) -> Tensor:
        """KL(q(c|x) ‖ U_K) per row, (B,) nats: :func:`kl_to_uniform`."""
        return kl_to_uniform(F.log_softmax(logits.float(), dim=-1))

    def prior_mean(self, like: Tensor) -> Tensor:
        """E y under the uniform prior: (K,) filled with 1/K (a dropped code decodes as this)."""
        return torch.full((self.categories,), 1.0 / self.categories, dtype=like.dtype,
                          device=like.device)  # fmt: skip
