"""`vaetool mi fit` / `mi rank` on a real checkpoint and on foreign posterior files."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import vaetool
from vaetool.analysis import fit_qstar
from vaetool.data import load_dataset, split_indices


def rank_json(cli, *args: str) -> dict:
    code, out, err = cli("mi", "rank", *args, "--device", "cpu", "--format", "json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def checkpoint(trained_run: Path) -> Path:
    return trained_run / "model.safetensors"


def test_rank_prints_table_and_summary(checkpoint: Path, cli) -> None:
    code, out, _ = cli("mi", "rank", str(checkpoint), "--device", "cpu")
    assert code == 0
    assert "factors ranked by I(x; z_h)" in out and "influential factors" in out
    assert "mnist5k [test]" in out


def test_rank_json_matches_a_direct_computation(checkpoint: Path, cli) -> None:
    doc = rank_json(cli, str(checkpoint))
    factors, summary = doc["factors"], doc["summary"]
    assert len(factors) == 16 and {"factor", "mi"} <= set(factors[0])
    assert [f["rank"] for f in factors] == list(range(1, 17))
    assert all(a["mi"] >= b["mi"] for a, b in itertools.pairwise(factors))
    assert summary["sum_mi"] == pytest.approx(sum(f["mi"] for f in factors))
    assert summary["n"] == 1000 and summary["data"] == "mnist5k" and summary["split"] == "test"
    # the same numbers from the Python API on the test split, encoded in one shot
    model = vaetool.load(checkpoint)
    data = load_dataset("mnist5k")
    with torch.no_grad():
        mu, logvar = model.encode(data.images(split_indices(len(data)).test))
    direct = vaetool.rank_posterior(mu, logvar).frame()
    assert [f["factor"] for f in factors] == direct["factor"].tolist()
    assert np.allclose([f["mi"] for f in factors], direct["mi"], rtol=1e-6)


def test_fit_writes_sidecar_that_rank_reuses(checkpoint: Path, cli, tmp_path: Path) -> None:
    local = tmp_path / "model.safetensors"
    local.write_bytes(checkpoint.read_bytes())
    code, _, _ = cli("mi", "fit", str(local), "--device", "cpu")
    assert code == 0 and (tmp_path / "model.qstar.safetensors").is_file()
    assert rank_json(cli, str(local))["summary"]["qstar_from"] == "sidecar"
    assert rank_json(cli, str(local), "--samples", "500")["summary"]["qstar_from"] == "fit"
    assert (
        rank_json(cli, str(local), "--estimator", "qstar,mixture")["summary"]["qstar_from"] == "fit"
    )


def test_rank_formats_and_plot(checkpoint: Path, cli, tmp_path: Path) -> None:
    plot = tmp_path / "pulse.png"
    code, out, _ = cli("mi", "rank", str(checkpoint), "--device", "cpu", "-f", "csv",
                       "--plot", str(plot), "--bits")  # fmt: skip
    assert code == 0 and out.splitlines()[0].startswith("rank,factor,mi,mi_bits,share_pct")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for fmt, marker in (("markdown", "| rank |"), ("latex", "\\begin{tabular}")):
        code, out, _ = cli("mi", "rank", str(checkpoint), "--device", "cpu", "-f", fmt)
        assert code == 0 and marker in out


def test_second_estimator_is_reported_beside_the_first(checkpoint: Path, cli) -> None:
    doc = rank_json(cli, str(checkpoint), "--estimator", "qstar,mixture", "--mc-points", "300")
    assert {"mi", "mi_mixture", "mi_mixture_stderr"} <= set(doc["factors"][0])
    assert doc["summary"]["estimator"] == "qstar"
    assert doc["summary"]["mixture_log_n_cap"] == pytest.approx(np.log(1000))
    assert doc["summary"]["mixture_mi_joint"] <= np.log(1000) + 1e-9


def _posterior(n: int = 400, h: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(n, h)) * np.array([2.0, 0.5, 0.0])[:h]
    return mu.astype(np.float32), np.full((n, h), np.log(0.25), dtype=np.float32)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_foreign_posterior_file_is_ranked(tmp_path: Path, cli, suffix: str) -> None:
    mu, logvar = _posterior()
    path = tmp_path / f"post{suffix}"
    if suffix == ".npz":
        np.savez(path, mu=mu, logvar=logvar)
    else:
        save_file({"mu": torch.from_numpy(mu), "logvar": torch.from_numpy(logvar)}, str(path))
    doc = rank_json(cli, str(path))
    assert [f["factor"] for f in doc["factors"]] == [0, 1, 2]
    expected = fit_qstar(torch.from_numpy(mu).double(), torch.from_numpy(logvar).double())
    assert doc["factors"][0]["mi"] == pytest.approx(
        float(0.5 * (expected.s2[0].log() - np.log(0.25)))
    )
    assert doc["summary"]["data"] == "posterior file" and doc["summary"]["n"] == 400
    assert cli("mi", "fit", str(path), "--device", "cpu")[0] == 0
    assert rank_json(cli, str(path))["summary"]["qstar_from"] == "sidecar"


def test_bad_posterior_files(tmp_path: Path, fails) -> None:
    mu, logvar = _posterior()
    with_nan = mu.copy()
    with_nan[3, 1] = np.nan
    np.savez(tmp_path / "nan.npz", mu=with_nan, logvar=logvar)
    assert "NaN" in fails("mi", "rank", str(tmp_path / "nan.npz"))
    np.savez(tmp_path / "shape.npz", mu=mu[:, :2], logvar=logvar)
    assert "shapes differ" in fails("mi", "rank", str(tmp_path / "shape.npz"))
    np.savez(tmp_path / "one.npz", mu=mu[:1], logvar=logvar[:1])
    assert "N = 1" in fails("mi", "rank", str(tmp_path / "one.npz"))
    np.savez(tmp_path / "nolv.npz", mu=mu)
    assert "'logvar'" in fails("mi", "rank", str(tmp_path / "nolv.npz"))


def test_sidecar_of_another_source_is_refused(checkpoint: Path, tmp_path: Path, cli, fails) -> None:
    mu, logvar = _posterior(h=3)
    np.savez(tmp_path / "a.npz", mu=mu, logvar=logvar)
    np.savez(tmp_path / "b.npz", mu=mu * 2, logvar=logvar)
    assert cli("mi", "fit", str(tmp_path / "a.npz"))[0] == 0
    sidecar = str(tmp_path / "a.qstar.safetensors")
    err = fails("mi", "rank", str(tmp_path / "b.npz"), "--qstar", sidecar)
    assert "fitted for another file (a.npz" in err
    err = fails("mi", "rank", str(checkpoint), "--qstar", sidecar)
    assert "H = 3" in err and "H = 16" in err


def test_bad_options(checkpoint: Path, fails) -> None:
    assert "--estimator 'best'" in fails("mi", "rank", str(checkpoint), "--estimator", "best")
    assert "q* variant" in fails("mi", "rank", str(checkpoint), "--variant", "median")
    assert "--data dsprites" in fails("mi", "fit", str(checkpoint), "--data", "dsprites")
    assert "split" in fails("mi", "fit", str(checkpoint), "--split", "holdout")


@pytest.mark.slow
def test_large_beta_leaves_fewer_influential_factors_than_h(tmp_path: Path, cli) -> None:
    """β-VAE's KL pressure switches factors off (paper 000, Fig. 1)."""
    out = tmp_path / "beta"
    args = ["train", "--epochs", "3", "--latents", "16", "--beta", "8", "--device", "cpu"]
    assert cli(*args, "--out", str(out))[0] == 0
    summary = rank_json(cli, str(out / "model.safetensors"))["summary"]
    assert summary["n_influential"] < 16 and summary["total_rate"] < 16 * 0.5


