"""Classification with the top-k factors (paper 000, Table 2; MATH.md §5) and Fano's bound.

For each keep-mask row (pruned factors set to 0, the prior mean) and each probe family of
:data:`PROBES`, three test accuracies:

- ``zero_fill``, the paper's protocol: probes trained on the training split's posterior means
  mu(x) with every factor, tested on the test means with the pruned factors set to 0;
- ``refit`` (optional), the fairer comparison: one probe per row trained on the kept means only;
- ``sampled``: probes trained on fresh codes z ~ q(z|x_train) at every step, tested on S draws
  z ~ q(z|x_test) per point with the pruned factors set to 0. :func:`fano_error_lower_bound`
  bounds THIS column's error only; nothing derived from I_h bounds the mean-fed columns.

Every probe of a table (rows × repeats) is one batched model: independent parameters stacked
along a leading probe dimension P, an einsum forward, and one full-batch Adam loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from vaetool.errors import ConfigError, DataError
from vaetool.registry import Registry

PROBE_HIDDEN = 64  # width of the MLP probe's hidden ReLU layer
PROBE_STEPS = 200  # full-batch Adam steps per probe
PROBE_LR = 1e-2
PROBE_WEIGHT_DECAY = 1e-4
SAMPLES = 8  # draws z ~ q(z|x) per test point for the sampled accuracy

ProbeParams = dict[str, Tensor]


@dataclass(frozen=True)
class ProbeFamily:
    """How to build and run P independent probes of one kind as one batched model.

    ``init(P, H, K, generator) -> params``: float32 tensors on ``generator.device``, each with
    leading dimension P. ``logits(params, features (N, H), masks (P, H)) -> (P, N, K)``: probe
    p reads the features with ``masks[p]`` applied (0 = pruned), folded into its first weights.
    """

    init: Callable[[int, int, int, torch.Generator], ProbeParams]
    logits: Callable[[ProbeParams, Tensor, Tensor], Tensor]


PROBES: Registry[ProbeFamily] = Registry("probe")


def _weights(generator: torch.Generator, probes: int, fan_in: int, fan_out: int) -> Tensor:
    """(P, fan_in, fan_out) N(0, 1/fan_in) weights."""
    shape = (probes, fan_in, fan_out)
    return torch.randn(shape, generator=generator, device=generator.device) / math.sqrt(fan_in)


def _masked_linear(features: Tensor, masks: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """(N, H) features, (P, H) masks, (P, H, W) weight, (P, 1, W) bias -> (P, N, W)."""
    return torch.einsum("nh,phw->pnw", features, masks[:, :, None] * weight) + bias


def _logreg_init(probes: int, factors: int, classes: int, gen: torch.Generator) -> ProbeParams:
    w = _weights(gen, probes, factors, classes)
    return {"w": w, "b": w.new_zeros(probes, 1, classes)}


def _logreg_logits(params: ProbeParams, features: Tensor, masks: Tensor) -> Tensor:
    return _masked_linear(features, masks, params["w"], params["b"])


def _mlp_init(probes: int, factors: int, classes: int, gen: torch.Generator) -> ProbeParams:
    w1 = _weights(gen, probes, factors, PROBE_HIDDEN)
    w2 = _weights(gen, probes, PROBE_HIDDEN, classes)
    b1, b2 = w1.new_zeros(probes, 1, PROBE_HIDDEN), w2.new_zeros(probes, 1, classes)
    return {"w1": w1, "b1": b1, "w2": w2, "b2": b2}


def _mlp_logits(params: ProbeParams, features: Tensor, masks: Tensor) -> Tensor:
    hidden = torch.relu(_masked_linear(features, masks, params["w1"], params["b1"]))  # (P, N, W)
    return hidden @ params["w2"] + params["b2"]


# Multinomial logistic regression; an MLP with one hidden layer of PROBE_HIDDEN ReLU units.
PROBES.register("logreg")(ProbeFamily(_logreg_init, _logreg_logits))
PROBES.register("mlp")(ProbeFamily(_mlp_init, _mlp_logits))


@dataclass(frozen=True, eq=False)
class Probes:
    """P trained probes of the registered family ``kind``; ``params`` as its ``init`` made them."""

    kind: str
    params: ProbeParams

    def logits(self, features: Tensor, masks: Tensor) -> Tensor:
        """features (N, H), masks (P, H) -> logits (P, N, K), in the features' dtype."""
        return PROBES.get(self.kind).logits(self.params, features, masks)

    def select(self, index: Tensor) -> Probes:
        """The probes ``index`` (P',) int64, repeats allowed: P' probes sharing weights."""
        return Probes(self.kind, {name: value[index] for name, value in self.params.items()})


