"""Image composition with numpy and PIL: traversal montages, sheets, 2-D grids, animated GIFs.

Arrays are uint8 (height, width, channels) with 1 (grayscale) or 3 (RGB) channels. Geometry of a
montage of R rows × K columns of (h, w) images at integer ``scale`` with ``sep`` px separators::

    cell   = (scale·h, scale·w)                       nearest-neighbour repeat, no interpolation
    grid   = (R·scale·h + (R−1)·sep,  K·scale·w + (K−1)·sep)
    block  = (LABEL_PX + grid height,  grid width)    a label strip above the grid

A sheet stacks blocks top to bottom with ``BLOCK_GAP_PX`` between them (and between an optional
header image and the first block), each padded on the right to the widest: its height is
Σ heights + (n−1)·gap and its width the largest width. PNG and GIF bytes come from PIL via
``io.BytesIO``; callers write them with :func:`vaetool.store.atomic.write_atomic`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LABEL_PX = 14  # height of a label strip (PIL's default font is 10 px)
SEPARATOR_PX = 2  # between cells of a montage
BLOCK_GAP_PX = 8  # between blocks of a sheet
MIN_CELL_PX = 48  # the default scale makes a cell at least this large
PAGE_GRAY = 255  # sheet background and label strips
SEPARATOR_GRAY = 160  # visible against black and white cells alike
TEXT_GRAY = 0
FRAME_MS = 200  # GIF frame duration


def default_scale(height: int, width: int) -> int:
    """Smallest integer upscale making a (height, width) image at least MIN_CELL_PX a side."""
    return max(1, math.ceil(MIN_CELL_PX / max(1, min(height, width))))


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images (..., C, H, W) in [0, 1] (numpy or CPU torch) -> uint8 (..., H, W, C)."""
    scaled = np.clip(np.rint(np.asarray(images, dtype=np.float32) * 255.0), 0, 255)
    return np.moveaxis(scaled.astype(np.uint8), -3, -1)


def image_grid(cells: np.ndarray, scale: int = 1, sep: int = SEPARATOR_PX) -> np.ndarray:
    """Montage of cells (R, K, C, h, w) float in [0, 1] -> uint8 (grid height, grid width, C).

    Rows of the montage are the R axis, columns the K axis; grid height = R·scale·h + (R−1)·sep,
    width = K·scale·w + (K−1)·sep (module docstring). Built by reshaping, no loop over cells.
    """
    if scale < 1:
        raise ValueError(f"scale {scale}: expected a positive integer")
    R, K, C, h, w = cells.shape
    pixels = to_uint8(cells).repeat(scale, axis=2).repeat(scale, axis=3)  # (R, K, ch, cw, C)
    ch, cw = h * scale, w * scale
    padded = np.full((R, K, ch + sep, cw + sep, C), SEPARATOR_GRAY, dtype=np.uint8)
    padded[:, :, :ch, :cw] = pixels
    grid = padded.transpose(0, 2, 1, 3, 4).reshape(R * (ch + sep), K * (cw + sep), C)
    return grid[: R * (ch + sep) - sep, : K * (cw + sep) - sep]


def label_strip(texts: str | Sequence[str], width: int, channels: int = 1) -> np.ndarray:
    """A (LABEL_PX, width, channels) uint8 strip with the first of ``texts`` that fits.

    Give a long and a short form; when none fits, the last one is drawn and clipped.
    """
    options = [texts] if isinstance(texts, str) else list(texts)
    font = ImageFont.load_default()
    canvas = Image.new("L", (max(1, width), LABEL_PX), PAGE_GRAY)
    draw = ImageDraw.Draw(canvas)
    text = next((t for t in options if draw.textlength(t, font=font) + 4 <= width), options[-1])
    draw.text((2, 1), text, fill=TEXT_GRAY, font=font)
    strip = np.asarray(canvas, dtype=np.uint8)[:, :width, None]
    return np.repeat(strip, channels, axis=2)


