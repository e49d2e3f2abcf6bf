"""Each dataset loader on small real files written into tmp_path (and the embedded mnist5k)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaetool.data import DATASETS, ArrayData, FolderData, ImageData, factor_classes, load_dataset


def assert_same_data(a: ImageData, b: ImageData) -> None:
    assert len(a) == len(b) and a.shape == b.shape and a.spec == b.spec
    idx = np.arange(len(a))
    assert torch.equal(a.images(idx), b.images(idx))


def test_registry_names() -> None:
    assert DATASETS.names() == ["dsprites", "folder", "idx", "mnist5k", "npz"]


def test_mnist5k() -> None:
    data = load_dataset("mnist5k")
    assert isinstance(data, ArrayData) and data.spec == "mnist5k"
    assert len(data) == 5000 and data.shape == (1, 28, 28)
    pixels = data.pixels()
    assert pixels.dtype == torch.uint8 and pixels.shape == (5000, 1, 28, 28)
    assert data.labels is not None and data.labels.dtype == np.int64
    assert np.bincount(data.labels).tolist() == [500] * 10
    images = data.images(np.arange(0, 5000, 7))
    assert images.dtype == torch.float32 and images.shape == (715, 1, 28, 28)
    assert images.min() == 0.0 and images.max() == 1.0
    assert 0.05 < float(images.mean()) < 0.25  # digits: mostly black background
    assert data.factors is None and factor_classes(data) is None


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dotted", [False, True])
def test_idx(mnist_like: Callable[..., Path], gz: bool, dotted: bool) -> None:
    directory = mnist_like(gz=gz, dotted=dotted)
    data = load_dataset(f"idx:{directory}")
    assert data.spec == f"idx:{directory.resolve()}"
    assert len(data) == 8 and data.shape == (1, 4, 6)
    assert data.labels is not None and data.labels.tolist() == list(range(8))
    pixels = data.pixels()
    assert pixels.dtype == torch.uint8
    expected = np.arange(8)[:, None, None, None] * 10 + np.arange(6)  # train first, then t10k
    assert np.array_equal(pixels.numpy(), np.broadcast_to(expected, (8, 1, 4, 6)))
    assert torch.allclose(data.images(np.array([7])), pixels[7:].float() / 255)
    assert_same_data(load_dataset(data.spec), data)


def test_idx_without_labels_and_only_train(
    tmp_path: Path, mnist_like: Callable[..., Path], write_idx: Callable[..., Path]
) -> None:
    assert load_dataset(f"idx:{mnist_like(labels=False)}").labels is None
    images = np.zeros((2, 3, 3), dtype=np.uint8)
    write_idx(tmp_path / "only", "train-images-idx3-ubyte.gz", images, 0x803)
    data = load_dataset(f"idx:{tmp_path / 'only'}")
    assert len(data) == 2 and data.shape == (1, 3, 3) and data.labels is None


NPZ_CASES = {
    "NHW-uint8": ((5, 4, 6), np.uint8, (1, 4, 6)),
    "NHWC1-uint8": ((5, 4, 6, 1), np.uint8, (1, 4, 6)),
    "NHWC3-uint8": ((5, 4, 6, 3), np.uint8, (3, 4, 6)),
    "NCHW1-float32": ((5, 1, 4, 6), np.float32, (1, 4, 6)),
    "NCHW3-float64": ((5, 3, 4, 6), np.float64, (3, 4, 6)),
    "NHWC3-float16": ((5, 4, 6, 3), np.float16, (3, 4, 6)),
    "NHW-float32": ((5, 4, 6), np.float32, (1, 4, 6)),
}


def _npz_array(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    values = np.random.default_rng(0).integers(0, 256, size=shape)
    if dtype == np.uint8:
        return values.astype(np.uint8)
    return (values / 255).astype(dtype)


@pytest.mark.parametrize("case", list(NPZ_CASES))
def test_npz_layouts(tmp_path: Path, case: str) -> None:
    shape, dtype, chw = NPZ_CASES[case]
    x = _npz_array(shape, dtype)
    path = tmp_path / "data.npz"
    np.savez(path, x=x, y=np.arange(5, dtype=np.int32))
    data = load_dataset(f"npz:{path}")
    assert data.spec == f"npz:{path.resolve()}" and data.shape == chw and len(data) == 5
    assert data.labels is not None and data.labels.dtype == np.int64
    assert data.labels.tolist() == [0, 1, 2, 3, 4]
    want = x[:, None] if x.ndim == 3 else x
    if x.ndim == 4 and shape[1] not in (1, 3):
        want = x.transpose(0, 3, 1, 2)
    want = want.astype(np.float64) / (255 if dtype == np.uint8 else 1)
    got = data.images(np.arange(5)).numpy()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert data.pixels().dtype == (torch.uint8 if dtype == np.uint8 else torch.float32)
    assert_same_data(load_dataset(data.spec), data)


def test_npz_bool_without_labels(tmp_path: Path) -> None:
    x = np.zeros((3, 5, 5), dtype=bool)
    x[:, 2, 2] = True
    np.savez_compressed(tmp_path / "b.npz", x=x)
    data = load_dataset(f"npz:{tmp_path / 'b.npz'}")
    assert data.labels is None and data.shape == (1, 5, 5)
    images = data.images(np.arange(3))
    assert images.sum() == 3 and images[0, 0, 2, 2] == 1.0


def _save(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def test_folder_rgb_crop_and_resize(tmp_path: Path) -> None:
    bands = np.zeros((30, 90, 3), dtype=np.uint8)  # wide: red | green | blue thirds
    bands[:, :30, 0] = bands[:, 30:60, 1] = bands[:, 60:, 2] = 255
    _save(tmp_path / "a_wide.png", bands)
    tall = np.zeros((300, 100, 3), dtype=np.uint8)  # tall: white | grey | white thirds
    tall[:100] = tall[200:] = 255
    tall[100:200] = 128
    _save(tmp_path / "B_tall.BMP", tall)
    _save(tmp_path / "c_gray.jpg", np.full((70, 70), 200, dtype=np.uint8))  # converted to RGB
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    _save(tmp_path / "sub" / "ignored.png", bands)
    data = load_dataset(f"folder:{tmp_path}")
    assert isinstance(data, FolderData) and data.spec == f"folder:{tmp_path.resolve()}"
    assert [p.name for p in data.files] == ["B_tall.BMP", "a_wide.png", "c_gray.jpg"]
    assert len(data) == 3 and data.shape == (3, 64, 64) and data.labels is None
    assert data.pixels() is None  # decoded lazily
    images = data.images(np.array([1, 0, 2]))
    assert images.shape == (3, 3, 64, 64) and images.dtype == torch.float32
    green = torch.tensor([0.0, 1.0, 0.0])[:, None, None].expand(3, 64, 64)
    assert torch.allclose(images[0], green, atol=2 / 255)  # only the centre square survives
    assert torch.allclose(images[1], torch.full((3, 64, 64), 128 / 255), atol=2 / 255)
    assert torch.allclose(images[2], torch.full((3, 64, 64), 200 / 255), atol=3 / 255)


def test_folder_gray_and_size(tmp_path: Path) -> None:
    ramp = np.tile(np.arange(0, 256, 2, dtype=np.uint8), (128, 1))  # 128x128 horizontal ramp
    _save(tmp_path / "0.png", ramp)
    _save(tmp_path / "1.gif", ramp[::-1, ::-1].copy())
    _save(tmp_path / "2.webp", np.zeros((40, 40, 3), dtype=np.uint8))  # RGB -> converted to L
    data = load_dataset(f"folder:{tmp_path}")
    assert data.shape == (1, 64, 64) and len(data) == 3
    images = data.images(np.arange(3))
    row = images[0, 0, 10].numpy()
    assert np.all(np.diff(row) > 0)  # box-filtered ramp stays increasing left to right
    assert images[1, 0, 10, 0] > images[1, 0, 10, -1]
    assert images[2].max() == 0.0
    small = FolderData(tmp_path, image_size=16)
    assert small.shape == (1, 16, 16) and small.images(np.array([0])).shape == (1, 1, 16, 16)


def test_dsprites_file(tmp_path: Path) -> None:
    n = 6
    classes = np.zeros((n, 6), dtype=np.int64)
    classes[:, 1] = [0, 1, 2, 0, 1, 2]
    classes[:, 5] = np.arange(n)
    values = classes.astype(np.float64)
    values[:, 1] += 1  # shape values 1..3
    imgs = np.zeros((n, 64, 64), dtype=np.uint8)
    imgs[np.arange(n), 10, np.arange(n)] = 1
    metadata = np.array({"date": "pickled on purpose"}, dtype=object)
    path = tmp_path / "dsprites_ndarray_tiny.npz"
    np.savez(path, imgs=imgs, latents_values=values, latents_classes=classes, metadata=metadata)
    data = load_dataset(f"dsprites:{path}")
    assert data.spec == f"dsprites:{path.resolve()}" and len(data) == n
    assert data.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert np.array_equal(data.factors, values[:, 1:]) and data.factors.dtype == np.float64
    assert data.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert np.array_equal(factor_classes(data), classes[:, 1:])
    assert data.pixels().max() == 255
    images = data.images(np.arange(n))
    assert images.sum() == n and images[3, 0, 10, 3] == 1.0
    assert_same_data(load_dataset(data.spec), data)


def test_factor_classes_ranks_values() -> None:
    pixels = torch.zeros((4, 1, 2, 2), dtype=torch.uint8)
    factors = np.array([[0.5, 3.0], [1.0, 3.0], [0.5, -1.0], [0.75, 3.0]])
    data = ArrayData("x", pixels, factors=factors, factor_names=("a", "b"))
    assert factor_classes(data).tolist() == [[0, 1], [2, 1], [0, 0], [1, 1]]
