"""`vaetool prune`: Table 1/2 rows with known anchors, the sliced model, and clear errors."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import vaetool
from vaetool.analysis.pruning import KeepSpec, keep_count, parse_top
from vaetool.data import load_dataset, split_indices
from vaetool.errors import ConfigError


@pytest.fixture(scope="module")
def checkpoint(trained_run: Path) -> Path:
    return trained_run / "model.safetensors"


@pytest.fixture(scope="module")
def test_images() -> torch.Tensor:
    data = load_dataset("mnist5k")
    return data.images(split_indices(len(data)).test)


def prune_json(cli, *args: str) -> list[dict]:
    code, out, err = cli("prune", *args, "--device", "cpu", "--format", "json")
    assert code == 0, err
    return json.loads(out)


def sse_per_image(recon: torch.Tensor, x: torch.Tensor) -> float:
    return float((recon - x).double().square().flatten(1).sum(1).mean())


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10%", [12]), ("13", [13]), ("1,2,4,8", [1, 2, 4, 8]), ("10%,4", [12, 4]),
     ("100%,20%,10%,7%,5%,4%,3%,2%,1%,0%", [128, 25, 12, 8, 6, 5, 3, 2, 1, 0]),
     ("0.1%", [1]), ("50%,0%", [64, 0]), ("2.5%", [3])],
)  # fmt: skip
def test_keep_counts_reproduce_table_1(text: str, expected: list[int]) -> None:
    """H = 128: paper 000 Table 1's information column needs 25, 12, 8, 6, 5, 3, 2, 1."""
    assert [spec.keep_count(128) for spec in parse_top(text)] == expected


@pytest.mark.parametrize(("percent", "h", "k"), [("29", 50, 14), ("15", 10, 1), ("50", 7, 3),
                                                 ("1", 1, 1), ("7", 256, 17), ("0", 256, 0),
                                                 ("100", 3, 3), ("33.3", 3, 1)])  # fmt: skip
def test_keep_count_by_hand(percent: str, h: int, k: int) -> None:
    assert keep_count(percent, h) == k


@pytest.mark.parametrize("h", [1, 2, 7, 10, 16, 50, 100, 128, 255, 256])
def test_keep_count_never_promises_more_than_the_ratio(h: int) -> None:
    """For integer percents p: k·100 ≤ p·H < (k + 1)·100 (floor), except k = 1 when p·H < 100."""
    for p in range(1, 101):
        k = keep_count(str(p), h)
        assert k * 100 <= max(p * h, 100) and p * h < (k + 1) * 100, (p, h, k)


@pytest.mark.parametrize("text", ["150%", "-1", "abc", "", "10%,", "1e3", "20,abc"])
def test_bad_top_values_are_rejected(text: str) -> None:
    with pytest.raises(ConfigError, match="top"):
        parse_top(text)


def test_count_above_h_is_rejected() -> None:
    with pytest.raises(ConfigError, match="H = 16"):
        KeepSpec("17", count=17).keep_count(16)


@pytest.mark.slow  # 1.3 s
def test_default_table_anchors(checkpoint: Path, cli, test_images: torch.Tensor) -> None:
    rows = prune_json(cli, str(checkpoint))
    assert [r["top"] for r in rows] == [
        "100%",
        "20%",
        "10%",
        "7%",
        "5%",
        "4%",
        "3%",
        "2%",
        "1%",
        "0%",
    ]
    assert {"top", "k", "mi_used", "sse", "kept_factors"} <= set(rows[0])
    assert rows[0]["k"] == 16 and rows[-1]["k"] == 0 and rows[-1]["mi_used"] == 0
    assert all(a["mi_used"] >= b["mi_used"] - 1e-12 for a, b in itertools.pairwise(rows))
    model = vaetool.load(checkpoint)
    with torch.no_grad():
        mu, _ = model.encode(test_images)
        full = sse_per_image(model.decode_mean(mu), test_images)
        empty = sse_per_image(model.decode_mean(torch.zeros_like(mu)), test_images)
    assert rows[0]["sse"] == pytest.approx(full, rel=1e-5)  # 100 % = the full reconstruction
    assert rows[-1]["sse"] == pytest.approx(empty, rel=1e-5)  # 0 % = decoding the zero code
    assert rows[0]["mse_pixel"] == pytest.approx(full / 784, rel=1e-5)


