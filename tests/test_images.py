"""Image composition (vaetool.report.images): exact montage geometry, stacking, PNG and GIF."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vaetool.report.images import (
    BLOCK_GAP_PX,
    LABEL_PX,
    SEPARATOR_GRAY,
    SEPARATOR_PX,
    decode_png,
    default_scale,
    gif_bytes,
    image_grid,
    label_strip,
    labelled_block,
    png_bytes,
    tile,
    to_uint8,
)


def _cells(rows: int, cols: int, channels: int, h: int = 7, w: int = 5) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((rows, cols, channels, h, w), dtype=np.float32)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(
    ("seeds", "steps", "scale", "sep"), [(8, 10, 2, 2), (1, 2, 1, 1), (3, 5, 3, 0)]
)
def test_block_size_is_the_geometry_formula(
    channels: int, seeds: int, steps: int, scale: int, sep: int
) -> None:
    h, w = 7, 5
    block = labelled_block(
        _cells(seeds, steps, channels, h, w), "factor 3   I = 1.23 nats", scale, sep
    )
    height = LABEL_PX + seeds * scale * h + (seeds - 1) * sep
    width = steps * scale * w + (steps - 1) * sep
    assert block.shape == (height, width, channels) and block.dtype == np.uint8


def test_cells_are_nearest_neighbour_repeats_between_separators() -> None:
    cells = _cells(2, 3, 1)
    grid = image_grid(cells, scale=2, sep=SEPARATOR_PX)
    pixels = to_uint8(cells)  # (2, 3, 7, 5, 1)
    cell_h, cell_w = 14 + SEPARATOR_PX, 10 + SEPARATOR_PX
    top_left = grid[cell_h : cell_h + 14, 2 * cell_w : 2 * cell_w + 10]  # row 1, column 2
    assert np.array_equal(top_left, pixels[1, 2].repeat(2, axis=0).repeat(2, axis=1))
    assert (grid[14 : 14 + SEPARATOR_PX] == SEPARATOR_GRAY).all()  # horizontal separator


def test_to_uint8_rounds_and_clamps() -> None:
    x = np.array([[[[-0.5, 0.0, 0.5, 1.0, 2.0]]]], dtype=np.float32)  # (1, 1, 1, 5)
    assert to_uint8(x)[0, 0, :, 0].tolist() == [0, 0, 128, 255, 255]


def test_default_scale_makes_cells_at_least_48_px() -> None:
    assert default_scale(28, 28) == 2 and default_scale(64, 64) == 1 and default_scale(32, 32) == 2
    assert default_scale(5, 9) * 5 >= 48


def test_label_strip_falls_back_to_a_shorter_text() -> None:
    wide = label_strip(["factor 73   I = 1.23 nats", "f73"], 400)
    narrow = label_strip(["factor 73   I = 1.23 nats", "f73"], 40)
    assert wide.shape == (LABEL_PX, 400, 1) and narrow.shape == (LABEL_PX, 40, 1)
    assert (narrow < 128).any()  # something was drawn


def test_stacking_pads_to_a_common_width_and_adds_gaps() -> None:
    gray = np.zeros((10, 30, 1), np.uint8)
    rgb = np.zeros((20, 50, 3), np.uint8)
    sheet = tile([rgb, gray, gray], columns=1)
    assert sheet.shape == (10 + 20 + 10 + 2 * BLOCK_GAP_PX, 50, 3)
    side = tile([gray, gray, gray], columns=2)
    assert side.shape == (2 * 10 + BLOCK_GAP_PX, 2 * 30 + BLOCK_GAP_PX, 1)


@pytest.mark.parametrize("channels", [1, 3])
def test_png_round_trip(channels: int) -> None:
    block = labelled_block(_cells(2, 4, channels), "x", 2)
    with Image.open(io.BytesIO(png_bytes(block))) as image:
        assert image.size == (block.shape[1], block.shape[0])
        assert image.mode == ("L" if channels == 1 else "RGB")
        assert np.array_equal(np.asarray(image).reshape(block.shape), block)
    assert decode_png(png_bytes(block)).shape == (*block.shape[:2], 3)


@pytest.mark.parametrize("channels", [1, 3])
def test_gif_has_one_frame_each(channels: int) -> None:
    frames = [np.full((12, 9, channels), 20 * t, np.uint8) for t in range(6)]
    with Image.open(io.BytesIO(gif_bytes(frames))) as image:
        assert image.n_frames == 6 and image.size == (9, 12) and image.info["loop"] == 0
