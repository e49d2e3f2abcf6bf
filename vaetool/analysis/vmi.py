"""Paper 001's variational lower bound on information (VMI; MATH.md §4, §12).

Barber–Agakov: for any joint p(z, x) and any auxiliary Q(z|x),

    I(z_S; x) ≥ H(z_S) + E log Q(z_S | x),   H(z_S) = (|S|/2) log 2πe under the N(0, I) prior
    I(c; x)   ≥ log K + E log Q(c | x),      c ~ U_K

with z ~ p(z), c ~ U_K and x ~ p_θ(x|z, c) SAMPLED from the decoder's likelihood (never its mean).
Q is the VAE's encoder architecture (:func:`build_q`): a diagonal-Gaussian head over all H
factors and K logits, so one network gives every per-factor, subset and joint bound at once (a
factorised Q bounds each marginal and, through the sum, the joint). :func:`fit_q` trains it with
Adam on fresh pairs; :func:`evaluate_bounds` averages over fresh pairs with a standard error.

The bound is of the GENERATIVE joint's I_p; q* (§1) bounds the encoder joint's I_q from above.
They bracket one number when q(z|x)p_data(x) = p(z)p_θ(x|z); a crossing signals that mismatch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaetool.config import ModelConfig
from vaetool.errors import ConfigError
from vaetool.models import ARCHITECTURES, ENCODERS, VAE
from vaetool.progress import Progress

LOG_2PI = math.log(2.0 * math.pi)
GAUSSIAN_ENTROPY = 0.5 * math.log(2.0 * math.pi * math.e)  # H(z_h) under N(0, 1): 1.4189 nats
REDUCE_DTYPE = torch.float64


def gaussian_entropy(d: int) -> float:
    """H(z_S) = (d/2) log 2πe nats for d standard-normal coordinates (MATH.md §12)."""
    return d * GAUSSIAN_ENTROPY


def gaussian_log_q(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log Q(z_h | x) = log N(z_h; mu_h, exp logvar_h) per factor: (B, H) nats."""
    return -0.5 * ((z - mu).square() * (-logvar).exp() + logvar + LOG_2PI)


def categorical_log_q(y: Tensor, logits: Tensor) -> Tensor:
    """Σ_k y_k log Q_k(x) per row, (B,) nats: log Q(c|x) for a one-hot y, the soft cross-entropy
    for a relaxed y (the regulariser's categorical part; MATH.md §12, proposal)."""
    return (y * F.log_softmax(logits, dim=-1)).sum(-1)


def build_q(config: ModelConfig) -> nn.Module:
    """Q(z, c | x): the papers' encoder for the model's architecture and sizes (MATH.md §12's
    proposal): x -> (mu, logvar) (B, H) and K code logits, freshly initialised."""
    architecture = ARCHITECTURES.get(config.architecture)
    return ENCODERS.get("paper")(architecture, config)


@torch.no_grad()
def generative_pairs(model: VAE, n: int) -> tuple[Tensor, Tensor, Tensor]:
    """(z (n, H), y (n, K) one-hot, x (n, C, H, W)): z ~ N(0, I), c ~ U_K, x ~ p_θ(x|z, c)
    sampled from the likelihood (Bernoulli draws, or the mean plus noise). Torch's generator."""
    reference = next(model.parameters())
    h, k = model.config.latents, model.categories
    z = torch.randn(n, h, device=reference.device, dtype=reference.dtype)
    c = torch.randint(k or 1, (n,), device=reference.device)
    y = F.one_hot(c, k).to(z.dtype) if k else z.new_zeros(n, 0)
    x = model.likelihood.sample(model.decode(torch.cat([z, y], dim=1)))
    return z, y, x


def pair_log_q(q: nn.Module, z: Tensor, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """Q's log densities of a batch of pairs: per factor (B, H) and of the code (B,) (zeros
    when there is no code)."""
    mu, logvar, logits = q(x)
    code = categorical_log_q(y, logits) if y.shape[1] else z.new_zeros(z.shape[0])
    return gaussian_log_q(z, mu, logvar), code


@dataclass(frozen=True)
class VMIOptions:
    """Fitting and evaluating Q: Adam at ``lr`` for ``steps`` steps of ``batch_size`` fresh
    pairs, then the bound on ``eval_samples`` fresh pairs; everything seeded by ``seed``."""

    steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-3
    eval_samples: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"‹vmi_steps› {self.steps}: expected at least 1")
        if self.batch_size < 2:
            raise ConfigError(f"‹vmi_batch› {self.batch_size}: expected at least 2")
        if self.eval_samples < 2:
            raise ConfigError(f"‹vmi_samples› {self.eval_samples}: expected at least 2")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"‹vmi_lr› {self.lr}: expected a finite positive rate")


PLATEAU_WINDOW = 200  # steps per window of the plateau check


