"""Every metric a spec can name, registered in ``deeppipe.registry.METRICS``, computed with
scikit-learn wherever it has the metric.

A metric is a function ``fn(y_true, pred, **kwargs)`` where ``pred`` is what its record's ``needs``
says: class probabilities (N, K) for classifiers (``probs``), or real values for regression
(``values``). Its record holds the task kinds it fits, its direction (``max``: higher is better)
and whether it is a number (``scalar``) or a table (confusion matrix, per-class figures).

Averages follow scikit-learn's conventions: ``f1_macro`` is the mean of the per-class F1 scores,
so it may lie outside [recall_macro, precision_macro] (the F1 of the macro averages would not).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deeppipe.data.task import Task
from deeppipe.errors import SpecError, join_path
from deeppipe.registry import METRICS, Entry, check_kwargs

CLASSIFICATION = ("multiclass", "binary")
REGRESSION = ("regression",)
DEFAULT_SELECTION = {"classification": "accuracy", "regression": "rmse", "reconstruction": "reconstruction_mse",
                     "tagging": "step_accuracy", "ctc": "sequence_accuracy"}


def _skm() -> Any:
    from sklearn import metrics  # 1 s to import: only when a metric is computed

    return metrics


def _labels(probs: np.ndarray) -> list[int]:
    return list(range(max(probs.shape[1], 2)))


# ------------------------------------------------------------------ quantities the engine logs
@METRICS.register("loss", tasks=("multiclass", "binary", "regression", "reconstruction", "tagging", "ctc"),
                  direction="min",
                  default=False, needs="engine")
def loss(y_true: np.ndarray, pred: np.ndarray) -> float:
    """The training objective, logged by the training engine every epoch (train/loss, val/loss)."""
    raise NotImplementedError("the loss is computed by the training engine")


# ---------------------------------------------------------------------------- classification
@METRICS.register("accuracy")
def accuracy(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Share of correct predictions (misleading on imbalanced data: see balanced_accuracy)."""
    return float(_skm().accuracy_score(y_true, probs.argmax(axis=1)))


@METRICS.register("balanced_accuracy")
def balanced_accuracy(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean recall over the classes."""
    return float(_skm().balanced_accuracy_score(y_true, probs.argmax(axis=1)))


def _averaged(kind: str, average: str) -> Callable[[np.ndarray, np.ndarray], float]:
    def metric(y_true: np.ndarray, probs: np.ndarray) -> float:
        fn = getattr(_skm(), f"{kind}_score")
        return float(fn(y_true, probs.argmax(axis=1), labels=_labels(probs), average=average, zero_division=0))

    metric.__name__ = f"{kind}_{average}"
    return metric


_AVERAGE_DOCS = {
    "micro": "from the pooled counts of every class (equals accuracy for single-label data)",
    "macro": "unweighted mean of the per-class scores (scikit-learn's convention)",
    "weighted": "per-class scores averaged with the class frequencies as weights",
}
# scikit-learn's convention, kept: the mean of the per-class F1 scores, not the F1 of the macro
# precision and recall, so it can lie outside them (e.g. 0.624 with P 0.842 and R 0.700)
_F1_MACRO = "; not the harmonic mean of precision_macro and recall_macro, so it can lie outside them"
for _kind, _what in (("precision", "TP / (TP + FP)"), ("recall", "TP / (TP + FN)"), ("f1", "harmonic mean of P and R")):
    for _avg in ("micro", "macro", "weighted"):
        _note = _F1_MACRO if (_kind, _avg) == ("f1", "macro") else ""
        METRICS.register(f"{_kind}_{_avg}", default=_avg == "macro",
                         doc=f"{_kind.capitalize()} ({_what}), {_AVERAGE_DOCS[_avg]}{_note}")(_averaged(_kind, _avg))


@METRICS.register("log_loss", direction="min")
def log_loss(y_true: np.ndarray, probs: np.ndarray) -> float:
    """-mean(log p(true class)): how confident and right the probabilities are. The network's
    float32 rows sum to 1 only to ~1e-7, which scikit-learn's float64 check calls "not summing to
    one": they are renormalised in float64 first (a change far below the metric's precision)."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-15, 1.0)
    return float(_skm().log_loss(y_true, p / p.sum(axis=1, keepdims=True), labels=_labels(probs)))


