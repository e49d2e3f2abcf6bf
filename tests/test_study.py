"""Studies (issue 12): a grid × seeds plan trained into run folders, split over shards that run
at once without corrupting results.csv; resumable; drawn by `vaetool report DIR`."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vaetool.config import DataConfig, ModelConfig, TrainConfig
from vaetool.workflows import TrainRequest, train_run
from vaetool.workflows.study import StudyRequest, run_study
from vaetool.workflows.study_plan import parse_shard, point_name, read_plan, units

PLAN = """
seeds = [0, 1]
[base]
subset = 300
latents = 3
hidden = 32
epochs = 1
batch-size = 50
[grid]
beta = [1, 4]
"""


class Crash(Exception):
    pass


def _plan(tmp_path: Path, text: str = PLAN) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(text)
    return path


def _rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_two_shards_at_once_fill_results_and_the_report_draws_it(tmp_path: Path, cli) -> None:
    plan, out = _plan(tmp_path), tmp_path / "D"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "vaetool", "study", str(plan), "--out", str(out),
               "--device", "cpu", "--threads", "1", "--shard"]  # fmt: skip
    procs = [subprocess.Popen([*command, f"{k}/2"], env=env, stderr=subprocess.PIPE, text=True)
             for k in (1, 2)]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    rows = _rows(out)
    assert sorted((r["beta"], r["seed"]) for r in rows) == [
        ("1", "0"), ("1", "1"), ("4", "0"), ("4", "1")]  # fmt: skip
    assert all(r["status"] == "finished" and float(r["sum_mi"]) >= 0 for r in rows)
    assert all((out / r["run"] / "model.safetensors").is_file() for r in rows)
    again = run_study(StudyRequest(plan, out, device="cpu"))
    assert not again.trained and len(again.skipped) == 4
    code, _, err = cli("report", str(out), "--kind", "violin", "--y", "val_elbo,val_kl")
    assert code == 0, err
    page = (out / "report" / "index.html").read_text()
    assert "val_elbo-by-beta.png" in page and (out / "report" / "val_kl-by-beta.png").stat().st_size
    assert page.count("<tr>") >= 4  # the whole table


def test_a_killed_run_resumes_and_a_finished_one_is_only_summarised(tmp_path: Path) -> None:
    plan_path = _plan(tmp_path, PLAN.replace("epochs = 1", "epochs = 2").replace("[1, 4]", "[2]"))
    plan, out = read_plan(plan_path), tmp_path / "D"
    folder = units(plan, out)[0].run_folders()[0]
    config = TrainConfig(options={"beta": 2}, epochs=2, batch_size=50, seed=0)
    request = TrainRequest(folder, DataConfig("mnist5k", subset=300), config,
                           ModelConfig(latents=3, hidden=32), device="cpu")  # fmt: skip

    def crash(record) -> None:
        raise Crash

    with pytest.raises(Crash):
        train_run(request, on_epoch=crash)
    assert (folder / "resume.safetensors").exists()
    result = run_study(StudyRequest(plan_path, out, device="cpu"))
    assert folder in result.trained and len(result.trained) == 2
    rows = {r["run"]: r for r in _rows(out)}
    resumed = rows[str(Path("runs") / "beta=2" / "seed-0")]
    assert resumed["epochs"] == "2" and resumed["status"] == "finished"


def test_stacked_seeds_and_a_diverging_point_is_a_result(tmp_path: Path) -> None:
    text = PLAN.replace("[1, 4]", "[1]\nlr = [1e-3, 1e6]")
    text = text.replace("seeds = [0, 1]", "seeds = [0, 1]\nstack_seeds = true")
    result = run_study(StudyRequest(_plan(tmp_path, text), tmp_path / "D", device="cpu"))
    assert len(result.trained) == 2 and len(result.failed) == 2
    rows = _rows(tmp_path / "D")
    assert {r["status"] for r in rows if float(r["lr"]) > 1} == {"failed"}
    assert all("diverged" in r["reason"] for r in rows if r["status"] == "failed")


@pytest.mark.parametrize(("text", "message"), [
    ("[grid]\nbeta = 2", "grid.beta: expected a non-empty list"),
    ("[grid]\nbeta = []", "grid.beta: expected a non-empty list"),
    ("[grid]\nbeta = [1, 1]", "repeated values"),
    ("[base]\nbeta = 1\n[grid]\nbeta = [1, 2]", "'beta' cannot be set there"),
    ("[base]\nout = 'x'", "'out' cannot be set there"),
    ("[base]\ndevice = 'cpu'", "'device' cannot be set there"),
    ("colour = 1", "unknown key 'colour'"),
    ("seeds = [1, 1]", "--seeds"),
    ("[grid]\ngamma = [1, 2]", "point gamma=1: --gamma does not apply"),
    ("[grid\n", "not a readable TOML plan"),
    ("metrics = 'nope'", "unknown metric 'nope'"),
])  # fmt: skip
def test_bad_plans_are_one_line(tmp_path: Path, fails, text: str, message: str) -> None:
    line = fails("study", str(_plan(tmp_path, text)), "--out", str(tmp_path / "D"))
    assert message in line
    assert not (tmp_path / "D").exists()


def test_shards_split_the_work_and_bad_shards_and_axes_are_refused(tmp_path: Path, fails) -> None:
    plan = read_plan(_plan(tmp_path))
    work = units(plan, tmp_path)
    assert [point_name(u.point) for u in work] == ["beta=1", "beta=1", "beta=4", "beta=4"]
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/2", "3/2", "a/b", "1"):
        assert "--shard" in fails("study", str(tmp_path / "plan.toml"), "--out",
                                  str(tmp_path / "D"), "--shard", bad)  # fmt: skip
    assert "not a study folder" in fails("report", str(tmp_path))


EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("study-*.toml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_example_plans_are_valid(example: Path) -> None:
    plan = read_plan(example)
    assert len(plan.points()) * len(plan.seeds) >= 4


@pytest.mark.slow
def test_metrics_land_in_results(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    text = """seeds = [0]
metrics = ["mig", "factor_vae"]
metric_samples = 200
[base]
data = "dsprites"
subset = 300
latents = 3
epochs = 1
batch-size = 50
[grid]
beta = [1]
"""
    run_study(StudyRequest(_plan(tmp_path, text), tmp_path / "D", device="cpu"))
    row = _rows(tmp_path / "D")[0]
    assert 0 <= float(row["mig"]) <= 1 and "factor_vae_eval" in row


def test_several_grids_are_a_union_of_points(tmp_path: Path) -> None:
    """Paper 002's shape: a σ² sweep of fixed-noise models and a β sweep of noise-learning
    ones in one study; a point both grids name is trained once."""
    text = PLAN.replace(
        "[grid]\nbeta = [1, 4]\n",
        """
