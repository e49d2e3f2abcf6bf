"""Plans, configs and the files a study or a run reads back (issue 24, items 3, 6 and 7), as
fuzz classes: a FIFO, a device or a folder where a file was expected; grids too large to plan and
plans that set nothing; integers no run means; keys no component has; a summary or a checkpoint
damaged under a study; a full disk; a resume state edited below its epochs. The rule of
tests/test_fuzz.py holds for each: one `error:` line and exit 1 (or a result) — never a
traceback, never a hang, never a row dropped without a word."""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import signal
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from vaetool.config import DataConfig, ModelConfig, TrainConfig
from vaetool.store.atomic import WriteError, write_atomic
from vaetool.workflows import TrainRequest, train_run, train_seeds
from vaetool.workflows.study import StudyRequest, run_study
from vaetool.workflows.study_plan import StudyPlan, read_plan

TINY = ["--subset", "300", "--latents", "3", "-o", "hidden=32", "--epochs", "1",
        "--batch-size", "50", "--device", "cpu"]  # fmt: skip
PLAN = (
    "seeds = [0, 1]\n[base]\nsubset = 300\nlatents = 3\nhidden = 32\nepochs = 1\nbatch-size = 50\n"
)


class Crash(Exception):
    """Stands for a process dying right after an epoch's state was saved."""


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (rather than hang the suite) if the block blocks for longer than ``seconds``."""

    def expire(signum: int, frame: object) -> None:
        raise AssertionError(f"blocked for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No warning lines on stderr from training done in-process before a CLI call is read."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# 1. Only a regular file is read: a FIFO nobody writes, a device, a folder --------------------


@pytest.mark.parametrize("kind", ["fifo", "folder", "/dev/zero", "/dev/null"])
def test_a_plan_or_config_that_is_not_a_regular_file_is_one_line(
    tmp_path: Path, fails, kind: str
) -> None:
    if kind == "fifo":
        plan, config = tmp_path / "plan.toml", tmp_path / "config.toml"
        os.mkfifo(plan)
        os.mkfifo(config)
    elif kind == "folder":
        plan, config = tmp_path / "plan.toml", tmp_path / "config.toml"
        plan.mkdir()
        config.mkdir()
    else:
        plan, config = Path(kind), None
    what = {"fifo": "a FIFO", "folder": "a folder"}.get(kind, "a character device")
    with deadline(60):
        line = fails("study", str(plan), "--out", str(tmp_path / "S"))
        assert f"{plan}: not a regular file ({what}); expected a TOML study plan" in line
        if config is not None:
            line = fails("train", "--config", str(config), "--out", str(tmp_path / "R"))
            assert f"--config {config}: not a regular file ({what})" in line
    assert not (tmp_path / "S").exists() and not (tmp_path / "R").exists()


# 2. Plans: counted before they are expanded; a plan that sets nothing is refused ------------


def test_a_huge_grid_is_counted_and_refused_before_a_point_is_made(tmp_path: Path, fails) -> None:
    values = ", ".join(str(1 + i / 1000) for i in range(1000))
    rates = ", ".join(f"{1e-3 + i * 1e-7:.7g}" for i in range(1000))
    plan = _write(tmp_path / "big.toml", f"{PLAN}[grid]\nbeta = [{values}]\nlr = [{rates}]\n")
    started = time.perf_counter()
    line = fails("study", str(plan), "--out", str(tmp_path / "S"))
    assert time.perf_counter() - started < 30  # was ~40 minutes of planning
    assert "the grid asks for 2,000,000 runs (1000 × 1000 points × 2 seeds), more than " in line
    assert "max_runs 10,000" in line and "set max_runs = 2000000 in the plan" in line
    several = "[[grid]]\nbeta = [1, 2]\n[[grid]]\nlr = [0.1, 0.2, 0.3]\ngamma = [1, 2]\n"
    line = fails("study", str(_write(tmp_path / "two.toml", f"max_runs = 5\n{PLAN}{several}")),
                 "--out", str(tmp_path / "S"))  # fmt: skip
    assert "16 runs ((2 + 3 × 2) points × 2 seeds), more than max_runs 5" in line
    allowed = _write(tmp_path / "ok.toml", f"max_runs = 6\n{PLAN}[grid]\nbeta = [1, 2, 4]\n")
    assert len(read_plan(allowed).points()) == 3
    for bad in ("0", "-1", "true", "'many'", "1.5"):
        line = fails("study", str(_write(tmp_path / "m.toml", f"max_runs = {bad}\n{PLAN}")),
                     "--out", str(tmp_path / "S"))  # fmt: skip
        assert "max_runs" in line and "expected a positive integer" in line


def test_points_are_made_in_linear_time_and_shared_points_once() -> None:
    grid = {"beta": [float(i) for i in range(400)], "lr": [i / 1e4 for i in range(1, 401)]}
    plan = StudyPlan({}, (grid, {"beta": [1, 2.0, 1000], "lr": [0.0001]}))
    started = time.perf_counter()
    points = plan.points()
    assert time.perf_counter() - started < 20  # a list search per point took minutes
    assert len(points) == 160_001  # beta = 1 and 2.0 are points of the first grid already
    assert points[-1] == {"beta": 1000, "lr": 0.0001} and plan.run_count() == 160_003


@pytest.mark.parametrize("text", ["", "seeds = [0, 1]\n", "[base]\n[grid]\n", "[[grid]]\n",
                                  "metrics = []\n[base]\n"])  # fmt: skip
def test_a_plan_that_sets_nothing_is_refused(tmp_path: Path, fails, text: str) -> None:
    line = fails("study", str(_write(tmp_path / "p.toml", text)), "--out", str(tmp_path / "S"))
    assert "the plan sets nothing" in line and "would train the default model" in line
    assert not (tmp_path / "S").exists()


# 3. Integers no run means: beyond 64 bits, or beyond a setting's own bound --------------------

HUGE = "99999999999999999999"


@pytest.mark.parametrize(("where", "key", "value", "message"), [
    ("flag", "epochs", HUGE, f"--epochs {HUGE}: out of range; expected an integer that fits"),
    ("flag", "epochs", "1000001", "--epochs 1000001: expected at most 1,000,000"),
    ("flag", "latents", str(2**64), f"--latents {2**64}: out of range"),
    ("flag", "capacity-steps", HUGE, f"--capacity-steps {HUGE}: out of range"),
    ("flag", "seeds", f"0,{2**64}", "expected distinct seeds from 0 to 2**63 - 1"),
    ("option", "noise_warmup", HUGE, f"--noise-warmup {HUGE}: out of range"),
    ("toml", "epochs", HUGE, f"--epochs {HUGE}: out of range"),
    ("json", "batch_size", str(-(2**70)), "--batch-size -1180591620717411303424: out of range"),
    ("plan", "epochs", HUGE, f"point base: --epochs {HUGE}: out of range"),
    ("grid", "split_seed", f"[0, {HUGE}]", f"--split-seed {HUGE}: out of range"),
    ("seeds", "seeds", f"[0, {2**64}]", "expected distinct seeds from 0 to 2**63 - 1"),
])  # fmt: skip
def test_integers_out_of_range_are_refused_wherever_they_are_written(
    tmp_path: Path, fails, where: str, key: str, value: str, message: str
) -> None:
    out = ["--out", str(tmp_path / "R")]
    if where == "flag":
        line = fails("train", *TINY, f"--{key}", value, *out)
    elif where == "option":
        line = fails("train", *TINY, "--likelihood", "gaussian_learned", "-o", f"{key}={value}",
                     *out)  # fmt: skip
    elif where in ("toml", "json"):
        text = f"{key} = {value}\n" if where == "toml" else json.dumps({key: int(value)})
        config = _write(tmp_path / f"c.{where}", text)
        line = fails("train", "--config", str(config), "--subset", "300", *out)
        assert line.startswith(f"error: --config {config}: ")
    else:
        table = {"plan": f"[base]\n{key} = {value}\n", "grid": f"[grid]\n{key} = {value}\n",
                 "seeds": f"seeds = {value}\n[base]\nepochs = 1\n"}[where]  # fmt: skip
        plan = _write(tmp_path / "p.toml", table)
        line = fails("study", str(plan), "--out", str(tmp_path / "S"))
    assert message in line
    assert not (tmp_path / "R").exists() and not (tmp_path / "S").exists()


# 4. Keys: one no setting has, one that is not a setting, one of another component ------------


@pytest.mark.parametrize(("text", "message"), [
    ("bogus = 1\n", "unknown key 'bogus' in --config {config}: expected a `vaetool train` "
                    "setting or an option of a registered component (`vaetool components` "
                    "lists them, with their options)"),
    ("gama = 1\n", "unknown key 'gama' in --config {config} (did you mean 'gamma'?)"),
    ("config = 'other.toml'\n", "'config' in --config {config} is not a setting"),
    ("resume = 'runs/x'\n", "'resume' in --config {config} is not a setting: a run is "
                            "continued by --resume FOLDER alone"),
    ("architecture = 'conv28'\n", "'architecture' in --config {config} is not a setting: "
                                  "chosen from the data's image shape"),
    ("gamma = 1\n", "--config {config}: --gamma does not apply to --objective beta_vae "
                    "(its options: --beta)"),
    ("sigma2 = 0.1\n", "--config {config}: --sigma2 does not apply to --likelihood bernoulli"),
])  # fmt: skip
def test_config_keys_say_what_they_are_and_where(
    tmp_path: Path, fails, text: str, message: str
) -> None:
    config = _write(tmp_path / "c.toml", text)
    line = fails("train", "--config", str(config), *TINY, "--out", str(tmp_path / "R"))
    assert message.format(config=config) in line


@pytest.mark.parametrize(("text", "message"), [
    ("[base]\nbogus = 1\n", "unknown key 'bogus' in {plan} [base]: expected a `vaetool train` "
                            "setting"),
    ("[grid]\nbetta = [1, 2]\n", "unknown key 'betta' in {plan} [grid] (did you mean 'beta'?)"),
    ("[base]\nconfig = 'c.toml'\n", "'config' in {plan} [base] is not a setting"),
    ("[grid]\nresume = ['a']\n", "'resume' in {plan} [grid] is not a setting"),
    ("[grid]\ngamma = [1, 2]\n", "{plan}: point gamma=1: --gamma does not apply to --objective "
                                 "beta_vae"),
])  # fmt: skip
def test_plan_keys_say_what_they_are_and_where(
    tmp_path: Path, fails, text: str, message: str
) -> None:
    plan = _write(tmp_path / "p.toml", text)
    assert message.format(plan=plan) in fails("study", str(plan), "--out", str(tmp_path / "S"))


def test_unknown_options_by_flag_say_so(tmp_path: Path, fails) -> None:
    line = fails("train", *TINY, "-o", "bogus=1", "--out", str(tmp_path / "R"))
    assert "unknown key 'bogus': expected a `vaetool train` setting" in line
    line = fails("train", *TINY, "-o", "gamma=1", "--out", str(tmp_path / "R"))  # another's
    assert "--gamma does not apply to --objective beta_vae (its options: --beta)" in line


# 5. A study never drops a run whose summary or checkpoint was damaged --------------------------


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "results.csv", newline="") as handle:
        return {row["run"]: row for row in csv.DictReader(handle)}


def test_a_damaged_summary_is_made_again_and_a_damaged_model_is_trained_again(
    tmp_path: Path, cli
) -> None:
    plan, out = _write(tmp_path / "p.toml", f"{PLAN}[grid]\nbeta = [1]\n"), tmp_path / "S"
    with quiet():
        first = run_study(StudyRequest(plan, out, device="cpu"))
    assert len(first.trained) == 2
    before = _rows(out)
    run0, run1 = out / "runs/beta=1/seed-0", out / "runs/beta=1/seed-1"
    (run0 / "summary.json").write_text("{not json")  # the model is sound: summarised again
    (run1 / "summary.json").write_text('["a list"]')  # and its model truncated: trained again
    (run1 / "model.safetensors").write_bytes((run1 / "model.safetensors").read_bytes()[:999])
    with pytest.warns(Warning) as caught:
        second = run_study(StudyRequest(plan, out, device="cpu"))
    said = " ".join(str(w.message) for w in caught)
    assert f"{run0 / 'summary.json'}: unreadable" in said
    assert "summarised again from its checkpoint" in said
    assert f"{run1 / 'model.safetensors'}: cannot be loaded" in said
    assert "kept as model.damaged.safetensors; the run is trained again" in said
    assert len(second.repaired) == 2 and not second.skipped
    assert (run1 / "model.damaged.safetensors").is_file() and (run1 / "model.safetensors").is_file()
    after = _rows(out)
    assert set(after) == set(before) and all(r["status"] == "finished" for r in after.values())
    assert after["runs/beta=1/seed-1"]["val_elbo"] == before["runs/beta=1/seed-1"]["val_elbo"]
    assert json.loads((run0 / "summary.json").read_text())["status"] == "finished"
    # another shard's summary damaged: results.csv keeps its row, marked, and the CLI says so
    (run1 / "summary.json").write_text("")
    code, _, err = cli("study", str(plan), "--out", str(out), "--shard", "1/2", "--device", "cpu")
    assert code == 0, err
    row = _rows(out)["runs/beta=1/seed-1"]
    assert row["status"] == "unreadable" and row["beta"] == "1" and row["seed"] == "1"
    assert "summary.json unreadable" in row["reason"]
    assert "unreadable summary (a row of results.csv says so): runs/beta=1/seed-1" in err


# 6. A full disk names the file it could not write ---------------------------------------------


def test_a_failed_write_names_its_file(tmp_path: Path, fails, monkeypatch) -> None:
    with pytest.raises(WriteError, match="cannot write /dev/full: No space left on device"):
        write_atomic("/dev/full", b"x")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("vaetool.store.atomic.os.fsync", full)
    target = tmp_path / "a.txt"
    with pytest.raises(OSError, match=f"cannot write {target}: No space left on device") as err:
        write_atomic(target, b"x")
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(target)
    assert not target.exists() and not list(tmp_path.iterdir())  # no temporary file left
    plan = _write(tmp_path / "p.toml", f"{PLAN}[grid]\nbeta = [1]\n")
    line = fails("study", str(plan), "--out", str(tmp_path / "S"))
    assert line == f"error: cannot write {tmp_path / 'S' / 'study.toml'}: No space left on device\n"


# 7. Resuming: a state edited below its epochs; a finished run (the README's line) -------------


def _request(out: Path, epochs: int = 3, seeds: tuple[int, ...] = ()) -> TrainRequest:
    config, model = TrainConfig(epochs=epochs, batch_size=50), ModelConfig(latents=3, hidden=32)
    return TrainRequest(out, DataConfig("mnist5k", subset=300), config, model, device="cpu",
                        seeds=seeds)  # fmt: skip


def test_a_state_edited_below_its_epochs_is_refused(tmp_path: Path, fails) -> None:
    done = []

    def crash(record) -> None:
        done.append(record.epoch)
        if len(done) == 2:
            raise Crash

    with pytest.raises(Crash), quiet():
        train_run(_request(tmp_path / "run"), on_epoch=crash)
    state = tmp_path / "run" / "resume.safetensors"
    with safe_open(str(state), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        document = json.loads(handle.metadata()["vaetool"])
    document["train"]["epochs"] = 1  # two epochs are done
    save_file(tensors, str(state), metadata={"vaetool": json.dumps(document)})
    line = fails("train", "--resume", str(tmp_path / "run"), "--device", "cpu")
    assert str(state) in line
    assert not (tmp_path / "run" / "model.safetensors").exists()  # nothing "finished"


def test_resume_of_a_finished_run_says_so_and_exits_0(tmp_path: Path, cli) -> None:
    with quiet():
        train_run(_request(tmp_path / "run", epochs=1))
        train_seeds(_request(tmp_path / "group", epochs=1, seeds=(0, 1)))
    code, out, err = cli("train", "--resume", str(tmp_path / "run"))
    assert code == 0 and f"checkpoint  {tmp_path / 'run' / 'model.safetensors'}" in out, err
    assert "the run already finished (epochs: 1); nothing to resume" in err
    code, out, err = cli("train", "--resume", str(tmp_path / "group"))
    assert code == 0 and out.count("checkpoint  ") == 2, err
    assert "already finished" in err
