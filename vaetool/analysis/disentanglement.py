"""The tensor arithmetic of the ground-truth disentanglement metrics (MATH.md §8, §13), exactly as
disentanglement_lib computes it (evaluation/metrics/utils.py, mig.py, modularity_explicitness.py,
dci.py, sap_score.py, factor_vae.py). Codes c are (H, S) (one row per latent), factor classes
v are int64 (K, S) (one row per factor), as dlib lays them out. Reductions are float64; the
discretisation works in the codes' own dtype, as numpy's histogram does, so that bins (and MIG)
match dlib's bit for bit. The classifiers some metrics train live in vaetool.analysis.metrics.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vaetool.errors import DataError

BINS = 20  # dlib's num_bins for the histogram discretisation
REDUCE = torch.float64


def histogram_discretize(codes: Tensor, bins: int = BINS) -> Tensor:
    """dlib ``_histogram_discretize``: per code row, np.histogram's ``bins`` + 1 equal-width
    edges from the row's min to max (± 0.5 for a constant row), then np.digitize against the
    first ``bins`` edges: int64 (H, S) in 1..bins. Edges as numpy's linspace computes them
    (start + i·step, the last set to max), in the codes' dtype."""
    lo, hi = codes.min(dim=1).values, codes.max(dim=1).values
    flat = lo == hi
    lo, hi = torch.where(flat, lo - 0.5, lo), torch.where(flat, hi + 0.5, hi)
    steps = torch.arange(bins + 1, dtype=codes.dtype, device=codes.device)
    edges = lo[:, None] + steps[None, :] * ((hi - lo) / bins)[:, None]  # (H, bins + 1)
    edges[:, -1] = hi
    # np.digitize(x, e[:-1]) = #{edges ≤ x} = searchsorted(e[:-1], x, right=True)
    return torch.searchsorted(edges[:, :-1].contiguous(), codes.contiguous(), right=True)


def dense_classes(v: Tensor) -> Tensor:
    """Each row's values of int64 ``v`` (K, S) as classes 0..C_k-1 in increasing order (a
    monotone relabelling: plug-in entropies and MI are unchanged, and the histograms below
    take C_k <= S bins whatever the values, so a class value of 1e15 allocates nothing)."""
    if v.dim() != 2 or v.shape[0] < 1 or v.shape[1] < 1:
        raise DataError(
            f"factor classes have shape {tuple(v.shape)} (K factors, S samples); expected at "
            "least one factor and one sample"
        )
    ordered, order = v.sort(dim=1)
    new = torch.ones_like(ordered)
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    return torch.empty_like(ordered).scatter_(1, order, new.cumsum(1) - 1)


def discrete_mutual_info(a: Tensor, b: Tensor) -> Tensor:
    """m[i, j] = plug-in I(a_i; b_j) in nats (sklearn ``mutual_info_score``) for int64 rows
    a (I, S) and b (J, S) of class labels (any integers: :func:`dense_classes`): float64 (I, J).
    All pairs at once from one joint histogram."""
    a, b = dense_classes(a), dense_classes(b)
    n_a, n_b = int(a.max()) + 1, int(b.max()) + 1
    count_i, count_j, samples = a.shape[0], b.shape[0], a.shape[1]
    i = torch.arange(count_i, device=a.device)[:, None, None]
    j = torch.arange(count_j, device=a.device)[None, :, None]
    key = ((i * count_j + j) * n_a + a[:, None, :]) * n_b + b[None, :, :]  # (I, J, S)
    joint = torch.bincount(key.reshape(-1), minlength=count_i * count_j * n_a * n_b)
    p = joint.to(REDUCE).reshape(count_i, count_j, n_a, n_b) / samples
    pa, pb = p.sum(3, keepdim=True), p.sum(2, keepdim=True)
    terms = torch.where(p > 0, p * (p.log() - pa.log() - pb.log()), torch.zeros_like(p))
    return terms.sum((2, 3)).clamp(min=0.0)


def discrete_entropy(v: Tensor) -> Tensor:
    """H(v_k) = I(v_k; v_k) in nats for int64 (K, S) rows of class labels: float64 (K,)."""
    v = dense_classes(v)
    counts = torch.zeros(v.shape[0], int(v.max()) + 1, dtype=REDUCE, device=v.device)
    counts.scatter_add_(1, v, torch.ones_like(v, dtype=REDUCE))
    p = counts / v.shape[1]
    return -torch.where(p > 0, p * p.log(), torch.zeros_like(p)).sum(1)


def mig(codes: Tensor, factors: Tensor, bins: int = BINS) -> dict[str, Tensor]:
    """MIG (MATH.md §8, §13; dlib mig.py ``_compute_mig``): m = MI(bin(c_h), v_k), sorted over h,
    MIG = mean_k (m_(1)k − m_(2)k)/H(v_k). Also returns the matrix m (H, K) and the per-factor
    gaps. Needs H ≥ 2 and every factor with at least two values."""
    if codes.shape[0] < 2:
        raise DataError(f"MIG needs at least 2 latent codes; got {codes.shape[0]}")
    entropy = discrete_entropy(factors)
    if bool((entropy <= 0).any()):
        raise DataError("MIG: a factor takes a single value in the sample (zero entropy)")
    matrix = discrete_mutual_info(histogram_discretize(codes, bins), factors)
    top = torch.topk(matrix, 2, dim=0).values  # (2, K)
    gaps = (top[0] - top[1]) / entropy
    return {"mig": gaps.mean(), "mig_per_factor": gaps, "mi_matrix": matrix, "entropy": entropy}


