"""Classification with the top-k factors (paper 000, Table 2; MATH.md §5) and Fano's bound.

Probes are trained on training-split latent means. Paper protocol: one probe on all factors,
evaluated with the pruned factors set to 0. Refit mode: one probe per k trained on the kept
factors only (the fairer comparison). Every probe of a table (rows × repeats) is trained at once
as one batched model: independent weights, stacked along a leading dimension, einsum forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vaetool.errors import ConfigError

PROBE_KINDS = ("logreg", "mlp")
PROBE_HIDDEN = 64
PROBE_STEPS = 200
PROBE_LR = 1e-2


class BatchedProbe(nn.Module):
    """P independent probes (logistic regression, or an MLP with one hidden ReLU layer).

    ``forward(features (N, H), masks (P, H)) -> logits (P, N, K)``: probe p sees the features
    with its mask applied (pruned factors = 0), folded into its first weight matrix.
    """

    def __init__(self, probes: int, num_factors: int, classes: int, kind: str) -> None:
        super().__init__()
        if kind not in PROBE_KINDS:
            raise ConfigError(f"probe {kind!r}: expected one of {', '.join(PROBE_KINDS)}")
        width = classes if kind == "logreg" else PROBE_HIDDEN
        self.w1 = nn.Parameter(torch.randn(probes, num_factors, width) / math.sqrt(num_factors))
        self.b1 = nn.Parameter(torch.zeros(probes, 1, width))
        self.kind = kind
        if kind == "mlp":
            self.w2 = nn.Parameter(torch.randn(probes, width, classes) / math.sqrt(width))
            self.b2 = nn.Parameter(torch.zeros(probes, 1, classes))

    def forward(self, features: Tensor, masks: Tensor) -> Tensor:
        hidden = torch.einsum("nh,phw->pnw", features, masks[:, :, None] * self.w1) + self.b1
        if self.kind == "logreg":
            return hidden
        return torch.relu(hidden) @ self.w2 + self.b2


def train_probes(
    kind: str, features: Tensor, labels: Tensor, masks: Tensor, classes: int, seed: int
) -> BatchedProbe:
    """Full-batch Adam on the summed cross-entropy of P = len(masks) independent probes."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    probe = BatchedProbe(masks.shape[0], features.shape[1], classes, kind).to(features.device)
    torch.random.set_rng_state(generator_state)
    optimizer = torch.optim.Adam(probe.parameters(), lr=PROBE_LR, weight_decay=1e-4)
    targets = labels.expand(masks.shape[0], -1).reshape(-1)
    for _ in range(PROBE_STEPS):
        logits = probe(features, masks)  # (P, N, K)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), targets, reduction="sum")
        optimizer.zero_grad(set_to_none=True)
        (loss / labels.numel()).backward()
        optimizer.step()
    return probe


@torch.no_grad()
def probe_accuracy(probe: BatchedProbe, features: Tensor, labels: Tensor, masks: Tensor) -> Tensor:
    """(P,) accuracy of each probe on (features with its mask, labels)."""
    predictions = probe(features, masks).argmax(dim=2)
    return (predictions == labels[None]).double().mean(dim=1).cpu()


@dataclass(frozen=True, eq=False)
class ProbeAccuracy:
    """Accuracies (R, repeats) float64 per probe kind, paper protocol and refit (or None)."""

    zero_fill: dict[str, Tensor]
    refit: dict[str, Tensor] | None


def classification_accuracies(
    train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], masks: Tensor, *,
    repeats: int = 3, refit: bool = False, seed: int = 0,
) -> ProbeAccuracy:  # fmt: skip
    """Test accuracies for each keep-mask row (R, H) and probe kind, over ``repeats`` seeds."""
    if repeats < 1:
        raise ConfigError(f"--repeats {repeats}: expected at least 1")
    (x_train, y_train), (x_test, y_test) = train, test
    classes = int(max(y_train.max(), y_test.max())) + 1
    rows = masks.shape[0]
    full = torch.ones(repeats, masks.shape[1], device=masks.device)
    tiled = masks.repeat_interleave(repeats, dim=0)  # (R·repeats, H), row-major in R
    zero_fill, refitted = {}, {}
    for kind in PROBE_KINDS:
        probe = train_probes(kind, x_train, y_train, full, classes, seed)
        # repeat p's probe evaluated under every mask: (repeats, R) -> (R, repeats)
        accs = [probe_accuracy(probe, x_test, y_test, m.expand(repeats, -1)) for m in masks]
        zero_fill[kind] = torch.stack(accs)
        if refit:
            probe = train_probes(kind, x_train, y_train, tiled, classes, seed + 1)
            refitted[kind] = probe_accuracy(probe, x_test, y_test, tiled).view(rows, repeats)
    return ProbeAccuracy(zero_fill, refitted if refit else None)


def label_entropy(labels: Tensor) -> float:
    """Empirical entropy H(Y) of integer labels, nats."""
    counts = torch.bincount(labels.cpu()).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())


def fano_error_lower_bound(information: float, entropy: float, classes: int) -> float:
    """Fano: the least error P_e with h(P_e) + P_e log(K − 1) ≥ H(Y) − I (all in nats).

    I(y; z_kept) ≤ I(x; z_kept) ≤ Σ_kept I_h (data processing; the q* I_h are upper bounds and
    TC ≥ 0), so using Σ I_h gives a valid, possibly loose, lower bound on any classifier's error.
    Solved by bisection: the left side increases on [0, 1 − 1/K].
    """
    target = entropy - max(information, 0.0)
    if target <= 0 or classes < 2:
        return 0.0
    lo, hi = 0.0, 1.0 - 1.0 / classes
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _fano_lhs(mid, classes) < target:
            lo = mid
        else:
            hi = mid
    return hi


def _fano_lhs(p: float, classes: int) -> float:
    binary = 0.0 if p in (0.0, 1.0) else -(p * math.log(p) + (1 - p) * math.log(1 - p))
    return binary + p * math.log(classes - 1) if classes > 2 else binary
