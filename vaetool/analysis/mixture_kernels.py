"""The mixture estimator's kernels (MATH.md §3): the N components precomputed once, the
evaluation samples, and each chunk's per-factor and joint log-mixture densities in float64 —
streamed over the components in cache-sized tiles on the CPU, held whole on CUDA
(vaetool.analysis.mixture drives them: chunking, time budget, standard errors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from vaetool.device import REDUCE_DTYPE

# The per-factor sums are shifted by a bound, not by their maximum; they stay normal floats while
# log q(z_h|x_m) − bound > −SHIFT_SAFE_NATS (else rows get their own shift).
SHIFT_SAFE_NATS = 600.0
# Exponents are clamped here before exp: below about −708 exp returns subnormals or 0, and the CPU
# takes a slow path (measured 5-15x slower). The largest term of each sum is >= e^−600, so the
# clamp adds at most N·e^−100 relative to it: far below float64 rounding.
EXP_FLOOR = -700.0
LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class Components:
    """The N mixture components, precomputed once per call: float64 on mu's device.

    Per factor, (N, H): ``scale`` = sqrt(½/sigma²), ``neg_mu_scale`` = −mu·scale and
    ``log_norm`` = −½(logvar + log 2π) − ``peak``, where ``peak`` (H,) = max_k −½(logvar_kh +
    log 2π) bounds every component's log-density. Joint: ``inv_var``, ``mu_inv_var`` (N, H),
    ``quad_mu`` (N,) = Σ_h mu²/sigma², ``log_norm_joint`` (N,) = −½(Σ_h logvar + H log 2π).
    """

    scale: Tensor
    neg_mu_scale: Tensor
    log_norm: Tensor
    peak: Tensor
    inv_var: Tensor
    mu_inv_var: Tensor
    quad_mu: Tensor
    log_norm_joint: Tensor


def components(mu: Tensor, logvar: Tensor) -> Components:
    """:class:`Components` of the posterior mu, logvar (N, H) float64 (one allocation each)."""
    inv_var = logvar.neg().exp_()
    scale = inv_var.mul(0.5).sqrt_()
    log_norm = logvar.add(LOG_2PI).mul_(-0.5)  # −½(logvar + log 2π), (N, H)
    log_norm_joint = log_norm.sum(1)
    peak = log_norm.amax(0)
    mu_inv_var = mu * inv_var
    return Components(
        scale=scale,
        neg_mu_scale=torch.mul(mu, scale).neg_(),
        log_norm=log_norm.sub_(peak),
        peak=peak,
        inv_var=inv_var,
        mu_inv_var=mu_inv_var,
        quad_mu=torch.einsum("nh,nh->n", mu, mu_inv_var),
        log_norm_joint=log_norm_joint,
    )


def draw_samples(
    mu: Tensor, logvar: Tensor, eval_points: int, samples: int, seed: int
) -> tuple[Tensor, Tensor]:
    """Reparameterised z ~ q(z|x_m) at M' points drawn without replacement, S per point.

    The indices and standard-normal noise come from a seeded CPU generator and are then moved to
    mu's device, so every device sees the same draws. Returns z (M'·S, H) and the exact
    log q(z_h|x_m) = −½(ε² + logvar + log 2π), (M'·S, H), both float64; row = point·S + sample.
    """
    generator = torch.Generator(device="cpu").manual_seed(seed)
    index = torch.randperm(mu.shape[0], generator=generator)[:eval_points].to(mu.device)
    noise_shape = (eval_points, samples, mu.shape[1])
    eps = torch.randn(noise_shape, generator=generator, dtype=REDUCE_DTYPE).to(mu.device)
    mu_eval, logvar_eval = mu[index].unsqueeze(1), logvar[index].unsqueeze(1)
    z = mu_eval + (0.5 * logvar_eval).exp() * eps
    log_own = -0.5 * (eps.square() + logvar_eval + LOG_2PI)
    return z.reshape(-1, mu.shape[1]), log_own.reshape(-1, mu.shape[1])


def view(buffer: Tensor, *shape: int) -> Tensor:
    """A contiguous view of the first elements of a preallocated ``buffer`` with ``shape``."""
    return buffer.view(-1)[: math.prod(shape)].view(shape)


def log_mixture_per_factor(
    z: Tensor, comp: Components, tile: Tensor, row_shift: Tensor | None
) -> Tensor:
    """log Σ_k N(z_h; mu_kh, sigma²_kh) for each row and factor: (c, H) float64 from z (c, H).

    The (c, N, H) block ℓ_kh − peak_h = log_norm_kh − ((z_h − mu_kh)·scale_kh)² is streamed over
    the components in tiles of ``tile``'s size (T components), built in place by two addcmul,
    clamped at −700 (EXP_FLOOR), exponentiated in place and summed over k. peak_h bounds every
    ℓ_kh, so no term overflows, and the row's own component keeps each sum >= exp(log q(z_h|x_m)
    − peak_h): a normal float while that exceeds −600 nats. Rows where it may not get
    ``row_shift`` (c, H) <= 0 subtracted too. Equals torch.logsumexp over k to float64 rounding.
    """
    (c, h), n, t = z.shape, comp.scale.shape[0], tile.shape[1]
    total = torch.zeros(c, h, dtype=z.dtype, device=z.device)
    part = torch.empty_like(total)
    z_rows = z.unsqueeze(1)  # (c, 1, H) against (T, H) components
    for k in range(0, n, t):
        block = view(tile, c, min(t, n - k), h)
        torch.addcmul(comp.neg_mu_scale[k : k + t], z_rows, comp.scale[k : k + t], out=block)
        torch.addcmul(comp.log_norm[k : k + t], block, block, value=-1.0, out=block)
        if row_shift is not None:
            block.sub_(row_shift.unsqueeze(1))
        torch.sum(block.clamp_min_(EXP_FLOOR).exp_(), dim=1, out=part)
        total.add_(part)
    total.log_().add_(comp.peak)
    return total if row_shift is None else total.add_(row_shift)


def log_mixture_joint(z: Tensor, comp: Components, quad_buffer: Tensor) -> Tensor:
    """log Σ_k N(z; mu_k, diag sigma²_k) for each row: (c,) float64 from z (c, H).

    Σ_h (z_h − mu_kh)²/sigma²_kh = z² @ (1/sigma²)ᵀ − 2 z @ (mu/sigma²)ᵀ + Σ_h mu²/sigma², two
    GEMMs into the preallocated ``quad_buffer``. Done in float64 because the expansion subtracts
    terms as large as z²/sigma² (1e5 for sigma = 0.01, |z| = 3): float64 leaves ~1e-11 nats of
    cancellation error where float32 would leave ~1e-2. The quadratic form is clamped at 0
    against that rounding; the logsumexp over k runs in place (max, subtract, clamp at −700,
    exp, sum, log).
    """
    quad = view(quad_buffer, z.shape[0], comp.quad_mu.shape[0])
    torch.addmm(comp.quad_mu, z.square(), comp.inv_var.T, out=quad)
    quad.addmm_(z, comp.mu_inv_var.T, alpha=-2.0).clamp_min_(0.0)
    torch.add(comp.log_norm_joint, quad, alpha=-0.5, out=quad)
    top = quad.amax(1, keepdim=True)
    return quad.sub_(top).clamp_min_(EXP_FLOOR).exp_().sum(1).log_().add_(top.squeeze(1))


def chunk_terms(
    z: Tensor, own: Tensor, comp: Components, buffers: tuple[Tensor, Tensor], shifted: bool
) -> Tensor:
    """Per-row terms (c, H + 2) float64 of MATH.md §3 for the rows z, own = log q(z_h|x_m) (c, H).

    Columns: per-factor log q(z_h|x_m) − log (1/N) Σ_k q(z_h|x_k) (H), the joint term
    log q(z|x_m) − log (1/N) Σ_k q(z|x_k), and the TC term Σ_h per-factor − joint; nats.
    """
    tile, quad = buffers
    log_n = math.log(comp.scale.shape[0])
    row_shift = (own - comp.peak).clamp_min_(-SHIFT_SAFE_NATS) if shifted else None
    factor = own - log_mixture_per_factor(z, comp, tile, row_shift) + log_n
    joint = own.sum(1) - log_mixture_joint(z, comp, quad) + log_n
    return torch.cat([factor, joint[:, None], (factor.sum(1) - joint)[:, None]], dim=1)
