"""torchrun data parallelism on a CPU (issue 12): two gloo processes train a run whose checkpoint
loads, and q* fitted by two ranks equals the single-process q* to 1e-12."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vaetool
from vaetool.store.sidecar import load_sidecar

pytestmark = pytest.mark.slow
TRAIN = ["train", "--subset", "600", "--latents", "4", "--epochs", "2", "--batch-size", "50",
         "--device", "cpu"]  # fmt: skip


def _torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--standalone", "-m", "vaetool", *args]  # fmt: skip
    return subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )  # torchrun signals its process group


def test_ddp_training_writes_one_loadable_run(tmp_path: Path, cli) -> None:
    proc = _torchrun(*TRAIN, "--out", "ddp", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("checkpoint  ddp/model.safetensors") == 1  # rank 0 only prints
    model = vaetool.load(tmp_path / "ddp" / "model.safetensors")
    info = vaetool.read_info(tmp_path / "ddp" / "model.safetensors")
    assert int(info.summary["kept_epoch"]) == 2
    rows = (tmp_path / "ddp" / "history.csv").read_text().splitlines()
    assert len(rows) == 3  # header + 2 epochs, written once
    code, _, err = cli(*TRAIN, "--out", str(tmp_path / "single"))
    assert code == 0, err
    single = vaetool.load(tmp_path / "single" / "model.safetensors")
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert model.encode(x)[0].shape == single.encode(x)[0].shape == (8, 4)
    # same initial weights, averaged gradients of the same global batches: close, not equal
    # (each rank draws its own reparameterisation noise)
    drift = max(
        float((a - b).abs().max())
        for a, b in zip(model.state_dict().values(), single.state_dict().values(), strict=True)
    )
    assert drift < 0.5


def test_ddp_qstar_equals_single_process(trained_run: Path, tmp_path: Path, cli) -> None:
    for name in ("ddp", "one"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(
            (trained_run / "model.safetensors").read_bytes()
        )
    proc = _torchrun("mi", "fit", "ddp/model.safetensors", "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    code, _, err = cli("mi", "fit", str(tmp_path / "one" / "model.safetensors"), "--device", "cpu")
    assert code == 0, err
    ddp, _ = load_sidecar(tmp_path / "ddp" / "model.qstar.safetensors")
    one, _ = load_sidecar(tmp_path / "one" / "model.qstar.safetensors")
    assert ddp.n == one.n
    for field in ("mean", "s2", "mean_mu2", "mean_var", "mean_logvar", "var_mu"):
        a, b = getattr(ddp, field), getattr(one, field)
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_mixture_under_torchrun_is_refused_in_one_line(trained_run: Path, tmp_path: Path) -> None:
    proc = _torchrun("mi", "rank", str(trained_run / "model.safetensors"), "--estimator",
                     "qstar,mixture", "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert proc.returncode != 0
    assert "does not run under torchrun yet" in proc.stderr