@METRICS.register("roc_auc", aliases=("roc_auc_ovr", "auc"))
def roc_auc(y_true: np.ndarray, probs: np.ndarray) -> float | None:
    """Area under the ROC curve: binary, or one-vs-rest macro average for several classes.
    Undefined (absent, not 0) when the labels hold a single class."""
    present = np.unique(y_true)
    if len(present) < 2:
        return None
    if probs.shape[1] == 2:
        return float(_skm().roc_auc_score(y_true, probs[:, 1]))
    if len(present) < probs.shape[1]:
        return None  # a class missing from the labels has no ROC curve
    return float(_skm().roc_auc_score(y_true, probs, multi_class="ovr", average="macro",
                                      labels=_labels(probs)))


@METRICS.register("top_k_accuracy", default=False, min_classes=3)
def top_k_accuracy(y_true: np.ndarray, probs: np.ndarray, k: int = 5) -> float:
    """Share of samples whose true class is among the k most probable (k below the class count)."""
    return float(_skm().top_k_accuracy_score(y_true, probs, k=k, labels=_labels(probs)))


@METRICS.register("top5_accuracy", min_classes=6)
def top5_accuracy(y_true: np.ndarray, probs: np.ndarray) -> float:
    """top_k_accuracy with k = 5 (a default for more than five classes)."""
    return top_k_accuracy(y_true, probs, k=5)


@METRICS.register("confusion_matrix", scalar=False)
def confusion_matrix(y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Counts; true labels on rows, predictions on columns (scikit-learn's convention)."""
    return _skm().confusion_matrix(y_true, probs.argmax(axis=1), labels=_labels(probs))


@METRICS.register("average_precision", aliases=("pr_auc",))
def average_precision(y_true: np.ndarray, probs: np.ndarray) -> float | None:
    """Area under the precision-recall curve (scikit-learn's average precision): binary, or the
    one-vs-rest macro average for several classes. Undefined when the labels hold one class."""
    present = np.unique(y_true)
    if len(present) < 2:
        return None
    if probs.shape[1] == 2:
        return float(_skm().average_precision_score(y_true, probs[:, 1]))
    onehot = np.eye(probs.shape[1])[y_true]
    scored = onehot.sum(axis=0) > 0  # a class absent from the labels has no PR curve
    return float(_skm().average_precision_score(onehot[:, scored], probs[:, scored], average="macro"))


def calibration_bins(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Confidence (the top class's probability) against accuracy in ``n_bins`` equal-width bins:
    scikit-learn's ``calibration_curve`` on (correct?, confidence), with its bin counts."""
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y_true).astype(int)
    from sklearn.calibration import calibration_curve

    accuracy, mean_conf = calibration_curve(correct, confidence, n_bins=n_bins, strategy="uniform")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], confidence), minlength=n_bins)  # sklearn's binning
    return {"accuracy": accuracy, "confidence": mean_conf, "count": counts[counts > 0], "edges": edges}