[[grid]]
likelihood = ["gaussian"]
sigma2 = [0.01, 0.1]
[[grid]]
likelihood = ["gaussian_learned"]
beta = [1, 4]
[[grid]]
likelihood = ["gaussian"]
sigma2 = [0.1]
""",
    )
    plan = read_plan(_plan(tmp_path, text))
    assert plan.points() == [
        {"likelihood": "gaussian", "sigma2": 0.01},
        {"likelihood": "gaussian", "sigma2": 0.1},
        {"likelihood": "gaussian_learned", "beta": 1},
        {"likelihood": "gaussian_learned", "beta": 4},
    ]
    assert plan.swept == ["likelihood", "sigma2", "beta"]
    names = [point_name(u.point) for u in units(plan, tmp_path / "D")]
    assert len(set(names)) == 4 and len(names) == 8  # 4 points × 2 seeds


@pytest.mark.slow
def test_a_scatter_against_a_result_column(tmp_path: Path, cli, fails) -> None:
    text = PLAN.replace(
        "[grid]\nbeta = [1, 4]\n",
        """
[[grid]]
likelihood = ["gaussian"]
sigma2 = [0.001, 0.1]
[[grid]]
likelihood = ["gaussian_learned"]
beta = [1]
""",
    ).replace("seeds = [0, 1]", "seeds = [0]")
    out = tmp_path / "D"
    run_study(StudyRequest(_plan(tmp_path, text), out, device="cpu"))
    rows = _rows(out)
    assert len(rows) == 3 and all(float(r["normalised_variance"]) > 0 for r in rows)
    code, _, err = cli("report", str(out), "--kind", "scatter", "--x", "normalised_variance",
                       "--y", "n_normal_variance,evlb", "--group", "likelihood")  # fmt: skip
    assert code == 0, err
    assert (out / "report" / "evlb-by-normalised_variance.png").stat().st_size > 0
    line = fails("report", str(out), "--kind", "scatter", "--x", "likelihood", "--force")
    assert "a scatter needs a numeric column" in line
    line = fails("report", str(out), "--group", "likelihood,nope", "--force")
    assert "--group 'nope'" in line
    code, _, err = cli("report", str(out), "--kind", "violin", "--x", "likelihood", "--y", "evlb",
                       "--group", "likelihood,seed", "--force")  # fmt: skip
    assert code == 0, err


def test_prune_rows_and_code_histograms_land_in_summaries(tmp_path: Path) -> None:
    """Paper 000's Table 1 per run (``prune``), and for a labelled model with a categorical
    code paper 001's histograms (Figs. 6, 9–10) in summary.json, kept out of results.csv."""
    pytest.importorskip("scipy")
    text = PLAN.replace("seeds = [0, 1]", 'seeds = [0]\nprune = "100%,2,0%"\n'
                        'metrics = ["categorical_accuracy"]')  # fmt: skip
    text = text.replace("[grid]\nbeta = [1, 4]", "latent-categorical = 4\n[grid]\nbeta = [1]")
    out = tmp_path / "D"
    run_study(StudyRequest(_plan(tmp_path, text), out, device="cpu"))
    row = _rows(out)[0]
    assert [row[f"prune_k_{t}"] for t in ("100%", "2", "0%")] == ["3", "2", "0"]
    assert float(row["prune_mi_0%"]) == 0 and float(row["prune_mi_100%"]) >= float(
        row["prune_mi_2"])  # fmt: skip
    assert float(row["prune_sse_0%"]) > 0 and float(row["prune_mse_100%"]) > 0
    assert "code_confusion" not in row and "factor_mi" not in row
    summary = json.loads(next(out.glob("runs/*/seed-0/summary.json")).read_text())
    confusion = np.array(summary["code_confusion"])
    assert confusion.shape == (4, 10) and confusion.sum() == 60  # 300 images: test split 60
    purity = confusion.max(1).sum() / 60
    assert purity == summary["categorical_purity"] >= summary["categorical_accuracy"] > 0
    mi, s2 = summary["factor_mi"], summary["factor_s2"]
    assert len(mi) == len(s2) == len(summary["factor_kl"]) == 3
    assert sum(mi) == pytest.approx(summary["sum_mi"], abs=1e-4) and min(s2) > 0
    counts = summary["code_probability_counts"]
    assert len(counts) == 20 and sum(counts) == 60 * 4
    from vaetool.workflows.report import StudyReportRequest, build_study_report

    page = build_study_report(StudyReportRequest(out, x="beta", kind="code"))
    assert {p.name for p in page.parent.glob("*.png")} == {
        "code_probabilities-by-beta.png", "code_classes-by-beta.png"}  # fmt: skip


