"""What every training objective is: a module that owns its optimisers and takes its own step.

An objective (MATH.md §9) is built from the VAE, its resolved options (a frozen dataclass with the
reference implementations' defaults) and a :class:`TrainContext`. It may own auxiliary modules
(FactorVAE's discriminator), which are saved with it under ``objective.*``, and optimisers, whose
states a resumable run saves. The training loop only calls :meth:`Objective.train_step` and
:meth:`Objective.eval_terms` and logs the named terms they return; nothing else about the
objective is known to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from vaetool import distributed
from vaetool.device import adam_options, autocast
from vaetool.models import VAE
from vaetool.registry import Registry

OBJECTIVES: Registry[type[Objective]] = Registry("objective", "‹objective›")

# Terms every objective reports (nats per image, batch means): what it minimises, E −log p(x|z),
# E KL(q(z|x) ‖ p(z)) and the β = 1 ELBO −(recon + kl).
COMMON_TERMS = ("loss", "recon", "kl", "elbo")


@dataclass(frozen=True)
class TrainContext:
    """What an objective may need to know about the run: N training images (β-TCVAE's dataset
    size), optimiser steps per epoch, Adam's learning rate for the VAE, the device."""

    n_train: int
    steps_per_epoch: int
    lr: float
    device: torch.device
    precision: str = "fp32"  # autocast of the forward (vaetool.device.PRECISIONS)

    def adam(self, params: Any, lr: float, **kwargs: Any) -> torch.optim.Adam:
        """Adam over ``params`` in the device's implementation (fused, capturable on CUDA)."""
        return torch.optim.Adam(params, lr=lr, **kwargs, **adam_options(self.device))


class Objective(nn.Module):
    """Base class. Subclasses set ``Options`` (a frozen dataclass), ``extra_terms`` and
    implement :meth:`losses`; objectives with several optimisers override :meth:`train_step`."""

    Options: ClassVar[type]
    extra_terms: ClassVar[tuple[str, ...]] = ()
    # whether the objective's loss covers a categorical code's KL (paper 001 §4.2): one that
    # decomposes the Gaussian KL alone (β-TCVAE) does not
    supports_code: ClassVar[bool] = True
    # whether K models of it can train as one stack (training.ensemble: one forward per step)
    stackable: ClassVar[bool] = True

    def __init__(self, model: VAE, options: Any, context: TrainContext) -> None:
        super().__init__()
        self.model = [model]  # a list: the VAE is not a submodule (saved as model.*, not here)
        self.options = options
        self.context = context
        self.register_buffer("step", torch.zeros((), dtype=torch.long, device=context.device))
        self.vae_optimizer = context.adam(model.parameters(), context.lr)

    @classmethod
    def kl_weight(cls, options: dict[str, Any]) -> float | None:
        """β when the objective is recon + β·KL (paper 002 §7.2.1's normalised variance β·σ²
        needs it), else None."""
        return None

    @classmethod
    def check_model(cls, options: dict[str, Any], config: Any) -> None:
        """Refuse, before anything is built, options that do not fit the model ``config`` (a
        ModelConfig): e.g. a regularised factor the model does not have."""

    @property
    def vae(self) -> VAE:
        return self.model[0]

    def terms(self) -> tuple[str, ...]:
        """The names :meth:`train_step` and :meth:`eval_terms` return, in display order: the
        objective's, then the likelihood's learned noise values (history.csv columns)."""
        code = ("kl_code",) if self.vae.code is not None else ()
        return COMMON_TERMS + self.extra_terms + code + self.vae.likelihood.noise_names

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimiser by name (saved and restored by resumable runs)."""
        return {"vae": self.vae_optimizer}

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        """All :meth:`terms` for the batch ``x`` as 0-dim tensors, ``loss`` differentiable."""
        raise NotImplementedError

    def all_terms(self, x: Tensor) -> dict[str, Tensor]:
        """:meth:`losses` and the likelihood's current noise values (not differentiated)."""
        terms = self.losses(x)
        terms.update({k: v.detach() for k, v in self.vae.likelihood.noise().items()})
        if self.vae.code is not None:
            terms["kl_code"] = self._kl_code.detach()
        return terms

    def step_losses(self, terms: dict[str, Tensor]) -> dict[str, Tensor]:
        """What each optimiser (by :meth:`optimizers` name) descends: its gradient is taken of
        this loss for that optimiser's parameters only."""
        return {"vae": terms["loss"]}

    def train_step(self, x: Tensor) -> dict[str, Tensor]:
        """One step of every optimiser on its loss; the terms, detached (no host sync)."""
        with autocast(self.context.device, self.context.precision):
            terms = self.all_terms(x)
        apply_step(self.optimizers(), self.step_losses(terms))
        self.step += 1
        return {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def eval_terms(self, x: Tensor) -> dict[str, Tensor]:
        """The terms on ``x`` without a step (validation)."""
        with autocast(self.context.device, self.context.precision):
            return self.all_terms(x)

    def forward_terms(self, x: Tensor) -> tuple[Any, Tensor, Tensor]:
        """(VAE output, recon (B,), kl (B,)): the pieces most objectives share (MATH.md §9).

        ``kl`` is the whole KL(q(z, c|x) ‖ p(z)U_K) = KL_z + KL(q(c|x) ‖ U_K) when the model has
        a categorical code (paper 001 eq. 10); the code's part, batch-averaged, is reported as
        the term ``kl_code``. In training, an annealed code temperature is set from the step
        counter, and a likelihood that fits its noise from the batch (σ̂², EM; MATH.md §11)
        does so here, before the recon term is scored and the networks step."""
        code = self.vae.code
        if code is not None and self.training:
            code.set_step(self.step)
        out = self.vae(x)
        likelihood = self.vae.likelihood
        if self.training and likelihood.fits_noise:
            with torch.no_grad():
                likelihood.fit_noise(out.params.detach().float(), x)
        recon = self.vae.likelihood.nll(out.params, x)
        kl = self.vae.latent.kl(out.mu, out.logvar)
        if code is not None:
            kl_code = code.kl(out.logits)
            self._kl_code = kl_code.mean()
            kl = kl + kl_code
        return out, recon, kl


def apply_step(optimizers: dict[str, torch.optim.Optimizer], losses: dict[str, Tensor]) -> None:
    """Each optimiser's gradient of its own loss (for its parameters only: FactorVAE's VAE loss
    does not train the discriminator), then every optimiser's step. The parameters may be
    stacked (K, ...) for K models trained at once: their losses are summed, so each model's
    slice gets its own gradient."""
    pending = list(losses.items())
    for i, (name, loss) in enumerate(pending):
        params = [p for group in optimizers[name].param_groups for p in group["params"]]
        grads = torch.autograd.grad(loss, params, retain_graph=i + 1 < len(pending),
                                    allow_unused=True)  # fmt: skip
        for p, g in zip(params, grads, strict=True):
            p.grad = g
    for optimizer in optimizers.values():  # torchrun: averaged over the ranks (DDP's rule)
        distributed.average_gradients([p for g in optimizer.param_groups for p in g["params"]])
    for optimizer in optimizers.values():
        optimizer.step()