@pytest.mark.slow  # in the full suite; kept out of the inner loop for time
def test_table_formats_compare_and_plot(checkpoint: Path, cli, tmp_path: Path) -> None:
    code, out, _ = cli("prune", str(checkpoint), "--device", "cpu", "--top", "50%,10%")
    assert code == 0 and "k rule" in out and "SSE / image" in out
    rows = prune_json(cli, str(checkpoint), "--compare", "--top", "50%,10%", "--samples", "300")
    others = {"aggregate_variance", "posterior_variance", "var_mu", "kl", "random"}
    assert {f"sse_{name}" for name in others} <= set(rows[0])
    by_variance = prune_json(
        cli, str(checkpoint), "--rank-by", "aggregate_variance", "--top", "50%", "--samples", "300"
    )
    assert by_variance[0]["sse"] == pytest.approx(rows[0]["sse_aggregate_variance"])
    plot = tmp_path / "fig4.png"
    code, out, _ = cli(
        "prune",
        str(checkpoint),
        "--device",
        "cpu",
        "-f",
        "csv",
        "--plot",
        str(plot),
        "--top=50%,0%",
    )
    assert code == 0 and out.startswith("top,k,kept,mi_used,sse,mse_pixel")
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_saved_model_equals_zero_fill(checkpoint: Path, cli, tmp_path: Path, test_images) -> None:
    out = tmp_path / "small.safetensors"
    code, _, err = cli(
        "prune", str(checkpoint), "--device", "cpu", "--top", "25%", "--save", str(out)
    )
    assert code == 0, err
    small, full = vaetool.load(out), vaetool.load(checkpoint)
    kept = vaetool.read_info(out).extra["pruned"]["kept_factors"]
    assert small.config.latents == len(kept) == 4
    with torch.no_grad():
        mu_full, logvar_full = full.encode(test_images)
        mu_small, logvar_small = small.encode(test_images)
        mask = torch.zeros(16)
        mask[kept] = 1
        assert torch.allclose(mu_small, mu_full[:, kept], atol=1e-6)
        assert torch.allclose(logvar_small, logvar_full[:, kept], atol=1e-6)
        assert torch.allclose(
            small.decode_mean(mu_small), full.decode_mean(mu_full * mask), atol=1e-5
        )
    code, ranked, _ = cli("mi", "rank", str(out), "--device", "cpu", "-f", "json")
    assert code == 0 and len(json.loads(ranked)["factors"]) == 4  # other commands accept it
    assert cli("info", str(out))[0] == 0
    code, _, err = cli("prune", str(checkpoint), "--top", "25%", "--save", str(out))
    assert code == 1 and "--force" in err


@pytest.mark.slow
def test_classification_beats_chance(checkpoint: Path, cli) -> None:
    args = ("--task", "classify", "--top", "100%,0%", "--repeats", "2", "--refit")
    rows = prune_json(cli, str(checkpoint), *args)
    assert rows[0]["logreg_acc_mean"] > 0.5 and rows[0]["mlp_acc_mean"] > 0.5  # chance is 0.1
    assert rows[1]["logreg_acc_mean"] < 0.25  # all factors zeroed: a constant input
    assert rows[0]["logreg_refit_mean"] > 0.5
    # Fano bounds the error of probes fed z ~ q(z|x); 1000 test points: s.e. ≤ 0.016 per probe
    for row in rows:
        for probe in ("logreg", "mlp"):
            assert 1 - row[f"{probe}_sampled_mean"] >= row["fano_error_lb"] - 0.05
    # with no factor kept, I = 0: the bound is the Fano error of the label entropy alone
    assert rows[1]["fano_error_lb"] > 0.8


def test_bad_inputs_give_one_line(checkpoint: Path, fails, tmp_path: Path) -> None:
    for top in ("150%", "-1", "abc", ","):
        assert "--top" in fails("prune", str(checkpoint), "--top", top)
    assert "H = 16" in fails("prune", str(checkpoint), "--top", "17")
    assert "single --top" in fails("prune", str(checkpoint), "--save", str(tmp_path / "a"))
    assert "ranking statistic" in fails("prune", str(checkpoint), "--rank-by", "luck")
    err = fails("prune", str(checkpoint), "--rank-by", "variance")
    assert "aggregate_variance" in err and "posterior_variance" in err
    assert "--task" in fails("prune", str(checkpoint), "--task", "segment")
    err = fails("prune", str(checkpoint), "--top", "10%", "--save", str(checkpoint), "--force")
    assert "input checkpoint" in err
    unlabelled = tmp_path / "x.npz"
    np.savez(unlabelled, x=np.zeros((20, 28, 28), dtype=np.uint8))
    err = fails("prune", str(checkpoint), "--task", "classify", "--data", f"npz:{unlabelled}")
    assert "no labels" in err
    posterior = tmp_path / "p.npz"
    np.savez(posterior, mu=np.zeros((4, 2), "f4"), logvar=np.zeros((4, 2), "f4"))
    assert "posterior file" in fails("prune", str(posterior))
    assert not (tmp_path / "a").exists()


def test_table_output_goes_to_the_file(checkpoint: Path, cli, tmp_path: Path) -> None:
    target = tmp_path / "prune.txt"
    code, out, _ = cli("prune", str(checkpoint), "--device", "cpu", "-o", str(target), "--top=5%")
    assert code == 0 and out == "" and "k rule" in target.read_text()
