"""K models at once (issue 12): `vaetool train --seeds` writes K checkpoints, each equal on a CPU
to its separate `--seed` run, for every objective; a stopped stack resumes; bad seeds refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

import vaetool
from vaetool.config import DataConfig, ModelConfig, TrainConfig
from vaetool.errors import ConfigError
from vaetool.objectives import OBJECTIVES
from vaetool.workflows import TrainRequest, resume_seeds, train_run, train_seeds
from vaetool.workflows.train import parse_seeds, seed_folder

DATA = DataConfig("mnist5k", subset=300)
SMALL_D = {"factor_vae": {"discriminator_width": 32, "discriminator_layers": 2}}
TOLERANCE = 2e-4  # float reassociation in the batched matmuls, carried through Adam


class Crash(Exception):
    pass


def _request(out: Path, objective: str = "beta_vae", *, seeds=(), seed=0, epochs=2, **model):
    options = SMALL_D.get(objective, {})
    config = TrainConfig(objective=objective, options=options, epochs=epochs, batch_size=40,
                         seed=seed)  # fmt: skip
    choice = ModelConfig(latents=4, hidden=64, **model)
    return TrainRequest(out, DATA, config, choice, device="cpu", seeds=tuple(seeds))


def _close(a: Path, b: Path) -> float:
    x, y = vaetool.load(a).state_dict(), vaetool.load(b).state_dict()
    assert x.keys() == y.keys()
    return max(float((x[k] - y[k]).abs().max()) for k in x)


STACKABLE = [n for n in OBJECTIVES.names() if OBJECTIVES.get(n).stackable]  # vmi: two passes


@pytest.mark.slow  # 1.5 s each: the fast lane keeps under a minute
@pytest.mark.parametrize("objective", STACKABLE)
def test_each_seed_equals_its_separate_run(tmp_path: Path, objective: str) -> None:
    outcomes = train_seeds(_request(tmp_path / "stack", objective, seeds=(0, 3, 5)))
    assert [o.checkpoint for o in outcomes] == [
        seed_folder(tmp_path / "stack", s) / "model.safetensors" for s in (0, 3, 5)
    ]
    for seed, outcome in zip((0, 3, 5), outcomes, strict=True):
        alone = train_run(_request(tmp_path / f"alone-{seed}", objective, seed=seed))
        assert _close(outcome.checkpoint, alone.checkpoint) < TOLERANCE
        assert vaetool.read_info(outcome.checkpoint).train.seed == seed
        stacked = [r.val["elbo"] for r in outcome.result.history]
        separate = [r.val["elbo"] for r in alone.result.history]
        assert stacked == pytest.approx(separate, rel=1e-4)
    different = _close(outcomes[0].checkpoint, outcomes[1].checkpoint)
    assert different > 1e-2  # the seeds really differ


@pytest.mark.slow
def test_correlated_split_model_stacks(tmp_path: Path) -> None:
    request = _request(tmp_path / "s", seeds=(1, 2), encoder="split",
                       encoder_options={"split_width": 16},
                       latent="correlated", latent_options={"noise_corr": 0.5})  # fmt: skip
    outcomes = train_seeds(request)
    alone = train_run(replace(request, out=tmp_path / "a", seeds=(), train=replace(
        request.train, seed=2)))  # fmt: skip
    assert _close(outcomes[1].checkpoint, alone.checkpoint) < TOLERANCE


@pytest.mark.slow  # in the full suite; kept out of the inner loop for time
def test_a_stopped_stack_resumes_to_the_same_weights(tmp_path: Path) -> None:
    whole = train_seeds(_request(tmp_path / "whole", seeds=(0, 1), epochs=3))

    def crash(k: int, record) -> None:
        if record.epoch == 2 and k == 1:
            raise Crash

    with pytest.raises(Crash):
        train_seeds(_request(tmp_path / "stopped", seeds=(0, 1), epochs=3), on_epoch=crash)
    resumed = resume_seeds(tmp_path / "stopped", device="cpu")
    for a, b in zip(whole, resumed, strict=True):
        x, y = vaetool.load(a.checkpoint).state_dict(), vaetool.load(b.checkpoint).state_dict()
        assert all(torch.equal(x[k], y[k]) for k in x)


def test_cli_seeds_and_bad_values(tmp_path: Path, cli, fails) -> None:
    out = tmp_path / "cli"
    code, _, err = cli("train", "--subset", "300", "--latents", "3", "--epochs", "1",
                       "--seeds", "4,7", "--device", "cpu", "--out", str(out))  # fmt: skip
    assert code == 0, err
    assert (out / "seed-4" / "model.safetensors").is_file()
    assert (out / "seed-7" / "history.csv").is_file()
    again = fails("train", "--subset", "300", "--epochs", "1", "--seeds", "4,7",
                  "--device", "cpu", "--out", str(out))  # fmt: skip
    assert "already holds a run" in again
    assert "--seed and --seeds" in fails("train", "--seeds", "1,2", "--seed", "3")
    assert "--seeds" in fails("train", "--seeds", "1,1", "--out", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("bad", ["", "1,1", "-1,2", "a,b", "1,,2"])
def test_bad_seed_lists_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="seeds"):
        parse_seeds(bad)
    assert parse_seeds("0, 2,5") == (0, 2, 5) and parse_seeds([3, 1]) == (3, 1)
