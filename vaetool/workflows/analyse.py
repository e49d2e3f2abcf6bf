"""Any encoder, from Python: rank, prune, traverse and report a model given as two functions.

    import vaetool
    result = vaetool.analyse(encoder=lambda x: (mu(x), logvar(x)),   # x (B, C, H, W) in [0, 1]
                             decoder=lambda z: mean_image(z),         # optional: z (B, H)
                             data="mnist5k", out="my-model-report")
    result.ranking.frame(); result.prune.sse; result.report         # (docs/foreign.md)

The functions are wrapped as a model (:class:`CallableModel`) with the interface every analysis
uses (encode, decode the mean image), so the checkpoint's own code paths run unchanged; no file,
no checkpoint. Without a decoder, the ranking alone (prune, traversals and the report need one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vaetool.analysis.pruning import ReconstructionTable
from vaetool.analysis.traversal import FactorTraversal
from vaetool.analysis.traversal_plan import TraversalPlan
from vaetool.config import DataConfig, ModelConfig, TrainConfig
from vaetool.data import ImageData, load_dataset
from vaetool.device import resolve_device
from vaetool.errors import ConfigError
from vaetool.likelihoods import build_likelihood
from vaetool.models.latents import build_latent
from vaetool.store.checkpoint import CheckpointInfo
from vaetool.workflows.mi import RankRequest, RankResult, rank
from vaetool.workflows.prune import PruneRequest, prune
from vaetool.workflows.report import prepare_report_dir, write_report
from vaetool.workflows.source import Points, Source
from vaetool.workflows.traverse import decode_traversal

Encoder = Callable[[Tensor], Any]  # x -> (mu, logvar), each (B, H)
Decoder = Callable[[Tensor], Tensor]  # z (B, H) -> mean images (B, C, H, W) or (B, C·H·W)


class CallableModel(nn.Module):
    """User functions as a model: ``encode`` / ``encode_all`` / ``mode`` from ``encoder``,
    ``decode_mean`` from ``decoder`` (reshaped to the images), a factorised Gaussian posterior,
    no categorical code. A device-anchoring buffer tells analyses where to put batches."""

    def __init__(self, encoder: Encoder, decoder: Decoder | None, config: ModelConfig,
                 device: torch.device) -> None:  # fmt: skip
        super().__init__()
        self._encoder, self._decoder = encoder, decoder
        self.config = config
        self.categories = 0
        self.latent = build_latent(config)
        self.likelihood = build_likelihood(
            replace(config, likelihood="bernoulli", likelihood_options={})
        )  # no noise to report
        self.register_buffer("anchor", torch.zeros((), device=device))

    def parameters(self, recurse: bool = True) -> Any:  # the analyses ask for a device
        yield self.anchor

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = _pair(self._encoder(x))
        return mu, logvar

    def encode_all(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mu, logvar = self.encode(x)
        return mu, logvar, mu.new_zeros(mu.shape[0], 0)

    def mode(self, x: Tensor) -> Tensor:
        return self.encode(x)[0]

    def prior_fill(self, like: Tensor) -> Tensor:
        return like.new_zeros(self.config.latents)

    def decode_mean(self, z: Tensor) -> Tensor:
        if self._decoder is None:
            raise ConfigError("this analysis decodes: pass decoder= (z -> mean image)")
        return torch.as_tensor(self._decoder(z)).reshape(-1, *self.config.image_shape)


def _pair(out: Any) -> tuple[Tensor, Tensor]:
    """(mu, logvar) from what an encoder returns: a pair, or an object with ``embedding`` and
    ``log_covariance`` (pythae's ModelOutput; its log_covariance is log σ²)."""
    if hasattr(out, "embedding") and hasattr(out, "log_covariance"):
        return out.embedding, out.log_covariance
    if isinstance(out, (tuple, list)) and len(out) == 2:
        return out[0], out[1]
    raise ConfigError(f"encoder returned {type(out).__name__}; expected (mu, logvar), each (B, H)")


class _CallableSource(Source):
    """A :class:`Source` over a callable model and in-memory data (no file to hash)."""

    @property
    def sha256(self) -> str:  # type: ignore[override]
        return "callable"


@dataclass(frozen=True, eq=False)
class AnalysisResult:
    ranking: RankResult
    prune: ReconstructionTable | None = None
    traversal: FactorTraversal | None = None
    report: Path | None = None


def analyse(
    encoder: Encoder,
    decoder: Decoder | None = None,
    data: str | ImageData = "mnist5k",
    *,
    split: str = "test",
    samples: int | None = None,
    estimators: tuple[str, ...] = ("qstar", "mixture"),
    top: str = "10%,25%,50%,100%",
    out: str | Path | None = None,
    force: bool = False,
    device: str = "cpu",
) -> AnalysisResult:
    """Rank the factors of ``encoder`` on ``data`` (a spec or an ImageData; the first ``samples``
    of its seeded ``split``); with ``decoder``, also the reconstruction prune table (paper 000,
    Table 1) and the traversal of the most informative factors; with ``out``, the HTML report.
    The functions run under ``torch.no_grad`` in batches on ``device``."""
    target = resolve_device(device)
    images = load_dataset(data) if isinstance(data, str) else data
    with torch.no_grad():
        probe = images.images(torch.arange(min(2, len(images))).numpy()).to(target)
        mu, logvar = _pair(encoder(probe))
    if mu.ndim != 2 or mu.shape != logvar.shape:
        raise ConfigError(f"encoder gave mu {tuple(mu.shape)} and logvar "
                          f"{tuple(logvar.shape)}; expected (B, H) each")  # fmt: skip
    config = ModelConfig("mlp", tuple(images.shape), latents=int(mu.shape[1]))  # type: ignore[arg-type]
    model = CallableModel(encoder, decoder, config, target).eval()
    spec = data if isinstance(data, str) else images.spec
    info = CheckpointInfo(config, DataConfig(spec=spec), TrainConfig(),
                          extra={"callable": "vaetool.analyse"})  # fmt: skip
    name = Path(str(out)) / "model" if out is not None else Path("callable")
    source = _CallableSource(name, target, model=model, info=info)  # type: ignore[arg-type]
    source._data[None] = images
    points = Points(split=split, samples=samples)
    ranked = rank(RankRequest(source.path, points, estimators=estimators), None, source)
    if decoder is None:
        return AnalysisResult(ranked)
    table = prune(PruneRequest(source.path, top=top, points=points), None, source,
                  ranked.ranking).table  # fmt: skip
    plan = TraversalPlan(top=min(8, config.latents))
    traversal = decode_traversal(source, plan, ranked.ranking)
    report = None
    if out is not None:
        folder = prepare_report_dir(Path(out), force)
        report = write_report(source, folder, ranked)
    return AnalysisResult(ranked, table, traversal, report)  # type: ignore[arg-type]
