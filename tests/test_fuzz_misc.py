"""Issue 24's smaller classes, beside tests/test_fuzz.py: a disk without room for the image
cache is one warning and images drawn on demand (never a SIGBUS through its memory map), and
every objective fits the decoder noise once per step, in the pass that trains the VAE."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from vaetool.config import ModelConfig
from vaetool.data import cache as cache_module
from vaetool.data.cache import RowCache, open_cache
from vaetool.data.dsprites import DSpritesData, generator_key, render
from vaetool.errors import VaetoolWarning
from vaetool.models import build_model
from vaetool.objectives import OBJECTIVES, TrainContext, build_objective

CPU = torch.device("cpu")


def _no_room(fd: int, offset: int, length: int) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _expected(data: DSpritesData, indices: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(render(data.classes_of(indices))).float()[:, None]


# -- the image cache on a full disk -------------------------------------------------------------


def test_the_cache_file_gets_real_blocks(tmp_path: Path) -> None:
    """The whole file is reserved when opened, not a sparse file whose pages the memory map
    would fault in later (a SIGBUS when the disk is full)."""
    cache = RowCache(tmp_path / "c.bits", 4096, 4096, binary=True)
    size = 4096 * (1 + 512)
    stat = os.stat(tmp_path / "c.bits")
    assert stat.st_size == size and stat.st_blocks * 512 >= size
    cache.close()


def test_no_room_for_the_cache_draws_on_demand(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VAETOOL_CACHE", str(tmp_path))
    monkeypatch.setattr(cache_module.os, "posix_fallocate", _no_room, raising=False)
    data = DSpritesData()
    indices = np.array([3, 700_000, 3, 123_456])
    path = tmp_path / f"{generator_key()}.bits"
    with pytest.warns(VaetoolWarning) as caught:
        got = data.images(indices)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert str(path) in messages[0] and "No space left on device" in messages[0]
    assert "making images on demand" in messages[0]
    assert torch.equal(got, _expected(data, indices))
    assert data._cache is None and not path.exists()  # nothing left taking the space
    assert torch.equal(data.images(indices[:2]), _expected(data, indices[:2]))  # no 2nd warning


def test_a_sparse_cache_left_by_an_older_version_is_reserved_or_left(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A file of the right size but with holes (what earlier versions made) is a SIGBUS risk
    too: it is reserved when opened, and kept (its rows are good) when that fails."""
    path = tmp_path / "c.u8"
    with open(path, "wb") as handle:
        handle.truncate(8 * (1 + 16))
    monkeypatch.setenv("VAETOOL_CACHE", str(tmp_path))
    monkeypatch.setattr(cache_module.os, "posix_fallocate", _no_room, raising=False)
    with pytest.warns(VaetoolWarning, match=f"{path}.*No space left"):
        assert open_cache("c.u8", 8, 16) is None
    assert path.stat().st_size == 8 * 17  # left in place


def test_a_short_write_is_a_full_disk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A write the disk takes only part of is an OSError, said once; the images still come."""
    monkeypatch.setenv("VAETOOL_CACHE", str(tmp_path))
    data = DSpritesData()
    assert data._cache is not None
    monkeypatch.setattr(cache_module.os, "pwrite", lambda fd, payload, offset: 0)
    indices = np.array([11, 400_001])
    with pytest.warns(VaetoolWarning, match="could not store images.*No space left"):
        got = data.images(indices)
    assert torch.equal(got, _expected(data, indices)) and data._cache is None


_FULL_DISK = """
import sys, warnings
import numpy as np
from vaetool.data.dsprites import DSpritesData, render
data = DSpritesData()
indices = np.array([0, 5000, 737279])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    images = data.images(indices).numpy()[:, 0].astype(bool)
assert np.array_equal(images, render(data.classes_of(indices))), "wrong images"
print("\\n".join(str(w.message) for w in caught))
"""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
def test_a_really_full_tmpfs_is_a_warning_not_a_sigbus(tmp_path: Path) -> None:
    """The issue's case on a real file system: a 1 MB tmpfs filled to the brim (mounted in a
    user namespace; skipped where the system does not allow one). Before the fix, a read of the
    sparse cache through its map faulted a page tmpfs could not give: exit 135, no message."""
    mount, script = tmp_path / "fs", tmp_path / "draw.py"
    mount.mkdir()
    script.write_text(_FULL_DISK)
    shell = textwrap.dedent(f"""
        mount -t tmpfs -o size=1m tmpfs {mount} || exit 77
        mkdir {mount}/cache
        dd if=/dev/zero of={mount}/fill bs=64k 2>/dev/null
        VAETOOL_CACHE={mount}/cache {sys.executable} {script}
    """)
    run = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", shell],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    if run.returncode == 77 or "unshare:" in run.stderr:
        pytest.skip(f"no tmpfs in a user namespace here: {run.stderr.strip()[:200]}")
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    assert "unusable" in run.stdout and "No space left on device" in run.stdout


# -- the decoder noise is fitted once per step -----------------------------------------------------


NOISE = {
    "gaussian_learned": {"noise_fit": "closed", "noise_warmup": 2, "sigma2": 0.5},
    "mog2": {},
}


@pytest.fixture()
def grey_batch() -> torch.Tensor:
    return torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(4))


def _noisy_objective(name: str, likelihood: str) -> torch.nn.Module:
    torch.manual_seed(2)
    config = ModelConfig("mlp", (1, 8, 8), latents=3, hidden=16, likelihood=likelihood,
                         likelihood_options=dict(NOISE[likelihood]))  # fmt: skip
    return build_objective(name, {}, build_model(config), TrainContext(64, 1, 1e-3, CPU))


@pytest.mark.parametrize("likelihood", sorted(NOISE))
@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_every_objective_fits_the_noise_once_per_step(
    name: str, likelihood: str, grey_batch: torch.Tensor
) -> None:
    """vmi ran its VAE forward twice per step and fitted the noise in both: ‹noise_warmup›
    lasted half its steps and mog2 ran two EM iterations per batch."""
    objective = _noisy_objective(name, likelihood)
    noise = objective.vae.likelihood
    fitted = noise.fit_noise
    calls: list[int] = []
    noise.fit_noise = lambda params, x: calls.append(1) or fitted(params, x)
    for step in range(1, 4):
        objective.train_step(grey_batch)
        assert len(calls) == step, f"{name}: {len(calls)} noise fits after {step} steps"
    if likelihood == "gaussian_learned":  # the warm-up holds σ² for its two steps
        assert int(noise.fits) == 3
    objective.eval()
    objective.eval_terms(grey_batch)
    assert len(calls) == 3  # validation never fits


def test_the_warmup_holds_sigma2_for_its_steps_under_vmi(grey_batch: torch.Tensor) -> None:
    objective = _noisy_objective("vmi", "gaussian_learned")
    for _ in range(2):
        objective.train_step(grey_batch)
    assert float(objective.vae.likelihood.sigma2) == 0.5  # still the start value
    terms = objective.train_step(grey_batch)
    assert float(objective.vae.likelihood.sigma2) != 0.5  # fitted on the third step
    assert float(terms["sigma2"]) == pytest.approx(float(objective.vae.likelihood.sigma2))