@METRICS.register("ece", aliases=("expected_calibration_error",), direction="min")
def ece(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error: the mean |accuracy - confidence| over equal-width confidence
    bins, weighted by how many samples each holds (0 = perfectly calibrated). scikit-learn has the
    calibration curve, not this sum over it."""
    if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 2:
        raise ValueError("n_bins must be a whole number of at least 2")
    b = calibration_bins(y_true, probs, n_bins)
    return float(np.sum(b["count"] * np.abs(b["accuracy"] - b["confidence"])) / len(y_true))


@METRICS.register("confusion_matrix_normalized", scalar=False, default=False)
def confusion_matrix_normalized(y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Row-normalised: each true class's row sums to 1 (its recall on the diagonal)."""
    return _skm().confusion_matrix(y_true, probs.argmax(axis=1), labels=_labels(probs), normalize="true")


@METRICS.register("per_class", scalar=False)
def per_class(y_true: np.ndarray, probs: np.ndarray) -> list[dict[str, float]]:
    """Precision, recall, F1 and support of every class."""
    p, r, f, s = _skm().precision_recall_fscore_support(y_true, probs.argmax(axis=1), labels=_labels(probs),
                                                        zero_division=0)
    return [{"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i in range(len(p))]


# -------------------------------------------------------------------------------- regression
@METRICS.register("mae", tasks=REGRESSION, direction="min", needs="values")
def mae(y_true: np.ndarray, pred: np.ndarray) -> float:
    """Mean absolute error, in the target's units."""
    return float(_skm().mean_absolute_error(y_true, pred))


@METRICS.register("mse", tasks=REGRESSION, direction="min", needs="values")
def mse(y_true: np.ndarray, pred: np.ndarray) -> float:
    """Mean squared error."""
    return float(_skm().mean_squared_error(y_true, pred))


@METRICS.register("rmse", tasks=REGRESSION, direction="min", needs="values")
def rmse(y_true: np.ndarray, pred: np.ndarray) -> float:
    """Root mean squared error, in the target's units."""
    return float(np.sqrt(_skm().mean_squared_error(y_true, pred)))


@METRICS.register("r2", tasks=REGRESSION, needs="values")
def r2(y_true: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination: 1 - SSE / SST (0 = predicting the mean)."""
    return float(_skm().r2_score(y_true, pred))


@METRICS.register("reconstruction_mse", tasks=("reconstruction",), direction="min", needs="values")
def reconstruction_mse(y_true: np.ndarray, pred: np.ndarray) -> float:
    """Mean squared reconstruction error of an autoencoder over every input value (targets: the inputs)."""
    return float(_skm().mean_squared_error(y_true, pred))


@METRICS.register("mape", tasks=REGRESSION, direction="min", needs="values", default=False)
def mape(y_true: np.ndarray, pred: np.ndarray) -> float | None:
    """Mean absolute percentage error, as a fraction (scikit-learn's: 0.05 is 5%); absent when a
    target is 0, where it is undefined."""
    if np.any(np.asarray(y_true) == 0):
        return None
    return float(_skm().mean_absolute_percentage_error(y_true, pred))


# ------------------------------------------------------------------------------- computation
@dataclass(frozen=True)
class MetricChoice:
    """One item of ``evaluate.metrics``: a registered metric and its arguments."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The name results are stored under: ``top_k_accuracy`` with k=3 is ``top3_accuracy``."""
        if self.name == "top_k_accuracy":
            return f"top{self.kwargs.get('k', 5)}_accuracy"
        if not self.kwargs:
            return self.name
        return self.name + "".join(f"_{k}{v}" for k, v in sorted(self.kwargs.items()))

    @property
    def entry(self) -> Entry:
        return METRICS.entry(self.name)


def parse_choice(item: Any, *, path: str, file: str | None = None) -> MetricChoice:
    """``accuracy`` or ``{top_k_accuracy: {k: 3}}`` -> a checked MetricChoice."""
    if isinstance(item, str):
        name, kwargs = item, {}
    elif isinstance(item, dict) and len(item) == 1:
        name, kwargs = next(iter(item.items()))
        kwargs = {} if kwargs is None else kwargs
        if not isinstance(kwargs, dict):
            raise SpecError("a metric's arguments are a mapping", path=join_path(path, str(name)), file=file,
                            expected="{k: 3}", found=kwargs)
    else:
        raise SpecError("a metric is a name or {name: {arguments}}", path=path, file=file,
                        expected="accuracy or {top_k_accuracy: {k: 3}}", found=item)
    entry = METRICS.entry(name, path=path, file=file)
    if entry.needs == "engine":
        raise SpecError(f"'{entry.name}' is logged by the training engine, not computed on the test split",
                        path=path, file=file, expected="a test-set metric such as accuracy or rmse", found=name)
    check_kwargs(entry.obj, kwargs, path=join_path(path, entry.name), file=file, skip=("y_true", "probs", "pred"))
    return MetricChoice(entry.name, dict(kwargs))


def check_fits(choice: MetricChoice, task: Task, *, path: str, file: str | None = None) -> None:
    """Refuse a metric the task cannot have (rmse for a classifier, top-5 of 3 classes ...)."""
    entry = choice.entry
    fitting = [e.name for e in METRICS.entries() if task.kind in e.tasks and e.needs != "engine"]
    if task.kind not in entry.tasks:
        raise SpecError(f"metric '{entry.name}' does not fit a {task.kind} task", path=path, file=file,
                        expected=f"one of {', '.join(fitting)}", found=entry.name)
    if task.is_classification and task.num_classes < entry.min_classes:
        raise SpecError(f"metric '{entry.name}' needs at least {entry.min_classes} classes; the data has "
                        f"{task.num_classes}", path=path, file=file, expected=f"one of {', '.join(fitting)}",
                        found=entry.name)
    k = choice.kwargs.get("k")
    if choice.name == "top_k_accuracy" and k is not None and (not isinstance(k, int) or isinstance(k, bool)
                                                             or not 1 <= k < task.num_classes):
        raise SpecError("k must be a whole number below the number of classes (top-k of all classes is 1)",
                        path=join_path(path, "top_k_accuracy", "k"), file=file,
                        expected=f"1 .. {task.num_classes - 1}", found=k)


def default_metrics(task: Task) -> list[MetricChoice]:
    """The metrics a run reports when ``evaluate.metrics`` is not given."""
    return [MetricChoice(e.name) for e in METRICS.entries()
            if e.default and task.kind in e.tasks and e.needs != "engine"
            and (not task.is_classification or task.num_classes >= e.min_classes)]


def probabilities(task: Task, outputs: np.ndarray) -> np.ndarray:
    """(N, K) class probabilities from logits; binary gives two columns [1-p, p]."""
    out = np.asarray(outputs, dtype=np.float64)
    if task.kind == "binary":
        p = 1.0 / (1.0 + np.exp(-out.reshape(len(out), -1)[:, 0]))
        return np.stack([1.0 - p, p], axis=1)
    shifted = out - out.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def compute_metrics(task: Task, y_true: np.ndarray, pred: np.ndarray,
                    choices: Sequence[MetricChoice | str] | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    """(scalars, tables) for ``pred``: class probabilities (N, K) for classifiers, values otherwise.

    A metric that is undefined for these labels (ROC AUC with one class present) is absent."""
    chosen = [c if isinstance(c, MetricChoice) else MetricChoice(c) for c in (choices or default_metrics(task))]
    if task.is_classification:
        y = np.asarray(y_true).astype(np.int64).reshape(-1)
        p = np.asarray(pred, dtype=np.float64)
    elif task.per_step:  # (N, T) or (N, S) integer targets, (N, T, C) scores: kept as they are
        y, p = np.asarray(y_true).astype(np.int64), np.asarray(pred, dtype=np.float64)
    else:
        y = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
        p = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1)
    scalars: dict[str, float] = {}
    tables: dict[str, Any] = {}
    for c in chosen:
        value = c.entry.obj(y, p, **c.kwargs)
        if value is None:
            continue
        (scalars if c.entry.scalar else tables)[c.key] = value
    if "per_class" in tables:
        names = list(task.class_names) or [str(i) for i in range(len(tables["per_class"]))]
        tables["per_class"] = dict(zip(names, tables["per_class"]))
    return scalars, tables


def validation_metrics(task: Task, names: Sequence[str]) -> Callable[[np.ndarray, np.ndarray], dict[str, float]] | None:
    """A ``metrics_fn`` for the training engine computing the named metrics on the validation
    outputs (logits) every epoch, for monitors beyond what the engine logs itself (loss, accuracy)."""
    wanted = [n for n in dict.fromkeys(names) if n not in ("loss", "accuracy")]
    if not wanted:
        return None

    def metrics_fn(y_true: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
        pred = probabilities(task, outputs) if task.is_classification else outputs
        scalars, _ = compute_metrics(task, y_true, pred, [MetricChoice(n) for n in wanted])
        # undefined on this validation set (ROC AUC of one class): NaN, which never improves a
        # monitor, rather than a monitored quantity missing from the epoch's record
        return {n: scalars.get(n, float("nan")) for n in wanted}

    return metrics_fn


def selection(task: Task, name: str | None) -> tuple[str, str]:
    """(metric, 'max'|'min') that decides whether a new model beats the registry's champion."""
    if name is None:
        name = DEFAULT_SELECTION["classification" if task.is_classification else
                                 task.kind if task.kind in ("reconstruction", "tagging", "ctc") else "regression"]
    entry = METRICS.entry(name, path="evaluate.selection_metric")
    return entry.name, entry.direction
