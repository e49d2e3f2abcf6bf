"""The split encoder (paper 003 §4.2, Fig. 1; MATH.md §10): a shared trunk, then layers that each
latent factor owns, batched as one einsum layer per depth (never a Python loop over factors).

Factor h owns ``split_depth`` hidden layers of width w (ReLU) and a head to its (mu_h, logvar_h):

    a[m,h,:]   = relu(Σ_d f[m,d] W[h,d,:] + b[h,:])       einsum 'md,hdw->mhw' (first layer)
    a[m,h,:]   = relu(Σ_u a[m,h,u] W[h,u,:] + b[h,:])     einsum 'mhu,huw->mhw' (deeper layers)
    out[m,h,:] = Σ_u a[m,h,u] W2[h,u,:] + b2[h,:]          einsum 'mhu,huo->mho', o = (mu, logvar)

Each factor's slice is initialised like a separate ``nn.Linear`` of its shape.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vaetool.config import ModelConfig


def _linear_init(factors: int, fan_in: int, fan_out: int) -> tuple[nn.Parameter, nn.Parameter]:
    """(H, fan_in, fan_out) weights and (H, fan_out) biases, each slice as nn.Linear's init:
    U(−1/√fan_in, 1/√fan_in) (kaiming-uniform with a = √5 gives the same bound for weights)."""
    bound = 1.0 / math.sqrt(fan_in)
    weight = torch.empty(factors, fan_in, fan_out).uniform_(-bound, bound)
    bias = torch.empty(factors, fan_out).uniform_(-bound, bound)
    return nn.Parameter(weight), nn.Parameter(bias)


class SplitHeads(nn.Module):
    """Per-factor MLPs on shared features: (B, D) -> (mu, logvar), each (B, H)."""

    def __init__(self, features: int, latents: int, width: int, depth: int) -> None:
        super().__init__()
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        fan_in = features
        for _ in range(depth):
            w, b = _linear_init(latents, fan_in, width)
            self.weights.append(w)
            self.biases.append(b)
            fan_in = width
        self.head_weight, self.head_bias = _linear_init(latents, fan_in, 2)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        a = torch.relu(torch.einsum("md,hdw->mhw", features, self.weights[0]) + self.biases[0])
        for w, b in zip(self.weights[1:], self.biases[1:], strict=True):
            a = torch.relu(torch.einsum("mhu,huw->mhw", a, w) + b)  # (B, H, w)
        out = torch.einsum("mhu,huo->mho", a, self.head_weight) + self.head_bias  # (B, H, 2)
        return out[..., 0], out[..., 1]


class SplitEncoder(nn.Module):
    """Shared ``trunk`` (its output has ``features`` numbers), then :class:`SplitHeads`; a
    categorical code's K logits come from one linear layer on the shared features."""

    def __init__(
        self, trunk: nn.Module, features: int, config: ModelConfig, width: int, depth: int
    ) -> None:
        super().__init__()
        self.features = trunk
        self.split = SplitHeads(features, config.latents, width, depth)
        self.code = nn.Linear(features, config.categories) if config.categories else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, C, H, W) -> mu, logvar each (B, latents), code logits (B, categories)."""
        f = self.features(x)
        mu, logvar = self.split(f)
        logits = self.code(f) if self.code is not None else f.new_zeros(f.shape[0], 0)
        return mu, logvar, logits
