"""Issue 10: nothing clobbered, divergence is a failure, no traceback, no hang, tiny splits,
interrupts, and a newcomer's rough edges — one test per class of failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import vaetool
from vaetool.config import DataConfig, ModelConfig, TrainConfig
from vaetool.errors import VaetoolError

TINY = ["--subset", "500", "--latents", "4", "--device", "cpu"]


@pytest.fixture(scope="module")
def checkpoint(trained_run: Path) -> Path:
    return trained_run / "model.safetensors"


# --- 1. never clobber what is not ours --------------------------------------------------------


def test_output_into_a_fifo_is_written_through(checkpoint: Path, tmp_path: Path, cli) -> None:
    fifo = tmp_path / "p.json"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    code, _, err = cli("info", str(checkpoint), "-f", "json", "-o", str(fifo))
    reader.join(timeout=30)
    assert code == 0, err
    assert json.loads(received[0])["model"]["latents"] == 16  # the reader got the document
    assert fifo.is_fifo()  # still a FIFO, not replaced by a regular file


def test_character_devices_are_written_into_not_replaced(checkpoint: Path, fails, cli) -> None:
    assert cli("info", str(checkpoint), "-f", "json", "-o", "/dev/null")[0] == 0
    assert Path("/dev/null").is_char_device()
    err = fails("info", str(checkpoint), "-f", "json", "-o", "/dev/full")
    assert "No space left on device" in err and "/dev/full" in err
    assert Path("/dev/full").is_char_device()  # even when run as root


def test_dev_stdout_receives_the_output(checkpoint: Path, capfd) -> None:
    from vaetool.cli import main

    assert main(["info", str(checkpoint), "-f", "json", "-o", "/dev/stdout"]) == 0
    assert json.loads(capfd.readouterr().out)["model"]["latents"] == 16


def test_a_symlink_stays_a_link_and_its_target_is_replaced(
    checkpoint: Path, tmp_path: Path, cli
) -> None:
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert cli("info", str(checkpoint), "-f", "json", "-o", str(link))[0] == 0
    assert link.is_symlink() and json.loads(target.read_text())["model"]["latents"] == 16


def test_prune_never_saves_over_its_input(checkpoint: Path, tmp_path: Path, fails) -> None:
    local = tmp_path / "m.safetensors"
    local.write_bytes(checkpoint.read_bytes())
    alias = tmp_path / "alias.safetensors"
    alias.symlink_to(local)
    before = local.read_bytes()
    for target in (local, alias):
        err = fails("prune", str(local), "--top", "10%", "--save", str(target), "--force")
        assert "input checkpoint" in err
    assert local.read_bytes() == before


def test_a_second_train_into_a_locked_run_folder_is_refused(tmp_path: Path, fails) -> None:
    from vaetool.training.run_folder import RunFolder

    out = tmp_path / "run"
    with RunFolder(out):  # a first run holds the folder
        err = fails("train", *TINY, "--epochs", "1", "--out", str(out), "--force")
        assert "another `vaetool train`" in err
    assert not (out / "model.safetensors").exists()


def test_a_checkpoint_appearing_during_training_is_not_overwritten(tmp_path: Path) -> None:
    from vaetool.workflows import TrainRequest, train_run

    out = tmp_path / "run"

    def intruder(record) -> None:
        (out / "model.safetensors").write_bytes(b"someone else's")

    request = TrainRequest(out, DataConfig(subset=500), TrainConfig(epochs=1),
                           ModelConfig(latents=4), device="cpu")  # fmt: skip
    with pytest.raises(VaetoolError, match="appeared while training"):
        train_run(request, on_epoch=intruder)
    assert (out / "model.safetensors").read_bytes() == b"someone else's"


def test_a_failed_train_leaves_no_folder_behind(tmp_path: Path, fails) -> None:
    out = tmp_path / "new" / "run"
    fails("train", "--data", "npz:/nonexistent/x.npz", "--out", str(out))
    assert not (tmp_path / "new").exists()


def test_force_keeps_the_old_run_until_the_new_one_has_an_epoch(tmp_path: Path, cli) -> None:
    out = tmp_path / "run"
    assert cli("train", *TINY, "--epochs", "1", "--out", str(out))[0] == 0
    before = (out / "model.safetensors").read_bytes()
    assert cli("train", "--data", "imagenet", "--out", str(out), "--force")[0] == 1
    assert (out / "model.safetensors").read_bytes() == before  # a failed start loses nothing


# --- 2. divergence is a failure ---------------------------------------------------------------


def test_divergence_exits_non_zero_and_saves_no_finished_model(tmp_path: Path, fails) -> None:
    out = tmp_path / "x"
    err = fails("train", "--lr", "1e6", "--epochs", "1", *TINY, "--out", str(out))
    assert "diverged in epoch 1" in err and "learning rate" in err and "nothing was kept" in err
    assert (
        not (out / "model.safetensors").exists()
        and not (out / "model.partial.safetensors").exists()
    )


def test_divergence_keeps_the_last_finite_epoch_as_partial(tmp_path: Path) -> None:
    """Weights poisoned after epoch 1 make epoch 2's loss NaN: the run stops, keeping epoch 1."""
    from vaetool.training.session import Diverged
    from vaetool.workflows import TrainRequest, train_run

    out, model_holder = tmp_path / "run", {}

    def poison(record) -> None:
        if record.epoch == 1:
            model_holder["hook"] = True

    request = TrainRequest(out, DataConfig(subset=500), TrainConfig(epochs=3),
                           ModelConfig(latents=4), device="cpu")  # fmt: skip
    original = torch.optim.Adam.step

    def step(self, *args, **kwargs):  # after epoch 1, one step writes NaN into a weight
        result = original(self, *args, **kwargs)
        if model_holder.pop("hook", False):
            self.param_groups[0]["params"][0].data.fill_(float("nan"))
        return result

    torch.optim.Adam.step = step
    try:
        with pytest.raises(Diverged, match="diverged in epoch 2") as stop:
            train_run(request, on_epoch=poison)
    finally:
        torch.optim.Adam.step = original
    assert "model.partial.safetensors the weights of epoch 1" in str(stop.value)
    info = vaetool.read_info(out / "model.partial.safetensors")
    assert info.summary["status"] == "diverged" and info.summary["kept_epoch"] == 1
    vaetool.load(out / "model.partial.safetensors")  # finite weights: it loads
    assert len((out / "history.csv").read_text().splitlines()) == 2  # header + epoch 1
    assert not (out / "model.safetensors").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["train", "--beta", "inf"], "--beta inf"),
     (["train", "--likelihood", "gaussian", "--sigma2", "nan"], "--sigma2 nan"),
     (["train", "--lr", "inf"], "--lr inf")],
)  # fmt: skip
def test_non_finite_training_options_are_refused(
    args: list[str], needle: str, fails, tmp_path: Path
) -> None:
    assert needle in fails(*args, "--out", str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


# --- 3. weights are checked when a checkpoint is read -----------------------------------------


def _rewrite(checkpoint: Path, path: Path, change) -> Path:
    with safe_open(str(checkpoint), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        metadata = handle.metadata()
    change(tensors)
    save_file(tensors, str(path), metadata=metadata)
    return path


def test_non_finite_or_integer_weights_are_refused(checkpoint: Path, tmp_path: Path, fails) -> None:
    def nan(t):
        t["model.decoder.input.weight"][0, 0] = float("nan")

    bad = _rewrite(checkpoint, tmp_path / "nan.safetensors", nan)
    for command in (["mi", "rank"], ["prune"], ["traverse"]):
        err = fails(*command, str(bad), "--device", "cpu")
        assert "'decoder.input.weight'" in err and "NaN or inf" in err

    def ints(t):
        t["model.encoder.head.weight"] = t["model.encoder.head.weight"].to(torch.int32)

    bad = _rewrite(checkpoint, tmp_path / "int.safetensors", ints)
    err = fails("mi", "rank", str(bad), "--device", "cpu")
    assert "'encoder.head.weight' has dtype int32; expected float32" in err


# --- 4. no traceback from any option ----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--split-seed", "-5"], "--split-seed -5"),
        (["train", "--seed", "1180591620717411303424"], "--seed 1180591620717411303424"),
        (["train", "--latents", "100000000"], "GB"),
        (["train", "--subset", "1"], "at least 10"),
        (["train", "--subset", "0"], "--subset 0"),
    ],
)
def test_training_options_give_one_line(args, needle, fails, tmp_path: Path) -> None:
    assert needle in fails(*args, "--device", "cpu", "--out", str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("command", "options", "needle"),
    [
        ("mi rank", ["--estimator", "mixture", "--mc-samples", "100000000"], "GB"),
        ("mi rank", ["--seed=-1"], "--seed -1"),
        ("mi rank", ["--mc-samples", "0", "--estimator", "mixture"], "--mc-samples 0"),
        ("mi rank", ["--threshold", "nan"], "--threshold nan"),
        ("prune", ["--seed=-1"], "--seed -1"),
        ("prune", ["--repeats", "1000000"], "--repeats"),
        ("traverse", ["--steps", "100000"], "--steps 100000"),
        ("traverse", ["--range", "-inf", "inf"], "finite"),
        ("traverse", ["--top", "16", "--seeds", "150", "--steps", "100"], "megapixels"),
    ],
)
def test_analysis_options_give_one_line(checkpoint: Path, command, options, needle, fails) -> None:
    start = time.perf_counter()
    assert needle in fails(*command.split(), str(checkpoint), *options, "--device", "cpu")
    assert time.perf_counter() - start < 60  # refused up front, never after hours of work


