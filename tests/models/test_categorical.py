"""The categorical code (paper 001 §4.2; MATH.md §10, §12, §14): Gumbel-softmax, its KL, the
temperature schedule, the model's code path, slicing, traversal, accuracy and information."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vaetool.analysis.categorical import (
    CodeAccumulator,
    categorical_accuracy,
    code_information,
)
from vaetool.analysis.pruning import masked_inputs
from vaetool.analysis.traversal import code_traversal
from vaetool.config import ModelConfig
from vaetool.errors import ConfigError
from vaetool.models import build_model
from vaetool.models.categorical import (
    annealed_temperature,
    gumbel_softmax,
    kl_to_uniform,
    one_hot_mode,
)
from vaetool.models.slicing import slice_latents

K = 10


def _model(encoder: str = "paper", architecture: str = "conv28") -> torch.nn.Module:
    torch.manual_seed(0)
    wide = {"split_width": 16} if encoder == "split" else {}
    config = ModelConfig(architecture, (1, 28, 28), latents=6, categories=K, encoder=encoder,
                         encoder_options=wide)  # fmt: skip
    return build_model(config).double().eval()


@pytest.mark.parametrize("tau", [0.1, 0.67, 5.0])
def test_gumbel_max_frequencies_match_pi_at_any_temperature(tau: float) -> None:
    """argmax_k y_k of the relaxed sample is a draw of c (Gumbel-max): frequencies over 10⁵
    draws = π within 3 standard errors (MATH.md §14)."""
    torch.manual_seed(0)
    pi = torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05], dtype=torch.float64)
    n = 100_000
    y = gumbel_softmax(pi.log().expand(n, -1), tau, torch.rand(n, len(pi), dtype=torch.float64))
    assert torch.allclose(y.sum(1), torch.ones(n, dtype=torch.float64))
    freq = torch.bincount(y.argmax(1), minlength=len(pi)).double() / n
    se = (pi * (1 - pi) / n).sqrt()
    assert bool(((freq - pi).abs() < 3 * se).all()), (freq, pi)


def test_kl_to_uniform_matches_a_hand_computation() -> None:
    pi = torch.tensor([[0.7, 0.2, 0.1]], dtype=torch.float64)
    hand = sum(p * math.log(p / (1 / 3)) for p in (0.7, 0.2, 0.1))
    assert float(kl_to_uniform(pi.log())) == pytest.approx(hand, abs=1e-12)
    uniform = torch.full((1, K), 1.0 / K, dtype=torch.float64).log()
    assert float(kl_to_uniform(uniform)) == pytest.approx(0.0, abs=1e-12)
    one_hot = F.log_softmax(torch.tensor([[60.0] + [0.0] * (K - 1)], dtype=torch.float64), -1)
    assert float(kl_to_uniform(one_hot)) == pytest.approx(math.log(K), abs=1e-9)


def test_temperature_schedule() -> None:
    """τ_t = max(0.5, τ₀ exp(−r t)) (Jang et al.)."""
    steps = torch.tensor([0, 1000, 10**6])
    tau = [float(annealed_temperature(t, 1.0, 1e-4)) for t in steps]
    assert tau == pytest.approx([1.0, math.exp(-0.1), 0.5])


@pytest.mark.parametrize("encoder", ["paper", "split"])
def test_the_model_relaxes_in_training_and_decodes_one_hot_in_eval(encoder: str) -> None:
    model = _model(encoder)
    x = torch.rand(5, 1, 28, 28, dtype=torch.float64)
    out = model(x)
    assert out.logits.shape == (5, K) and torch.equal(out.y, one_hot_mode(out.logits))
    model.train()
    relaxed = model(x).y
    assert torch.allclose(relaxed.sum(1), torch.ones(5, dtype=torch.float64))
    assert not torch.equal(relaxed, one_hot_mode(relaxed))  # a relaxation, not a one-hot
    mode = model.eval().mode(x)
    assert mode.shape == (5, 6 + K) and torch.equal(mode[:, 6:], out.y)


@pytest.mark.parametrize("encoder", ["paper", "split"])
def test_slicing_keeps_or_drops_the_code_exactly(encoder: str) -> None:
    """Kept: the sliced model decodes as the full one with the pruned z_h = 0. Dropped: as the
    full one with the code at the uniform prior's mean 1/K (its columns folded into the bias)."""
    model = _model(encoder)
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    kept = [4, 1]
    mask = torch.zeros(1, 6, dtype=torch.float64)
    mask[0, kept] = 1.0
    codes = model.mode(x)
    for drop in (False, True):
        smaller = slice_latents(model, kept, drop_code=drop)
        assert smaller.categories == (0 if drop else K)
        full = model.decode_mean(masked_inputs(model, codes, mask, keep_code=not drop))
        assert torch.allclose(smaller.decode_mean(smaller.mode(x)), full, atol=1e-12)
        mu, _ = smaller.encode(x)
        assert torch.allclose(mu, codes[:, kept], atol=1e-12)


def test_code_traversal_has_k_columns_after_the_seed() -> None:
    model = _model()
    images = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    sheet = code_traversal(model, images, seed_rows=[0, 1, 2])
    assert sheet.images.shape == (3, 1 + K, 1, 28, 28) and sheet.categories == K
    assert torch.equal(sheet.images[:, 0], images.float())
    plain = build_model(ModelConfig("conv28", (1, 28, 28), latents=3))
    with pytest.raises(ConfigError, match="no categorical code"):
        code_traversal(plain, images.float())


def test_accuracy_of_a_code_equal_to_or_permuting_the_labels_is_one() -> None:
    rng = np.random.RandomState(0)
    labels = rng.randint(0, K, 5000)
    assert categorical_accuracy(labels, labels, K)["categorical_accuracy"] == 1.0
    permuted = rng.permutation(K)[labels]
    assert categorical_accuracy(permuted, labels, K)["categorical_accuracy"] == 1.0


def test_accuracy_of_random_and_constant_codes() -> None:
    rng = np.random.RandomState(1)
    labels = rng.randint(0, K, 20_000)
    random = categorical_accuracy(rng.randint(0, K, len(labels)), labels, K)
    assert random["categorical_accuracy"] == pytest.approx(1 / K, abs=0.02)
    assert random["categorical_purity"] >= random["categorical_accuracy"]
    constant = categorical_accuracy(np.zeros_like(labels), labels, K)
    assert constant["categorical_accuracy"] == pytest.approx(np.bincount(labels).max() / 20_000)
    assert constant["categorical_classes_used"] == 1


def test_code_information_exact_values() -> None:
    """Deterministic one-hot codes spread evenly: I = log K = the KL; a constant π: I = 0."""
    acc = CodeAccumulator(4)
    acc.update(torch.eye(4, dtype=torch.float64) * 80.0)  # near one-hot, each class once
    info = acc.finalize()
    assert info.mi == pytest.approx(math.log(4), abs=1e-9)
    assert info.kl_prior == pytest.approx(math.log(4), abs=1e-9) and info.cap == math.log(4)
    same = code_information(torch.tensor([0.7, 0.3], dtype=torch.float64), 0.6108643, 10)
    assert same.mi == pytest.approx(0.0, abs=1e-6)
    assert same.kl_aggregate == pytest.approx(same.kl_prior - same.mi)
