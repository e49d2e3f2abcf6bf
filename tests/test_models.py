"""Every registered architecture, likelihood and objective: shapes and known values."""

from __future__ import annotations

import math

import pytest
import torch

from vaetool.config import ModelConfig
from vaetool.likelihoods import LIKELIHOODS, build_likelihood
from vaetool.models import ARCHITECTURES, architecture_for_shape, build_model
from vaetool.models.latents import DiagonalGaussian

SHAPES = {"conv28": (1, 28, 28), "conv32": (3, 32, 32), "conv64": (3, 64, 64), "mlp": (2, 10, 6),
          "burgess": (1, 64, 64), "pythae_mlp": (1, 9, 7), "pythae_conv_mnist": (1, 28, 28),
          "pythae_conv_celeba": (3, 64, 64)}  # fmt: skip
NATIVE = ("conv28", "conv32", "conv64")  # chosen from the image shape; the rest by name


CASES = [
    (a, lk) if (lk == "bernoulli" and a in (*NATIVE, "mlp", "burgess", "pythae_mlp"))
    or (lk != "bernoulli" and a in (*NATIVE, "mlp"))
    else pytest.param(a, lk, marks=pytest.mark.slow)  # the big foreign nets: one in the fast lane
    for a in ARCHITECTURES.names() for lk in LIKELIHOODS.names()
]  # fmt: skip


@pytest.mark.parametrize(("arch", "likelihood"), CASES)
def test_architecture_shapes(arch: str, likelihood: str) -> None:
    shape = SHAPES[arch]
    assert arch not in NATIVE or architecture_for_shape(shape) == arch
    model = build_model(ModelConfig(arch, shape, latents=7, likelihood=likelihood))
    x = torch.rand(4, *shape)
    out = model(x)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (4, 7)
    assert out.params.shape == x.shape
    assert model.likelihood.nll(out.params, x).shape == (4,)
    assert model.decode_mean(out.z).shape == x.shape


def test_paper_mnist_architecture() -> None:
    """Paper 000 appendix: conv 32x4x4, 32x4x4 stride 2, FC 256, H latents."""
    model = build_model(ModelConfig("conv28", (1, 28, 28), latents=128))
    convs = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(32, (4, 4), (2, 2))] * 2
    assert model.encoder.fc[0].out_features == 256
    assert model.encoder.head.out_features == 2 * 128
    assert model.decoder.input.in_features == 128


def test_gaussian_nll_known_value() -> None:
    config = ModelConfig(
        "mlp", (1, 2, 2), likelihood="gaussian", likelihood_options={"sigma2": 0.5}
    )
    gaussian = build_likelihood(config)
    x = torch.zeros(1, 1, 2, 2)
    mean = torch.full((1, 1, 2, 2), 0.5)
    # ‖x − G(z)‖²/(2σ²) + D/2 log(2πσ²) with ‖·‖² = 4·0.25 = 1, σ² = 0.5, D = 4
    expected = 1.0 / (2 * 0.5) + 2 * math.log(2 * math.pi * 0.5)
    assert gaussian.nll(mean, x).item() == pytest.approx(expected)


def test_bernoulli_nll_known_value() -> None:
    bernoulli = build_likelihood(ModelConfig("mlp", (1, 1, 2)))
    logits = torch.zeros(1, 1, 1, 2)  # p = 0.5 per pixel
    x = torch.tensor([[[[0.0, 1.0]]]])
    assert bernoulli.nll(logits, x).item() == pytest.approx(2 * math.log(2))


def test_kl_to_standard_normal_known_values() -> None:
    mu = torch.tensor([[0.0, 1.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    # 0 for N(0,1); ½(1 + 2 − 1 − log 2) for N(1, 2)
    kl = DiagonalGaussian(ModelConfig("mlp", (1, 1, 2), latents=2)).kl(mu, logvar)
    assert kl.item() == pytest.approx(0.5 * (2 - math.log(2)))
