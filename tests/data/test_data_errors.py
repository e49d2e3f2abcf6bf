"""Every bad input raises DataError / ConfigError with one line naming the file or option."""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vaetool.data import FolderData, load_dataset
from vaetool.errors import ConfigError, DataError, VaetoolError


def raises(kind: type[VaetoolError], spec: str, pattern: str) -> VaetoolError:
    with pytest.raises(kind, match=pattern) as info:
        load_dataset(spec)
    assert "\n" not in str(info.value)
    return info.value


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("cifar", r"unknown dataset 'cifar' \(data\); expected one of: dsprites, folder, idx"),
        ("", r"dataset spec '': expected one of dsprites, folder"),
        ("idx", r"'idx' needs a DIR: expected idx:DIR"),
        ("npz", r"expected npz:FILE"),
        ("folder:", r"expected folder:DIR"),
        ("mnist5k:/tmp/x", r"mnist5k takes no argument"),
    ],
)
def test_bad_specs(spec: str, pattern: str) -> None:
    raises(ConfigError, spec, pattern)


# ---- idx -------------------------------------------------------------------------------------


def test_idx_missing_or_empty_dir(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    raises(
        DataError,
        f"idx:{missing}",
        rf"{re.escape(str(missing))}: no such directory.*"
        r"train-images-idx3-ubyte",
    )
    raises(DataError, f"idx:{tmp_path}", r"no IDX image files; expected .*t10k-images-idx3-ubyte")


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated(tmp_path: Path, write_idx: Callable[..., Path], gz: bool) -> None:
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    path = write_idx(tmp_path, name, np.zeros((4, 5, 5), np.uint8), 0x803)
    data = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
    opener = gzip.open if gz else open
    with opener(path, "wb") as fh:
        fh.write(data[:-7])
    raises(
        DataError,
        f"idx:{tmp_path}",
        rf"{name}: truncated IDX file of 109 bytes; "
        r"expected 116 bytes for dims \(4, 5, 5\)",
    )
    with opener(path, "wb") as fh:
        fh.write(data[:9])
    raises(DataError, f"idx:{tmp_path}", rf"{name}: truncated .* expected a 16-byte header")


def test_idx_bad_files(tmp_path: Path, write_idx: Callable[..., Path]) -> None:
    write_idx(tmp_path, "train-images-idx3-ubyte", np.zeros((4,), np.uint8), 0x801)
    raises(
        DataError,
        f"idx:{tmp_path}",
        r"train-images-idx3-ubyte: IDX magic number 0x00000801; "
        r"expected 0x00000803",
    )
    write_idx(tmp_path, "train-images-idx3-ubyte", np.zeros((4, 2, 2), np.uint8), 0x803)
    write_idx(tmp_path, "train-labels-idx1-ubyte", np.zeros((3,), np.uint8), 0x801)
    raises(DataError, f"idx:{tmp_path}", r"train-labels-idx1-ubyte: 3 labels for 4 images")
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"this is not gzip data")
    raises(DataError, f"idx:{tmp_path}", r"t10k-images-idx3-ubyte.gz: cannot read")


def test_idx_inconsistent_parts(tmp_path: Path, write_idx: Callable[..., Path]) -> None:
    write_idx(tmp_path, "train-images-idx3-ubyte", np.zeros((4, 2, 2), np.uint8), 0x803)
    write_idx(tmp_path, "t10k-images-idx3-ubyte", np.zeros((1, 3, 3), np.uint8), 0x803)
    raises(DataError, f"idx:{tmp_path}", r"differ in size \(2x2 vs 3x3\)")
    write_idx(tmp_path, "t10k-images-idx3-ubyte", np.zeros((1, 2, 2), np.uint8), 0x803)
    write_idx(tmp_path, "train-labels-idx1-ubyte", np.zeros((4,), np.uint8), 0x801)
    raises(DataError, f"idx:{tmp_path}", r"label file found for only one of train/t10k")


# ---- npz -------------------------------------------------------------------------------------


def test_npz_not_an_npz(tmp_path: Path) -> None:
    missing = tmp_path / "missing.npz"
    raises(
        DataError,
        f"npz:{missing}",
        rf"{re.escape(str(missing))}: no such file; expected an "
        r"\.npz with array 'x'",
    )
    text = tmp_path / "text.npz"
    text.write_text("hello")
    raises(DataError, f"npz:{text}", r"text.npz: not a readable \.npz")
    single = tmp_path / "single.npz"
    with open(single, "wb") as fh:
        np.save(fh, np.zeros((2, 3, 3)))
    raises(DataError, f"npz:{single}", r"single.npz: is a single \.npy array")


