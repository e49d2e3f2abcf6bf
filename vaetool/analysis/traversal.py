"""Latent traversals: decode a grid of latent codes around seed images (MATH.md §6).

Rows are seed images encoded to their posterior means mu (S, H); one factor h at a time takes
``steps`` values over [lo, hi] (default [-3, 3], paper 000 Figs. 3, 6, 7) while every other factor
stays at the seed's mu; in relative mode the values are offsets around the seed's own mu_h,
[mu_h + lo, mu_h + hi] (paper 002, Fig. 3); in 2-D mode two factors sweep a steps × steps grid
(paper 001, Fig. 2). Codes are decoded with the likelihood's mean in a few large batches on the
model's device; the whole latent grid is built by broadcasting, never a Python loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from vaetool.device import inference_batch_size
from vaetool.errors import ConfigError
from vaetool.models import VAE

DEFAULT_RANGE = (-3.0, 3.0)  # MATH.md §6: [-3, 3], three prior standard deviations
DEFAULT_STEPS = 10
MAX_STEPS = 100  # a sheet or GIF past this is too wide to look at


@dataclass(frozen=True, eq=False)
class FactorTraversal:
    """One block per factor: ``images`` (F, S, T, C, H, W) float32 in [0, 1] on the CPU.

    ``factors`` (F,) are latent indices in block order; ``values`` (F, S, T) float32 are the
    absolute z_h decoded (with ``relative``, ``mu_h`` of each seed plus ``offsets``);
    ``offsets`` (T,) is the requested grid; ``mi`` (F,) holds I_h in nats when known;
    ``seed_mu`` (S, H) the seeds' posterior means; ``seed_rows`` (S,) their test-split positions.
    """

    images: Tensor
    factors: tuple[int, ...]
    values: Tensor
    offsets: Tensor
    relative: bool
    seed_mu: Tensor
    mi: tuple[float, ...] | None = None
    seed_rows: tuple[int, ...] | None = None


@dataclass(frozen=True, eq=False)
class PairTraversal:
    """A 2-D grid per seed: ``images`` (S, T, T, C, H, W) float32 in [0, 1] on the CPU.

    Rows sweep ``factors[0]`` over ``values[0]`` (S, T), columns ``factors[1]`` over
    ``values[1]`` (S, T) (absolute z values, float32); other fields as :class:`FactorTraversal`.
    """

    images: Tensor
    factors: tuple[int, int]
    values: tuple[Tensor, Tensor]
    offsets: Tensor
    relative: bool
    seed_mu: Tensor
    mi: tuple[float, float] | None = None
    seed_rows: tuple[int, ...] | None = None


@dataclass(frozen=True, eq=False)
class CodeTraversal:
    """A categorical code's K values per seed (paper 001 Figs. 4–5): ``images`` (S, 1 + K, C, H,
    W) float32 in [0, 1] on the CPU; column 0 is the seed image itself, column 1 + k its
    Gaussian part (mu) decoded with the code at class k. ``usage`` (K,): how often each class is
    the argmax on the seeds' split when known; ``mi``: the code's I(x; c) in nats when known."""

    images: Tensor
    categories: int
    seed_rows: tuple[int, ...] | None = None
    mi: float | None = None


def code_latents(codes: Tensor, latents: int) -> Tensor:
    """Decoder inputs of a code traversal: codes (S, H + K) -> (S, K, H + K) with the code part
    of row [s, k] the one-hot e_k and the Gaussian part the seed's."""
    S, width = codes.shape
    k = width - latents
    grid = codes.view(S, 1, width).expand(S, k, width).clone()
    grid[..., latents:] = torch.eye(k, dtype=codes.dtype, device=codes.device)
    return grid


def code_traversal(
    model: VAE,
    images: Tensor,
    *,
    seed_rows: Sequence[int] | None = None,
    mi: float | None = None,
) -> CodeTraversal:
    """Decode every class of the model's categorical code for each seed image (S, C, H, W)."""
    if not model.categories:
        raise ConfigError("‹code›: the model has no categorical code (‹categories› K)")
    device = next(model.parameters()).device
    with torch.no_grad():
        model.eval()
        codes = model.mode(images.to(device))
    decoded = decode_latents(model, code_latents(codes, model.config.latents))
    grid = torch.cat([images.float().cpu().clamp(0, 1)[:, None], decoded], dim=1)
    rows = None if seed_rows is None else tuple(int(r) for r in seed_rows)
    return CodeTraversal(grid, model.categories, rows, mi)


