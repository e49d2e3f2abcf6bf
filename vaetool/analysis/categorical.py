"""What a categorical code carries (paper 001 §4.2, §5.2; MATH.md §10, §12): pure tensor functions.

Under the empirical distribution of N points the code's aggregate posterior is known exactly,
q(c) = π̄ = (1/N) Σ_n π(x_n), so

    I(x; c) = H(π̄) − (1/N) Σ_n H(π(x_n))          (exact; ≤ H(π̄) ≤ log K)
    E KL(q(c|x) ‖ U_K) = log K − (1/N) Σ_n H(π(x_n)) = I(x; c) + KL(π̄ ‖ U_K)

The first is both the q* bound (the best categorical q* is π̄ itself, so the bound is tight) and
the consistent estimate; the second, the training KL, bounds it from above (paper 001 Fig. 8).
Accuracy (§5.2): the code as a classifier, ĉ(x) = argmax_k π_k(x), matched one-to-one to the
labels by the assignment maximising the count of agreements (Hungarian).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vaetool.models.categorical import entropy

REDUCE_DTYPE = torch.float64


class CodeAccumulator:
    """Streams a code's statistics over batches of logits (B, K): Σ_n π_n (K,) and Σ_n H(π_n),
    in float64 on the logits' device."""

    def __init__(self, categories: int) -> None:
        self.categories = categories
        self.n = 0
        self.sum_pi: Tensor | None = None
        self.sum_entropy: Tensor | None = None

    def update(self, logits: Tensor) -> None:
        log_pi = F.log_softmax(logits.to(REDUCE_DTYPE), dim=-1)
        pi_sum, h_sum = log_pi.exp().sum(0), entropy(log_pi).sum()
        if self.sum_pi is None:
            self.sum_pi, self.sum_entropy = pi_sum, h_sum
        else:
            self.sum_pi, self.sum_entropy = self.sum_pi + pi_sum, self.sum_entropy + h_sum
        self.n += int(logits.shape[0])

    def finalize(self) -> CodeInformation:
        assert self.sum_pi is not None and self.sum_entropy is not None, "no batch seen"
        return code_information(self.sum_pi / self.n, float(self.sum_entropy) / self.n, self.n)


@dataclass(frozen=True, eq=False)
class CodeInformation:
    """A categorical code's information on N points, nats. ``usage`` (K,) float64 = π̄ on the
    CPU; ``lower``/``lower_stderr``: paper 001's VMI lower bound when computed."""

    categories: int
    n: int
    mi: float  # I(x; c), exact under the empirical distribution (= the q* bound)
    kl_prior: float  # E KL(q(c|x) ‖ U_K): the training KL, an upper bound on I(x; c)
    usage: Tensor
    lower: float | None = None
    lower_stderr: float | None = None

    @property
    def cap(self) -> float:
        """log K: no code of K classes carries more."""
        return math.log(self.categories)

    @property
    def kl_aggregate(self) -> float:
        """KL(π̄ ‖ U_K) = kl_prior − mi: how unevenly the classes are used."""
        return self.kl_prior - self.mi


def code_information(usage: Tensor, mean_entropy: float, n: int) -> CodeInformation:
    """:class:`CodeInformation` from π̄ (K,) and the mean per-point entropy (formulas above)."""
    k = int(usage.shape[0])
    log_usage = usage.clamp_min(1e-300).log()
    mi = float(entropy(log_usage)) - mean_entropy
    return CodeInformation(k, n, max(mi, 0.0), math.log(k) - mean_entropy, usage.cpu())


def confusion(codes: np.ndarray, labels: np.ndarray, categories: int) -> np.ndarray:
    """C[k, y] = #{ĉ = k, label = y}: (K, L) int64, L = the number of label classes."""
    classes = int(labels.max()) + 1 if len(labels) else 0
    flat = np.asarray(codes, dtype=np.int64) * classes + np.asarray(labels, dtype=np.int64)
    return np.bincount(flat, minlength=categories * classes).reshape(categories, classes)


PROBABILITY_BINS = 20  # paper 001 Fig. 6: histogram of π_k(x) over [0, 1]


def code_histograms(
    probabilities: np.ndarray, labels: np.ndarray, categories: int
) -> dict[str, list]:
    """Paper 001 Figs. 6, 9–10 as counts: ``code_probability_counts``, the histogram of every
    π_k(x) (n·K values) in :data:`PROBABILITY_BINS` equal bins over [0, 1] (Fig. 6), and
    ``code_confusion``, C[k, y] = #{argmax π(x) = k, label = y} (Figs. 9–10: row k is the
    digits one code class takes). ``probabilities`` (n, K), ``labels`` (n,)."""
    counts, _ = np.histogram(probabilities.ravel(), bins=PROBABILITY_BINS, range=(0.0, 1.0))
    codes = probabilities.argmax(1)
    return {
        "code_probability_counts": counts.tolist(),
        "code_confusion": confusion(codes, labels, categories).tolist(),
    }


def matched_confusion(counts: np.ndarray) -> np.ndarray:
    """C (K, L) with its rows reordered so that row y is the code class matched to label y
    (:func:`best_matching`), unmatched classes after them: seeds' codes, whose class numbers
    are arbitrary, become comparable and can be summed (paper 001 Figs. 9–10)."""
    pairs = best_matching(counts)
    order = list(pairs[np.argsort(pairs[:, 1]), 0])
    order += [k for k in range(len(counts)) if k not in order]
    return counts[order]


def best_matching(counts: np.ndarray) -> np.ndarray:
    """The one-to-one code → label assignment maximising Σ_k C[k, σ(k)]: (pairs, 2) int64 rows
    (k, σ(k)) (the Hungarian algorithm, scipy's linear_sum_assignment on −C)."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-counts)
    return np.stack([rows, cols], axis=1).astype(np.int64)


def categorical_accuracy(
    codes: np.ndarray, labels: np.ndarray, categories: int
) -> dict[str, float]:
    """Paper 001 §5.2's accuracy of the code as a classifier (MATH.md §12): the best one-to-one
    matching's share of agreements, and the purity Σ_k max_y C[k, y]/n (≥ accuracy: codes may
    share a label)."""
    n = len(labels)
    counts = confusion(codes, labels, categories)
    pairs = best_matching(counts)
    matched = int(counts[pairs[:, 0], pairs[:, 1]].sum())
    return {
        "categorical_accuracy": matched / n,
        "categorical_purity": int(counts.max(1).sum()) / n,
        "categorical_classes_used": int((counts.sum(1) > 0).sum()),
    }
