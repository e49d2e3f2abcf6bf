"""Decoder likelihoods p(x|z): negative log-likelihood per image and the mean image.

MATH.md §7. The decoder network outputs ``params`` shaped like the images (B, C, H, W); each
likelihood says how to score data against them and how to turn them into a displayable mean.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F

from vaetool.config import ModelConfig
from vaetool.registry import Registry


class Likelihood(Protocol):
    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """−log p(x|z) in nats per image, shape (B,)."""
        ...

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x|z], shape (B, C, H, W)."""
        ...


LIKELIHOODS: Registry[type] = Registry("likelihood", "--likelihood")


@LIKELIHOODS.register("bernoulli")
class Bernoulli:
    """Bernoulli pixels; ``params`` are logits. nll = binary cross-entropy summed over pixels."""

    def __init__(self, config: ModelConfig) -> None:
        del config

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(params, x, reduction="none")
        return bce.flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)


@LIKELIHOODS.register("gaussian")
class FixedGaussian:
    """Gaussian with fixed variance σ²; ``params`` are the means (MATH.md §7).

    −log p = ‖x − G(z)‖² / (2σ²) + D/2 log(2πσ²); a fixed σ² acts like β = 2σ² (paper 002, §7.2.1).
    """

    def __init__(self, config: ModelConfig) -> None:
        self.sigma2 = config.sigma2

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        d = x[0].numel()
        sse = (x - params).square().flatten(1).sum(1)
        return sse / (2 * self.sigma2) + 0.5 * d * math.log(2 * math.pi * self.sigma2)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params
