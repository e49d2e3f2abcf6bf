"""A fully connected encoder/decoder for flat vectors or images of any other size."""

from __future__ import annotations

import math

import torch
from torch import nn

MLP_WIDTH = 512  # first hidden layer; the second is the config's ``hidden`` (256)


def mlp_trunk(image_shape: tuple[int, int, int]) -> tuple[nn.Sequential, int]:
    """The MLP encoder's first layer (a split encoder's shared part): (module, MLP_WIDTH)."""
    d = math.prod(image_shape)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, MLP_WIDTH), nn.ReLU()), MLP_WIDTH


class MLPEncoder(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], hidden: int, latents: int) -> None:
        super().__init__()
        d = math.prod(image_shape)
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(d, MLP_WIDTH),
            nn.ReLU(),
            nn.Linear(MLP_WIDTH, hidden),
            nn.ReLU(),
        )
        self.head = nn.Linear(hidden, 2 * latents)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) -> mu, logvar each (B, latents)."""
        mu, logvar = self.head(self.fc(x)).chunk(2, dim=1)
        return mu, logvar


class MLPDecoder(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], hidden: int, latents: int) -> None:
        super().__init__()
        self.image_shape = image_shape
        self.input = nn.Linear(latents, hidden)
        self.fc = nn.Sequential(
            nn.ReLU(),
            nn.Linear(hidden, MLP_WIDTH),
            nn.ReLU(),
            nn.Linear(MLP_WIDTH, math.prod(image_shape)),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, latents) -> decoder params (B, C, H, W)."""
        return self.fc(self.input(z)).view(-1, *self.image_shape)
