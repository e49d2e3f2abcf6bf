"""The VAE: q(z|x) from a latent family, an optional categorical code c, prior N(0, I) × U_K,
decoder p(x|z, c). The decoder's input is [z, y] with y the code's K numbers (none when K = 0)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vaetool.config import ModelConfig
from vaetool.likelihoods import build_likelihood
from vaetool.models.categorical import CategoricalCode, one_hot_mode
from vaetool.models.latents import build_latent


@dataclass(frozen=True)
class VAEOutput:
    mu: Tensor  # (B, H) posterior means
    logvar: Tensor  # (B, H) posterior log-variances, as the encoder gives them
    z: Tensor  # (B, H) one reparameterised sample
    params: Tensor  # (B, C, H, W) decoder output (logits or means)
    logits: Tensor  # (B, K) the categorical code's logits (K = 0: no code)
    y: Tensor  # (B, K) the code the decoder saw: relaxed in training, one-hot in eval


class VAE(nn.Module):
    """Encoder + latent family (+ categorical code) + decoder + likelihood, from a
    :class:`ModelConfig`.

    The encoder gives (mu, logvar, code logits); the latent family (vaetool.models.latents)
    samples z and scores q(z|x); the code (vaetool.models.categorical) relaxes c; the likelihood
    (a module: it may hold parameters) scores x given the decoder.
    """

    def __init__(self, config: ModelConfig, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.decoder = decoder
        self.latent = build_latent(config)
        self.code = CategoricalCode(config) if config.categories else None
        self.likelihood = build_likelihood(config)

    @property
    def categories(self) -> int:
        """K, the code's classes (0: no code)."""
        return self.config.categories

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, C, H, W) in [0, 1] -> (mu, logvar) of the Gaussian factors, each (B, H)."""
        mu, logvar, _ = self.encoder(x)
        return mu, logvar

    def encode_all(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x -> (mu, logvar) (B, H) each and the code's logits (B, K)."""
        return self.encoder(x)

    def mode(self, x: Tensor) -> Tensor:
        """The decoder input at the posterior's mode, (B, H + K): [mu, one-hot(argmax π)] — what
        reconstructions, pruning and traversals decode."""
        mu, _, logits = self.encoder(x)
        return mu if self.code is None else torch.cat([mu, one_hot_mode(logits)], dim=1)

    def prior_fill(self, like: Tensor) -> Tensor:
        """The decoder input a pruned part takes, (H + K,): 0 for z_h (the prior mean, paper
        000's pruning), 1/K for the code's numbers (the uniform prior's mean)."""
        zeros = like.new_zeros(self.config.latents)
        return zeros if self.code is None else torch.cat([zeros, self.code.prior_mean(like)])

    def decode(self, z: Tensor) -> Tensor:
        """Decoder input (B, H + K) -> decoder params (B, C, H, W)."""
        return self.decoder(z)

    def decode_mean(self, z: Tensor) -> Tensor:
        """Decoder input (B, H + K) -> the likelihood's mean image (B, C, H, W)."""
        return self.likelihood.mean(self.decoder(z))

    def forward(self, x: Tensor) -> VAEOutput:
        mu, logvar, logits = self.encoder(x)
        z = self.latent.sample(mu, logvar)
        if self.code is None:
            return VAEOutput(mu, logvar, z, self.decode(z), logits, logits)
        y = self.code.sample(logits) if self.training else one_hot_mode(logits)
        return VAEOutput(mu, logvar, z, self.decode(torch.cat([z, y], dim=1)), logits, y)
