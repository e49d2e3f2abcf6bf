"""The image cache: what it returns is what was made (drawn sprites, decoded files), each image
is made once, a damaged row is made again, and a cache that cannot be used never stops the
work."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from vaetool.data import cache as cache_module
from vaetool.data import dsprites
from vaetool.data.cache import RowCache, cache_dir, open_cache, row_check
from vaetool.data.dsprites import DSpritesData, generator_key, render
from vaetool.errors import VaetoolWarning


class Counting:
    """A draw function that remembers which indices it was asked for."""

    def __init__(self, pixels: int) -> None:
        self.pixels, self.calls = pixels, []

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        self.calls.append(indices.copy())
        mixed = (indices[:, None] + 1) * 2654435761 + np.arange(self.pixels) * 40503
        return (mixed >> 7) % 3 == 0  # an image that depends on its index alone


def test_rows_come_back_as_drawn_and_are_drawn_once(tmp_path: Path) -> None:
    draw = Counting(100)
    cache = RowCache(tmp_path / "c.bits", 50, 100, binary=True)
    first = cache.get(np.array([7, 3, 3, 40, 8]), draw)
    assert len(draw.calls) == 1 and draw.calls[0].tolist() == [3, 7, 8, 40]
    assert np.array_equal(first[1], first[2])  # a repeated index gives the same image
    again = cache.get(np.array([40, 7]), draw)
    assert len(draw.calls) == 1  # nothing drawn the second time
    assert np.array_equal(again, first[[3, 0]])
    cache.close()
    reopened = RowCache(tmp_path / "c.bits", 50, 100, binary=True)  # another process, later
    assert np.array_equal(reopened.get(np.array([3, 8]), draw), first[[1, 4]])
    assert len(draw.calls) == 1
    assert reopened.stored(np.arange(50)).sum() == 4


def test_a_damaged_row_is_drawn_again(tmp_path: Path) -> None:
    draw = Counting(64)
    cache = RowCache(tmp_path / "c.bits", 10, 64, binary=True)
    good = cache.get(np.arange(10), draw)
    # bits of row 4 lost (a crash before they reached the disk) while its check byte landed
    os.pwrite(cache.fd, bytes(cache.row_bytes), 10 + 4 * cache.row_bytes)
    cache.close()
    after = RowCache(tmp_path / "c.bits", 10, 64, binary=True)  # the next process
    assert after.stored(np.arange(10)).tolist() == [i != 4 for i in range(10)]
    assert np.array_equal(after.get(np.arange(10), draw), good)
    assert draw.calls[-1].tolist() == [4]
    assert after.known.all()  # checked once: later reads skip the check


def test_check_bytes_are_never_zero_and_see_position() -> None:
    rows = np.zeros((3, 8), dtype=np.uint8)
    rows[1, 0], rows[2, 1] = 1, 1  # the same byte sum at different places
    checks = row_check(rows)
    assert (checks > 0).all() and len(set(checks.tolist())) == 3


def test_dsprites_from_the_cache_equal_the_generator(image_cache: Path) -> None:
    data = DSpritesData()
    idx = np.random.default_rng(1).integers(0, len(data), 300)
    expected = torch.from_numpy(render(data.classes_of(idx))).float()[:, None]
    assert torch.equal(data.images(idx), expected)  # drawn and stored
    assert torch.equal(DSpritesData().images(idx), expected)  # read back by a new dataset
    assert (image_cache / f"{generator_key()}.bits").is_file()


def test_cache_key_follows_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    before = generator_key()
    assert before.startswith(f"dsprites-v{dsprites.GENERATOR_VERSION}-")
    generator_key.cache_clear()
    monkeypatch.setattr(dsprites, "HEART_TIP", dsprites.HEART_TIP + 0.2)  # a redrawn heart
    try:
        assert generator_key() != before
    finally:
        generator_key.cache_clear()


@pytest.mark.parametrize("value", ["off", "0", ""])
def test_switched_off(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("VAETOOL_CACHE", value)
    assert cache_dir() is None and open_cache("x.bits", 4, 8) is None


def test_default_folder_is_under_the_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAETOOL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert cache_dir() == Path("/somewhere/vaetool")


def test_a_foreign_file_is_left_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VAETOOL_CACHE", str(tmp_path))
    (tmp_path / "x.bits").write_bytes(b"not a cache")
    with pytest.warns(VaetoolWarning, match="11 bytes, expected 8"):
        assert open_cache("x.bits", 4, 8, binary=True) is None
    assert (tmp_path / "x.bits").read_bytes() == b"not a cache"


def test_an_unwritable_folder_warns(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("VAETOOL_CACHE", str(blocker / "sub"))  # a folder under a plain file
    with pytest.warns(VaetoolWarning, match="making images on demand"):
        assert open_cache("x.bits", 4, 8) is None


def test_a_full_disk_falls_back_to_drawing(monkeypatch: pytest.MonkeyPatch) -> None:
    data = DSpritesData()
    idx = np.array([5, 500_000, 123_456])
    assert data._cache is not None

    def full(fd: int, payload: bytes, offset: int) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_module.os, "pwrite", full)
    fresh = np.array([17, 600_001])  # not stored by earlier tests
    with pytest.warns(VaetoolWarning, match="could not store"):
        got = data.images(fresh)
    assert torch.equal(got, torch.from_numpy(render(data.classes_of(fresh))).float()[:, None])
    assert data._cache is None  # the rest of the work goes on without it
    assert data.images(idx).shape == (3, 1, 64, 64)


def test_uint8_rows_are_stored_as_they_are(tmp_path: Path) -> None:
    calls = []

    def make(indices: np.ndarray) -> np.ndarray:
        calls.append(indices.tolist())
        return ((indices[:, None] * 37 + np.arange(12)) % 256).astype(np.uint8)

    cache = RowCache(tmp_path / "c.u8", 20, 12)
    assert cache.row_bytes == 12
    expected = ((np.array([19, 0, 5])[:, None] * 37 + np.arange(12)) % 256).astype(np.uint8)
    first = cache.get(np.array([19, 0, 5]), make)
    assert first.dtype == np.uint8 and np.array_equal(first, expected)
    assert np.array_equal(cache.get(np.array([5, 19]), make), first[[2, 0]])
    assert calls == [[0, 5, 19]]  # made once, in index order
    zero = RowCache(tmp_path / "z.u8", 3, 4)  # an all-black image is a stored row too
    zero.get(np.array([1]), lambda i: np.zeros((len(i), 4), np.uint8))
    assert zero.stored(np.arange(3)).tolist() == [False, True, False]


def _folder(directory: Path, n: int, size: int = 40) -> None:
    from PIL import Image

    directory.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(directory / f"img{i:03d}.png")


def test_a_folder_is_decoded_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from vaetool.data import folder as folder_module
    from vaetool.data.folder import FolderData, load_image

    _folder(tmp_path / "imgs", 12)
    data = FolderData(tmp_path / "imgs", image_size=16)
    first = data.images(np.arange(12))
    expected = np.stack([load_image(f, "RGB", 16) for f in data.files]).transpose(0, 3, 1, 2)
    assert torch.equal(first, torch.from_numpy(expected).float() / 255)

    opened: list[Path] = []
    real = folder_module.load_image
    monkeypatch.setattr(folder_module, "load_image",
                        lambda p, *a: opened.append(p) or real(p, *a))  # fmt: skip
    again = FolderData(tmp_path / "imgs", image_size=16)  # a new process, the next epoch
    assert torch.equal(again.images(np.arange(12)[::-1]), first.flip(0))
    assert opened == []  # no file decoded a second time
    # a rewritten file changes the folder's key: nothing stale is read
    before = again.cache_name()
    _replace = tmp_path / "imgs" / "img003.png"
    from PIL import Image

    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(_replace)
    changed = FolderData(tmp_path / "imgs", image_size=16)
    assert changed.cache_name() != before
    assert float(changed.images(np.array([3])).max()) == 0.0 and opened == [_replace]