def traversal_values(lo: float = -3.0, hi: float = 3.0, steps: int = DEFAULT_STEPS) -> Tensor:
    """``steps`` evenly spaced values from ``lo`` to ``hi`` inclusive: (steps,) float32."""
    if not 2 <= steps <= MAX_STEPS:
        raise ConfigError(f"‹steps› {steps}: expected 2 to {MAX_STEPS} values per traversal")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ConfigError(f"‹range› {lo:g} {hi:g}: expected finite values, e.g. ‹range› -3 3")
    if not lo < hi:
        raise ConfigError(f"‹range› {lo:g} {hi:g}: expected LO < HI, e.g. ‹range› -3 3")
    return torch.linspace(lo, hi, steps, dtype=torch.float32)


def check_factors(factors: Sequence[int], latents: int, option: str = "‹factor›") -> None:
    """Raise a ConfigError unless every index is in 0..latents-1."""
    for factor in factors:
        if not 0 <= factor < latents:
            raise ConfigError(
                f"{option} {factor}: expected a factor index from 0 to {latents - 1} "
                f"(the model has H = {latents} factors)"
            )


def factor_latents(
    mu_seeds: Tensor, factors: Sequence[int], values: Tensor, relative: bool = False
) -> tuple[Tensor, Tensor]:
    """Latent codes of a one-factor-at-a-time traversal (MATH.md §6), built by broadcasting.

    mu_seeds (S, H), factors (F,), values (T,) -> z (F, S, T, H) and the swept values
    (F, S, T): z[f, s, t] = mu_seeds[s] with component factors[f] set to values[t], or to
    mu_seeds[s, factors[f]] + values[t] when ``relative`` (paper 002, Fig. 3).
    """
    S, H = mu_seeds.shape
    F, T = len(factors), values.numel()
    index = torch.as_tensor(list(factors), dtype=torch.long, device=mu_seeds.device)
    offsets = values.to(mu_seeds).view(1, 1, T)
    base = mu_seeds.T[index].unsqueeze(-1) if relative else mu_seeds.new_zeros(F, S, 1)
    swept = (base + offsets).expand(F, S, T).contiguous()  # (F, S, T)
    z = mu_seeds.view(1, S, 1, H).expand(F, S, T, H).contiguous()
    z.scatter_(-1, index.view(F, 1, 1, 1).expand(F, S, T, 1), swept.unsqueeze(-1))
    return z, swept