def test_negative_labels_are_refused_by_train_and_prune(
    checkpoint: Path, tmp_path: Path, fails
) -> None:
    data = tmp_path / "y.npz"
    np.savez(data, x=np.zeros((60, 28, 28), np.uint8), y=-np.ones(60, np.int64))
    assert "negative labels" in fails("train", "--data", f"npz:{data}", "--out", str(tmp_path))
    err = fails("prune", str(checkpoint), "--task", "classify", "--data", f"npz:{data}")
    assert "negative labels" in err


# --- 5. no hang: outputs a person can use are bounded -----------------------------------------


def test_a_very_wide_posterior_ranks_quickly_in_table_mode(tmp_path: Path, cli) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "wide.npz", mu=rng.normal(size=(3, 50_000)), logvar=np.zeros((3, 50_000)))
    start = time.perf_counter()
    code, out, err = cli("mi", "rank", str(tmp_path / "wide.npz"), "--rows", "5")
    assert code == 0 and time.perf_counter() - start < 30
    assert "top 5 of 50000 factors" in out and out.count("\n") < 40
    assert "may be transposed" in err and "N = 3 points" in err  # both warnings, one line each


# --- 6. splits too small to mean anything -----------------------------------------------------


def test_small_splits_warn(tmp_path: Path, cli) -> None:
    code, _, err = cli("train", "--subset", "200", "--latents", "4", "--epochs", "1",
                       "--device", "cpu", "--out", str(tmp_path / "r"))  # fmt: skip
    assert code == 0 and "warning: mnist5k: small splits (val 40, test 40 images)" in err


