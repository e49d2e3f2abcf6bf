"""The command line: help without torch, train -> info, overwrite refusal, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def test_help_lists_commands_without_importing_torch() -> None:
    code = (
        "import sys; from vaetool.cli import main; rc = main(['--help']); "
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH'); sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    for command in ("train", "info", "quickstart", "mi", "prune", "traverse"):
        assert command in proc.stdout
    assert proc.stdout.strip().endswith("NO-TORCH")


def test_train_writes_checkpoint_and_history(trained_run: Path) -> None:
    assert (trained_run / "model.safetensors").is_file()
    lines = (trained_run / "history.csv").read_text().splitlines()
    assert lines[0].startswith(
        "epoch,train_loss,train_recon,train_kl,train_elbo,val_loss,val_recon"
    )
    assert len(lines) == 4  # header + 3 epochs


def test_info_reads_checkpoint(trained_run: Path, cli) -> None:
    code, out, _ = cli("info", str(trained_run / "model.safetensors"), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["model"]["architecture"] == "conv28"
    assert doc["model"]["latents"] == 16
    assert doc["data"]["spec"] == "mnist5k"
    assert doc["train"]["lr"] == pytest.approx(1e-3)  # paper 000's MNIST rate, resolved
    assert doc["summary"]["n_train"] == 3000


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown", "latex"])
def test_info_formats(trained_run: Path, cli, fmt: str) -> None:
    code, out, _ = cli("info", str(trained_run / "model.safetensors"), "--format", fmt)
    assert code == 0 and "conv28" in out


def test_train_refuses_to_overwrite_a_run(trained_run: Path, cli) -> None:
    before = (trained_run / "model.safetensors").read_bytes()
    code, _, err = cli("train", "--epochs", "1", "--out", str(trained_run), "--device", "cpu")
    assert code == 1
    assert err.count("\n") == 1 and "--force" in err and "Traceback" not in err
    assert (trained_run / "model.safetensors").read_bytes() == before


def test_train_force_overwrites(tmp_path: Path, cli) -> None:
    args = ["train", "--data", "mnist5k", "--subset", "300", "--epochs", "1", "--latents", "4",
            "--device", "cpu", "--out", str(tmp_path)]  # fmt: skip
    assert cli(*args)[0] == 0
    first = (tmp_path / "model.safetensors").read_bytes()
    assert cli(*args, "--seed", "1")[0] == 1
    assert cli(*args, "--seed", "1", "--force")[0] == 0
    assert (tmp_path / "model.safetensors").read_bytes() != first


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--data", "npz:/nonexistent/x.npz"], "/nonexistent/x.npz"),
        (["train", "--data", "imagenet"], "unknown dataset 'imagenet'"),
        (["train", "--epochs", "0"], "--epochs 0"),
        (["train", "--likelihood", "poisson", "--subset", "10"], "unknown likelihood 'poisson'"),
        (["train", "--device", "tpu"], "--device 'tpu'"),
        (["info", "/nonexistent/model.safetensors"], "no such checkpoint file"),
        (["mi", "rank", "/nonexistent/x.safetensors"], "no such checkpoint file"),
        (["prune", "/nonexistent/x.safetensors"], "no such checkpoint file"),
    ],
)
def test_bad_input_gives_one_clear_line(cli, tmp_path: Path, args: list[str], needle: str) -> None:
    code, _out, err = cli(*args, *(["--out", str(tmp_path / "o")] if args[0] == "train" else []))
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "o" / "model.safetensors").exists()


def test_usage_error_exits_2(cli) -> None:
    code, _, err = cli("train", "--epochs", "many")
    assert code == 2 and "--epochs" in err


def test_version(cli) -> None:
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("vaetool ")


@pytest.mark.slow
def test_quickstart_trains_on_embedded_mnist(tmp_path: Path, cli) -> None:
    out = tmp_path / "qs"
    code, stdout, _ = cli("quickstart", "--epochs", "1", "--device", "cpu", "--out", str(out))
    assert code == 0 and "model.safetensors" in stdout
    assert "top 10 of 128 factors by I(x; z_h)" in stdout and "influential factors" in stdout
    assert "SSE / image" in stdout and "report" in stdout  # the prune table and the page
    for name in ("pulse.png", "reconstructions.png", "report/index.html", "report/traversals.png"):
        assert (out / name).is_file(), name
    code, stdout, _ = cli("info", str(out / "model.safetensors"), "--format", "json")
    assert json.loads(stdout)["train"]["options"] == {"beta": 1.0}


def test_info_output_file_is_written(trained_run: Path, tmp_path: Path, cli) -> None:
    target = tmp_path / "info.csv"
    code, stdout, _ = cli(
        "info", str(trained_run / "model.safetensors"), "-f", "csv", "-o", str(target)
    )
    assert code == 0 and stdout == "" and target.read_text().startswith("section,key,value")


def test_public_api_is_lazy_and_names_the_workflows() -> None:
    """``import vaetool`` loads no torch; each public name is the workflow or core object it
    stands for, and an unknown name is an AttributeError."""
    code = (
        "import sys, vaetool; assert 'torch' not in sys.modules; "
        "import vaetool.workflows as w, vaetool.store.checkpoint as c; "
        "assert vaetool.rank is w.rank and vaetool.train is w.train_run; "
        "assert vaetool.load is c.load_model and vaetool.PruneRequest is w.PruneRequest; "
        "assert all(getattr(vaetool, n) is not None for n in vaetool.__all__); "
        "missing = getattr(vaetool, 'rnak', None); assert missing is None"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_train_flag_reaches_the_settings() -> None:
    """cli/train.py lists its settings by name (no locals()): every parameter of the command
    but the run's own (config, resume, out, force, threads, device) and --option (any
    component option by name) is a key of ``settings``."""
    import ast
    import inspect

    from vaetool.cli import train as module

    tree = ast.parse(inspect.getsource(module.train))
    params = {a.arg for a in tree.body[0].args.args}  # type: ignore[attr-defined]
    (assign,) = [n for n in ast.walk(tree) if isinstance(n, ast.Assign)
                 and ast.unparse(n.targets[0]) == "settings"]  # fmt: skip
    listed = [k.value for d in ast.walk(assign.value) if isinstance(d, ast.Dict)
              for k in d.keys if isinstance(k, ast.Constant)]  # fmt: skip
    assert len(listed) == len(set(listed))
    run_own = {"config", "resume", "out", "force", "threads", "device", "option"}
    assert set(listed) == params - run_own
    assert "locals()" not in inspect.getsource(module)