@dataclass(frozen=True, eq=False)
class LabelledCodes:
    """Posterior codes of N labelled points (MATH.md notation): ``mu`` (N, H) float, ``logvar``
    (N, H) float or None (needed only for sampled codes), ``labels`` (N,) int64 in [0, K)."""

    mu: Tensor
    logvar: Tensor | None
    labels: Tensor

    def __post_init__(self) -> None:
        n = self.mu.shape[0]
        if self.mu.dim() != 2 or self.labels.shape != (n,) or n == 0:
            raise DataError(f"codes: expected mu (N, H) and labels (N,), N >= 1; got "
                            f"{tuple(self.mu.shape)} and {tuple(self.labels.shape)}")  # fmt: skip
        if self.logvar is not None and self.logvar.shape != self.mu.shape:
            shapes = f"logvar {tuple(self.logvar.shape)}, mu {tuple(self.mu.shape)}"
            raise DataError(f"codes: {shapes}: expected equal shapes")
        if self.labels.dtype != torch.int64 or bool((self.labels < 0).any()):
            raise DataError("codes: labels must be int64 class indices >= 0")

    def sample(self, generator: torch.Generator) -> Tensor:
        """One draw z = mu + exp(logvar / 2) · ε, ε ~ N(0, I): (N, H) in mu's dtype (§10)."""
        assert self.logvar is not None
        mu = self.mu
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + (0.5 * self.logvar).exp() * eps


def train_probes(
    kind: str, train: LabelledCodes, masks: Tensor, classes: int, *,
    sampled: bool = False, seed: int = 0,
) -> Probes:  # fmt: skip
    """P = len(masks) probes of family ``kind``, trained together by full-batch Adam on the sum
    over probes of each one's mean cross-entropy; probe p reads the codes through ``masks[p]``.

    Fed ``train.mu`` (N, H), or with ``sampled`` a fresh z ~ q(z|x) (:meth:`LabelledCodes.sample`,
    one draw per point per step, shared by the P probes): stochastic gradient descent on
    E_z CE, so the probe learns to classify the encoder's noisy code. ``masks`` (P, H) in the
    codes' dtype and device; ``seed`` fixes initialisation and noise (no global RNG is touched).
    """
    generator = torch.Generator(device=train.mu.device).manual_seed(seed)
    fresh = PROBES.get(kind).init(masks.shape[0], train.mu.shape[1], classes, generator)
    params = {name: value.to(train.mu.dtype).requires_grad_() for name, value in fresh.items()}
    probes = Probes(kind, params)
    optimizer = torch.optim.Adam(params.values(), lr=PROBE_LR, weight_decay=PROBE_WEIGHT_DECAY)
    targets = train.labels.expand(masks.shape[0], -1).reshape(-1)  # (P·N,)
    for _ in range(PROBE_STEPS):
        features = train.sample(generator) if sampled else train.mu
        logits = probes.logits(features, masks)  # (P, N, K)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), targets, reduction="sum")
        optimizer.zero_grad(set_to_none=True)
        (loss / train.labels.numel()).backward()
        optimizer.step()
    return Probes(kind, {name: value.detach() for name, value in params.items()})


@torch.no_grad()
def probe_accuracy(probes: Probes, features: Tensor, labels: Tensor, masks: Tensor) -> Tensor:
    """(P,) float64 on the CPU: accuracy of probe p on ``features`` (N, H) through ``masks[p]``
    (P, H), against ``labels`` (N,) int64."""
    predictions = probes.logits(features, masks).argmax(dim=2)  # (P, N)
    return (predictions == labels[None]).double().mean(dim=1).cpu()


