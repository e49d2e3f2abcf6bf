"""A fully connected encoder/decoder for flat vectors or images of any other size."""

from __future__ import annotations

import math

import torch
from torch import nn

from vaetool.models.conv import split_head

MLP_WIDTH = 512  # first hidden layer; the second is the config's ``hidden`` (256)


def mlp_trunk(image_shape: tuple[int, int, int]) -> tuple[nn.Sequential, int]:
    """The MLP encoder's first layer (a split encoder's shared part): (module, MLP_WIDTH)."""
    d = math.prod(image_shape)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, MLP_WIDTH), nn.ReLU()), MLP_WIDTH


class MLPEncoder(nn.Module):
    def __init__(
        self, image_shape: tuple[int, int, int], hidden: int, latents: int, categories: int = 0
    ) -> None:
        super().__init__()
        d = math.prod(image_shape)
        self.latents = latents
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(d, MLP_WIDTH),
            nn.ReLU(),
            nn.Linear(MLP_WIDTH, hidden),
            nn.ReLU(),
        )
        self.head = nn.Linear(hidden, 2 * latents + categories)  # rows [mu; logvar; logits]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """x (B, C, H, W) -> mu, logvar each (B, latents), code logits (B, categories)."""
        return split_head(self.head(self.fc(x)), self.latents)


class MLPDecoder(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], hidden: int, inputs: int) -> None:
        super().__init__()
        self.image_shape = image_shape
        self.input = nn.Linear(inputs, hidden)  # [z, code]
        self.fc = nn.Sequential(
            nn.ReLU(),
            nn.Linear(hidden, MLP_WIDTH),
            nn.ReLU(),
            nn.Linear(MLP_WIDTH, math.prod(image_shape)),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, inputs) -> decoder params (B, C, H, W)."""
        return self.fc(self.input(z)).view(-1, *self.image_shape)
