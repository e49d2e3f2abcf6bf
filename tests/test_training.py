"""Training: the loss goes down, a fixed seed repeats exactly, batches stay on the device."""

from __future__ import annotations

import numpy as np
import torch

from vaetool.config import DataConfig, TrainConfig
from vaetool.data import load_dataset
from vaetool.data.feed import DeviceFeed
from vaetool.training import train

DATA = DataConfig("mnist5k", subset=600)


def _run(seed: int = 0, epochs: int = 3):
    return train(DATA, TrainConfig(epochs=epochs, seed=seed), latents=8, device="cpu")


def test_a_few_epochs_lower_the_loss() -> None:
    history = _run().history
    assert history[-1].train_loss < history[0].train_loss
    assert history[-1].val_elbo > history[0].val_elbo


def test_fixed_seed_repeats_exactly_on_cpu() -> None:
    first, second = _run(epochs=1), _run(epochs=1)
    for (k, a), (_, b) in zip(
        first.model.state_dict().items(), second.model.state_dict().items(), strict=False
    ):
        assert torch.equal(a, b), k
    assert first.history[0].train_loss == second.history[0].train_loss
    other = _run(seed=1, epochs=1)
    assert other.history[0].train_loss != first.history[0].train_loss


def test_resident_feed_equals_streamed_feed() -> None:
    data = load_dataset("mnist5k")
    rows = np.arange(0, 5000, 37)
    resident = DeviceFeed(data, rows, torch.device("cpu"))
    assert resident.resident is not None and resident.resident.dtype == torch.uint8
    streamed = DeviceFeed(data, rows, torch.device("cpu"))
    streamed.resident = None
    for a, b in zip(resident.batches(50), streamed.batches(50), strict=True):
        assert torch.equal(a, b) and a.dtype == torch.float32 and float(a.max()) <= 1.0


def test_checkpoint_records_resolved_config() -> None:
    result = _run(epochs=1)
    assert result.info.train.lr == 1e-3  # paper 000's Adam rate for MNIST
    assert result.info.model.architecture == "conv28"
    assert result.info.data.subset == 600
    assert result.info.summary["n_train"] == 360
