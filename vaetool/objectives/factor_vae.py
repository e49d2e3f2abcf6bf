"""FactorVAE (Kim & Mnih 2018; MATH.md §9): the ELBO plus γ times a total-correlation estimate by
the density-ratio trick, from a discriminator telling codes z ~ q(z) from dimension-wise
permuted codes z̃ ~ Π_h q(z_h).

    T̂C = mean_i [l_0(z_i) − l_1(z_i)];   VAE loss = mean_i [rec_i + KL_i] + γ T̂C
    D loss = −½ mean_i log softmax(l(z_i))_0 − ½ mean_i log softmax(l(z̃_i))_1

As disentanglement_lib's ``FactorVAE.model_fn``: z̃ permutes the same batch and both updates come
from one forward pass (konny's solver and the paper's Algorithm 2 draw z̃ from a second batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaetool.config import check_finite
from vaetool.errors import ConfigError
from vaetool.models import noise
from vaetool.objectives.base import OBJECTIVES, Objective, TrainContext
from vaetool.options import option


@dataclass(frozen=True)
class FactorVAEOptions:
    """γ = 35 (paper 003's runs; dlib sweeps {10, 20, 30, 40, 50, 100}, konny uses 6.4 or 10);
    the discriminator of dlib's ``fc_discriminator`` (6 × [Dense 1000, leaky ReLU 0.2] + Dense 2)
    with its own Adam, lr 1e-4, (β1, β2) = (0.5, 0.9)."""

    gamma: float = option(35.0, "γ, the weight of the discriminator's TC estimate")
    discriminator_lr: float = option(1e-4, "Adam rate of the discriminator")
    discriminator_layers: int = option(6, "hidden layers of the discriminator")
    discriminator_width: int = option(1000, "units per discriminator layer")

    def __post_init__(self) -> None:
        check_finite("‹gamma›", self.gamma)
        check_finite("‹discriminator_lr›", self.discriminator_lr, positive=True)
        if self.discriminator_layers < 1 or self.discriminator_width < 1:
            raise ConfigError("discriminator_layers and discriminator_width: expected >= 1")


def discriminator(latents: int, layers: int, width: int) -> nn.Sequential:
    """R^H -> 2 logits (l_0: from q(z), l_1: from Π_h q(z_h)); dlib ``fc_discriminator``."""
    parts: list[nn.Module] = []
    fan_in = latents
    for _ in range(layers):
        parts += [nn.Linear(fan_in, width), nn.LeakyReLU(0.2)]
        fan_in = width
    return nn.Sequential(*parts, nn.Linear(fan_in, 2))


def permute_dims(z: Tensor) -> Tensor:
    """z̃_ih = z_{π_h(i), h}: an independent random permutation of the rows for each factor,
    batched (one argsort of random keys per column), (M, H)."""
    order = torch.argsort(noise.uniform(z.shape, z), dim=0)
    return z.gather(0, order)


def density_ratio_tc(logits: Tensor) -> Tensor:
    """T̂C = mean_i [l_0(z_i) − l_1(z_i)] (Kim & Mnih 2018, eq. 3), 0-dim."""
    return (logits[:, 0] - logits[:, 1]).mean()


def discriminator_loss(real_logits: Tensor, permuted_logits: Tensor) -> Tensor:
    """−½ mean log softmax(l(z))_0 − ½ mean log softmax(l(z̃))_1 (MATH.md §9), 0-dim."""
    real = F.log_softmax(real_logits, dim=1)[:, 0].mean()
    permuted = F.log_softmax(permuted_logits, dim=1)[:, 1].mean()
    return -0.5 * (real + permuted)


@OBJECTIVES.register("factor_vae")
class FactorVAE(Objective):
    """FactorVAE (Kim & Mnih 2018): ELBO − γ·TC, TC by a discriminator (MATH.md §9)."""

    Options = FactorVAEOptions
    extra_terms = ("tc", "discriminator_loss")

    def __init__(self, model: nn.Module, options: FactorVAEOptions, context: TrainContext) -> None:
        super().__init__(model, options, context)
        self.discriminator = discriminator(
            model.config.latents, options.discriminator_layers, options.discriminator_width
        ).to(context.device)
        self.discriminator_optimizer = context.adam(
            self.discriminator.parameters(), options.discriminator_lr, betas=(0.5, 0.9)
        )

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"vae": self.vae_optimizer, "discriminator": self.discriminator_optimizer}

    def _terms(self, x: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """The VAE's terms (the TC differentiable through D into the encoder) and its codes."""
        out, recon, kl = self.forward_terms(x)
        recon, kl = recon.mean(), kl.mean()
        tc = density_ratio_tc(self.discriminator(out.z))
        terms = {"loss": recon + kl + self.options.gamma * tc, "recon": recon, "kl": kl,
                 "elbo": -(recon + kl), "tc": tc}  # fmt: skip
        return terms, out.z.detach()

    def _discriminator_loss(self, z: Tensor) -> Tensor:
        return discriminator_loss(self.discriminator(z), self.discriminator(permute_dims(z)))

    def step_losses(self, terms: dict[str, Tensor]) -> dict[str, Tensor]:
        """The VAE descends its loss, the discriminator its own (on detached codes)."""
        return {"vae": terms["loss"], "discriminator": terms["discriminator_loss"]}

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        terms, z = self._terms(x)
        return {**terms, "discriminator_loss": self._discriminator_loss(z)}
