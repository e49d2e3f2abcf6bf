"""Checkpoints: round trip, atomic write, strict and safe loading, clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import vaetool
from vaetool.config import DataConfig, ModelConfig, TrainConfig
from vaetool.errors import CheckpointError
from vaetool.models import build_model
from vaetool.store.checkpoint import CheckpointInfo, load_checkpoint, read_info, save_checkpoint


def _tiny(latents: int = 3) -> tuple[torch.nn.Module, CheckpointInfo]:
    torch.manual_seed(0)
    config = ModelConfig("conv28", (1, 28, 28), latents=latents)
    info = CheckpointInfo(config, DataConfig(), TrainConfig(lr=1e-3), {"note": "test"})
    return build_model(config), info


def test_round_trip_gives_identical_outputs(trained_run: Path) -> None:
    path = trained_run / "model.safetensors"
    model = vaetool.load(path)
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    mu, logvar = model.encode(x)
    copy_path = trained_run.parent / "copy.safetensors"
    save_checkpoint(copy_path, model, read_info(path))
    again = vaetool.load(copy_path)
    mu2, logvar2 = again.encode(x)
    assert torch.equal(mu, mu2) and torch.equal(logvar, logvar2)
    assert torch.equal(model.decode_mean(mu), again.decode_mean(mu2))
    assert not again.training


def test_config_round_trips_through_metadata(tmp_path: Path) -> None:
    model, info = _tiny()
    save_checkpoint(tmp_path / "m.safetensors", model, info)
    assert read_info(tmp_path / "m.safetensors") == info


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    model, info = _tiny()
    target = tmp_path / "m.safetensors"
    save_checkpoint(target, model, info)
    with pytest.raises(CheckpointError, match="force"):
        save_checkpoint(target, model, info)


def test_crash_mid_write_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    model, info = _tiny()
    target = tmp_path / "m.safetensors"
    save_checkpoint(target, model, info)
    before = target.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        save_checkpoint(target, _tiny(latents=5)[0], info, overwrite=True)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_truncated_file_is_rejected(tmp_path: Path, trained_run: Path) -> None:
    raw = (trained_run / "model.safetensors").read_bytes()
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors"):
        vaetool.load(bad)


def test_garbage_file_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "junk.safetensors"
    bad.write_bytes(b"\x00\x01not a safetensors file at all")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        vaetool.load(bad)


def test_foreign_safetensors_is_rejected(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, str(foreign))
    with pytest.raises(CheckpointError, match="without vaetool metadata"):
        vaetool.load(foreign)


def test_mismatched_weights_are_rejected(tmp_path: Path) -> None:
    model, info = _tiny(latents=3)
    wrong = CheckpointInfo(ModelConfig("conv28", (1, 28, 28), latents=4), info.data, info.train)
    save_checkpoint(tmp_path / "m.safetensors", model, wrong)
    with pytest.raises(CheckpointError, match="weights do not match"):
        load_checkpoint(tmp_path / "m.safetensors")


def test_bad_metadata_json_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"vaetool": json.dumps({"format": "x"})})
    with pytest.raises(CheckpointError, match="unreadable vaetool metadata"):
        read_info(path)


def test_corrupt_checkpoint_cli_error_is_one_line(tmp_path: Path, cli) -> None:
    bad = tmp_path / "junk.safetensors"
    bad.write_bytes(b"garbage")
    code, _, err = cli("info", str(bad))
    assert code == 1 and err.count("\n") == 1 and "junk.safetensors" in err


def test_atomic_write_uses_the_usual_file_mode(tmp_path: Path) -> None:
    from vaetool.store.atomic import write_atomic

    mask = os.umask(0o022)
    try:
        path = write_atomic(tmp_path / "f.bin", b"x")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644
