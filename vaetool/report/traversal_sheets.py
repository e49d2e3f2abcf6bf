"""Traversal results as pictures: labelled factor sheets, 2-D pair grids, GIF frames (MATH.md §6).

Layouts (geometry of blocks and stacking in :mod:`vaetool.report.images`):

- factor sheet: [pulse plot] + caption strip + one block per factor (rows = seeds, columns =
  values; label ``factor h   I = ... nats``), in the traversal's factor order (by I_h), stacked
  with BLOCK_GAP_PX between parts (paper 000, Figs. 1, 3, 6, 7);
- pair sheet: caption + one T × T block per seed (rows sweep the first factor, columns the
  second; paper 001, Fig. 2), up to ``columns`` blocks side by side;
- GIF frames: one per step; each frame is a caption with the step and value, then one row of
  all seeds per factor.
"""

from __future__ import annotations

import numpy as np

from vaetool.analysis.ranking import Ranking
from vaetool.analysis.traversal import CodeTraversal, FactorTraversal, PairTraversal
from vaetool.report.figures import pulse_png
from vaetool.report.images import (
    BLOCK_GAP_PX,
    LABEL_PX,
    SEPARATOR_PX,
    decode_png,
    default_scale,
    label_strip,
    labelled_block,
    tile,
)

PAIR_COLUMNS = 4  # seed grids side by side in a pair sheet


MAX_SHEET_PIXELS = 60_000_000  # larger pictures take minutes to draw and nobody can view them


def sheet_pixels(
    blocks: int, rows: int, columns: int, image_hw: tuple[int, int], scale: int
) -> int:
    """Pixels of a sheet of ``blocks`` montages of ``rows`` × ``columns`` cells (geometry of
    vaetool.report.images, without the optional pulse plot): what a traversal would draw."""
    h, w = image_hw
    block_height = LABEL_PX + rows * scale * h + (rows - 1) * SEPARATOR_PX
    width = columns * scale * w + (columns - 1) * SEPARATOR_PX
    return (LABEL_PX + blocks * (block_height + BLOCK_GAP_PX)) * width


def factor_label(factor: int, mi: float | None) -> list[str]:
    """Label texts for one factor's block, longest first (the strip uses the first that fits)."""
    if mi is None:
        return [f"factor {factor}", f"f{factor}"]
    return [f"factor {factor}   I = {mi:.2f} nats", f"f{factor}  I={mi:.2f}", f"f{factor}"]


def range_caption(offsets: np.ndarray, relative: bool, rows: str) -> list[str]:
    """Caption texts saying what the columns and rows are, longest first."""
    lo, hi, steps = float(offsets[0]), float(offsets[-1]), len(offsets)
    sweep = f"mu_h + [{lo:g}, {hi:g}]" if relative else f"[{lo:g}, {hi:g}]"
    return [
        f"columns: z_h over {sweep} in {steps} steps; rows: {rows}",
        f"z_h over {sweep}, {steps} steps",
        sweep,
    ]


def factor_sheet(
    traversal: FactorTraversal, scale: int | None = None, pulse: Ranking | None = None
) -> np.ndarray:
    """The sheet of all blocks of ``traversal``: uint8 (height, width, C).

    One block per factor, in ``traversal.factors`` order, each (LABEL_PX + S·cell + (S−1)·sep,
    T·cell + (T−1)·sep); the pulse plot of ``pulse`` (paper 000, Fig. 1) on top when given,
    drawn at about the blocks' width (the sheet is then RGB).
    """
    F, S, _, C, h, w = traversal.images.shape
    scale = scale or default_scale(h, w)
    mi = traversal.mi or (None,) * F
    blocks = [
        labelled_block(traversal.images[i].numpy(), factor_label(f, mi[i]), scale)
        for i, f in enumerate(traversal.factors)
    ]
    rows = _seed_text(traversal.seed_rows, S)
    caption = label_strip(
        range_caption(traversal.offsets.numpy(), traversal.relative, rows), blocks[0].shape[1], C
    )
    parts = [caption, *blocks]
    if pulse is not None:
        parts.insert(0, decode_png(pulse_png(pulse, width_px=blocks[0].shape[1])))
    return tile(parts, columns=1)


