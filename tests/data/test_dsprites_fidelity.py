"""Procedural dSprites against official frames (issue 13): the 18 frames of the official
animation (deepmind/dsprites-dataset `dsprites.gif`, Apache 2.0) that show each shape at every
scale, orientation 0, posX = posY = 0, stored bit-packed in tests/fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaetool.data.dsprites import render

FIXTURE = Path(__file__).parents[1] / "fixtures" / "dsprites-official-frames.npz"


def _agreement() -> dict[int, tuple[int, float]]:
    """shape -> (pixels that differ over the 6 scales, worst IoU)."""
    with np.load(FIXTURE) as npz:
        frames = np.unpackbits(npz["frames"], axis=-1).astype(bool)
        shapes, scales = npz["shapes"], npz["scales"]
    classes = np.stack([shapes, scales, 0 * shapes, 0 * shapes, 0 * shapes], 1)
    ours = render(classes)
    out = {}
    for k in range(3):
        rows = shapes == k
        xor = int((ours[rows] ^ frames[rows]).sum())
        iou = (ours[rows] & frames[rows]).sum((1, 2)) / (ours[rows] | frames[rows]).sum((1, 2))
        out[k] = (xor, float(iou.min()))
    return out


def test_squares_are_pixel_identical_and_ellipses_within_a_few_pixels() -> None:
    agreement = _agreement()
    assert agreement[0] == (0, 1.0)
    assert agreement[1][0] <= 10 and agreement[1][1] > 0.95


def test_hearts_are_still_too_large() -> None:
    """The known gap (docs/datasets.md): ours ~48 % larger; this test fails when it closes,
    so that the documentation is updated with it."""
    xor, worst = _agreement()[2]
    assert xor > 300 and 0.6 < worst < 0.8
