"""Test-set metrics from raw model outputs, computed with scikit-learn.

Outputs are logits: softmax (multiclass) or sigmoid (binary) turns them into probabilities
here, once, so every metric sees the same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm

from deeppipe.data.task import Task
from deeppipe.errors import SpecError, closest
from deeppipe.spec.schema import CLASSIFICATION_METRICS, REGRESSION_METRICS

DEFAULT_SELECTION = {"classification": ("accuracy", "max"), "regression": ("rmse", "min")}
LOWER_IS_BETTER = {"log_loss", "mae", "rmse", "mse", "loss"}


def probabilities(task: Task, outputs: np.ndarray) -> np.ndarray:
    """(N, K) class probabilities from logits; binary gives two columns [1-p, p]."""
    out = np.asarray(outputs, dtype=np.float64)
    if task.kind == "binary":
        p = 1.0 / (1.0 + np.exp(-out.reshape(len(out), -1)[:, 0]))
        return np.stack([1.0 - p, p], axis=1)
    shifted = out - out.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def default_metrics(task: Task) -> list[str]:
    if task.is_classification:
        names = ["accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "log_loss",
                 "roc_auc", "confusion_matrix", "per_class"]
        if task.num_classes > 5:
            names.insert(1, "top5_accuracy")
        return names
    return list(REGRESSION_METRICS)


def check_metric_names(task: Task, names: list[str], *, file: str | None = None) -> None:
    valid = CLASSIFICATION_METRICS if task.is_classification else REGRESSION_METRICS
    for i, name in enumerate(names):
        if name not in valid:
            raise SpecError(f"metric not available for a {task.kind} task", path=f"evaluate.metrics[{i}]",
                            file=file, expected=f"one of {', '.join(valid)}", found=name,
                            suggestion=closest(name, valid))


def selection(task: Task, name: str | None) -> tuple[str, str]:
    """(metric, 'max'|'min') used to compare runs for the champion alias."""
    if name is None:
        return DEFAULT_SELECTION["classification" if task.is_classification else "regression"]
    return name, "min" if name in LOWER_IS_BETTER else "max"


def compute_metrics(task: Task, y_true: np.ndarray, outputs: np.ndarray,
                    names: list[str] | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    """Scalar metrics (for MLflow and metrics.json) and structured extras (confusion matrix, per class)."""
    names = list(names) if names else default_metrics(task)
    scalars: dict[str, float] = {}
    extras: dict[str, Any] = {}
    if not task.is_classification:
        y = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
        p = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
        table = {
            "mae": lambda: skm.mean_absolute_error(y, p),
            "mse": lambda: skm.mean_squared_error(y, p),
            "rmse": lambda: float(np.sqrt(skm.mean_squared_error(y, p))),
            "r2": lambda: skm.r2_score(y, p),
        }
        for n in names:
            scalars[n] = float(table[n]())
        return scalars, extras

    y = np.asarray(y_true).astype(np.int64).reshape(-1)
    probs = probabilities(task, outputs)
    pred = probs.argmax(axis=1)
    labels = list(range(max(task.num_classes, 2)))
    for n in names:
        if n == "accuracy":
            scalars[n] = float(skm.accuracy_score(y, pred))
        elif n == "balanced_accuracy":
            scalars[n] = float(skm.balanced_accuracy_score(y, pred))
        elif n.startswith(("precision_", "recall_", "f1_")):
            fn, avg = n.split("_", 1)
            func = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}[fn]
            scalars[n] = float(func(y, pred, labels=labels, average=avg, zero_division=0))
        elif n == "log_loss":
            scalars[n] = float(skm.log_loss(y, np.clip(probs, 1e-15, 1.0), labels=labels))
        elif n == "roc_auc":
            present = np.unique(y)
            if len(present) < 2:
                continue  # undefined with one class in the test set; reported as absent, not as 0
            if task.kind == "binary":
                scalars[n] = float(skm.roc_auc_score(y, probs[:, 1]))
            elif len(present) == len(labels):
                scalars[n] = float(skm.roc_auc_score(y, probs, multi_class="ovr", average="macro", labels=labels))
        elif n == "top5_accuracy":
            if len(labels) > 5:
                scalars[n] = float(skm.top_k_accuracy_score(y, probs, k=5, labels=labels))
        elif n == "confusion_matrix":
            extras["confusion_matrix"] = skm.confusion_matrix(y, pred, labels=labels)
        elif n == "per_class":
            p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
            names_ = list(task.class_names) or [str(i) for i in labels]
            extras["per_class"] = {
                names_[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                for i in range(len(labels))
            }
    extras["y_pred"] = pred
    extras["probs"] = probs
    return scalars, extras
