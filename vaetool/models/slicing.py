"""A truly smaller model: keep k of the H latent factors (paper 000's pruning, made permanent).

Encoder: the per-factor parameters of the kept factors, chosen by a rule per encoder kind
(:data:`ENCODER_SLICERS`, one per name in ``vaetool.models.ENCODERS``). The papers' encoder keeps
the rows of its output layer (``encoder.head``: hidden -> 2H, rows [mu; logvar]); the split encoder
(paper 003 §4.2) keeps the leading-H slices of every ``encoder.split`` weight and bias; shared
layers are unchanged. Decoder: the input layer (``decoder.input``: H -> hidden) keeps the kept
columns, so decoding the kept factors with the sliced decoder equals decoding the full code with
the pruned factors set to 0, since W z + b = W[:, kept] z[kept] + b when z is 0 elsewhere.

A categorical code (paper 001 §4.2) is kept whole (its logit rows and input columns) or, with
``drop_code``, removed: the decoder's bias absorbs its columns at the uniform prior's mean 1/K, so
the smaller model decodes as the full one with y = 1/K (a pruned code, as a pruned z_h is 0).

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
    """``encoder.head`` rows: mu rows ``index``, then logvar rows ``index + H``, then the code's
    logit rows 2H.. when the sliced state keeps them (see :func:`slice_latents`)."""
    total = state["encoder.head.weight"].shape[0]
    code = torch.arange(2 * num_factors, total, device=index.device)
    rows = torch.cat([index, index + num_factors, code])
    state["encoder.head.weight"] = state["encoder.head.weight"][rows]
    state["encoder.head.bias"] = state["encoder.head.bias"][rows]


@ENCODER_SLICERS.register("split")
def _slice_split_encoder(state: State, index: Tensor, num_factors: int) -> None:
    """Every ``encoder.split`` weight (H, fan_in, fan_out) and bias (H, fan_out): leading dim.
    (A tensor without a leading H would load with the wrong size: the strict load names it.)"""
    for key in [k for k in state if k.startswith("encoder.split.")]:
        state[key] = state[key][index]


def slice_latents(model: VAE, kept: list[int], drop_code: bool = False) -> VAE:
    """A new VAE (eval mode, same device and dtype) with ``len(kept)`` latents: factor i of the
    result is ``kept[i]`` of ``model``; its categorical code kept, or removed when
    ``drop_code``. ConfigError unless ``kept`` is distinct indices < H."""
    num_factors = model.config.latents
    if not kept or len(set(kept)) != len(kept) or not all(0 <= h < num_factors for h in kept):
        raise ConfigError(
            f"kept factors {kept}: expected 1 to {num_factors} distinct indices "
            f"in [0, {num_factors})"
        )
    reference = next(model.parameters())
    k = model.config.categories
    keep_code = k > 0 and not drop_code
    config = replace(model.config, latents=len(kept), categories=k if keep_code else 0)
    smaller = build_model(config).to(reference.device, reference.dtype)
    state = {key: v.clone() for key, v in model.state_dict().items()}
    index = torch.tensor(kept, device=reference.device)
    if k and not keep_code:
        _drop_code(state, num_factors, k)
    ENCODER_SLICERS.get(model.config.encoder)(state, index, num_factors)
    weight = state["decoder.input.weight"]
    code_columns = torch.arange(num_factors, weight.shape[1], device=index.device)
    state["decoder.input.weight"] = weight[:, torch.cat([index, code_columns])]
    smaller.load_state_dict(state, strict=True)
    return smaller.eval()


def _drop_code(state: State, num_factors: int, categories: int) -> None:
    """Remove a K-class code: its logit rows (paper encoder) or head (split encoder), its
    temperature, and its decoder columns, folded into the bias at y = 1/K."""
    weight = state["decoder.input.weight"]
    state["decoder.input.bias"] = state["decoder.input.bias"] + weight[:, num_factors:].sum(1) / (
        categories)  # fmt: skip
    state["decoder.input.weight"] = weight[:, :num_factors]
    if "encoder.head.weight" in state:
        state["encoder.head.weight"] = state["encoder.head.weight"][: 2 * num_factors]
        state["encoder.head.bias"] = state["encoder.head.bias"][: 2 * num_factors]
    for key in [k for k in state if k.startswith(("encoder.code.", "code."))]:
        del state[key]