def pair_latents(
    mu_seeds: Tensor, f1: int, f2: int, values: Tensor, relative: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """Latent codes of a 2-D traversal (paper 001, Fig. 2), built by broadcasting.

    mu_seeds (S, H), values (T,) -> z (S, T, T, H) with z[s, i, j, f1] = v1[s, i] and
    z[s, i, j, f2] = v2[s, j]; v1, v2 (S, T) are ``values`` (plus the seed's mu when relative).
    """
    if f1 == f2:
        raise ConfigError(f"‹pair› {f1} {f2}: expected two different factors")
    S, H = mu_seeds.shape
    T = values.numel()
    offsets = values.to(mu_seeds).view(1, T)
    v1 = (mu_seeds[:, f1 : f1 + 1] + offsets) if relative else offsets.expand(S, T)
    v2 = (mu_seeds[:, f2 : f2 + 1] + offsets) if relative else offsets.expand(S, T)
    z = mu_seeds.view(S, 1, 1, H).expand(S, T, T, H).clone()
    z[..., f1] = v1.view(S, T, 1)  # rows
    z[..., f2] = v2.view(S, 1, T)  # columns
    return z, v1.contiguous(), v2.contiguous()


@torch.no_grad()
def decode_latents(model: VAE, z: Tensor, batch_size: int | None = None) -> Tensor:
    """Decoder inputs z (..., H + K) -> the likelihood's mean images (..., C, H_img, W_img),
    float32 in [0, 1], CPU.

    Decodes on the model's device in batches of ``inference_batch_size`` (one call for a sheet
    of 20 factors × 8 seeds × 10 steps on a GPU); clamps to [0, 1] for display (a Gaussian
    likelihood's mean may leave it).
    """
    model.eval()
    device = next(model.parameters()).device
    flat = z.reshape(-1, z.shape[-1]).to(device)  # (N, H)
    size = batch_size or inference_batch_size(device)
    chunks = [
        model.decode_mean(flat[start : start + size]).clamp_(0.0, 1.0).float().cpu()
        for start in range(0, flat.shape[0], size)
    ]
    images = torch.cat(chunks)  # (N, C, H_img, W_img)
    return images.reshape(*z.shape[:-1], *images.shape[1:])


def traverse_factors(
    model: VAE,
    mu_seeds: Tensor,
    factors: Sequence[int],
    values: Tensor,
    relative: bool = False,
) -> Tensor:
    """Decoded one-factor traversals: (F, S, T, C, H_img, W_img) float32 in [0, 1], CPU.

    mu_seeds (S, H), factors (F,), values (T,) as :func:`factor_latents` (MATH.md §6).
    """
    check_factors(factors, mu_seeds.shape[1])
    z, _ = factor_latents(mu_seeds, factors, values, relative)
    return decode_latents(model, z)


def traverse_pair(
    model: VAE, mu_seeds: Tensor, f1: int, f2: int, values: Tensor, relative: bool = False
) -> Tensor:
    """Decoded 2-D traversals: (S, T, T, C, H_img, W_img) float32 in [0, 1], CPU.

    Rows sweep factor ``f1``, columns ``f2`` (paper 001, Fig. 2); see :func:`pair_latents`.
    """
    check_factors((f1, f2), mu_seeds.shape[1], option="‹pair›")
    z, _, _ = pair_latents(mu_seeds, f1, f2, values, relative)
    return decode_latents(model, z)


def factor_traversal(
    model: VAE,
    mu_seeds: Tensor,
    factors: Sequence[int],
    values: Tensor,
    *,
    relative: bool = False,
    mi: Tensor | None = None,
    seed_rows: Sequence[int] | None = None,
) -> FactorTraversal:
    """:func:`traverse_factors` with its metadata; ``mi`` (H,) nats labels the blocks."""
    check_factors(factors, mu_seeds.shape[1])
    z, swept = factor_latents(mu_seeds, factors, values, relative)
    return FactorTraversal(
        images=decode_latents(model, z),
        factors=tuple(int(f) for f in factors),
        values=swept.float().cpu(),
        offsets=values.float().cpu(),
        relative=relative,
        seed_mu=mu_seeds.float().cpu(),
        mi=None if mi is None else tuple(float(mi[f]) for f in factors),
        seed_rows=None if seed_rows is None else tuple(int(r) for r in seed_rows),
    )


def pair_traversal(
    model: VAE,
    mu_seeds: Tensor,
    f1: int,
    f2: int,
    values: Tensor,
    *,
    relative: bool = False,
    mi: Tensor | None = None,
    seed_rows: Sequence[int] | None = None,
) -> PairTraversal:
    """:func:`traverse_pair` with its metadata; ``mi`` (H,) nats labels the grid."""
    check_factors((f1, f2), mu_seeds.shape[1], option="‹pair›")
    z, v1, v2 = pair_latents(mu_seeds, f1, f2, values, relative)
    return PairTraversal(
        images=decode_latents(model, z),
        factors=(int(f1), int(f2)),
        values=(v1.float().cpu(), v2.float().cpu()),
        offsets=values.float().cpu(),
        relative=relative,
        seed_mu=mu_seeds.float().cpu(),
        mi=None if mi is None else (float(mi[f1]), float(mi[f2])),
        seed_rows=None if seed_rows is None else tuple(int(r) for r in seed_rows),
    )


def sweep_change(images: Tensor) -> Tensor:
    """How much a factor's sweep changes the decoded images, per factor block.

    images (F, S, T, C, H, W) in [0, 1] -> (F,) float32: the mean over seeds, steps and pixels
    of |x_t − mean_t x_t|, the mean absolute deviation from the sweep's average image. Near 0
    for a factor the decoder ignores (paper 000, Fig. 1, montage D).
    """
    deviation = (images - images.mean(dim=2, keepdim=True)).abs()  # (F, S, T, C, H, W)
    return deviation.flatten(1).mean(dim=1)
