"""A truly smaller model: keep k of the H latent factors (paper 000's pruning, made permanent).

The encoder's output layer (``encoder.head``: hidden -> 2H, rows [mu; logvar]) keeps the rows of
the kept factors; the decoder's input layer (``decoder.input``: H -> hidden) keeps their columns.
Decoding the kept factors with the sliced decoder equals decoding the full code with the pruned
factors set to 0, since W z + b = W[:, kept] z[kept] + b when z is 0 elsewhere.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from vaetool.errors import ConfigError
from vaetool.models import VAE, build_model


def slice_latents(model: VAE, kept: list[int]) -> VAE:
    """A new VAE with ``len(kept)`` latents: factor i of the result is ``kept[i]`` of ``model``."""
    num_factors = model.config.latents
    if not kept or len(set(kept)) != len(kept) or not all(0 <= h < num_factors for h in kept):
        raise ConfigError(
            f"kept factors {kept}: expected 1 to {num_factors} distinct indices "
            f"in [0, {num_factors})"
        )
    smaller = build_model(replace(model.config, latents=len(kept))).to(
        next(model.parameters()).device
    )
    state = {k: v.clone() for k, v in model.state_dict().items()}
    index = torch.tensor(kept, device=state["encoder.head.weight"].device)
    rows = torch.cat([index, index + num_factors])  # mu rows, then logvar rows
    state["encoder.head.weight"] = state["encoder.head.weight"][rows]
    state["encoder.head.bias"] = state["encoder.head.bias"][rows]
    state["decoder.input.weight"] = state["decoder.input.weight"][:, index]
    smaller.load_state_dict(state, strict=True)
    return smaller.eval()
