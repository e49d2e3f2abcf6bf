"""Ground-truth disentanglement metrics (MATH.md §8, §13), registered by name, computed as
disentanglement_lib computes them: its sampling, defaults (num_train 10 000, num_test 5 000,
batch 64) and classifiers. The arithmetic lives in vaetool.analysis.disentanglement; this module
samples representations from a :class:`GroundTruth` and trains the classifiers.

Classifiers come from scikit-learn (the ``vaetool[metrics]`` extra, installed by ``[test]``):
dlib's numbers depend on its classifiers' exact definitions (liblinear's LinearSVC, sklearn's
gradient-boosted trees), which a re-implementation would only approximate. MIG, modularity and
the FactorVAE score need no classifier. Every metric draws from one numpy RandomState(seed), as
dlib; the classifiers are seeded from it too (dlib leaves GBT and LinearSVC unseeded).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from vaetool.analysis.categorical import categorical_accuracy
from vaetool.analysis.disentanglement import (
    continuous_sap_matrix,
    dci_scores,
    discrete_mutual_info,
    factor_vae_accuracy,
    factor_vae_votes,
    histogram_discretize,
    mig,
    modularity,
    sap_from_matrix,
)
from vaetool.errors import ConfigError, DataError
from vaetool.options import comma_list
from vaetool.registry import Registry

BATCH = 64  # dlib's batch of observations for the BetaVAE and FactorVAE scores
PRUNE_STD = 0.05  # FactorVAE score: codes with std below this are inactive


class GroundTruth(Protocol):
    """Where representations come from: factor classes (n, K) → codes (n, H) = r(x) = mu."""

    factor_sizes: tuple[int, ...]
    can_intervene: bool  # True: represent() takes any factor combination (a full product)

    def sample(self, n: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        """n i.i.d. points: (codes float (n, H), factor classes int64 (n, K))."""
        ...

    def represent(self, classes: np.ndarray) -> np.ndarray:
        """Codes of the observations with these factor classes (n, K) -> (n, H)."""
        ...


@dataclass(frozen=True)
class MetricSizes:
    """Sample sizes (dlib's defaults), scaled together by ``--samples`` (num_train)."""

    num_train: int = 10_000
    num_test: int = 5_000

    def scaled(self, num_train: int | None) -> MetricSizes:
        if num_train is None:
            return self
        if num_train < 100:
            raise ConfigError(f"‹samples› {num_train}: expected at least 100 training points")
        return MetricSizes(num_train, max(num_train // 2, 50))


MetricFn = Callable[[GroundTruth, np.random.RandomState, MetricSizes], dict[str, float]]


@dataclass(frozen=True)
class Metric:
    name: str
    compute: MetricFn
    needs_interventions: bool = False
    needs_sklearn: bool = False
    doc: str = ""
    needs_code: bool = False  # scores a categorical code against labels (a CodeTruth)


@dataclass(frozen=True, eq=False)
class CodeTruth:
    """A categorical code's classes ĉ(x) = argmax_k π_k(x) (n,) beside the labels (n,), K,
    and the probabilities π(x) (n, K) they come from."""

    codes: np.ndarray
    labels: np.ndarray
    categories: int
    probabilities: np.ndarray


METRICS: Registry[Metric] = Registry("metric", "‹metric›")


def metric(
    name: str, needs_interventions: bool = False, needs_sklearn: bool = False,
    needs_code: bool = False,
):  # fmt: skip
    """Decorator: ``@metric("name")`` registers ``fn(truth, rng, sizes) -> {name: value}`` as a
    :class:`Metric` (its docstring's first line is what `vaetool components` shows)."""

    def add(fn: MetricFn) -> MetricFn:
        doc = (fn.__doc__ or "").strip().split("\n")[0]
        METRICS.register(name)(
            Metric(name, fn, needs_interventions, needs_sklearn, doc, needs_code)
        )
        return fn

    return add


def sklearn() -> Any:
    """scikit-learn, or one clear error saying how to get it."""
    try:
        import sklearn.ensemble
        import sklearn.linear_model
        import sklearn.metrics
        import sklearn.svm
    except ImportError:
        raise ConfigError(
            "this metric trains scikit-learn classifiers as disentanglement_lib does: "
            "pip install 'vaetool[metrics]'"
        ) from None
    import sklearn as module

    return module


def _seed(rng: np.random.RandomState) -> int:
    return int(rng.randint(2**31 - 1))


def _split(truth: GroundTruth, rng: np.random.RandomState, sizes: MetricSizes):
    """(train, test) samples of (codes, classes), num_train then num_test, as dlib draws them."""
    return truth.sample(sizes.num_train, rng), truth.sample(sizes.num_test, rng)


def _tensors(codes: np.ndarray, classes: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """dlib's layout: codes (H, S), factors (K, S)."""
    return torch.from_numpy(np.ascontiguousarray(codes.T)), torch.from_numpy(
        np.ascontiguousarray(classes.T.astype(np.int64))
    )


@metric("mig")
def compute_mig(truth: GroundTruth, rng: np.random.RandomState, sizes: MetricSizes):
    """Mutual information gap (Chen et al. 2018; dlib mig.py): 20-bin plug-in MI."""
    codes, classes = truth.sample(sizes.num_train, rng)
    result = mig(*_tensors(codes, classes))
    out = {"mig": float(result["mig"])}
    out.update({f"mig_factor_{k}": float(g) for k, g in enumerate(result["mig_per_factor"])})
    return out


@metric("modularity_explicitness", needs_sklearn=True)
def compute_modularity(truth: GroundTruth, rng: np.random.RandomState, sizes: MetricSizes):
    """Modularity and explicitness (Ridgeway & Zemel 2018; dlib modularity_explicitness.py)."""
    learn = sklearn()
    (train_codes, train_classes), (test_codes, test_classes) = _split(truth, rng, sizes)
    c, v = _tensors(train_codes, train_classes)
    matrix = discrete_mutual_info(histogram_discretize(c), v)
    mean, std = train_codes.mean(0), train_codes.std(0)
    std = np.where(std > 0, std, 1.0)  # a constant code stays 0 after centring
    x_train, x_test = (train_codes - mean) / std, (test_codes - mean) / std
    train_auc, test_auc = [], []
    for k in range(train_classes.shape[1]):
        model = learn.linear_model.LogisticRegression(random_state=_seed(rng))
        model.fit(x_train, train_classes[:, k])
        train_auc.append(_auc(learn, model, x_train, train_classes[:, k]))
        test_auc.append(_auc(learn, model, x_test, test_classes[:, k]))
    return {"modularity": float(modularity(matrix)),
            "explicitness_train": float(np.mean(train_auc)),
            "explicitness_test": float(np.mean(test_auc))}  # fmt: skip


def _auc(learn: Any, model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Macro one-vs-rest AUC of ``model``'s probabilities, one-hot from its ``classes_``."""
    proba = model.predict_proba(x)
    onehot = (y[:, None] == model.classes_[None, :]).astype(np.int64)
    present = onehot.sum(0) > 0
    present &= onehot.sum(0) < len(y)  # a class absent (or alone) has no AUC
    if not present.any():
        return 0.5
    return float(learn.metrics.roc_auc_score(onehot[:, present], proba[:, present],
                                             average="macro"))  # fmt: skip


@metric("sap", needs_sklearn=True)
def compute_sap(truth: GroundTruth, rng: np.random.RandomState, sizes: MetricSizes):
    """SAP score (Kumar et al. 2018; dlib sap_score.py): per code × factor LinearSVC accuracy."""
    learn = sklearn()
    (train_codes, train_classes), (test_codes, test_classes) = _split(truth, rng, sizes)
    scores = np.zeros((train_codes.shape[1], train_classes.shape[1]))
    H, K = scores.shape
    for h in range(H):
        for k in range(K):
            model = learn.svm.LinearSVC(C=0.01, class_weight="balanced", random_state=_seed(rng))
            model.fit(train_codes[:, h : h + 1], train_classes[:, k])
            scores[h, k] = np.mean(model.predict(test_codes[:, h : h + 1]) == test_classes[:, k])
    continuous = continuous_sap_matrix(*_tensors(train_codes, train_classes))
    return {"sap": float(sap_from_matrix(torch.from_numpy(scores))),
            "sap_continuous": float(sap_from_matrix(continuous))}  # fmt: skip


@metric("dci", needs_sklearn=True)
def compute_dci(truth: GroundTruth, rng: np.random.RandomState, sizes: MetricSizes):
    """DCI (Eastwood & Williams 2018; dlib dci.py): gradient-boosted trees' importances."""
    learn = sklearn()
    (train_codes, train_classes), (test_codes, test_classes) = _split(truth, rng, sizes)
    importance = np.zeros((train_codes.shape[1], train_classes.shape[1]))
    K = importance.shape[1]
    train_acc, test_acc = [], []
    for k in range(K):
        model = learn.ensemble.GradientBoostingClassifier(random_state=_seed(rng))
        model.fit(train_codes, train_classes[:, k])
        importance[:, k] = np.abs(model.feature_importances_)
        train_acc.append(np.mean(model.predict(train_codes) == train_classes[:, k]))
        test_acc.append(np.mean(model.predict(test_codes) == test_classes[:, k]))
    scores = dci_scores(torch.from_numpy(importance))
    return {"dci_disentanglement": float(scores["disentanglement"]),
            "dci_completeness": float(scores["completeness"]),
            "dci_informativeness_train": float(np.mean(train_acc)),
            "dci_informativeness_test": float(np.mean(test_acc))}  # fmt: skip


def _sample_factors(sizes: tuple[int, ...], shape: tuple[int, ...], rng) -> np.ndarray:
    """Every factor uniform over its classes: int64 (*shape, K) (dlib ``sample_factors``)."""
    return np.stack([rng.randint(n, size=shape) for n in sizes], axis=-1).astype(np.int64)


@metric("beta_vae", needs_interventions=True, needs_sklearn=True)
def compute_beta_vae(truth: GroundTruth, rng: np.random.RandomState, sizes: MetricSizes):
    """BetaVAE score (Higgins et al. 2017; dlib beta_vae.py): which factor a pair batch shares."""
    learn = sklearn()

    def points(n: int) -> tuple[np.ndarray, np.ndarray]:
        k = rng.randint(len(truth.factor_sizes), size=n)
        first = _sample_factors(truth.factor_sizes, (n, BATCH), rng)
        second = _sample_factors(truth.factor_sizes, (n, BATCH), rng)
        rows = np.arange(n)
        second[rows, :, k] = first[rows, :, k]
        codes = truth.represent(np.concatenate([first, second]).reshape(-1, first.shape[-1]))
        codes = codes.reshape(2, n, BATCH, -1)
        return np.abs(codes[0] - codes[1]).mean(1), k

    x_train, y_train = points(sizes.num_train)
    x_test, y_test = points(sizes.num_test)
    model = learn.linear_model.LogisticRegression(random_state=_seed(rng))
    model.fit(x_train, y_train)
    return {"beta_vae_train": float(np.mean(model.predict(x_train) == y_train)),
            "beta_vae_eval": float(np.mean(model.predict(x_test) == y_test))}  # fmt: skip


@metric("factor_vae", needs_interventions=True)
def compute_factor_vae(truth: GroundTruth, rng: np.random.RandomState, sizes: MetricSizes):
    """FactorVAE score (Kim & Mnih 2018; dlib factor_vae.py): majority vote on the code of
    least normalised variance in batches with one factor fixed."""
    codes, _ = truth.sample(sizes.num_train, rng)
    scale = torch.from_numpy(codes.var(0, ddof=1)).to(torch.float64)
    active = scale.sqrt() >= PRUNE_STD
    if not bool(active.any()):
        return {"factor_vae_train": 0.0, "factor_vae_eval": 0.0, "factor_vae_active": 0}
    K = len(truth.factor_sizes)

    def votes(n: int) -> torch.Tensor:
        k = rng.randint(K, size=n)
        classes = _sample_factors(truth.factor_sizes, (n, BATCH), rng)
        rows = np.arange(n)
        classes[rows, :, k] = classes[rows, :1, k]
        batch = truth.represent(classes.reshape(-1, K)).reshape(n, BATCH, -1)
        variances = torch.from_numpy(batch.var(1, ddof=1)).to(torch.float64)
        return factor_vae_votes(variances, scale, active, torch.from_numpy(k), K)

    train, evaluation = factor_vae_accuracy(votes(sizes.num_train), votes(sizes.num_test))
    return {"factor_vae_train": float(train), "factor_vae_eval": float(evaluation),
            "factor_vae_active": int(active.sum())}  # fmt: skip


@metric("categorical_accuracy", needs_code=True)
def compute_categorical_accuracy(
    truth: CodeTruth, rng: np.random.RandomState, sizes: MetricSizes
) -> dict[str, float]:
    """Paper 001 §5.2: the categorical code as a classifier, best one-to-one class matching."""
    try:
        import scipy.optimize  # noqa: F401
    except ImportError:
        raise ConfigError("categorical_accuracy matches classes with scipy's Hungarian "
                          "algorithm: pip install 'vaetool[metrics]'") from None  # fmt: skip
    return categorical_accuracy(truth.codes, truth.labels, truth.categories)


GROUND_TRUTH = tuple(n for n in METRICS.names() if not METRICS.get(n).needs_code)


def metric_names(spec: str) -> list[str]:
    """``--metric mig,sap`` or ``all`` (every ground-truth metric) -> registered names
    (unknown ones refused)."""
    expected = f"names ({', '.join(METRICS.names())}) or all"
    names = list(GROUND_TRUTH if spec.strip() == "all" else comma_list("metric", spec, expected))
    for name in names:
        METRICS.get(name)
    return names


def compute_metrics(
    truth: GroundTruth | None,
    names: list[str],
    seed: int = 0,
    num_train: int | None = None,
    code: CodeTruth | None = None,
) -> dict[str, float]:
    """Every named metric, each from RandomState(seed) as dlib's evaluation does; ``code``
    answers the metrics of a categorical code (``needs_code``)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ConfigError(f"‹seed› {seed}: expected an integer from 0 to 2**32 - 1 (numpy's "
                          "RandomState, as disentanglement_lib)")  # fmt: skip
    sizes = MetricSizes().scaled(num_train)
    out: dict[str, float] = {}
    for name in names:
        metric = METRICS.get(name)
        if metric.needs_code:
            if code is None:
                raise DataError(f"‹metric› {name}: needs a checkpoint with a categorical code "
                                "(‹categories› K) on labelled data")  # fmt: skip
            out.update(metric.compute(code, np.random.RandomState(seed), sizes))  # type: ignore[arg-type]
            continue
        if truth is None:
            raise DataError(f"‹metric› {name}: needs a data set with ground-truth factors")
        if metric.needs_interventions and not truth.can_intervene:
            raise DataError(
                f"‹metric› {name}: needs observations for chosen factor values, i.e. a model on "
                "a data set holding every factor combination (‹data› dsprites or dsprites:FILE);"
                " stored codes and partial data sets support mig, modularity_explicitness, sap"
                " and dci"
            )
        out.update(metric.compute(truth, np.random.RandomState(seed), sizes))
    return out
