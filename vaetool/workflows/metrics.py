"""`vaetool metrics` as a typed request -> result function: ground-truth disentanglement metrics
of a checkpoint on a data set with factors, or of stored codes (a foreign model's).

A checkpoint is represented as dlib does: r(x) = mu of observations drawn for uniformly sampled
factor values (a data set holding every factor combination, such as dSprites, answers any
combination; another labelled data set is sampled by rows, which supports the metrics that need
no intervention). A CODES file (.npz or .safetensors with ``mu`` (N, H) and ``factors`` (N, K)) is
used whole, every row once (``samples`` instead draws that many rows with replacement, as dlib
samples a data set).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vaetool.analysis.encode import encode
from vaetool.analysis.metrics import METRICS, CodeTruth, compute_metrics, metric_names
from vaetool.data import ImageData, factor_classes
from vaetool.data.feed import DeviceFeed
from vaetool.device import inference_batch_size
from vaetool.errors import DataError
from vaetool.store.codes import is_codes_file, read_codes
from vaetool.workflows.source import Points, Source, open_source


@dataclass(frozen=True)
class MetricsRequest:
    source: Path
    metrics: str = "all"
    data: str | None = None  # default: the checkpoint's own data set
    samples: int | None = None  # num_train (num_test = half); default dlib's 10 000 (CODES: all)
    seed: int = 0
    device: str = "auto"


@dataclass(frozen=True)
class MetricsResult:
    source: Path
    data: str
    values: dict[str, float]
    names: list[str] = field(default_factory=list)
    points: int = 0  # distinct observations available


class CodesTruth:
    """Stored codes and factor classes, drawn by rows.

    By default uniformly with replacement, ``n`` rows a draw (dlib's sampling of a data set).
    With ``every_row``, each metric sees every row exactly once, in an order drawn from its
    RandomState: its first draw is every row, whatever ``n`` (so a 20 000-row file's MIG is its
    MIG), or, ``held_out``, the first two thirds of them (dlib's num_train : num_test = 2 : 1) and
    its second draw the remaining third, on which a classifier is scored; a further draw falls
    back to ``n`` rows with replacement. A ``CodesTruth`` with ``every_row`` serves one metric.
    """

    can_intervene = False

    def __init__(
        self,
        codes: np.ndarray,
        classes: np.ndarray,
        every_row: bool = False,
        held_out: bool = False,
    ) -> None:
        self.codes, self.classes = codes, classes
        self.factor_sizes = tuple(int(c) + 1 for c in classes.max(0))
        self.every_row, self.held_out = every_row, held_out
        self._parts: list[np.ndarray] = []
        self._rng: np.random.RandomState | None = None

    def sample(self, n: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        if self.every_row and rng is not self._rng:  # a metric's first draw
            self._rng, order = rng, rng.permutation(len(self.codes))
            split = -(-2 * len(order) // 3) if self.held_out else len(order)
            self._parts = [order[:split], order[split:]] if self.held_out else [order]
        rows = self._parts.pop(0) if self._parts else rng.randint(len(self.codes), size=n)
        return self.codes[rows], self.classes[rows]

    def represent(self, classes: np.ndarray) -> np.ndarray:
        raise DataError("stored codes cannot represent chosen factor values")


def codes_metrics(path: Path, names: list[str], seed: int, samples: int | None) -> MetricsResult:
    """The metrics of a CODES file: every row once per metric unless ``samples`` (then that many
    drawn with replacement, test half); a metric that trains classifiers (``needs_sklearn``)
    fits them on two thirds of the rows and scores them on the rest."""
    codes, classes = read_codes(path)
    if samples is not None:
        values = compute_metrics(CodesTruth(codes, classes), names, seed, samples)
        return MetricsResult(path, "stored codes", values, names, len(codes))
    values: dict[str, float] = {}
    for name in names:
        truth = CodesTruth(codes, classes, every_row=True,
                           held_out=METRICS.get(name).needs_sklearn)  # fmt: skip
        values.update(compute_metrics(truth, [name], seed))
    return MetricsResult(path, "stored codes", values, names, len(codes))


def label_factor(data: ImageData) -> np.ndarray | None:
    """The data's factor classes (N, K); for a labelled data set without factors (MNIST) its
    label as the one factor (N, 1), so the metrics measure how a code carries the class."""
    classes = factor_classes(data)
    if (classes is None or classes.shape[1] == 0) and data.labels is not None:
        labels = np.asarray(data.labels)
        return np.unique(labels, return_inverse=True)[1].reshape(-1, 1).astype(np.int64)
    return classes


class ModelTruth:
    """A model's means on a data set with factors; any combination when it holds all of them."""

    def __init__(self, model: torch.nn.Module, data: ImageData, device: torch.device) -> None:
        classes = label_factor(data)
        if classes is None or classes.shape[1] == 0:
            raise DataError(
                f"{data.spec}: the data set has no ground-truth factors or labels (use "
                "dsprites, dsprites:FILE or an npz: file with a 'factors' array)"
            )
        self.model, self.data, self.device, self.classes = model, data, device, classes
        self.factor_sizes = tuple(int(c) + 1 for c in classes.max(0))
        keys = np.ravel_multi_index(tuple(classes.T), self.factor_sizes)
        self.can_intervene = len(data) == int(np.prod(self.factor_sizes)) and len(
            np.unique(keys)) == len(keys)  # fmt: skip
        self._order = np.argsort(keys)
        self._keys = keys[self._order]

    def rows_of(self, classes: np.ndarray) -> np.ndarray:
        keys = np.ravel_multi_index(tuple(classes.T), self.factor_sizes)
        return self._order[np.searchsorted(self._keys, keys)]

    def sample(self, n: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        if self.can_intervene:  # as dlib: every factor uniform, then its observation
            classes = np.stack([rng.randint(s, size=n) for s in self.factor_sizes], 1)
            return self.represent(classes), classes.astype(np.int64)
        rows = rng.randint(len(self.data), size=n)
        return self._codes(rows), self.classes[rows]

    def represent(self, classes: np.ndarray) -> np.ndarray:
        return self._codes(self.rows_of(np.asarray(classes, dtype=np.int64)))

    def _codes(self, rows: np.ndarray) -> np.ndarray:
        posterior = encode(self.model, DeviceFeed(self.data, rows, self.device))
        assert posterior is not None
        return posterior.mu.double().cpu().numpy()


def compute(request: MetricsRequest) -> MetricsResult:
    """The requested metrics of a checkpoint (on its data, or ``request.data``) or CODES file."""
    names = metric_names(request.metrics)
    path = Path(request.source)
    if path.suffix == ".npz" or (path.suffix == ".safetensors" and is_codes_file(path)):
        return codes_metrics(path, names, request.seed, request.samples)
    source = open_source(path, request.device)
    model, info = source.checkpoint("metrics")
    # the metrics sample the factor space: the whole data set, not the sample it trained on
    data = source.data(request.data or info.data.spec)
    everything = request.metrics.strip() == "all"  # all: every metric that applies
    if everything and model.categories:
        names = [*(names if label_factor(data) is not None else []), "categorical_accuracy"]
    ground = [n for n in names if not METRICS.get(n).needs_code]
    truth = ModelTruth(model, data, source.device) if ground else None
    if everything and truth is not None and not truth.can_intervene:
        names = [n for n in names if not METRICS.get(n).needs_interventions]
    wants_code = any(METRICS.get(n).needs_code for n in names)
    code = code_truth(source, request.data) if wants_code else None
    values = compute_metrics(truth, names, request.seed, request.samples, code)
    return MetricsResult(path, data.spec, values, names, len(data))


def code_truth(source: Source, spec: str | None) -> CodeTruth:
    """The code's classes argmax_k π_k(x) on the checkpoint's test split (up to 10 000 images,
    paper 001 §5.2's MNIST test set) with their labels."""
    model, _ = source.checkpoint("categorical_accuracy")
    if not model.categories:
        raise DataError(f"‹metric› categorical_accuracy: {source.path.name} has no categorical "
                        "code (train with ‹categories› K)")  # fmt: skip
    points = Points(data=spec, split="test")
    data = source.data(spec)
    if data.labels is None:
        raise DataError(f"‹metric› categorical_accuracy: {data.spec} has no labels")
    rows = source.rows(points)
    feed = source.feed(points)
    probabilities = []
    with torch.no_grad():
        model.eval()
        for x in feed.batches(inference_batch_size(source.device)):
            probabilities.append(torch.softmax(model.encode_all(x)[2].double(), 1).cpu())
    pi = torch.cat(probabilities).numpy()
    labels = np.asarray(data.labels)[rows]
    return CodeTruth(pi.argmax(1), labels, model.categories, pi)
