"""`vaetool metrics` (issue 13): every registered metric on stored codes and on a dSprites model,
known answers through the whole path, and one-line errors for what cannot be measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vaetool.analysis.metrics import METRICS, compute_metrics, metric_names
from vaetool.workflows.metrics import CodesTruth

SIZES = (3, 6, 10)


def _codes(kind: str, samples: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(0)
    v = np.stack([rng.randint(0, n, samples) for n in SIZES], 1)
    codes = {"identity": v.astype(np.float64), "noise": rng.randn(samples, 3),
             "duplicated": np.concatenate([v, v], 1).astype(np.float64)}[kind]  # fmt: skip
    return codes, v


FIXED = [n if n != "dci" else pytest.param(n, marks=pytest.mark.slow)  # 100 trees per class
         for n in METRICS.names()
         if not (METRICS.get(n).needs_interventions or METRICS.get(n).needs_code)]  # fmt: skip


@pytest.mark.parametrize("name", FIXED)
def test_fixed_sample_metrics_separate_identity_from_noise(name: str) -> None:
    if METRICS.get(name).needs_sklearn:
        pytest.importorskip("sklearn")  # here, not at import: it costs 2 s of collection
    good = compute_metrics(CodesTruth(*_codes("identity")), [name], num_train=600)
    bad = compute_metrics(CodesTruth(*_codes("noise")), [name], num_train=600)
    headline = {"mig": "mig", "modularity_explicitness": "explicitness_test",
                "sap": "sap_continuous", "dci": "dci_disentanglement"}[name]  # fmt: skip
    assert good[headline] > 0.6 and bad[headline] < 0.2 + 0.5 * (name == "modularity_explicitness")
    again = compute_metrics(CodesTruth(*_codes("identity")), [name], num_train=600)
    assert again == good  # seeded


@pytest.mark.slow
def test_duplicated_code_known_answers() -> None:
    pytest.importorskip("sklearn")
    values = compute_metrics(CodesTruth(*_codes("duplicated")), ["mig", "dci"], num_train=600)
    assert values["mig"] == 0.0
    assert values["dci_completeness"] == pytest.approx(1 - np.log(2) / np.log(2 * 3), abs=0.1)


def test_cli_on_a_codes_file_and_bad_inputs(tmp_path: Path, cli, fails) -> None:
    codes, v = _codes("identity")
    path = tmp_path / "codes.npz"
    np.savez(path, mu=codes, factors=v)
    code, out, err = cli("metrics", str(path), "--metric", "mig", "--samples", "500", "-f", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["values"]["mig"] > 0.6 and document["data"] == "stored codes"
    assert "needs observations for chosen factor values" in fails(
        "metrics", str(path), "--metric", "factor_vae"
    )
    assert "unknown metric 'nope'" in fails("metrics", str(path), "--metric", "nope")
    np.savez(tmp_path / "bad.npz", mu=codes, factors=v[:10])
    assert "same N" in fails("metrics", str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "nofactors.npz", mu=codes)
    assert "no array 'factors'" in fails("metrics", str(tmp_path / "nofactors.npz"))
    assert "--samples 5" in fails("metrics", str(path), "--samples", "5")
    assert "--seed -1" in fails("metrics", str(path), "--seed", "-1")
    assert "--seed 4294967296" in fails("metrics", str(path), "--seed", str(2**32))


def test_labels_are_the_one_factor_of_a_data_set_without_factors(
    trained_run: Path, cli, fails, tmp_path: Path
) -> None:
    """mnist5k: the digit label is the one ground-truth factor; `all` is what applies (no
    intervention metrics on a data set sampled by rows); no factors and no labels: one line."""
    model = str(trained_run / "model.safetensors")
    code, out, err = cli("metrics", model, "--metric", "mig", "--samples", "100", "-f", "json")
    assert code == 0, err
    assert 0.0 <= json.loads(out)["values"]["mig"] <= 1.0
    np.savez(tmp_path / "x.npz", x=np.zeros((20, 28, 28), dtype=np.uint8))
    line = fails("metrics", model, "--metric", "mig", "--data", f"npz:{tmp_path / 'x.npz'}")
    assert "no ground-truth factors or labels" in line


def test_metric_names() -> None:
    assert metric_names("all") == [n for n in METRICS.names() if not METRICS.get(n).needs_code]
    assert metric_names(" mig , sap") == ["mig", "sap"]


@pytest.mark.slow
def test_every_metric_on_a_dsprites_model(tmp_path: Path, cli) -> None:
    pytest.importorskip("sklearn")
    out = tmp_path / "ds"
    train = ["train", "--data", "dsprites", "--subset", "600", "--latents", "4", "--epochs", "1",
             "--batch-size", "50", "--device", "cpu", "--out", str(out)]  # fmt: skip
    code, _, err = cli(*train)
    assert code == 0, err
    # --data defaults to the checkpoint's whole data set: the grid, not the 600-image sample
    code, text, err = cli("metrics", str(out / "model.safetensors"),
                          "--metric", "all", "--samples", "150", "-f", "json")  # fmt: skip
    assert code == 0, err
    assert json.loads(text)["points"] == 737_280
    values = json.loads(text)["values"]
    for key in ("mig", "modularity", "explicitness_test", "sap", "dci_disentanglement",
                "beta_vae_eval", "factor_vae_eval"):  # fmt: skip
        assert key in values and 0.0 <= values[key] <= 1.0


@pytest.mark.slow
def test_the_report_shows_codes_against_factors(tmp_path: Path, cli) -> None:
    out = tmp_path / "ds"
    train = ["train", "--data", "dsprites", "--subset", "2000", "--latents", "3", "--epochs", "1",
             "--batch-size", "50", "--device", "cpu", "--out", str(out)]  # fmt: skip
    assert cli(*train)[0] == 0
    code, _, err = cli("report", str(out / "model.safetensors"), "--out", str(tmp_path / "r"))
    assert code == 0, err
    page = (tmp_path / "r" / "index.html").read_text()
    assert "Codes against the true factors" in page and "MIG (dlib" in page
    assert (tmp_path / "r" / "factors.png").stat().st_size > 1000
    assert "I(z_h; posX)" in page


@pytest.mark.slow
def test_all_is_every_metric_that_applies(trained_run: Path, cli) -> None:
    """On mnist5k (sampled by rows, labels as the factor) `all` leaves out the two metrics that
    need interventions rather than failing on them."""
    code, out, err = cli("metrics", str(trained_run / "model.safetensors"), "--samples", "100",
                         "-f", "json")  # fmt: skip
    assert code == 0, err
    names = json.loads(out)["metrics"]
    assert "mig" in names and "dci" in names and "beta_vae" not in names
