"""Slicing a model to kept factors (paper 000's pruning made permanent), for every encoder kind
and latent family: the sliced model is the full one restricted to the kept factors."""

from __future__ import annotations

import pytest
import torch

from vaetool.config import ModelConfig
from vaetool.errors import ConfigError
from vaetool.models import ENCODERS, build_model
from vaetool.models.slicing import ENCODER_SLICERS, slice_latents

H = 7
KEPT = [5, 0, 3]  # not sorted: factor i of the result is KEPT[i]
LATENT_CHOICES = {"gaussian": 0.0, "correlated": 0.9}  # latent family -> ρ
TOL = {"atol": 1e-5, "rtol": 1e-5}  # float32: same weights, sums in another order


def _config(arch: str, encoder: str, latent: str) -> ModelConfig:
    shape = (1, 28, 28) if arch == "conv28" else (1, 6, 5)
    return ModelConfig(
        arch,
        shape,
        latents=H,
        hidden=24,
        encoder=encoder,
        encoder_options={"split_width": 8, "split_depth": 2} if encoder == "split" else {},
        latent=latent,
        latent_options={"noise_corr": LATENT_CHOICES[latent]} if latent == "correlated" else {},
    )


def test_every_encoder_has_a_slicer() -> None:
    assert ENCODER_SLICERS.names() == ENCODERS.names()


@pytest.mark.parametrize("arch", ["mlp", "conv28"])
@pytest.mark.parametrize("encoder", ENCODERS.names())
@pytest.mark.parametrize("latent", sorted(LATENT_CHOICES))
def test_sliced_model_is_full_model_at_kept_factors(arch: str, encoder: str, latent: str) -> None:
    torch.manual_seed(0)
    model = build_model(_config(arch, encoder, latent)).eval()
    smaller = slice_latents(model, KEPT)
    assert smaller.config.latents == len(KEPT) and smaller.config.encoder == encoder
    assert smaller.config.latent_options == model.config.latent_options
    assert type(smaller.latent) is type(model.latent)
    x = torch.rand(4, *model.config.image_shape)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        small_mu, small_logvar = smaller.encode(x)
        torch.testing.assert_close(small_mu, mu[:, KEPT], **TOL)
        torch.testing.assert_close(small_logvar, logvar[:, KEPT], **TOL)
        z = torch.randn(4, H)
        pruned = torch.zeros_like(z)
        pruned[:, KEPT] = z[:, KEPT]
        torch.testing.assert_close(smaller.decode(z[:, KEPT]), model.decode(pruned), **TOL)


def test_split_slicing_keeps_trunk_and_indexes_every_head() -> None:
    torch.manual_seed(0)
    model = build_model(_config("mlp", "split", "gaussian"))
    smaller = slice_latents(model, KEPT)
    full, small = model.state_dict(), smaller.state_dict()
    for key, value in full.items():
        if key.startswith("encoder.split."):
            assert torch.equal(small[key], value[KEPT]), key
        elif key.startswith("encoder."):
            assert torch.equal(small[key], value), key


def test_correlated_constant_follows_the_sliced_size() -> None:
    """c_ρ depends on H (MATH.md §10): the sliced family's KL carries c_ρ for len(KEPT)."""
    model = build_model(_config("mlp", "split", "correlated"))
    smaller = slice_latents(model, KEPT)
    mu = torch.zeros(1, len(KEPT))
    assert smaller.latent.kl(mu, mu).item() == pytest.approx(smaller.latent.kl_constant(3))
    assert smaller.latent.kl_constant(3) < model.latent.kl_constant(H)


def test_slicing_keeps_dtype() -> None:
    model = build_model(_config("mlp", "split", "gaussian")).double()
    smaller = slice_latents(model, KEPT)
    assert {p.dtype for p in smaller.parameters()} == {torch.float64}
    heads, small_heads = model.encoder.split, smaller.encoder.split
    assert torch.equal(small_heads.head_weight, heads.head_weight[KEPT])


@pytest.mark.parametrize("kept", [[], [0, 0], [H], [-1]])
def test_bad_kept_factors(kept: list[int]) -> None:
    model = build_model(_config("mlp", "paper", "gaussian"))
    with pytest.raises(ConfigError, match="distinct indices"):
        slice_latents(model, kept)