@torch.no_grad()
def sampled_accuracy(
    probes: Probes, test: LabelledCodes, masks: Tensor, samples: int, generator: torch.Generator
) -> Tensor:
    """(P,) float64: accuracy of probe p fed ``samples`` = S draws z ~ q(z|x) per test point
    through ``masks[p]``, averaged over the S·N (point, draw) pairs.

    A Monte Carlo estimate of E_n E_{z~q(z|x_n)} 1[g(z) = y_n] with standard error at most
    sqrt(a(1 − a) / (S·N)) for accuracy a (independent draws given the points). One batched
    pass per draw over all points and probes: memory O(P·N·width), not O(S·P·N·width).
    """
    total = torch.zeros(masks.shape[0], dtype=torch.float64)
    for _ in range(samples):
        total += probe_accuracy(probes, test.sample(generator), test.labels, masks)
    return total / samples


@dataclass(frozen=True, eq=False)
class ProbeAccuracy:
    """Test accuracies, each a dict probe kind -> (R, repeats) float64 CPU tensor (paper 000,
    Table 2; MATH.md §5): ``zero_fill`` (trained on train means with all factors, tested on
    test means with the pruned factors 0: the paper's protocol), ``refit`` (one probe per row
    on the kept means; None unless asked), ``sampled`` (trained on z ~ q(z|x_train), tested on
    ``samples`` draws z ~ q(z|x_test) per point with the pruned factors 0; None unless asked).
    Fano's bound (:func:`fano_error_lower_bound`) applies to ``sampled`` only."""

    zero_fill: dict[str, Tensor]
    refit: dict[str, Tensor] | None
    sampled: dict[str, Tensor] | None
    samples: int = 0


def classification_accuracies(
    train: LabelledCodes, test: LabelledCodes, masks: Tensor, *,
    probes: Sequence[str] = ("logreg", "mlp"), repeats: int = 3, refit: bool = False,
    sampled: bool = True, samples: int = SAMPLES, seed: int = 0,
) -> ProbeAccuracy:  # fmt: skip
    """Paper 000 Table 2 accuracies for each keep-mask row of ``masks`` (R, H) (1 = kept) and
    each probe family in ``probes`` (:data:`PROBES` names), over ``repeats`` probe seeds.

    ``sampled`` (needs ``logvar`` in both splits) trains its probes on fresh samples
    z ~ q(z|x_train) at every step rather than feeding samples to the mean-trained probes. A
    probe trained on means weighs factors by how well their MEANS separate the classes, blind
    to their noise: with one factor mu = ±1, sigma = 10 beside one mu = ±0.3, sigma = 0.1,
    mean-trained probes fed samples score ≈ 0.56-0.60, sample-trained ones 0.998 (the tests).
    Its gap to Fano would measure that mismatch, not the information; trained on samples, a
    probe approaches the best classifier of the encoder's noisy code, the one Fano is about.
    Like ``zero_fill`` it is trained once on every factor and tested with the pruned factors
    set to 0, a function of z_kept, so :func:`fano_error_lower_bound` holds for it (MATH.md
    §5). All rows and repeats of a kind train as one batched model (seeds: ``seed`` zero-fill,
    +1 refit, +2 sampled training, +3 test draws, shared by every row, repeat and kind).
    """
    _check_request(train, test, repeats, sampled, samples)
    classes = int(max(train.labels.max(), test.labels.max())) + 1
    masks = masks.to(train.mu)  # (R, H) in the codes' dtype and device
    rows = masks.shape[0]
    zero_fill, refitted, noisy = {}, {}, {}
    for kind in probes:
        tested = partial(_zero_filled, kind, train, test, masks, repeats, classes)
        zero_fill[kind] = tested(0, seed)
        if refit:
            tiled = masks.repeat_interleave(repeats, dim=0)  # (R·repeats, H), row-major in R
            probe = train_probes(kind, train, tiled, classes, seed=seed + 1)
            refitted[kind] = probe_accuracy(probe, test.mu, test.labels, tiled).view(rows, repeats)
        if sampled:
            noisy[kind] = tested(samples, seed + 2)
    return ProbeAccuracy(
        zero_fill,
        refitted if refit else None,
        noisy if sampled else None,
        samples if sampled else 0,
    )


