"""Posteriors with known properties, shared by the estimator tests (MATH.md, known answers)."""

from __future__ import annotations

import torch

F64 = torch.float64


def random_posterior(n: int, h: int, seed: int, shift: float = 0.0) -> tuple[torch.Tensor, ...]:
    """mu ~ shift + N(0, diag(scales²)), logvar ~ U(-4, 1): a generic float64 posterior (N, H)."""
    gen = torch.Generator().manual_seed(seed)
    scales = torch.linspace(0.1, 2.0, h, dtype=F64)
    mu = shift + scales * torch.randn(n, h, generator=gen, dtype=F64)
    logvar = -4.0 + 5.0 * torch.rand(n, h, generator=gen, dtype=F64)
    return mu, logvar