def test_table_output_goes_to_the_file(checkpoint: Path, cli, tmp_path: Path) -> None:
    target = tmp_path / "ranking.txt"
    code, out, _ = cli("mi", "rank", str(checkpoint), "--device", "cpu", "-o", str(target))
    assert code == 0 and out == ""
    text = target.read_text()
    assert "factors ranked by I(x; z_h)" in text and "summary" in text


def test_named_sidecar_that_does_not_match_the_request_is_an_error(
    checkpoint: Path, cli, fails, tmp_path: Path
) -> None:
    local = tmp_path / "model.safetensors"
    local.write_bytes(checkpoint.read_bytes())
    assert cli("mi", "fit", str(local), "--device", "cpu", "--samples", "500")[0] == 0
    sidecar = str(tmp_path / "model.qstar.safetensors")
    err = fails("mi", "rank", str(local), "--device", "cpu", "--qstar", sidecar)
    assert "samples = 500" in err and "10000" in err
    err = fails("mi", "rank", str(local), "--qstar", sidecar, "--samples", "500", "--split", "val")
    assert "split = test" in err
    doc = rank_json(cli, str(local), "--qstar", sidecar, "--samples", "500")
    assert doc["summary"]["qstar_from"] == "sidecar"


def test_point_options_are_refused_for_a_posterior_file(tmp_path: Path, fails) -> None:
    mu, logvar = _posterior()
    np.savez(tmp_path / "p.npz", mu=mu, logvar=logvar)
    for option, value in (("--data", "mnist5k"), ("--split", "val"), ("--samples", "100")):
        err = fails("mi", "rank", str(tmp_path / "p.npz"), option, value)
        assert option in err and "posterior file" in err
    assert "--samples" in fails("mi", "fit", str(tmp_path / "p.npz"), "--samples", "10")


