"""Seeded train/val/test splits and seeded subsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaetool.data import SPLIT_NAMES, SubsetData, load_dataset, split_indices
from vaetool.errors import ConfigError


@pytest.mark.parametrize("n", [1000, 5000, 7])
def test_split_disjoint_covering(n: int) -> None:
    split = split_indices(n, seed=3)
    parts = [split.get(name) for name in SPLIT_NAMES]
    assert all(p.dtype == np.int64 for p in parts)
    joined = np.concatenate(parts)
    assert len(joined) == n and np.array_equal(np.sort(joined), np.arange(n))


def test_split_sizes_and_reproducible() -> None:
    split = split_indices(1000, seed=0)
    assert (len(split.train), len(split.val), len(split.test)) == (600, 200, 200)
    again = split_indices(1000, seed=0)
    for name in SPLIT_NAMES:
        assert np.array_equal(split.get(name), again.get(name))
    assert not np.array_equal(split.train, split_indices(1000, seed=1).train)
    with pytest.raises(ConfigError, match="unknown split 'dev'"):
        split.get("dev")


def test_subset_sample() -> None:
    full = load_dataset("mnist5k")
    data = load_dataset("mnist5k", subset=100, seed=3)
    assert isinstance(data, SubsetData) and len(data) == 100 and data.spec == "mnist5k"
    assert np.all(np.diff(data.indices) > 0) and data.indices.dtype == np.int64
    assert np.array_equal(data.indices, load_dataset("mnist5k", subset=100, seed=3).indices)
    assert not np.array_equal(data.indices, load_dataset("mnist5k", subset=100, seed=4).indices)
    assert len(set(data.labels.tolist())) > 5  # a random sample, not the first classes
    assert np.array_equal(data.labels, full.labels[data.indices])
    assert torch.equal(data.images(np.array([0, 99])), full.images(data.indices[[0, 99]]))
    assert torch.equal(data.pixels(), full.pixels()[torch.from_numpy(data.indices)])
    assert data.shape == full.shape and data.bytes_per_image == full.bytes_per_image
    assert len(load_dataset("mnist5k", subset=5000)) == 5000


@pytest.mark.parametrize("bad", [0, -3, 5001, True, 2.5])
def test_subset_out_of_range(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"subset .*'mnist5k'.*from 1 to 5000"):
        load_dataset("mnist5k", subset=bad)  # type: ignore[arg-type]