def column_labels(
    labels: Sequence[str], cell_width: int, sep: int = SEPARATOR_PX, channels: int = 1
) -> np.ndarray:
    """A (LABEL_PX, K·cell_width + (K−1)·sep, channels) uint8 strip with label k centred over
    column k of a montage (text wider than a column is clipped to it)."""
    font = ImageFont.load_default()
    width = len(labels) * (cell_width + sep) - sep
    canvas = Image.new("L", (max(1, width), LABEL_PX), PAGE_GRAY)
    for k, text in enumerate(labels):
        left = k * (cell_width + sep)
        cell = Image.new("L", (cell_width, LABEL_PX), PAGE_GRAY)
        cell_draw = ImageDraw.Draw(cell)
        offset = max(0, (cell_width - int(cell_draw.textlength(text, font=font))) // 2)
        cell_draw.text((offset, 1), text, fill=TEXT_GRAY, font=font)
        canvas.paste(cell, (left, 0))
    strip = np.asarray(canvas, dtype=np.uint8)[:, :, None]
    return np.repeat(strip, channels, axis=2)


def labelled_block(
    cells: np.ndarray, label: str | Sequence[str], scale: int = 1, sep: int = SEPARATOR_PX
) -> np.ndarray:
    """A montage of cells (R, K, C, h, w) with a label strip above it.

    Size: (LABEL_PX + R·scale·h + (R−1)·sep, K·scale·w + (K−1)·sep, C) uint8.
    """
    grid = image_grid(cells, scale, sep)
    return np.concatenate([label_strip(label, grid.shape[1], grid.shape[2]), grid], axis=0)


def as_rgb(array: np.ndarray) -> np.ndarray:
    """(h, w, 1) gray -> (h, w, 3); (h, w, 3) unchanged."""
    return array if array.shape[2] == 3 else np.repeat(array, 3, axis=2)


def pad_to(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad (h, w, C) with the page colour on the bottom and right to (height, width, C)."""
    out = np.full((height, width, array.shape[2]), PAGE_GRAY, dtype=np.uint8)
    out[: array.shape[0], : array.shape[1]] = array
    return out


def tile(blocks: Sequence[np.ndarray], columns: int = 1, gap: int = BLOCK_GAP_PX) -> np.ndarray:
    """Lay blocks out left to right in rows of ``columns``, ``gap`` px apart, page background.

    Blocks of one row are padded to the row's tallest, rows to the widest row; mixed gray and
    RGB blocks give an RGB result. With ``columns=1`` this is a vertical stack:
    height Σ h_i + (n−1)·gap, width max w_i.
    """
    if not blocks:
        raise ValueError("tile needs at least one block")
    if any(b.shape[2] == 3 for b in blocks):
        blocks = [as_rgb(b) for b in blocks]
    rows = [_hstack(blocks[i : i + columns], gap) for i in range(0, len(blocks), columns)]
    width = max(r.shape[1] for r in rows)
    spaced: list[np.ndarray] = []
    for row in rows:
        spaced += [pad_to(row, row.shape[0] + gap, width)]
    return np.concatenate(spaced, axis=0)[: -gap or None]


def _hstack(blocks: Sequence[np.ndarray], gap: int) -> np.ndarray:
    height = max(b.shape[0] for b in blocks)
    padded = [pad_to(b, height, b.shape[1] + gap) for b in blocks]
    return np.concatenate(padded, axis=1)[:, : -gap or None]


def png_bytes(array: np.ndarray) -> bytes:
    """Encode (h, w, 1|3) uint8 as PNG (grayscale or RGB)."""
    buffer = io.BytesIO()
    _pil_image(array).save(buffer, format="PNG")
    return buffer.getvalue()


def gif_bytes(frames: Sequence[np.ndarray], frame_ms: int = FRAME_MS) -> bytes:
    """Encode equally sized (h, w, 1|3) uint8 frames as an endlessly looping animated GIF.

    Consecutive identical frames would be merged by PIL, so callers keep frames distinct
    (traversal frames carry their step number).
    """
    images = [_pil_image(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="GIF", save_all=True, append_images=images[1:], loop=0, duration=frame_ms
    )
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes (e.g. the pulse plot) -> (h, w, 3) uint8 RGB, transparency on white."""
    with Image.open(io.BytesIO(data)) as image:
        rgba = image.convert("RGBA")
    page = Image.new("RGBA", rgba.size, (PAGE_GRAY,) * 4)
    return np.asarray(Image.alpha_composite(page, rgba).convert("RGB"), dtype=np.uint8)


def _pil_image(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ValueError(f"expected (h, w, 1|3) uint8, got {array.shape} {array.dtype}")
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