def test_float64_posterior_file_keeps_its_precision(tmp_path: Path, cli) -> None:
    """mu = 1000 + small spread: s² − mean(mu)² style cancellation needs float64 to be right."""
    rng = np.random.default_rng(1)
    mu = 1000.0 + 1e-3 * rng.normal(size=(300, 2))
    logvar = np.log(1e-6) + 0.1 * rng.normal(size=(300, 2))
    np.savez(tmp_path / "f64.npz", mu=mu, logvar=logvar)
    doc = rank_json(cli, str(tmp_path / "f64.npz"), "--variant", "free_mean")
    s2 = mu.var(axis=0) + np.exp(logvar).mean(axis=0)
    expected = 0.5 * (np.log(s2) - logvar.mean(axis=0))
    got = {f["factor"]: f["mi"] for f in doc["factors"]}
    assert np.allclose([got[0], got[1]], expected, rtol=1e-9)


def test_labels_claim_only_what_holds(checkpoint: Path, cli) -> None:
    code, out, _ = cli("mi", "rank", str(checkpoint), "--device", "cpu")
    assert code == 0 and "upper bound" in out and "factorised q*, omits TC" in out
    assert "KL(q(z) ‖ p(z))" not in out.replace("KL(q*(z_h)", "")  # no unqualified claim
    doc = rank_json(cli, str(checkpoint))
    assert "kl_aggregate" not in doc["summary"]  # needs the joint estimate (mixture)
    assert doc["summary"]["kl_qstar_factorised"] == pytest.approx(
        sum(f["kl_agg"] for f in doc["factors"])
    )


def test_mixture_progress_names_its_stages(checkpoint: Path, tmp_path: Path) -> None:
    from vaetool.workflows import Points, RankRequest, rank

    seen: list[tuple[str, int, int | None]] = []
    request = RankRequest(checkpoint, Points(samples=200), estimators=("mixture",), device="cpu")
    rank(request, lambda stage, done, total: seen.append((stage, done, total)))
    stages = list(dict.fromkeys(stage for stage, _, _ in seen))
    assert stages == ["encoding", "mixture estimator"]
    assert seen[-1][1] == seen[-1][2]  # the last report says the work is done
    mu, logvar = _posterior()
    np.savez(tmp_path / "p.npz", mu=mu, logvar=logvar)
    seen.clear()
    rank(RankRequest(tmp_path / "p.npz"), lambda *event: seen.append(event))
    assert {stage for stage, _, _ in seen} == {"reading the posterior file"}


def test_a_joint_estimate_near_log_n_is_flagged_everywhere(tmp_path: Path, cli) -> None:
    """60 points with far-apart, sharp posteriors: I(x; z) = log N exactly in the limit, so the
    mixture's joint estimate, TC and KL(q(z) ‖ p(z)) must carry the cap flag (MATH.md §3)."""
    rng = np.random.default_rng(3)
    mu = rng.normal(size=(60, 3)) * 3
    np.savez(tmp_path / "sharp.npz", mu=mu, logvar=np.full_like(mu, np.log(1e-4)))
    args = ("mi", "rank", str(tmp_path / "sharp.npz"), "--estimator", "mixture")
    code, out, err = cli(*args, "-f", "json")
    assert code == 0, err
    summary = json.loads(out)["summary"]
    assert summary["mixture_cap_ratio"] > 0.95 and summary["mixture_near_cap"]
    assert summary["mixture_tc_biased"] and summary["mixture_factors_near_cap"] >= 1
    assert "warning: the mixture's I(x; z)" in err and "biased upward" in err
    assert all(f["mi_near_cap"] in (True, False) for f in json.loads(out)["factors"])
    code, table, _ = cli(*args)
    assert code == 0 and "near log N: understated" in table and "biased upward" in table
