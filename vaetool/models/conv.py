"""The papers' convolutional encoder/decoder (paper 000, appendix network table).

Encoder: conv 4×4 stride 2 (padding 1, so each halves H and W) with ReLU, then FC ``hidden`` with
ReLU, then a linear layer to 2H numbers (mu, logvar), and K code logits when the model has a
categorical code (paper 001 §4.2). Decoder (input: z, then the code's K numbers) mirrors it
with transposed convolutions; its last layer is linear (logits or means, depending on the
likelihood).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


def _check_divisible(image_shape: tuple[int, int, int], depth: int) -> tuple[int, int]:
    _, h, w = image_shape
    factor = 2**depth
    if h % factor or w % factor:
        raise ValueError(f"image {h}×{w} is not divisible by {factor} for {depth} stride-2 convs")
    return h // factor, w // factor


def conv_trunk(
    image_shape: tuple[int, int, int], channels: tuple[int, ...]
) -> tuple[nn.Sequential, int]:
    """The encoder's convolutions and flatten, and their output width (a split encoder's
    shared part, paper 003 §4.2): (module, C_last·H/2^d·W/2^d)."""
    fh, fw = _check_divisible(image_shape, len(channels))
    layers: list[nn.Module] = []
    c_in = image_shape[0]
    for c_out in channels:
        layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
        c_in = c_out
    return nn.Sequential(*layers, nn.Flatten()), c_in * fh * fw


def split_head(out: torch.Tensor, latents: int) -> tuple[torch.Tensor, ...]:
    """An encoder head's output (B, 2H + K) -> mu (B, H), logvar (B, H), code logits (B, K)."""
    return out[:, :latents], out[:, latents : 2 * latents], out[:, 2 * latents :]


class ConvEncoder(nn.Module):
    def __init__(
        self,
        image_shape: tuple[int, int, int],
        channels: tuple[int, ...],
        hidden: int,
        latents: int,
        categories: int = 0,
    ) -> None:
        super().__init__()
        self.features, width = conv_trunk(image_shape, channels)
        self.fc = nn.Sequential(nn.Linear(width, hidden), nn.ReLU())
        self.latents = latents
        self.head = nn.Linear(hidden, 2 * latents + categories)  # rows [mu; logvar; logits]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) -> mu, logvar each (B, latents), code logits (B, categories)."""
        return split_head(self.head(self.fc(self.features(x))), self.latents)


class ConvDecoder(nn.Module):
    def __init__(
        self,
        image_shape: tuple[int, int, int],
        channels: tuple[int, ...],
        hidden: int,
        inputs: int,
    ) -> None:
        super().__init__()
        fh, fw = _check_divisible(image_shape, len(channels))
        self.grid = (channels[-1], fh, fw)
        self.input = nn.Linear(inputs, hidden)  # [z, code] input layer (sliced by pruning)
        self.fc = nn.Sequential(nn.ReLU(), nn.Linear(hidden, channels[-1] * fh * fw), nn.ReLU())
        layers: list[nn.Module] = []
        reverse = list(reversed(channels))
        for c_in, c_out in itertools.pairwise(reverse):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
        layers.append(nn.ConvTranspose2d(reverse[-1], image_shape[0], 4, stride=2, padding=1))
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, inputs) -> decoder params (B, C, H, W)."""
        h = self.fc(self.input(z))
        return self.deconv(h.view(-1, *self.grid))  # (B, C_last, H/2^d, W/2^d) -> (B, C, H, W)