@dataclass(frozen=True, eq=False)
class QFit:
    """A fitted Q and its training curve: ``curve`` (steps,) float64, the batch's bound over all
    factors and the code, nats; ``last_gain`` the last window's mean minus the one before (a
    plateaued fit gains ~0)."""

    q: nn.Module
    curve: Tensor

    @property
    def last_gain(self) -> float:
        w = min(PLATEAU_WINDOW, len(self.curve) // 2)
        if w == 0:
            return float("nan")
        return float(self.curve[-w:].mean() - self.curve[-2 * w : -w].mean())


def fit_q(
    model: VAE,
    options: VMIOptions,
    q: nn.Module | None = None,
    on_progress: Progress | None = None,
) -> QFit:
    """Train Q (a fresh :func:`build_q` unless given) to maximise E log Q(z, c | x) on fresh
    generative pairs each step (MATH.md §12). The VAE is frozen; seeded by ``options.seed``."""
    reference = next(model.parameters())
    model.eval()
    with torch.random.fork_rng(devices=[reference.device] if reference.is_cuda else []):
        torch.manual_seed(options.seed)
        if q is None:
            q = build_q(model.config)
        q = q.to(reference.device, reference.dtype).train()
        optimizer = torch.optim.Adam(q.parameters(), lr=options.lr)
        curve = torch.empty(options.steps, dtype=REDUCE_DTYPE)
        entropy = _total_entropy(model)
        for step in range(options.steps):
            z, y, x = generative_pairs(model, options.batch_size)
            log_qz, log_qc = pair_log_q(q, z, y, x)
            objective = (log_qz.sum(1) + log_qc).mean()
            optimizer.zero_grad(set_to_none=True)
            (-objective).backward()
            optimizer.step()
            curve[step] = objective.detach().to(REDUCE_DTYPE).cpu() + entropy
            if on_progress is not None:
                on_progress(step + 1, options.steps)
    return QFit(q.eval(), curve)


def _total_entropy(model: VAE) -> float:
    k = model.categories
    return gaussian_entropy(model.config.latents) + (math.log(k) if k else 0.0)


@dataclass(frozen=True, eq=False)
class VMIEstimate:
    """Lower bounds from ``n`` fresh pairs, nats, float64 on the CPU.

    ``samples`` (n, H) holds each pair's H(z_h) + log Q(z_h | x), so any subset's bound is the
    mean of its row sums (:meth:`subset`); ``code_samples`` (n,) log K + log Q(c | x), or None.
    """

    samples: Tensor
    code_samples: Tensor | None
    categories: int = 0

    @property
    def n(self) -> int:
        return int(self.samples.shape[0])

    @property
    def mi(self) -> Tensor:
        """(H,) per-factor bounds I_h^VMI."""
        return self.samples.mean(0)

    @property
    def mi_stderr(self) -> Tensor:
        """(H,) Monte Carlo standard errors of :attr:`mi`."""
        return self.samples.std(0) / math.sqrt(self.n)

    def subset(self, factors: Sequence[int]) -> tuple[float, float]:
        """(bound, standard error) of I(z_S; x) for S = ``factors`` (a factorised Q)."""
        index = list(factors)
        if not index or len(set(index)) != len(index):
            raise ConfigError(f"‹vmi_subset› {index}: expected distinct factor indices")
        h = self.samples.shape[1]
        if not all(0 <= i < h for i in index):
            raise ConfigError(f"‹vmi_subset› {index}: expected factor indices from 0 to {h - 1}")
        total = self.samples[:, index].sum(1)
        return float(total.mean()), float(total.std() / math.sqrt(self.n))

    @property
    def joint(self) -> tuple[float, float]:
        """(bound, standard error) of I(z; x) over all H Gaussian factors."""
        return self.subset(range(self.samples.shape[1]))

    @property
    def code(self) -> tuple[float, float] | None:
        """(bound, standard error) of I(c; x) (≤ log K), or None without a code."""
        if self.code_samples is None:
            return None
        return float(self.code_samples.mean()), float(self.code_samples.std() / math.sqrt(self.n))


@torch.no_grad()
def evaluate_bounds(model: VAE, q: nn.Module, options: VMIOptions) -> VMIEstimate:
    """The bounds on ``options.eval_samples`` fresh pairs (seed ``options.seed + 1``, so they
    are not the training pairs), in batches; per-pair values kept for standard errors."""
    reference = next(model.parameters())
    model.eval()
    q.eval()
    per_factor, code = [], []
    with torch.random.fork_rng(devices=[reference.device] if reference.is_cuda else []):
        torch.manual_seed(options.seed + 1)
        left = options.eval_samples
        while left > 0:
            n = min(left, max(options.batch_size, 1024))
            z, y, x = generative_pairs(model, n)
            log_qz, log_qc = pair_log_q(q, z, y, x)
            per_factor.append(log_qz.to(REDUCE_DTYPE).cpu() + GAUSSIAN_ENTROPY)
            code.append(log_qc.to(REDUCE_DTYPE).cpu())
            left -= n
    k = model.categories
    code_samples = torch.cat(code) + math.log(k) if k else None
    return VMIEstimate(torch.cat(per_factor), code_samples, k)
