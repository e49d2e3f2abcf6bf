"""A truly smaller model: keep k of the H latent factors (paper 000's pruning, made permanent).

Encoder: the per-factor parameters of the kept factors, chosen by a rule per encoder kind
(:data:`ENCODER_SLICERS`, one per name in ``vaetool.models.ENCODERS``). The papers' encoder keeps
the rows of its output layer (``encoder.head``: hidden -> 2H, rows [mu; logvar]); the split encoder
(paper 003 §4.2) keeps the leading-H slices of every ``encoder.split`` weight and bias; shared
layers are unchanged. Decoder: the input layer (``decoder.input``: H -> hidden) keeps the kept
columns, so decoding the kept factors with the sliced decoder equals decoding the full code with
the pruned factors set to 0, since W z + b = W[:, kept] z[kept] + b when z is 0 elsewhere.

The latent family is rebuilt for k factors with the same config (``noise_corr`` stays ρ): a
correlated family's c_ρ = −½ log det Σ_ρ depends on H, so the sliced model's exact KL has the
constant for k, not H (MATH.md §10).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
from torch import Tensor

from vaetool.errors import ConfigError
from vaetool.models import VAE, build_model
from vaetool.registry import Registry

State = dict[str, Tensor]
# An encoder kind's rule: (state dict, kept indices (k,) int64, H) -> the state with the encoder's
# per-factor entries sliced in place to the kept factors, in order.
ENCODER_SLICERS: Registry[Callable[[State, Tensor, int], None]] = Registry("encoder slicing")


@ENCODER_SLICERS.register("paper")
def _slice_paper_encoder(state: State, index: Tensor, num_factors: int) -> None:
    """``encoder.head`` rows: mu rows ``index``, then logvar rows ``index + H``."""
    rows = torch.cat([index, index + num_factors])
    state["encoder.head.weight"] = state["encoder.head.weight"][rows]
    state["encoder.head.bias"] = state["encoder.head.bias"][rows]


@ENCODER_SLICERS.register("split")
def _slice_split_encoder(state: State, index: Tensor, num_factors: int) -> None:
    """Every ``encoder.split`` weight (H, fan_in, fan_out) and bias (H, fan_out): leading dim.
    (A tensor without a leading H would load with the wrong size: the strict load names it.)"""
    for key in [k for k in state if k.startswith("encoder.split.")]:
        state[key] = state[key][index]


def slice_latents(model: VAE, kept: list[int]) -> VAE:
    """A new VAE (eval mode, same device and dtype) with ``len(kept)`` latents: factor i of the
    result is ``kept[i]`` of ``model``. ConfigError unless ``kept`` is distinct indices < H."""
    num_factors = model.config.latents
    if not kept or len(set(kept)) != len(kept) or not all(0 <= h < num_factors for h in kept):
        raise ConfigError(
            f"kept factors {kept}: expected 1 to {num_factors} distinct indices "
            f"in [0, {num_factors})"
        )
    reference = next(model.parameters())
    smaller = build_model(replace(model.config, latents=len(kept)))
    smaller = smaller.to(reference.device, reference.dtype)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    index = torch.tensor(kept, device=reference.device)
    ENCODER_SLICERS.get(model.config.encoder)(state, index, num_factors)
    state["decoder.input.weight"] = state["decoder.input.weight"][:, index]
    smaller.load_state_dict(state, strict=True)
    return smaller.eval()
