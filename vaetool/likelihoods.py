"""Decoder likelihoods p(x|z) as modules: negative log-likelihood per image, mean and sample.

MATH.md §7, §11. The decoder network outputs ``params`` shaped like the images (B, C, H, W); each
likelihood says how to score data against them, how to turn them into a displayable mean and how
to draw an image. A likelihood is an ``nn.Module`` so that one may hold parameters or buffers
(a learned noise variance; mixture weights) saved with the model under ``likelihood.*``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vaetool.config import ModelConfig
from vaetool.registry import Registry


class Likelihood(nn.Module):
    """Base class: ``nll`` (B,) nats per image, ``mean`` and ``sample`` (B, C, H, W)."""

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


LIKELIHOODS: Registry[type[Likelihood]] = Registry("likelihood", "--likelihood")


@LIKELIHOODS.register("bernoulli")
class Bernoulli(Likelihood):
    """Bernoulli pixels; ``params`` are logits. nll = binary cross-entropy summed over pixels."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(params, x, reduction="none")
        return bce.flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(params))


@LIKELIHOODS.register("gaussian")
class FixedGaussian(Likelihood):
    """Gaussian with fixed variance σ²; ``params`` are the means (MATH.md §7).

    −log p = ‖x − G(z)‖² / (2σ²) + D/2 log(2πσ²); a fixed σ² acts like β = 2σ² (paper 002, §7.2.1).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        # A buffer, saved as model.likelihood.sigma2: a checkpoint whose metadata names another
        # likelihood (or another σ²) than its tensors hold is refused when read.
        self.register_buffer("sigma2", torch.tensor(float(config.sigma2)))

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        d = x[0].numel()
        sse = (x - params).square().flatten(1).sum(1)
        return sse / (2 * self.sigma2) + 0.5 * d * torch.log(2 * math.pi * self.sigma2)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        return params + self.sigma2.sqrt() * torch.randn_like(params)
