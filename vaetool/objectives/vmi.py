"""The VMI regulariser (paper 001, eqs. 6–8, 12; MATH.md §12): maximise ELBO + λ·MI(θ, φ, Q),

    MI(θ, φ, Q) = H(ẑ) + E log Q(ẑ | x̃),   loss = mean_i [rec_i + KL_i] − λ·MI

ẑ the chosen part of z ~ q_φ(z|x) on the data batch (Gaussian factors S, H(ẑ) = (|S|/2) log 2πe)
or the relaxed categorical code y (H = log K, log Q(y | x̃) = Σ_k y_k log Q_k(x̃)); x̃ decoded from
the whole latent and differentiable in θ (the likelihood's ``decoder_output``: G(z) + σn for
additive noise, the mean image for Bernoulli pixels, where MI is a training signal, not a bound).

With H held at log K the term is exploitable: an encoder that sends every image to one class
makes Q's task trivial (E log Q → 0) and MI → log K while the code carries nothing (found on
mnist5k at λ = 10; docs/reproduction.md). ``vmi_entropy = "batch"`` (beyond the paper) uses the
entropy of the batch's mean code H(ȳ) instead, 0 for a constant code.

Per batch (eq. 7): (a) one Adam step on Q maximising E log Q(ẑ | x̃); (b) one step on the VAE
with Q frozen on a fresh forward pass, the only pass that fits a learned decoder noise. Q
(:func:`vaetool.analysis.vmi.build_q`) is saved with the model as ``objective.q.*``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from vaetool.analysis.vmi import build_q, categorical_log_q, gaussian_entropy, gaussian_log_q
from vaetool.config import ModelConfig, check_finite
from vaetool.device import autocast
from vaetool.errors import ConfigError
from vaetool.models import VAE
from vaetool.objectives.annealed import capacity_at
from vaetool.objectives.base import OBJECTIVES, Objective, TrainContext, apply_step
from vaetool.options import comma_ints, option

CODE = "c"  # --vmi-factors c: the categorical code
ENTROPIES = ("prior", "batch")


def batch_code_entropy(y: Tensor) -> Tensor:
    """H(ȳ) = −Σ_k ȳ_k log ȳ_k of the batch's mean code ȳ = mean_i y_i, 0-dim nats: the
    entropy of the code the batch actually uses (≤ log K; 0 for a constant code)."""
    mean = y.mean(0).clamp_min(1e-12)
    return -(mean * mean.log()).sum()


@dataclass(frozen=True)
class VMIObjectiveOptions:
    """λ (no value in paper 001; 1 by default, Fig. 3 sweeps it), the regularised part
    (``"auto"``: the code when the model has one, else factors 0,1 as paper 001 §4.1), Q's
    Adam rate."""

    vmi_lambda: float = option(1.0, "λ, the weight of the VMI term (paper 001 eq. 12)")
    vmi_factors: str = option("auto", "the regularised part: c (the code) or factors 0,1")
    vmi_q_lr: float = option(1e-3, "Adam rate of Q")
    vmi_entropy: str = option("prior", "H(ẑ): prior (log K held constant, the paper) or batch")
    # beyond paper 001: the code's KL held near a growing capacity (Dupont 2018, jointvae):
    # γ_c |KL_c − C_c(t)|, C_c(t) = min(C, C·t/T); 0 = off (the paper's plain KL_c)
    code_capacity: float = option(0.0, "C of the code's capacity, nats (0: off; beyond the paper)")
    code_gamma: float = option(30.0, "γ_c of the code capacity (jointvae's MNIST 30)")
    code_capacity_steps: int = option(25_000, "T_c, steps for the code capacity to reach C")

    def __post_init__(self) -> None:
        if self.vmi_entropy not in ENTROPIES:
            raise ConfigError(f"‹vmi_entropy› {self.vmi_entropy!r}: expected prior or batch")
        check_finite("‹vmi_lambda›", self.vmi_lambda)
        check_finite("‹vmi_q_lr›", self.vmi_q_lr, positive=True)
        check_finite("‹code_gamma›", self.code_gamma, positive=True)
        if not (math.isfinite(self.code_capacity) and self.code_capacity >= 0):
            raise ConfigError(f"‹code_capacity› {self.code_capacity}: expected 0 (off) or "
                              "a capacity in nats")  # fmt: skip
        if self.code_capacity_steps < 1:
            raise ConfigError(f"‹code_capacity_steps› {self.code_capacity_steps}: expected "
                              "at least 1")  # fmt: skip
        if not isinstance(self.vmi_factors, str):
            raise ConfigError(f"‹vmi_factors› {self.vmi_factors!r}: expected c, auto or 0,1")


def regularised_part(text: str, config: ModelConfig) -> tuple[int, ...] | None:
    """The factors --vmi-factors names (a tuple), or None for the categorical code."""
    text = text.strip()
    if text == "auto":
        return None if config.categories else tuple(range(min(2, config.latents)))
    if text == CODE:
        if not config.categories:
            raise ConfigError("‹vmi_factors› c: the model has no categorical code "
                              "(add ‹categories› K)")  # fmt: skip
        return None
    expected = "c, auto or distinct indices, e.g. 0,1"
    factors = comma_ints("vmi_factors", text, expected)
    if len(set(factors)) != len(factors):
        raise ConfigError(f"‹vmi_factors› {text!r}: expected {expected}")
    if not all(0 <= h < config.latents for h in factors):
        raise ConfigError(f"‹vmi_factors› {text!r}: expected indices from 0 to "
                          f"{config.latents - 1} (H = {config.latents})")  # fmt: skip
    return factors


@OBJECTIVES.register("vmi")
class VMIRegularised(Objective):
    """Paper 001 eq. 12: the ELBO plus λ times the VMI lower bound on I(ẑ; x̃) (MATH.md §12)."""

    Options = VMIObjectiveOptions
    extra_terms = ("mi_vmi", "q_loss")
    stackable = False  # two forward passes per step (eq. 7), not one vmapped forward

    @classmethod
    def check_model(cls, options: dict[str, Any], config: ModelConfig) -> None:
        part = regularised_part(str(options.get("vmi_factors", "auto")), config)
        if options.get("vmi_entropy", "prior") == "batch" and part is not None:
            raise ConfigError("‹vmi_entropy› batch applies to the categorical code "
                              "(‹vmi_factors› c), not to Gaussian factors")  # fmt: skip
        capacity = float(options.get("code_capacity", 0.0))
        if capacity and not config.categories:
            raise ConfigError("‹code_capacity›: the model has no categorical code "
                              "(add ‹categories› K)")  # fmt: skip
        if capacity > math.log(config.categories or 1) + 1e-9:
            raise ConfigError(f"‹code_capacity› {capacity}: the code's KL cannot exceed "
                              f"log K = {math.log(config.categories):.4f} nats")  # fmt: skip

    def __init__(self, model: VAE, options: VMIObjectiveOptions, context: TrainContext) -> None:
        super().__init__(model, options, context)
        self.factors = regularised_part(options.vmi_factors, model.config)
        k = model.config.categories
        self.entropy = math.log(k) if self.factors is None else gaussian_entropy(len(self.factors))
        self.q = build_q(model.config).to(context.device)
        self.q_optimizer = context.adam(self.q.parameters(), options.vmi_q_lr)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"vae": self.vae_optimizer, "q": self.q_optimizer}

    def log_q(self, out: object) -> Tensor:
        """log Q(ẑ | x̃) per row (B,): x̃ from the decoder (differentiable in θ), ẑ the chosen
        part of the posterior sample (MATH.md §12)."""
        x_tilde = self.vae.likelihood.decoder_output(out.params)  # type: ignore[attr-defined]
        mu, logvar, logits = self.q(x_tilde)
        if self.factors is None:
            return categorical_log_q(out.y, logits)  # type: ignore[attr-defined]
        index = list(self.factors)
        z = out.z[:, index]  # type: ignore[attr-defined]
        return gaussian_log_q(z, mu[:, index], logvar[:, index]).sum(1)

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        out, recon, kl = self.forward_terms(x)
        log_q = self.log_q(out).mean()
        entropy = self.entropy
        if self.options.vmi_entropy == "batch":  # the code's actual spread, not log K
            entropy = batch_code_entropy(out.y)
        mi = entropy + log_q
        recon, kl = recon.mean(), kl.mean()
        return {
            "loss": recon + self.kl_penalty(kl) - self.options.vmi_lambda * mi,
            "recon": recon,
            "kl": kl,
            "elbo": -(recon + kl),
            "mi_vmi": mi,
            "q_loss": -log_q,
        }

    def kl_penalty(self, kl: Tensor) -> Tensor:
        """KL as the ELBO has it; with a code capacity, KL_z + γ_c |KL_c − C_c(t)| (Dupont
        2018's discrete capacity, beyond paper 001; MATH.md §10's jointvae reference)."""
        options = self.options
        if not options.code_capacity:
            return kl
        kl_code = self._kl_code
        c = capacity_at(self.step, options.code_capacity, options.code_capacity_steps)
        return kl - kl_code + options.code_gamma * (kl_code - c).abs()

    def step_losses(self, terms: dict[str, Tensor]) -> dict[str, Tensor]:
        """Q descends −E log Q (its own parameters only), the VAE its loss."""
        return {"vae": terms["loss"], "q": terms["q_loss"]}

    def q_pass_loss(self, x: Tensor) -> Tensor:
        """−E log Q(ẑ | x̃) for step (a): the VAE's forward without its gradient and without
        the likelihood's noise fit (σ̂², EM), which belongs to the VAE pass (b) alone — fitted
        in both, ‹noise_warmup› lasted half its steps and mog2 ran two EM iterations a batch."""
        code = self.vae.code
        if code is not None:
            code.set_step(self.step)
        with torch.no_grad():
            out = self.vae(x)
        return -self.log_q(out).mean()

    def train_step(self, x: Tensor) -> dict[str, Tensor]:
        """(a) a step on Q alone, then (b) a step on the VAE with Q frozen on a fresh forward
        pass (paper 001 eq. 7), which fits the decoder noise; the terms of (b), detached."""
        with autocast(self.context.device, self.context.precision):
            q_loss = self.q_pass_loss(x)
        apply_step({"q": self.q_optimizer}, {"q": q_loss})
        with autocast(self.context.device, self.context.precision):
            terms = self.all_terms(x)
        apply_step({"vae": self.vae_optimizer}, {"vae": terms["loss"]})
        self.step += 1
        return {k: v.detach() for k, v in terms.items()}
