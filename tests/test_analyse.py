"""`vaetool.analyse`: any encoder and decoder given as functions get the checkpoint's analyses."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import vaetool
from vaetool.errors import ConfigError


def test_functions_of_a_model_rank_exactly_as_its_checkpoint(trained_run: Path, tmp_path) -> None:
    checkpoint = trained_run / "model.safetensors"
    model = vaetool.load(checkpoint)
    result = vaetool.analyse(model.encode, model.decode_mean, "mnist5k", samples=400,
                             estimators=("qstar",), top="25%,100%")  # fmt: skip
    direct = vaetool.rank(vaetool.RankRequest(checkpoint, vaetool.Points(samples=400)))
    assert torch.allclose(result.ranking.ranking.mi, direct.ranking.mi, atol=1e-9)
    request = vaetool.PruneRequest(checkpoint, top="25%,100%", points=vaetool.Points(samples=400))
    table = vaetool.prune(request).table
    assert torch.allclose(result.prune.sse, table.sse, rtol=1e-6)
    assert result.traversal is not None and result.traversal.images.shape[0] == 8


def test_a_pythae_style_encoder_output_and_no_decoder(trained_run: Path) -> None:
    """pythae's encoders return a ModelOutput with .embedding and .log_covariance (log σ²)."""
    model = vaetool.load(trained_run / "model.safetensors")

    def encoder(x: torch.Tensor) -> SimpleNamespace:
        mu, logvar = model.encode(x)
        return SimpleNamespace(embedding=mu, log_covariance=logvar)

    result = vaetool.analyse(encoder, data="mnist5k", samples=300, estimators=("qstar",))
    assert result.prune is None and result.ranking.ranking.mi.shape == (16,)
    with pytest.raises(ConfigError, match="expected \\(mu, logvar\\)"):
        vaetool.analyse(lambda x: x, data="mnist5k", samples=300)
    with pytest.raises(ConfigError, match="needs a vaetool model"):
        vaetool.analyse(model.encode, model.decode_mean, samples=300, estimators=("vmi",))


@pytest.mark.slow
def test_analyse_writes_the_report(trained_run: Path, tmp_path: Path) -> None:
    model = vaetool.load(trained_run / "model.safetensors")
    result = vaetool.analyse(model.encode, model.decode_mean, samples=300, out=tmp_path / "rep")
    assert result.report is not None and result.report.name == "index.html"
    assert (tmp_path / "rep" / "traversals.png").is_file()