# --- 7. interrupts ----------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_exits_130_and_says_what_was_kept(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "vaetool", "train", *TINY, "--epochs", "1000",
               "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    history = out / "history.csv"
    deadline = time.time() + 120
    while time.time() < deadline and (
        not history.exists() or len(history.read_text().splitlines()) < 2
    ):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: stopped by Ctrl-C in epoch") and "model.partial" in last
    assert vaetool.read_info(out / "model.partial.safetensors").summary["status"] == "interrupted"
    assert not (out / "model.safetensors").exists()


# --- 8. a newcomer's rough edges --------------------------------------------------------------


def test_collapse_is_warned_at_the_end_of_training(tmp_path: Path, cli) -> None:
    code, _, err = cli("train", "--beta", "200", "--epochs", "1", *TINY,
                       "--out", str(tmp_path / "r"))  # fmt: skip
    assert code == 0 and "warning: posterior collapse" in err
    summary = vaetool.read_info(tmp_path / "r" / "model.safetensors").summary
    assert summary["val_influential"] == 0


@pytest.mark.slow  # 1 s
def test_plot_writes_what_its_suffix_says(checkpoint: Path, tmp_path: Path, cli, fails) -> None:
    assert ".png, .pdf, .svg" in fails("mi", "rank", str(checkpoint), "--plot", "out.jpg")
    pdf = tmp_path / "pulse.pdf"
    assert cli("mi", "rank", str(checkpoint), "--device", "cpu", "--plot", str(pdf))[0] == 0
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert ".png" in fails("prune", str(checkpoint), "--plot", str(tmp_path / "fig4.jpg"))


def test_help_has_examples_and_no_type_placeholders_on_flags(cli) -> None:
    for command in (["train"], ["quickstart"], ["info"], ["mi", "fit"], ["mi", "rank"],
                    ["prune"], ["traverse"], ["report"]):  # fmt: skip
        code, out, _ = cli(*command, "--help")
        assert code == 0 and "Example: vaetool " in out and "<bool>" not in out, command
    assert "docs/math.md" in cli("traverse", "--help")[1]


def test_a_missing_posterior_file_is_named_as_one(fails) -> None:
    err = fails("mi", "rank", "/nonexistent/posterior.npz")
    assert "no such posterior file" in err and "checkpoint" not in err


def test_fig4_labels_sit_over_their_columns() -> None:
    from vaetool.report.images import SEPARATOR_PX, column_labels

    strip = column_labels(["input", "100%", "0%"], cell_width=56)[:, :, 0]
    for k in range(3):
        left = k * (56 + SEPARATOR_PX)
        assert (strip[:, left : left + 56] < 128).any(), k  # ink inside the column
    gaps = [k * (56 + SEPARATOR_PX) - SEPARATOR_PX for k in (1, 2)]
    assert all((strip[:, g : g + SEPARATOR_PX] == 255).all() for g in gaps)  # none between


@pytest.mark.slow
def test_report_of_a_collapsed_run_warns_on_the_page_and_logs_its_stages(
    tmp_path: Path, cli
) -> None:
    run = tmp_path / "collapsed"
    assert cli("train", "--beta", "200", "--epochs", "1", *TINY, "--out", str(run))[0] == 0
    code, _, err = cli("report", str(run / "model.safetensors"), "--device", "cpu")
    assert code == 0, err
    # stderr is not a terminal here: one line per stage as it starts
    assert "encoding …" in err and "pruning: reconstruction table …" in err
    page = (run / "model-report" / "index.html").read_text()
    assert "<title>vaetool report: collapsed</title>" in page
    assert 'class="warning">warning: no factor carries more than 0.5 nats' in page
    assert "I_h [nats]" in page and "SSE / image" in page  # readable column names
