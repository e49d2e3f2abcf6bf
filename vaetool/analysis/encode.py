"""The one encoder pass: images -> posterior statistics (mu, logvar), on the device.

Every analysis of a checkpoint starts here. The pass runs under ``torch.no_grad`` in eval mode,
keeps batches on the device, and can feed a streaming q* accumulator as it goes, so the q* fit
costs no second pass and no O(N) memory when the posterior itself is not kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vaetool.analysis.categorical import CodeAccumulator
from vaetool.analysis.posterior_checks import check_posterior
from vaetool.analysis.qstar import QStarAccumulator
from vaetool.data.feed import DeviceFeed
from vaetool.device import inference_batch_size
from vaetool.errors import ConfigError
from vaetool.models import VAE
from vaetool.progress import Progress


@dataclass(frozen=True, eq=False)
class Posterior:
    """Posterior statistics of N points: ``mu`` and ``logvar`` (N, H) on one device, floating
    point (float32 from an encoder; a float64 posterior file stays float64)."""

    mu: Tensor
    logvar: Tensor

    def __post_init__(self) -> None:
        check_posterior(self.mu, self.logvar)

    @property
    def num_points(self) -> int:
        return int(self.mu.shape[0])

    @property
    def num_factors(self) -> int:
        return int(self.mu.shape[1])


@torch.no_grad()
def encode(
    model: VAE,
    feed: DeviceFeed,
    *,
    batch_size: int | None = None,
    keep: bool = True,
    accumulator: QStarAccumulator | None = None,
    code: CodeAccumulator | None = None,
    on_progress: Progress | None = None,
) -> Posterior | None:
    """Encode every image of ``feed`` in order; return the :class:`Posterior` if ``keep``.

    ``accumulator`` (optional) receives each batch's (mu, logvar) for a streaming q* fit;
    ``code`` (optional) each batch's categorical-code logits (a model with a code).
    ``batch_size`` defaults to :func:`vaetool.device.inference_batch_size` for the feed's device.
    """
    if keep and feed.part[1] > 1:
        raise ConfigError("an estimator that keeps the whole posterior (mixture, Fano, prune) "
                          "does not run under torchrun yet; run it in one process")  # fmt: skip
    model.eval()
    batch_size = batch_size or inference_batch_size(feed.device)
    mus: list[Tensor] = []
    logvars: list[Tensor] = []
    done = 0
    for x in feed.batches(batch_size):
        mu, logvar, logits = model.encode_all(x)  # (B, H) each, (B, K)
        if code is not None:
            code.update(logits)
        if accumulator is not None:
            accumulator.update(mu, logvar)
        if keep:
            mus.append(mu)
            logvars.append(logvar)
        done += x.shape[0]
        if on_progress is not None:
            on_progress(done, len(feed))
    if accumulator is not None:
        accumulator.all_reduce()  # torchrun: every rank's points (a no-op in one process)
    return Posterior(torch.cat(mus), torch.cat(logvars)) if keep else None