def pair_sheet(
    traversal: PairTraversal, scale: int | None = None, columns: int = PAIR_COLUMNS
) -> np.ndarray:
    """One T × T block per seed (rows: factors[0], columns: factors[1]), captioned: uint8."""
    S, _, _, C, h, w = traversal.images.shape
    scale = scale or default_scale(h, w)
    rows = traversal.seed_rows or tuple(range(S))
    blocks = [
        labelled_block(traversal.images[s].numpy(), [f"test image {r}", f"#{r}"], scale)
        for s, r in enumerate(rows)
    ]
    body = tile(blocks, columns=min(S, columns))
    f1, f2 = traversal.factors
    mi1, mi2 = traversal.mi or (None, None)
    sweep = range_caption(traversal.offsets.numpy(), traversal.relative, "")[-1]
    caption = [
        f"rows: {factor_label(f1, mi1)[0]}; columns: {factor_label(f2, mi2)[0]}; z over {sweep}",
        f"rows f{f1}, columns f{f2}, z over {sweep}",
        f"f{f1} x f{f2}",
    ]
    return tile([label_strip(caption, body.shape[1], C), body], columns=1)


def code_sheet(traversal: CodeTraversal, scale: int | None = None) -> np.ndarray:
    """Paper 001 Figs. 4–5: one row per seed — the seed image, then its Gaussian part decoded
    with each of the K classes of the code — captioned: uint8."""
    S, columns, C, h, w = traversal.images.shape
    scale = scale or default_scale(h, w)
    rows = traversal.seed_rows or tuple(range(S))
    body = labelled_block(traversal.images.numpy(), [f"seeds: {_seed_text(rows, S)}", "seeds"],
                          scale)  # fmt: skip
    mi = "" if traversal.mi is None else f"; I(x; c) = {traversal.mi:.3g} nats"
    caption = [
        f"rows: seeds (first column: the image); columns: code class 1..{columns - 1}{mi}",
        f"columns: code class 1..{columns - 1}",
        "code classes",
    ]
    return tile([label_strip(caption, body.shape[1], C), body], columns=1)


def factor_frames(traversal: FactorTraversal, scale: int | None = None) -> list[np.ndarray]:
    """One frame per step (T frames): a caption with the step and value, then per factor a
    labelled row of all S seeds at that step. Each frame uint8 (height, width, C)."""
    F, _, T, C, h, w = traversal.images.shape
    scale = scale or default_scale(h, w)
    mi = traversal.mi or (None,) * F
    labels = [factor_label(f, mi[i]) for i, f in enumerate(traversal.factors)]
    frames = []
    for t in range(T):
        blocks = [
            labelled_block(traversal.images[i, :, t].unsqueeze(0).numpy(), labels[i], scale)
            for i in range(F)
        ]
        caption = label_strip(_step_text(traversal, t), blocks[0].shape[1], C)
        frames.append(tile([caption, *blocks], columns=1))
    return frames


def _step_text(traversal: FactorTraversal, t: int) -> list[str]:
    steps, value = traversal.offsets.numel(), float(traversal.offsets[t])
    z = f"mu_h {value:+.2f}" if traversal.relative else f"{value:+.2f}"
    return [f"step {t + 1}/{steps}   z_h = {z}", f"{t + 1}/{steps}  {z}", f"{t + 1}/{steps}"]


def _seed_text(seed_rows: tuple[int, ...] | None, count: int) -> str:
    if seed_rows is None:
        return f"{count} seed images"
    if seed_rows == tuple(range(count)):
        return f"the first {count} test images"
    return "test images " + ", ".join(str(r) for r in seed_rows)