def _zero_filled(
    kind: str, train: LabelledCodes, test: LabelledCodes, masks: Tensor, repeats: int,
    classes: int, samples: int, seed: int,
) -> Tensor:  # fmt: skip
    """(R, repeats) float64: ``repeats`` probes trained on every factor, each tested under every
    row of ``masks`` (R, H). ``samples`` = 0: trained and tested on the means; S > 0: trained on
    fresh z ~ q(z|x_train) (seed), tested on S draws z ~ q(z|x_test) per point (seed + 1)."""
    rows, factors = masks.shape
    full = torch.ones(repeats, factors, dtype=masks.dtype, device=masks.device)
    probe = train_probes(kind, train, full, classes, sampled=samples > 0, seed=seed)
    tiled = masks.repeat_interleave(repeats, dim=0)  # (R·repeats, H): (r, j) at r·repeats + j
    probe = probe.select(torch.arange(repeats, device=masks.device).repeat(rows))  # repeat j
    if samples == 0:
        accuracy = probe_accuracy(probe, test.mu, test.labels, tiled)
    else:
        draws = torch.Generator(device=test.mu.device).manual_seed(seed + 1)
        accuracy = sampled_accuracy(probe, test, tiled, samples, draws)
    return accuracy.view(rows, repeats)


def _check_request(
    train: LabelledCodes, test: LabelledCodes, repeats: int, sampled: bool, samples: int
) -> None:
    if repeats < 1:
        raise ConfigError(f"‹repeats› {repeats}: expected at least 1")
    if train.mu.shape[1] != test.mu.shape[1]:
        raise DataError(f"train codes have H = {train.mu.shape[1]}, test H = {test.mu.shape[1]}")
    if sampled and samples < 1:
        raise ConfigError(f"samples {samples}: expected at least 1 draw per test point")
    if sampled and (train.logvar is None or test.logvar is None):
        raise ConfigError(
            "sampled accuracy draws z ~ q(z|x): give logvar in both LabelledCodes, or sampled=False"
        )


def label_entropy(labels: Tensor) -> float:
    """Empirical entropy H(Y) = −Σ_k p_k log p_k of integer labels (N,) int64 >= 0, in nats."""
    counts = torch.bincount(labels.cpu()).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())


def fano_error_lower_bound(information_nats: float, entropy_nats: float, classes: int) -> float:
    """Fano's lower bound on the error rate of a classifier fed a SAMPLE z ~ q(z|x) (MATH.md §5).

    The least P_e in [0, 1 − 1/K] with h(P_e) + P_e log(K − 1) ≥ H(Y) − I, all in nats, for
    ``information_nats`` I = Σ_kept I_h (the q* I_h of MATH.md §1, fitted on the evaluation
    points), ``entropy_nats`` H(Y) (:func:`label_entropy` of those points) and K = ``classes``.

    Valid, under the empirical distribution of the evaluation points, for any classifier g of
    z_kept with z ~ q(z|x) (e.g. the ``sampled`` probes, zero-filling included): y → x → z → g
    is a Markov chain, so I(y; g) ≤ I(x; z_kept) ≤ Σ_kept I(x; z_h) (q(z|x) factorises: the
    difference is a total correlation ≥ 0) ≤ Σ_kept I_h (paper 000, Corollary 1). It does NOT
    bound a classifier of the posterior mean mu(x): mu = ±1 by class with sigma² = 100 gives
    I_h ≈ 0.005 nats and a bound ≈ 0.45, while sign(mu) never errs. Vacuous (0) whenever
    I ≥ H(Y) (or K < 2); otherwise positive and decreasing in I, 1 − 1/K at I = 0 with K
    balanced classes. Solved by 60 bisection steps: the left side increases on [0, 1 − 1/K].
    """
    target = entropy_nats - max(information_nats, 0.0)
    if target <= 0 or classes < 2:
        return 0.0
    lo, hi = 0.0, 1.0 - 1.0 / classes
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if fano_lhs(mid, classes) < target:
            lo = mid
        else:
            hi = mid
    return hi


def fano_lhs(p: float, classes: int) -> float:
    """h(p) + p log(K − 1), nats: the binary entropy of an error rate p plus its share of the
    log(K − 1) nats left to name the class among the wrong ones (Fano's inequality)."""
    binary = 0.0 if p in (0.0, 1.0) else -(p * math.log(p) + (1 - p) * math.log(1 - p))
    return binary + p * math.log(classes - 1) if classes > 2 else binary