def test_the_code_report_needs_code_models(tmp_path: Path, fails) -> None:
    out = tmp_path / "D"
    (out / "runs/beta=1/seed-0").mkdir(parents=True)
    (out / "study.toml").write_text(PLAN)
    (out / "runs/beta=1/seed-0/summary.json").write_text('{"beta": 1, "status": "finished"}')
    (out / "results.csv").write_text("beta,status\n1,finished\n")
    line = fails("report", str(out), "--kind", "code")
    assert "no run of this study holds a categorical code" in line


def test_a_committed_campaign_continues_from_its_summaries(tmp_path: Path) -> None:
    """Only study.toml and the summaries travel (no checkpoints): finished runs are not
    retrained, missing ones are, and results.csv keeps every row."""
    plan = _plan(tmp_path, PLAN.replace("[1, 4]", "[1]"))
    first = tmp_path / "first"
    run_study(StudyRequest(plan, first, shard=(1, 2), device="cpu"))
    moved = tmp_path / "moved"
    (moved / "runs").mkdir(parents=True)
    shutil.copy(first / "study.toml", moved / "study.toml")
    for summary in first.glob("runs/*/seed-*/summary.json"):
        target = moved / summary.relative_to(first)
        target.parent.mkdir(parents=True)
        shutil.copy(summary, target)
    result = run_study(StudyRequest(plan, moved, device="cpu"))
    assert [p.name for p in result.trained] == ["seed-1"]
    assert [p.name for p in result.skipped] == ["seed-0"]
    assert sorted(r["seed"] for r in _rows(moved)) == ["0", "1"]
    assert not (moved / "runs/beta=1/seed-0/model.safetensors").exists()


def test_the_study_report_compares_groups_with_the_exact_rank_test(tmp_path: Path) -> None:
    """Violins come with each x value's runs against the first's, per group: quartiles and the
    exact two-sided Mann–Whitney p, in the page and in comparisons.csv."""
    from vaetool.workflows.report import StudyReportRequest, build_study_report

    out = tmp_path / "S"
    (out / "runs").mkdir(parents=True)
    (out / "study.toml").write_text(PLAN.replace("seeds = [0, 1]", "seeds = [0, 1, 2]"))
    lines = ["run,beta,seed,status,mig"]
    values = {1: [0.30, 0.40, 0.50], 4: [0.10, 0.15, 0.20]}
    lines += [f"r,{b},{s},finished,{v[s]}" for b, v in values.items() for s in range(3)]
    (out / "results.csv").write_text("\n".join(lines) + "\n")
    page = build_study_report(StudyReportRequest(out, x="beta", columns=("mig",), kind="violin"))
    with open(page.parent / "comparisons.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["baseline"], row["against"], row["n"]) == ("beta = 1", "beta = 4", "3 vs 3")
    assert float(row["p (exact, two-sided)"]) == pytest.approx(0.1)  # fully separated, 3 vs 3
    assert row["median [q1, q3]"] == "0.15 [0.125, 0.175]"
    assert "Comparisons with the first value" in page.read_text()
