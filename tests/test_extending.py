"""Extending vaetool from outside its source (docs/design.md, "Adding a component"): a toy
objective, likelihood, metric and importer are defined and registered here, in this module, and
each is used from the command line and from a config file (a `train --config` file or a study
plan), with no other file touched. Each is registered for this module's tests only."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from vaetool.analysis.metrics import METRICS, metric
from vaetool.config import ModelConfig, check_finite
from vaetool.importers import IMPORTERS, ForeignModel, read_json
from vaetool.likelihoods import LIKELIHOODS, Likelihood
from vaetool.models import build_model
from vaetool.objectives import OBJECTIVES, Objective
from vaetool.options import option
from vaetool.store.checkpoint import load_checkpoint

TINY = ["--data", "mnist5k", "--subset", "300", "--latents", "3", "--epochs", "1",
        "--batch-size", "50", "--device", "cpu"]  # fmt: skip


# --- a toy objective: recon + w·KL, its weight an option ---------------------------------------
@dataclass(frozen=True)
class WeightedKLOptions:
    weight: float = option(1.0, "w, the weight of the KL term")

    def __post_init__(self) -> None:
        check_finite("‹weight›", self.weight)


class WeightedKL(Objective):
    """recon + w·KL (a β-VAE under another name)."""

    Options = WeightedKLOptions

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        _, recon, kl = self.forward_terms(x)
        recon, kl = recon.mean(), kl.mean()
        return {"loss": recon + self.options.weight * kl, "recon": recon, "kl": kl,
                "elbo": -(recon + kl)}  # fmt: skip


# --- a toy likelihood: Laplace pixels, its scale an option -------------------------------------
@dataclass(frozen=True)
class LaplaceOptions:
    scale: float = option(0.1, "b, every pixel's Laplace scale")

    def __post_init__(self) -> None:
        check_finite("‹scale›", self.scale, positive=True)


class Laplace(Likelihood):
    """Laplace pixels: −log p = Σ_d |x_d − G(z)_d| / b + log 2b."""

    Options = LaplaceOptions

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        b = self.options.scale
        return ((x - params).abs() / b + math.log(2 * b)).flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        noise = torch.distributions.Laplace(0.0, self.options.scale).sample(params.shape)
        return params + noise.to(params)


# --- a toy metric: how well the best single code tracks each factor ----------------------------
def best_correlation(truth, rng: np.random.RandomState, sizes) -> dict[str, float]:
    """Mean over factors of the largest |correlation| of one code with it."""
    codes, classes = truth.sample(sizes.num_train, rng)
    h = codes.shape[1]
    corr = np.corrcoef(codes.T, classes.T)[:h, h:]
    return {"best_correlation": float(np.nanmax(np.abs(corr), axis=0).mean())}


# --- a toy importer: a folder holding state.safetensors (prefixed keys) and spec.json ---------
PREFIX = "net::"


def import_toy(source: Path) -> ForeignModel:
    """A folder of state.safetensors (a vaetool MLP's tensors under "net::") and spec.json."""
    spec = read_json(source / "spec.json")
    config = ModelConfig("mlp", tuple(spec["image"]), latents=int(spec["latents"]))
    weights = source / "state.safetensors"
    state = load_checkpoint_free_tensors(weights)
    mapped = {k.removeprefix(PREFIX): v for k, v in state.items() if k.startswith(PREFIX)}
    return ForeignModel("toy", config, mapped, spec, weights, spec.get("dataset"))


def load_checkpoint_free_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.fixture(scope="module", autouse=True)
def registered() -> Iterator[None]:
    """The four toys in the registries for this module's tests, removed afterwards."""
    OBJECTIVES.register("weighted_kl")(WeightedKL)
    LIKELIHOODS.register("laplace")(Laplace)
    metric("best_correlation")(best_correlation)
    IMPORTERS.register("toy")(import_toy)
    yield
    OBJECTIVES.unregister("weighted_kl")
    LIKELIHOODS.unregister("laplace")
    METRICS.unregister("best_correlation")
    IMPORTERS.unregister("toy")


def _history(run: Path) -> list[dict[str, str]]:
    with (run / "history.csv").open() as handle:
        return list(csv.DictReader(handle))


def _check_toy_run(run: Path, weight: float, scale: float, cli) -> None:
    """The checkpoint names the toys with their options, rebuilds them, and is analysed."""
    model, info = load_checkpoint(run / "model.safetensors", "cpu")
    assert info.train.objective == "weighted_kl" and info.train.options == {"weight": weight}
    assert info.model.likelihood == "laplace" and info.model.likelihood_options == {"scale": scale}
    assert isinstance(model.likelihood, Laplace) and model.likelihood.options.scale == scale
    row = _history(run)[-1]  # the objective's loss is recon + w·KL with the option's w
    loss, recon, kl = (float(row[f"train_{k}"]) for k in ("loss", "recon", "kl"))
    assert loss == pytest.approx(recon + weight * kl, rel=1e-4)
    code, out, err = cli("mi", "rank", str(run / "model.safetensors"), "-f", "json")
    assert code == 0, err
    assert len(json.loads(out)["factors"]) == 3
    code, out, err = cli("info", str(run / "model.safetensors"), "--format", "json")
    assert code == 0 and json.loads(out)["model"]["scale"] == scale, err


def test_toy_objective_and_likelihood_from_the_command_line(tmp_path: Path, cli, fails) -> None:
    run = tmp_path / "flags"
    code, _, err = cli("train", *TINY, "--objective", "weighted_kl", "--option", "weight=0.25",
                       "--likelihood", "laplace", "-o", "scale=0.2", "--out", str(run))  # fmt: skip
    assert code == 0, err
    _check_toy_run(run, 0.25, 0.2, cli)
    err = fails("train", *TINY, "--objective", "weighted_kl", "-o", "weight=x")
    assert "-o weight 'x'" in err and "expected float" in err
    err = fails("train", *TINY, "--likelihood", "laplace", "-o", "scale=-1")
    assert "-o scale -1: expected a finite positive number" in err
    err = fails("train", *TINY, "--objective", "weighted_kl", "-o", "scael=1")
    assert "unknown key 'scael' (did you mean 'scale'?)" in err  # no component has it
    err = fails("train", *TINY, "--objective", "weighted_kl", "-o", "beta=1")  # another's
    assert "--beta does not apply to --objective weighted_kl (its options: -o weight)" in err
    code, _, err = cli("train", *TINY, "--sigma2", "0.1", "-o", "sigma2=0.2")
    assert code == 2 and "sigma2 is given twice" in err
    code, out, _ = cli("components", "likelihood", "--options")
    assert code == 0 and "laplace" in out and "b, every pixel's Laplace scale" in out


def test_toy_objective_and_likelihood_from_a_config_file(tmp_path: Path, cli) -> None:
    config = tmp_path / "toy.toml"
    config.write_text('objective = "weighted_kl"\nweight = 0.5\nlikelihood = "laplace"\n'
                      "scale = 0.3\n")  # fmt: skip
    run = tmp_path / "config"
    code, _, err = cli("train", *TINY, "--config", str(config), "--out", str(run))
    assert code == 0, err
    _check_toy_run(run, 0.5, 0.3, cli)


def test_toy_metric_from_the_command_line(tmp_path: Path, cli) -> None:
    rng = np.random.RandomState(0)
    factors = rng.randint(0, 5, size=(800, 2))
    codes = {"aligned": np.c_[factors + 0.01 * rng.randn(800, 2), rng.randn(800)],
             "noise": rng.randn(800, 3)}  # fmt: skip
    values = {}
    for kind, mu in codes.items():
        np.savez(tmp_path / f"{kind}.npz", mu=mu, factors=factors)
        code, out, err = cli("metrics", str(tmp_path / f"{kind}.npz"), "--metric",
                             "best_correlation", "--samples", "500", "-f", "json")  # fmt: skip
        assert code == 0, err
        values[kind] = json.loads(out)["values"]["best_correlation"]
    assert values["aligned"] > 0.99 and values["noise"] < 0.3


@pytest.mark.slow
def test_toy_metric_from_a_study_plan(tmp_path: Path, cli) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('seeds = [0]\nmetrics = ["best_correlation"]\nmetric_samples = 200\n'
                    '[base]\ndata = "dsprites"\nsubset = 300\nlatents = 3\nepochs = 1\n'
                    'batch-size = 50\n[grid]\nobjective = ["weighted_kl"]\n')  # fmt: skip
    code, _, err = cli("study", str(plan), "--out", str(tmp_path / "S"), "--device", "cpu")
    assert code == 0, err
    with (tmp_path / "S" / "results.csv").open() as handle:
        row = next(csv.DictReader(handle))
    assert 0 <= float(row["best_correlation"]) <= 1


def test_toy_importer_from_the_command_line(tmp_path: Path, cli) -> None:
    torch.manual_seed(0)
    source = build_model(ModelConfig("mlp", (1, 28, 28), latents=3)).eval()
    folder = tmp_path / "toy-model"
    folder.mkdir()
    tensors = {PREFIX + k: v.contiguous() for k, v in source.state_dict().items()
               if not k.startswith("likelihood.")}  # fmt: skip
    save_file(tensors, str(folder / "state.safetensors"))
    (folder / "spec.json").write_text(json.dumps({"latents": 3, "image": [1, 28, 28],
                                                  "dataset": "mnist5k"}))  # fmt: skip
    out = tmp_path / "imported.safetensors"
    code, _, err = cli("import", "toy", str(folder), "--out", str(out))
    assert code == 0, err
    imported, info = load_checkpoint(out, "cpu")
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(imported.encode(x)[0], source.encode(x)[0])
    assert info.extra["imported"]["framework"] == "toy"
    code, out_json, err = cli("mi", "rank", str(out), "-f", "json")
    assert code == 0 and len(json.loads(out_json)["factors"]) == 3, err
