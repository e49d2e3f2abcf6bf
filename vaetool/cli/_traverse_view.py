"""Glue between `vaetool traverse` and the core: output checks, ranking, render, write."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaetool.cli import _console

if TYPE_CHECKING:
    from vaetool.analysis.traversal_plan import TraversalRequest

MAX_SCALE = 32


@dataclass(frozen=True)
class SheetOutput:
    """Where and how the traversal pictures go."""

    path: Path | None = None  # the PNG; None = beside the checkpoint
    gif: bool = False  # also an animated GIF, same name with .gif
    scale: int | None = None  # integer upscale; None = cells of at least 48 px
    force: bool = False  # overwrite existing outputs


def parse_indices(text: str | None) -> tuple[int, ...]:
    """``"0,5,9"`` -> (0, 5, 9); ConfigError on anything but comma-separated integers."""
    from vaetool.errors import ConfigError

    if text is None:
        return ()
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(
            f"--seed-index {text!r}: expected comma-separated integers, e.g. 0,5,9"
        ) from None


def output_paths(checkpoint: Path, pair: tuple[int, int] | None, output: SheetOutput) -> list[Path]:
    """The PNG (and GIF) to write, checked: .png name, writable folder, no overwrite."""
    from vaetool.errors import ConfigError

    if pair is not None and output.gif:
        raise ConfigError("--gif animates one-factor traversals; it cannot be used with --pair")
    if output.scale is not None and not 1 <= output.scale <= MAX_SCALE:
        raise ConfigError(f"--scale {output.scale}: expected an integer from 1 to {MAX_SCALE}")
    name = f"pair-{pair[0]}-{pair[1]}" if pair is not None else "traverse"
    png = output.path or checkpoint.with_name(f"{checkpoint.stem}.{name}.png")
    if png.is_dir():
        raise ConfigError(f"--out {png}: is a folder; expected a .png file name")
    if png.suffix.lower() != ".png":
        raise ConfigError(f"--out {png}: expected a file name ending in .png")
    paths = [png, png.with_suffix(".gif")] if output.gif else [png]
    for path in paths:
        _check_writable(path, output.force)
    return paths


def _check_writable(path: Path, force: bool) -> None:
    from vaetool.errors import ConfigError

    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {path}: {folder} is not a folder")
    if not folder.is_dir():
        raise ConfigError(f"--out {path}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {path}: folder {folder} is not writable")
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; pass --force to overwrite it or choose another --out")


def run_traverse(
    checkpoint: Path, request: TraversalRequest, output: SheetOutput, device: str
) -> None:
    """Check outputs, rank (reusing a q* sidecar), traverse, render, write; paths on stdout."""
    from vaetool.analysis.source import open_source
    from vaetool.analysis.traversal_plan import run_traversal
    from vaetool.checkpoint import read_info
    from vaetool.device import resolve_device
    from vaetool.mi import FitRequest, rank_source

    request.check_latents(read_info(checkpoint).model.latents)
    paths = output_paths(checkpoint, request.pair, output)
    with _console.busy("ranking factors, decoding traversals, drawing"):
        source = open_source(checkpoint, resolve_device(device))  # loaded and hashed once
        ranking, _ = rank_source(source, FitRequest(), threshold=request.threshold)
        assert source.model is not None and source.info is not None  # read_info passed
        traversal = run_traversal(source.model, source.info, request, ranking.mi)
        files = _render(traversal, ranking if request.by_threshold else None, output)
    _write(dict(zip(paths, files, strict=True)))


def _render(traversal: Any, pulse: Any, output: SheetOutput) -> list[bytes]:
    """PNG bytes of the sheet, then the GIF's when asked; all encoded before anything is written."""
    from vaetool.analysis.traversal import PairTraversal
    from vaetool.report.images import gif_bytes, png_bytes
    from vaetool.report.traversal_sheets import factor_frames, factor_sheet, pair_sheet

    if isinstance(traversal, PairTraversal):
        return [png_bytes(pair_sheet(traversal, output.scale))]
    files = [png_bytes(factor_sheet(traversal, output.scale, pulse))]
    if output.gif:
        files.append(gif_bytes(factor_frames(traversal, output.scale)))
    return files


def _write(files: dict[Path, bytes]) -> None:
    from vaetool.atomic import write_atomic

    for path, data in files.items():
        write_atomic(path, data)
        _console.out.print(str(path), markup=False, highlight=False, soft_wrap=True)
