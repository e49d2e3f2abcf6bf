"""The Gaussian-encoder VAE: q(z|x) = N(mu, diag(exp(logvar))), prior N(0, I), decoder p(x|z)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vaetool.config import ModelConfig
from vaetool.likelihoods import LIKELIHOODS
from vaetool.models.latents import build_latent


@dataclass(frozen=True)
class VAEOutput:
    mu: torch.Tensor  # (B, H) posterior means
    logvar: torch.Tensor  # (B, H) posterior log-variances, as the encoder gives them
    z: torch.Tensor  # (B, H) one reparameterised sample
    params: torch.Tensor  # (B, C, H, W) decoder output (logits or means)


class VAE(nn.Module):
    """Encoder + latent family + decoder + likelihood, built from a :class:`ModelConfig`.

    The encoder gives (mu, logvar); the latent family (vaetool.models.latents) samples z and
    scores q(z|x); the likelihood (a module: it may hold parameters) scores x given the decoder.
    """

    def __init__(self, config: ModelConfig, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.decoder = decoder
        self.latent = build_latent(config)
        self.likelihood = LIKELIHOODS.get(config.likelihood)(config)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) in [0, 1] -> (mu, logvar), each (B, H)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, H) -> decoder params (B, C, H, W)."""
        return self.decoder(z)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, H) -> the likelihood's mean image (B, C, H, W)."""
        return self.likelihood.mean(self.decoder(z))

    def forward(self, x: torch.Tensor) -> VAEOutput:
        mu, logvar = self.encode(x)
        z = self.latent.sample(mu, logvar)
        return VAEOutput(mu, logvar, z, self.decode(z))
