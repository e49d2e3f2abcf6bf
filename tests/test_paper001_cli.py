"""Paper 001 from the command line: a joint Gaussian + categorical VAE trained with the VMI
regulariser, then ranked (--estimator all), pruned, traversed and scored for accuracy; the
refusals of options that do not fit."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from safetensors import safe_open

from vaetool.store.sidecar import q_sidecar_path


@pytest.fixture(scope="module")
def code_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mnist5k, H = 4 + a 10-class code, the VMI objective on the code, 2 epochs of a 600
    image sample (CPU, a second or two)."""
    from vaetool.cli import main

    out = tmp_path_factory.mktemp("p001") / "run"
    code = main(["train", "--latents", "4", "--latent-categorical", "10", "--objective", "vmi",
                 "--vmi-lambda", "5", "--subset", "600", "--epochs", "2", "--batch-size", "50",
                 "--device", "cpu", "--out", str(out)])  # fmt: skip
    assert code == 0
    return out / "model.safetensors"


@pytest.mark.slow  # trains a model (2 s): the fast lane keeps under a minute
def test_the_regulariser_trains_and_keeps_q_in_the_checkpoint(code_run: Path) -> None:
    with safe_open(str(code_run), framework="pt") as handle:
        keys = list(handle.keys())
        meta = json.loads(handle.metadata()["vaetool"])
    assert any(k.startswith("objective.q.") for k in keys)
    assert meta["model"]["categories"] == 10 and meta["train"]["objective"] == "vmi"
    history = (code_run.parent / "history.csv").read_text().splitlines()
    assert {"train_mi_vmi", "val_kl_code", "train_q_loss"} <= set(history[0].split(","))


@pytest.mark.slow
def test_rank_all_brackets_each_factor_and_shows_the_code(code_run: Path, cli, fails) -> None:
    code, out, err = cli("mi", "rank", str(code_run), "--estimator", "all", "--vmi-steps", "30",
                         "--vmi-samples", "1000", "--vmi-subset", "0,1", "--samples", "100",
                         "-f", "json")  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    factors, summary = doc["factors"], doc["summary"]
    assert summary["estimators"] == ["qstar", "mixture", "vmi"]
    rows = {row["factor"]: row for row in factors}
    assert set(rows) == {0, 1, 2, 3, "c"}
    assert rows["c"]["mi"] == pytest.approx(summary["code_mi"])
    assert summary["code_mi"] <= math.log(10) + 1e-9
    assert summary["code_kl_prior"] >= summary["code_mi"] - 1e-9
    assert rows["c"]["mi_vmi"] == pytest.approx(summary["code_vmi"])
    assert summary["vmi_joint"] == pytest.approx(sum(rows[h]["mi_vmi"] for h in range(4)))
    assert summary["vmi_subset_mi"] == pytest.approx(rows[0]["mi_vmi"] + rows[1]["mi_vmi"])
    assert "--vmi-subset" in fails("mi", "rank", str(code_run), "--estimator", "vmi",
                                   "--vmi-subset", "0,9")  # fmt: skip
    assert q_sidecar_path(code_run).is_file()
    # the sidecar is reused: the same numbers without a refit
    again = json.loads(cli("mi", "rank", str(code_run), "--estimator", "vmi", "--vmi-steps",
                           "30", "--vmi-samples", "1000", "-f", "json")[1])  # fmt: skip
    assert [r["mi"] for r in again["factors"] if r["factor"] != "c"] == sorted(
        [rows[h]["mi_vmi"] for h in range(4)], reverse=True)  # fmt: skip


@pytest.mark.slow  # the fast lane keeps under a minute
def test_metrics_reports_categorical_accuracy(code_run: Path, cli) -> None:
    code, out, err = cli("metrics", str(code_run), "--metric", "categorical_accuracy", "-f",
                         "json")  # fmt: skip
    assert code == 0, err
    values = json.loads(out)["values"]
    assert 0.0 < values["categorical_accuracy"] <= values["categorical_purity"] <= 1.0
    everything = json.loads(cli("metrics", str(code_run), "--samples", "100", "-f", "json")[1])
    assert {"categorical_accuracy", "mig"} <= set(everything["values"])  # labels: one factor


@pytest.mark.slow  # slicing: tests/models/test_categorical.py
def test_prune_keeps_or_drops_the_code_and_traverse_sweeps_it(
    code_run: Path, cli, tmp_path: Path
) -> None:
    kept = json.loads(cli("prune", str(code_run), "--top", "2", "-f", "json")[1])
    dropped = json.loads(cli("prune", str(code_run), "--top", "2", "--drop-code", "-f",
                             "json")[1])  # fmt: skip
    assert kept[0]["sse"] != dropped[0]["sse"]
    code, _, err = cli("prune", str(code_run), "--top", "2", "--drop-code", "--save",
                       str(tmp_path / "small.safetensors"))  # fmt: skip
    assert code == 0, err
    code, _, err = cli("traverse", str(code_run), "--code", "--seeds", "3", "--out",
                       str(tmp_path / "code.png"))  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "code.png").is_file()


def test_options_that_do_not_fit_are_refused(trained_run: Path, fails,
                                             tmp_path: Path) -> None:  # fmt: skip
    plain = str(trained_run / "model.safetensors")
    out = str(tmp_path / "x")
    assert "no categorical code" in fails(
        "train",
        "--objective",
        "vmi",
        "--vmi-factors",
        "c",
        "--epochs",
        "1",
        "--subset",
        "300",
        "--out",
        out,
    )
    assert not Path(out).exists()
    assert "decomposes the Gaussian KL only" in fails(
        "train", "--objective", "beta_tcvae", "--latent-categorical", "10", "--out", out
    )
    assert "two passes" in fails("train", "--objective", "vmi", "--seeds", "0,1", "--out", out)
    assert "annealed temperature" in fails("train", "--latent-categorical", "3",
                                           "--temperature-rate", "1e-4", "--seeds", "0,1",
                                           "--out", out)  # fmt: skip
    assert "--latent-categorical 1" in fails("train", "--latent-categorical", "1", "--out", out)
    assert "--drop-code" in fails("prune", plain, "--drop-code")
    assert "no categorical code" in fails("traverse", plain, "--code", "--out",
                                          str(tmp_path / "c.png"))  # fmt: skip
    assert "categorical code" in fails("metrics", plain, "--metric", "categorical_accuracy")