def modularity(mi_matrix: Tensor) -> Tensor:
    """Modularity (Ridgeway & Zemel 2018; dlib ``modularity``) of an MI matrix (H, K): per code
    1 − (Σ_k m²_hk − θ_h)/(θ_h (K − 1)), θ_h = max_k m²_hk, 0 where θ_h = 0; the mean."""
    squared = mi_matrix.to(REDUCE).square()
    theta = squared.max(dim=1).values
    delta = (squared.sum(1) - theta) / (theta * (squared.shape[1] - 1))
    score = torch.where(theta == 0, torch.zeros_like(theta), 1.0 - delta)
    return score.mean()


def _entropy_base(p: Tensor, base: int, dim: int) -> Tensor:
    """Shannon entropy along ``dim`` in base ``base`` (scipy.stats.entropy of the +1e-11 rows)."""
    p = p / p.sum(dim, keepdim=True)
    return -(torch.where(p > 0, p * p.log(), torch.zeros_like(p))).sum(dim) / torch.log(
        torch.tensor(float(base), dtype=REDUCE)
    )


def dci_scores(importance: Tensor) -> dict[str, Tensor]:
    """DCI disentanglement and completeness (Eastwood & Williams 2018; dlib dci.py) of an
    importance matrix R (H codes, K factors): P_hk = R_hk/Σ_k R_hk (+1e-11, entropy base K),
    D = Σ_h ρ_h (1 − H_K(P_h·)), ρ_h = Σ_k R_hk/ΣR; completeness likewise over codes in base H.
    R ≡ 0 gives 0 and 0."""
    r = importance.to(REDUCE)
    codes, factors = r.shape
    total = r.sum()
    if float(total) == 0.0:
        zero = torch.zeros((), dtype=REDUCE)
        return {"disentanglement": zero, "completeness": zero}
    per_code = 1.0 - _entropy_base(r + 1e-11, factors, dim=1) if factors > 1 else torch.ones(codes)
    per_factor = 1.0 - _entropy_base(r + 1e-11, codes, dim=0) if codes > 1 else torch.ones(factors)
    return {
        "disentanglement": (per_code * (r.sum(1) / total)).sum(),
        "completeness": (per_factor * (r.sum(0) / total)).sum(),
    }


def sap_from_matrix(scores: Tensor) -> Tensor:
    """SAP (Kumar et al. 2018; dlib ``compute_avg_diff_top_two``): mean_k of the gap between the
    two largest S[h, k] over codes h."""
    top = torch.topk(scores.to(REDUCE), 2, dim=0).values
    return (top[0] - top[1]).mean()


def continuous_sap_matrix(codes: Tensor, factors: Tensor) -> Tensor:
    """S[h, k] = Cov(c_h, v_k)²/(Var c_h · Var v_k) (ddof 1), 0 where Var c_h ≤ 1e-12 (dlib
    ``_compute_score_matrix`` with continuous factors)."""
    c, v = codes.to(REDUCE), factors.to(REDUCE)
    c = c - c.mean(1, keepdim=True)
    v = v - v.mean(1, keepdim=True)
    n = c.shape[1] - 1
    cov = c @ v.T / n
    var_c, var_v = c.square().sum(1) / n, v.square().sum(1) / n
    score = cov.square() / (var_c[:, None] * var_v[None, :])
    return torch.where(var_c[:, None] > 1e-12, score, torch.zeros_like(score))


def factor_vae_votes(
    batch_variances: Tensor, scale: Tensor, active: Tensor, factors: Tensor, num_factors: int
) -> Tensor:
    """dlib factor_vae.py votes: each point's code variances (P, H) over its batch, divided by
    the global variances ``scale`` (H,), restricted to ``active`` (H,) codes; d = argmin (index
    within the active codes, first of ties); votes[k, d] counts points whose fixed factor is k.
    int64 (K, |A|)."""
    ratio = (batch_variances / scale)[:, active]
    d = ratio.argmin(dim=1)
    votes = torch.zeros(num_factors, int(active.sum()), dtype=torch.int64)
    votes.index_put_((factors.cpu(), d.cpu()), torch.ones_like(d.cpu()), accumulate=True)
    return votes


def factor_vae_accuracy(train_votes: Tensor, eval_votes: Tensor) -> tuple[Tensor, Tensor]:
    """(train accuracy, eval accuracy) of the majority-vote classifier: class(d) = argmax_k
    train_votes[k, d] (first of ties); accuracy = Σ_d votes[class(d), d]/Σ votes."""
    classes = train_votes.argmax(dim=0)  # (|A|,)
    columns = torch.arange(train_votes.shape[1])

    def accuracy(votes: Tensor) -> Tensor:
        return votes[classes, columns].sum().to(REDUCE) / max(int(votes.sum()), 1)

    return accuracy(train_votes), accuracy(eval_votes)
