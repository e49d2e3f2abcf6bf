"""Procedural dSprites: grid layout, determinism, and images that agree with their factors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaetool.data import DSpritesData, load_dataset
from vaetool.data.dsprites import FACTOR_VALUES

N = 3 * 6 * 40 * 32 * 32


@pytest.fixture(scope="module")
def ds() -> DSpritesData:
    data = load_dataset("dsprites")
    assert isinstance(data, DSpritesData)
    return data


def draw(ds: DSpritesData, classes: list[list[int]]) -> np.ndarray:
    """float (B, 64, 64) images for factor classes (B, 5)."""
    return ds.images(ds.index_of(np.array(classes))).numpy()[:, 0]


def centroid(image: np.ndarray) -> tuple[float, float]:
    """(column, row) centre of mass of the foreground."""
    rows, cols = np.nonzero(image)
    return float(cols.mean()), float(rows.mean())


def test_grid_layout(ds: DSpritesData) -> None:
    assert len(ds) == N == 737_280 and ds.shape == (1, 64, 64) and ds.spec == "dsprites"
    assert ds.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert ds.factors.shape == (N, 5) and ds.factors.dtype == np.float64
    assert ds.factor_classes.shape == (N, 5) and ds.factor_classes.dtype == np.int64
    assert np.array_equal(ds.labels, ds.factor_classes[:, 0])
    steps = {1: [0, 0, 0, 0, 1], 32: [0, 0, 0, 1, 0], 1024: [0, 0, 1, 0, 0]}
    steps |= {40 * 1024: [0, 1, 0, 0, 0], 6 * 40 * 1024: [1, 0, 0, 0, 0]}
    for index, classes in steps.items():  # row-major over (shape, scale, orient, posX, posY)
        assert ds.factor_classes[index].tolist() == classes
    assert ds.factor_classes[-1].tolist() == [2, 5, 39, 31, 31]
    assert ds.factors[-1].tolist() == pytest.approx([3.0, 1.0, 2 * np.pi, 1.0, 1.0])
    assert ds.factors[0].tolist() == [1.0, 0.5, 0.0, 0.0, 0.0]
    picks = np.random.default_rng(0).integers(0, N, 500)
    assert np.array_equal(ds.index_of(ds.classes_of(picks)), picks)
    for k, values in enumerate(FACTOR_VALUES):
        assert np.array_equal(ds.factors[picks, k], values[ds.factor_classes[picks, k]])


def test_deterministic_and_binary(ds: DSpritesData) -> None:
    picks = np.random.default_rng(1).choice(N, 300, replace=False)
    first = ds.images(picks)
    assert first.shape == (300, 1, 64, 64) and first.dtype == torch.float32
    assert torch.equal(first, ds.images(picks))
    assert torch.equal(first, DSpritesData().images(picks))
    assert torch.equal(first[7:8], ds.images(picks[7:8]))  # independent of batch company
    assert torch.equal(first.flip(0), ds.images(picks[::-1].copy()))
    assert set(torch.unique(first).tolist()) <= {0.0, 1.0}
    assert bool((first.sum(dim=(1, 2, 3)) > 0).all())  # every sprite is drawn


def test_sprites_stay_inside_frame(ds: DSpritesData) -> None:
    corners = [(0, 0), (0, 31), (31, 0), (31, 31)]
    classes = [[s, 5, o, x, y] for s in range(3) for o in range(40) for x, y in corners]
    images = draw(ds, classes)
    border = images[:, [0, -1], :].sum() + images[:, :, [0, -1]].sum()
    assert border == 0


def test_position_moves_centroid(ds: DSpritesData) -> None:
    for shape, scale, orient in [(0, 5, 0), (1, 2, 7), (2, 4, 23)]:
        along_x = [
            centroid(im) for im in draw(ds, [[shape, scale, orient, x, 9] for x in range(32)])
        ]
        along_y = [
            centroid(im) for im in draw(ds, [[shape, scale, orient, 20, y] for y in range(32)])
        ]
        xs, ys_fixed = np.array(along_x).T
        xs_fixed, ys = np.array(along_y).T
        assert np.all(np.diff(xs[::3]) > 0) and 28 < xs[-1] - xs[0] < 36  # posX -> right
        assert np.all(np.diff(ys[::3]) > 0) and 28 < ys[-1] - ys[0] < 36  # posY -> down
        assert np.ptp(ys_fixed) < 1.0 and np.ptp(xs_fixed) < 1.0


def test_scale_grows_and_size_about_a_third(ds: DSpritesData) -> None:
    for shape in range(3):
        for orient in (0, 13):
            areas = draw(ds, [[shape, s, orient, 16, 16] for s in range(6)]).sum(axis=(1, 2))
            assert np.all(np.diff(areas) > 0)
    square = draw(ds, [[0, 5, 0, 16, 16]])[0]
    cols = np.flatnonzero(square.any(axis=0))
    assert 18 <= cols[-1] - cols[0] + 1 <= 24  # about 1/3 of the 64-pixel frame


def test_shapes_and_orientations_differ(ds: DSpritesData) -> None:
    for scale, orient, x, y in [(5, 0, 16, 16), (2, 17, 3, 28)]:
        sq, el, he = draw(ds, [[s, scale, orient, x, y] for s in range(3)])
        assert (sq != el).any() and (sq != he).any() and (el != he).any()
    base, turned, full_turn = draw(ds, [[2, 5, 0, 16, 16], [2, 5, 10, 16, 16], [2, 5, 39, 16, 16]])
    assert (base != turned).sum() > 20
    assert (base != full_turn).sum() <= 4  # 2*pi is (almost) the same as 0


def test_subset_of_lazy_dsprites() -> None:
    data = load_dataset("dsprites", subset=50, seed=4)
    assert len(data) == 50 and data.spec == "dsprites" and data.pixels() is None
    full = DSpritesData()
    assert np.array_equal(data.factors, full.factors[data.indices])
    assert np.array_equal(data.factor_classes, full.factor_classes[data.indices])
    assert torch.equal(data.images(np.array([3, 1])), full.images(data.indices[[3, 1]]))
