"""Other frameworks' published networks, rebuilt with vaetool's layer names (docs/foreign.md).

Each encoder ends in ``head`` (rows [mu; logvar]) and each decoder starts with ``input`` (the
latent's linear layer), as vaetool's own networks, so pruning slices them with the same rules
(vaetool.models.slicing). An importer (vaetool.importers) maps the source's keys onto these.
Decoders return the likelihood's parameters: logits for Bernoulli pixels (the source's final
sigmoid is the likelihood's mean), the sigmoid means for a Gaussian.

- ``burgess``: disentangling-vae's "Burgess" nets (``disvae/models/encoders.py``,
  ``decoders.py``) for 32×32 and 64×64 images: 3 (4 at 64×64) conv 4×4/2 layers of 32 channels,
  Dense 512→256→256, a head to 2H (the source interleaves (mu, logvar) rows; the importer
  reorders them); the decoder mirrors it.
- ``pythae_mlp``: pythae's default ``Encoder_VAE_MLP`` / ``Decoder_AE_MLP`` (one hidden layer
  of 512).
- ``pythae_conv_mnist``, ``pythae_conv_celeba``: ``pythae.models.nn.benchmarks`` conv nets
  (conv 4×4/2 128→256→512→1024 with batch norm; transposed-conv decoders).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vaetool.config import ModelConfig
from vaetool.models.conv import split_head


class Encoder(nn.Module):
    """``features`` (conv or dense, ending flat), optional ``fc``, then ``head`` → [mu; logvar]."""

    def __init__(self, features: nn.Module, fc: nn.Module, width: int, latents: int) -> None:
        super().__init__()
        self.features, self.fc = features, fc
        self.latents = latents
        self.head = nn.Linear(width, 2 * latents)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return split_head(self.head(self.fc(self.features(x))), self.latents)


class Decoder(nn.Module):
    """``input`` (z → first hidden), ``fc`` (more dense layers), reshape to ``grid``, ``deconv``;
    the output reshaped to the image, through a sigmoid when ``means`` (a Gaussian's params)."""

    def __init__(
        self,
        input_layer: nn.Linear,
        fc: nn.Module,
        grid: tuple[int, ...],
        deconv: nn.Module,
        image_shape: tuple[int, int, int],
        means: bool,
    ) -> None:
        super().__init__()
        self.input, self.fc, self.deconv = input_layer, fc, deconv
        self.grid, self.image_shape, self.means = grid, image_shape, means

    def forward(self, z: Tensor) -> Tensor:
        out = self.deconv(self.fc(self.input(z)).view(-1, *self.grid))
        out = out.reshape(-1, *self.image_shape)
        return torch.sigmoid(out) if self.means else out


def _means(config: ModelConfig) -> bool:
    return config.likelihood != "bernoulli"


def _burgess_size(config: ModelConfig) -> int:
    _, h, w = config.image_shape
    if (h, w) not in ((32, 32), (64, 64)):
        raise ValueError(f"the Burgess nets take 32×32 or 64×64 images, not {h}×{w}")
    return h


def burgess_encoder(config: ModelConfig) -> Encoder:
    layers: list[nn.Module] = []
    channels = config.image_shape[0]
    for _ in range(4 if _burgess_size(config) == 64 else 3):
        layers += [nn.Conv2d(channels, 32, 4, stride=2, padding=1), nn.ReLU()]
        channels = 32
    fc = nn.Sequential(nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU())
    return Encoder(nn.Sequential(*layers, nn.Flatten()), fc, 256, config.latents)


def burgess_decoder(config: ModelConfig) -> Decoder:
    layers: list[nn.Module] = []
    if _burgess_size(config) == 64:
        layers += [nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1), nn.ReLU()]
    for _ in range(2):
        layers += [nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1), nn.ReLU()]
    layers.append(nn.ConvTranspose2d(32, config.image_shape[0], 4, stride=2, padding=1))
    fc = nn.Sequential(nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU())
    return Decoder(nn.Linear(config.latents, 256), fc, (32, 4, 4), nn.Sequential(*layers),
                   config.image_shape, _means(config))  # fmt: skip


PYTHAE_MLP_WIDTH = 512


def pythae_mlp_encoder(config: ModelConfig) -> Encoder:
    d = math.prod(config.image_shape)
    features = nn.Sequential(nn.Flatten(), nn.Linear(d, PYTHAE_MLP_WIDTH), nn.ReLU())
    return Encoder(features, nn.Identity(), PYTHAE_MLP_WIDTH, config.latents)


def pythae_mlp_decoder(config: ModelConfig) -> Decoder:
    d = math.prod(config.image_shape)
    fc = nn.Sequential(nn.ReLU(), nn.Linear(PYTHAE_MLP_WIDTH, d))
    return Decoder(nn.Linear(config.latents, PYTHAE_MLP_WIDTH), fc, (d,), nn.Identity(),
                   config.image_shape, _means(config))  # fmt: skip


PYTHAE_CONV_SHAPES = {"pythae_conv_mnist": (1, 28, 28), "pythae_conv_celeba": (3, 64, 64)}


def _check_pythae_shape(name: str, config: ModelConfig) -> None:
    if tuple(config.image_shape) != PYTHAE_CONV_SHAPES[name]:
        raise ValueError(f"{name} takes {PYTHAE_CONV_SHAPES[name]} images, not "
                         f"{tuple(config.image_shape)}")  # fmt: skip


def pythae_conv_encoder(name: str, config: ModelConfig) -> Encoder:
    """Conv 4×4/2 with batch norm and ReLU, 128→256→512→1024, flatten, head."""
    _check_pythae_shape(name, config)
    layers: list[nn.Module] = []
    channels = config.image_shape[0]
    for out in (128, 256, 512, 1024):
        layers += [nn.Conv2d(channels, out, 4, 2, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
        channels = out
    width = 1024 if name == "pythae_conv_mnist" else 1024 * 4 * 4
    return Encoder(nn.Sequential(*layers, nn.Flatten()), nn.Identity(), width, config.latents)


def pythae_conv_decoder(name: str, config: ModelConfig) -> Decoder:
    """Linear to a 1024-channel grid (no activation), transposed convs with batch norm."""
    _check_pythae_shape(name, config)
    c = config.image_shape[0]

    def block(c_in: int, c_out: int, k: int, p: int, op: int) -> list[nn.Module]:
        return [nn.ConvTranspose2d(c_in, c_out, k, 2, padding=p, output_padding=op),
                nn.BatchNorm2d(c_out), nn.ReLU()]  # fmt: skip

    if name == "pythae_conv_mnist":
        grid = (1024, 4, 4)
        layers = [*block(1024, 512, 3, 1, 0), *block(512, 256, 3, 1, 1),
                  nn.ConvTranspose2d(256, c, 3, 2, padding=1, output_padding=1)]  # fmt: skip
    else:
        grid = (1024, 8, 8)
        layers = [*block(1024, 512, 5, 2, 0), *block(512, 256, 5, 1, 0), *block(256, 128, 5, 2, 1)]
        layers.append(nn.ConvTranspose2d(128, c, 5, 1, padding=1))
    return Decoder(nn.Linear(config.latents, math.prod(grid)), nn.Identity(), grid,
                   nn.Sequential(*layers), config.image_shape, _means(config))  # fmt: skip


def no_trunk(config: ModelConfig) -> tuple[nn.Module, int]:
    """Foreign networks have no split-encoder form (paper 003's split is vaetool's)."""
    raise ValueError(f"‹encoder› split is not available for the {config.architecture} networks")
