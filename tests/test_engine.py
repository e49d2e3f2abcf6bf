"""The open training engine from the command line (issue 11): every objective and encoder trains
and is analysed; options that do not apply are refused; --config; checkpoint format 2; and
correlated-noise posteriors handled or refused with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

import vaetool
from vaetool.models import ENCODERS
from vaetool.objectives import OBJECTIVES
from vaetool.objectives.base import COMMON_TERMS

FIXTURE_V1 = Path(__file__).parent / "fixtures" / "v1-conv28-h4.safetensors"
TINY = ["--subset", "500", "--latents", "4", "--epochs", "1", "--device", "cpu"]


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ENCODERS.names())
@pytest.mark.parametrize("objective", OBJECTIVES.names())
def test_every_objective_and_encoder_trains_and_is_analysed(
    objective: str, encoder: str, tmp_path: Path, cli
) -> None:
    out = tmp_path / "run"
    code, _, err = cli("train", *TINY, "--objective", objective, "--encoder", encoder,
                       "--out", str(out))  # fmt: skip
    assert code == 0, err
    checkpoint = out / "model.safetensors"
    info = vaetool.read_info(checkpoint)
    assert info.train.objective == objective and info.model.encoder == encoder
    history = (out / "history.csv").read_text().splitlines()[0].split(",")
    for term in COMMON_TERMS + OBJECTIVES.get(objective).extra_terms:
        assert f"train_{term}" in history and f"val_{term}" in history
    for command in (["mi", "rank"], ["prune", "--top", "50%"], ["traverse", "--top", "2"]):
        code, _, err = cli(
            *command[:2] if command[0] == "mi" else command[:1],
            str(checkpoint),
            *command[2:] if command[0] == "mi" else command[1:],
            "--device",
            "cpu",
        )
        assert code == 0, (command, err)  # fmt: skip
    small = tmp_path / "small.safetensors"
    assert cli("prune", str(checkpoint), "--top", "2", "--save", str(small))[0] == 0
    assert vaetool.load(small).config.latents == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--objective", "beta_vae", "--gamma", "3"], "--gamma does not apply to --objective beta"),
        (["--objective", "factor_vae", "--beta", "3"], "--beta does not apply to --objective fac"),
        (["--objective", "dip_vae_i", "--tc-estimator", "mss"], "--tc-estimator does not apply"),
        (["--objective", "beta_tcvae", "--tc-estimator", "exact"], "tc"),
        (["--objective", "nope"], "unknown objective 'nope'"),
        (["--encoder", "deep"], "unknown encoder 'deep'"),
        (["--noise-corr", "1"], "--noise-corr 1"),
        (["--noise-corr", "-0.1"], "--noise-corr -0.1"),
    ],
)  # fmt: skip
def test_options_that_do_not_apply_are_refused(args, needle, fails, tmp_path: Path) -> None:
    assert needle in fails("train", *args, "--out", str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_config_file_sets_options_and_flags_override(tmp_path: Path, cli, fails) -> None:
    config = tmp_path / "paper003.toml"
    config.write_text('objective = "beta_tcvae"\nbeta = 6\ntc-estimator = "mss"\nlatents = 4\n'
                      'subset = 500\nepochs = 1\n')  # fmt: skip
    out = tmp_path / "run"
    code, _, err = cli("train", "--config", str(config), "--beta", "2", "--device", "cpu",
                       "--out", str(out))  # fmt: skip
    assert code == 0, err
    train = vaetool.read_info(out / "model.safetensors").train
    assert train.objective == "beta_tcvae" and train.options["beta"] == 2  # the flag won
    assert train.options["tc_estimator"] == "mss" and "alpha" in train.options  # resolved
    (tmp_path / "bad.toml").write_text("gama = 3\n")
    line = fails("train", "--config", str(tmp_path / "bad.toml"))  # no component has it
    assert f"unknown key 'gama' in --config {tmp_path / 'bad.toml'} (did you mean 'gamma'?)" in line
    (tmp_path / "bad.yaml").write_text("x: 1\n")
    assert ".toml or .json" in fails("train", "--config", str(tmp_path / "bad.yaml"))


def test_a_first_release_checkpoint_still_loads_and_is_analysed(cli) -> None:
    info = vaetool.read_info(FIXTURE_V1)
    assert info.format_version == 1 and info.train.options == {"beta": 1.0}
    assert info.model.encoder == "paper" and info.model.latent == "gaussian"
    code, out, err = cli("mi", "rank", str(FIXTURE_V1), "--device", "cpu", "-f", "json")
    assert code == 0, err
    assert len(json.loads(out)["factors"]) == 4


def _rewrite_document(source: Path, target: Path, edit) -> Path:
    with safe_open(str(source), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        doc = json.loads(handle.metadata()["vaetool"])
    edit(doc)
    save_file(tensors, str(target), metadata={"vaetool": json.dumps(doc)})
    return target


def test_format_2_newer_formats_and_unknown_keys(trained_run: Path, tmp_path: Path, fails) -> None:
    checkpoint = trained_run / "model.safetensors"
    with safe_open(str(checkpoint), framework="pt") as handle:
        assert all(k.startswith(("model.", "objective.")) for k in handle.keys())  # noqa: SIM118
    newer = _rewrite_document(checkpoint, tmp_path / "n.safetensors",
                              lambda doc: doc.update(format_version=3))  # fmt: skip
    assert "upgrade vaetool" in fails("info", str(newer))
    typo = _rewrite_document(checkpoint, tmp_path / "t.safetensors",
                             lambda doc: doc["model"].update(latentz=4))  # fmt: skip
    assert "unknown key 'latentz'" in fails("mi", "rank", str(typo))
    swapped = _rewrite_document(checkpoint, tmp_path / "s.safetensors",
                                lambda doc: doc["model"].update(likelihood="gaussian"))  # fmt: skip
    assert "weights do not match its config" in fails("mi", "rank", str(swapped))
    for field, value in (("latents", 1.5), ("hidden", -1), ("sigma2", "x")):

        def edit(doc, f=field, v=value):
            doc["model"].update({f: v})

        bad = _rewrite_document(checkpoint, tmp_path / f"{field}.safetensors", edit)
        assert field in fails("mi", "rank", str(bad))


@pytest.mark.slow
def test_correlated_noise_is_handled_or_refused(tmp_path: Path, cli, fails) -> None:
    out = tmp_path / "corr"
    code, _, err = cli("train", *TINY, "--noise-corr", "0.9", "--latents", "10", "--out", str(out))
    assert code == 0, err
    checkpoint = str(out / "model.safetensors")
    code, stdout, _ = cli("mi", "rank", checkpoint, "-f", "json")
    summary = json.loads(stdout)["summary"]
    assert summary["c_rho"] == pytest.approx(9.2575, abs=1e-4)  # H = 10, ρ = 0.9 (MATH.md §14)
    assert "Σ_h I_h + c_ρ" in summary["sum_mi_is"]
    err = fails("mi", "rank", checkpoint, "--estimator", "mixture")
    assert "does not factorise" in err and "Theorem 2" in err
    code, stdout, err = cli("prune", checkpoint, "--task", "classify", "--top", "100%", "-f",
                            "json", "--repeats", "1")  # fmt: skip
    assert code == 0, err
    assert json.loads(stdout)[0]["fano_error_lb"] is None
    assert cli("report", checkpoint, "--device", "cpu")[0] == 0


def test_an_altered_sigma2_is_caught(tmp_path: Path, cli, fails) -> None:
    out = tmp_path / "g"
    code, _, err = cli("train", *TINY, "--likelihood", "gaussian", "--sigma2", "0.05",
                       "--out", str(out))  # fmt: skip
    assert code == 0, err
    altered = _rewrite_document(out / "model.safetensors", tmp_path / "a.safetensors",
                                lambda doc: doc["model"].update(sigma2=0.5))  # fmt: skip
    assert "the file was altered" in fails("mi", "rank", str(altered))

    def to_bernoulli(doc: dict) -> None:
        doc["model"]["likelihood"] = "bernoulli"

    swapped = _rewrite_document(out / "model.safetensors", tmp_path / "b.safetensors", to_bernoulli)
    assert "weights do not match its config" in fails("mi", "rank", str(swapped))
