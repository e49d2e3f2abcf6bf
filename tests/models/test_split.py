"""The split encoder (paper 003 §4.2; MATH.md §10, §14): batched per-factor layers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from vaetool.config import ModelConfig
from vaetool.models import ARCHITECTURES, build_model
from vaetool.models.split import SplitEncoder, SplitHeads

SHAPES = {"conv28": (1, 28, 28), "conv32": (3, 32, 32), "conv64": (3, 64, 64), "mlp": (2, 10, 6)}


def _heads(depth: int, features: int = 12, latents: int = 5, width: int = 7) -> SplitHeads:
    torch.manual_seed(depth)
    return SplitHeads(features, latents, width, depth).double()


def _loop_reference(heads: SplitHeads, features: Tensor) -> tuple[Tensor, Tensor]:
    """H separate dense layers, built from the stored slices: W[h] is (fan_in, fan_out), so
    F.linear takes its transpose (out, in)."""
    mus, logvars = [], []
    for h in range(heads.head_weight.shape[0]):
        a = features
        for w, b in zip(heads.weights, heads.biases, strict=True):
            a = torch.relu(F.linear(a, w[h].T, b[h]))
        out = F.linear(a, heads.head_weight[h].T, heads.head_bias[h])  # (B, 2)
        mus.append(out[:, 0])
        logvars.append(out[:, 1])
    return torch.stack(mus, 1), torch.stack(logvars, 1)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_batched_heads_equal_loop_of_dense_layers(depth: int) -> None:
    """MATH.md §14: the batched layer = a loop over H dense layers (float64, 1e−12)."""
    heads = _heads(depth)
    features = torch.randn(9, 12, dtype=torch.float64)
    mu, logvar = heads(features)
    assert mu.shape == logvar.shape == (9, 5)
    ref_mu, ref_logvar = _loop_reference(heads, features)
    torch.testing.assert_close(mu, ref_mu, atol=1e-12, rtol=0)
    torch.testing.assert_close(logvar, ref_logvar, atol=1e-12, rtol=0)


def _per_factor_params(heads: SplitHeads) -> list[Tensor]:
    return [*heads.weights, *heads.biases, heads.head_weight, heads.head_bias]


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("factor", [0, 2, 4])
@pytest.mark.parametrize("output", [0, 1])  # mu_h, logvar_h
def test_factor_depends_only_on_its_own_parameters(depth: int, factor: int, output: int) -> None:
    """d(mu_h or logvar_h)/d(parameters of factor g ≠ h) is exactly 0; non-zero for g = h."""
    heads = _heads(depth)
    features = torch.randn(16, 12, dtype=torch.float64)
    params = _per_factor_params(heads)
    grads = torch.autograd.grad(heads(features)[output][:, factor].sum(), params)
    for grad in grads:
        others = torch.cat([grad[:factor].flatten(), grad[factor + 1 :].flatten()])
        assert torch.count_nonzero(others) == 0
        assert torch.count_nonzero(grad[factor]) > 0


@pytest.mark.parametrize("depth", [1, 2])
def test_slices_initialised_like_nn_linear(depth: int) -> None:
    """Each factor's slice is U(−1/√fan_in, 1/√fan_in), nn.Linear's bound. A slice of n ≥ 300
    draws fills 90 % of it on each side (miss probability ≤ 0.95^300 ≈ 2·10⁻⁷ per side); a slice
    of n ≥ 10⁴ draws has std = bound/√3 within 5 % (relative s.e. √(0.2/n) ≤ 0.5 %). The head's
    2 biases per factor are only checked against the bound."""
    torch.manual_seed(0)
    heads = SplitHeads(400, 8, 300, depth)
    fan_ins = [400] + [300] * (depth - 1)
    layers = [*zip(heads.weights, heads.biases, fan_ins, strict=True)]
    layers.append((heads.head_weight, heads.head_bias, 300))
    for weight, bias, fan_in in layers:
        bound = 1 / math.sqrt(fan_in)
        for tensor in (weight, bias):
            assert tensor.shape[0] == 8
            flat = tensor.detach().flatten(1)  # (H, n): one row per factor's slice
            assert flat.abs().max().item() <= bound
            if flat.shape[1] >= 300:
                assert (flat.max(1).values >= 0.9 * bound).all()
                assert (flat.min(1).values <= -0.9 * bound).all()
            if flat.shape[1] >= 10_000:
                std = flat.std(1) * math.sqrt(3) / bound
                assert ((std - 1).abs() < 0.05).all()


def test_nn_linear_has_the_same_bound() -> None:
    """The bound the slices use is nn.Linear's: kaiming-uniform(a = √5) gives 1/√fan_in."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    assert layer.weight.abs().max().item() <= bound
    assert layer.weight.abs().max().item() >= 0.99 * bound


FOREIGN = [a for a in ARCHITECTURES.names() if a not in SHAPES]  # vaetool.models.foreign


@pytest.mark.parametrize("arch", FOREIGN)
def test_foreign_networks_have_no_split_form(arch: str) -> None:
    from vaetool.errors import ConfigError

    with pytest.raises((ValueError, ConfigError), match="split"):
        build_model(ModelConfig(arch, (1, 64, 64), latents=3, encoder="split"))


@pytest.mark.parametrize("arch", list(SHAPES))
@pytest.mark.parametrize("depth", [1, 2])
def test_build_split_model_every_architecture(arch: str, depth: int) -> None:
    shape = SHAPES[arch]
    config = ModelConfig(
        arch,
        shape,
        latents=6,
        hidden=32,
        encoder="split",
        encoder_options={"split_width": 16, "split_depth": depth},
    )
    model = build_model(config)
    assert isinstance(model.encoder, SplitEncoder)
    heads = model.encoder.split
    assert len(heads.weights) == depth
    assert heads.weights[0].shape[::2] == (6, 16)  # (H, trunk features, w)
    assert all(w.shape == (6, 16, 16) for w in heads.weights[1:])
    assert heads.head_weight.shape == (6, 16, 2) and heads.head_bias.shape == (6, 2)
    x = torch.rand(3, *shape)
    assert heads.weights[0].shape[1] == model.encoder.features(x).shape[1]
    out = model(x)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (3, 6)
    assert out.params.shape == x.shape