def _npz(tmp_path: Path, **arrays: np.ndarray) -> str:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


BAD_NPZ = {
    "no-x": ({"images": np.zeros((2, 3, 3))}, r"bad.npz: no array 'x' \(found 'images'\)"),
    "1d": ({"x": np.zeros(5)}, r"bad.npz: array 'x' has shape \(5,\); expected \(N,H,W\)"),
    "5d": ({"x": np.zeros((2, 1, 3, 3, 1))}, r"shape \(2, 1, 3, 3, 1\); expected"),
    "channels": ({"x": np.zeros((2, 5, 5, 5))}, r"shape \(2, 5, 5, 5\); expected .*C in \{1,3\}"),
    "empty": ({"x": np.zeros((0, 4, 4))}, r"shape \(0, 1, 4, 4\); expected at least one image"),
    "range": ({"x": np.full((2, 3, 3), 255.0)}, r"values outside \[0, 1\] \(min 255, max 255\)"),
    "negative": ({"x": np.full((2, 3, 3), -0.5)}, r"values outside \[0, 1\]"),
    "nan": ({"x": np.full((2, 3, 3), np.nan)}, r"bad.npz: array 'x' contains NaN"),
    "int64": ({"x": np.zeros((2, 3, 3), np.int64)}, r"dtype int64; expected uint8"),
    "pickled": ({"x": np.array([None, 1], dtype=object)}, r"'x' cannot be read without pickle"),
    "y-length": (
        {"x": np.zeros((3, 2, 2), np.uint8), "y": np.arange(2)},
        r"bad.npz: array 'y' has shape \(2,\); expected \(3,\)",
    ),
    "y-float": (
        {"x": np.zeros((3, 2, 2), np.uint8), "y": np.zeros(3)},
        r"array 'y' has dtype float64; expected integer labels",
    ),
}


@pytest.mark.parametrize("case", list(BAD_NPZ))
def test_npz_bad_contents(tmp_path: Path, case: str) -> None:
    arrays, pattern = BAD_NPZ[case]
    raises(DataError, _npz(tmp_path, **arrays), pattern)


# ---- folder ----------------------------------------------------------------------------------


def test_folder_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    raises(DataError, f"folder:{missing}", rf"{re.escape(str(missing))}: no such directory")
    (tmp_path / "readme.txt").write_text("x")
    raises(DataError, f"folder:{tmp_path}", r"no image files; expected files ending in \.png")
    (tmp_path / "a.png").write_bytes(b"not a png")
    raises(DataError, f"folder:{tmp_path}", r"a.png: cannot read image")
    with pytest.raises(ConfigError, match="image_size=0: expected a positive integer"):
        FolderData(tmp_path, image_size=0)


def test_folder_bad_image_at_load_time(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    good = (tmp_path / "a.png").read_bytes()
    (tmp_path / "b.png").write_bytes(good[: len(good) // 2])  # truncated
    data = load_dataset(f"folder:{tmp_path}")
    assert data.images(np.array([0])).shape == (1, 1, 64, 64)
    with pytest.raises(DataError, match=r"b.png: cannot read image"):
        data.images(np.array([0, 1]))


# ---- dsprites file ---------------------------------------------------------------------------


def test_dsprites_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "dsprites.npz"
    raises(DataError, f"dsprites:{missing}", r"dsprites.npz: no such file; expected the official")
    latents = np.zeros((2, 6))
    np.savez(missing, latents_values=latents, latents_classes=latents)
    raises(DataError, f"dsprites:{missing}", r"no array 'imgs' \(found")
    np.savez(
        missing,
        imgs=np.zeros((2, 4, 4), np.uint8),
        latents_values=latents,
        latents_classes=np.zeros((3, 6)),
    )
    raises(
        DataError, f"dsprites:{missing}", r"'latents_classes' has shape \(3, 6\); expected \(2, 6\)"
    )
    np.savez(missing, imgs=np.zeros((2, 4, 4)), latents_values=latents, latents_classes=latents)
    raises(DataError, f"dsprites:{missing}", r"'imgs' is float64 \(2, 4, 4\); expected uint8")
