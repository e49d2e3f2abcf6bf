"""Resumable runs (issue 11): a run stopped after any epoch and resumed ends bit-identical (CPU,
fixed seed) to one that was never stopped; a kill -9 loses at most the epoch in progress."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import vaetool
from vaetool.config import DataConfig, ModelConfig, TrainConfig
from vaetool.errors import CheckpointError
from vaetool.workflows import TrainRequest, resume_run, train_run

DATA = DataConfig("mnist5k", subset=500)


class Crash(Exception):
    """Stands for a process dying right after an epoch's state was saved."""


def _request(out: Path, objective: str = "beta_vae", **options: object) -> TrainRequest:
    config = TrainConfig(objective=objective, options=dict(options), epochs=3, batch_size=50)
    return TrainRequest(out, DATA, config, ModelConfig(latents=4), device="cpu")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return vaetool.load(path).state_dict()


SLOW = pytest.mark.slow


CASES = [("beta_vae", {"beta": 2.0}), pytest.param("factor_vae", {"gamma": 10.0}, marks=SLOW)]


@pytest.mark.parametrize(("objective", "options"), CASES)
def test_stopped_then_resumed_equals_uninterrupted(
    tmp_path: Path, objective: str, options: dict
) -> None:
    whole = train_run(_request(tmp_path / "whole", objective, **options))

    def crash_after_first(record) -> None:
        if record.epoch == 1:
            raise Crash

    stopped = tmp_path / "stopped"
    with pytest.raises(Crash):
        train_run(_request(stopped, objective, **options), on_epoch=crash_after_first)
    assert (stopped / "resume.safetensors").is_file() and not (
        stopped / "model.safetensors"
    ).exists()
    resumed = resume_run(stopped, device="cpu")
    assert not (stopped / "resume.safetensors").exists()  # removed when the run finishes
    for name, tensor in _weights(whole.checkpoint).items():
        assert torch.equal(tensor, _weights(resumed.checkpoint)[name]), name

    def losses(path: Path) -> list[list[str]]:  # every column but the timings
        return [line.split(",")[:-2] for line in path.read_text().splitlines()]

    assert losses(stopped / "history.csv") == losses(tmp_path / "whole" / "history.csv")
    assert [r.val for r in resumed.result.history] == [r.val for r in whole.result.history]


def test_resume_refuses_a_finished_run_and_a_folder_without_state(
    tmp_path: Path, fails, cli
) -> None:
    done = train_run(_request(tmp_path / "done"))
    code, out, err = cli("train", "--resume", str(done.checkpoint.parent))  # the README's line
    assert code == 0 and str(done.checkpoint) in out, err
    assert "the run already finished (epochs: 3); nothing to resume" in err
    with pytest.raises(CheckpointError, match="the run finished"):
        resume_run(done.checkpoint.parent)
    assert "no resume.safetensors" in fails("train", "--resume", str(tmp_path))
    code, _, err = cli("train", "--resume", str(tmp_path), "--epochs", "3")  # a usage error
    assert code == 2 and "--epochs: --resume continues the run with its own settings" in err


@pytest.mark.slow
def test_kill_9_loses_at_most_the_epoch_in_progress(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--subset", "500", "--latents", "4", "--epochs", "6", "--batch-size", "50",
            "--device", "cpu"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "vaetool", *args, "--out", str(out)],
                            stderr=subprocess.DEVNULL)  # fmt: skip
    history, deadline = out / "history.csv", time.time() + 120
    while time.time() < deadline and (
        not history.exists() or len(history.read_text().splitlines()) < 3
    ):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = subprocess.run([sys.executable, "-m", "vaetool", "train", "--resume", str(out),
                           "--device", "cpu"], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    whole = tmp_path / "whole"
    subprocess.run([sys.executable, "-m", "vaetool", *args, "--out", str(whole)],
                   capture_output=True, check=True)  # fmt: skip
    for name, tensor in _weights(whole / "model.safetensors").items():
        assert torch.equal(tensor, _weights(out / "model.safetensors")[name]), name
    assert len(history.read_text().splitlines()) == 7  # header + 6 epochs, none twice
