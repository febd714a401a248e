"""Stacking's two halves: out-of-fold predictions of a member (K-fold training on the training
split, each fold's rows predicted by the model that did not train on them), and the meta-model
fitted on them with scikit-learn, then carried over into torch layers (``network.meta_network``)
so the ensemble stays one network.

The features follow scikit-learn's StackingClassifier: every member's class probabilities side by
side (binary: the positive class's only); for regression the members' values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class FoldProvenance:
    """Which rows one fold model trained on and which rows it predicted (disjoint by design; the
    test of stacking checks it)."""

    fit_rows: np.ndarray
    predicted_rows: np.ndarray


def fold_indices(rows: np.ndarray, y: np.ndarray, folds: int, *, stratify: bool, seed: int) -> list[np.ndarray]:
    """Positions into ``rows`` of each fold (the same for every member: one seed)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if stratify:
        counts = np.bincount(y.astype(np.int64))
        stratify = bool(counts[counts > 0].min() >= folds)
    splitter = (StratifiedKFold(folds, shuffle=True, random_state=seed) if stratify
                else KFold(folds, shuffle=True, random_state=seed))
    return [held for _, held in splitter.split(rows, y if stratify else None)]


def features(task: Any, preds: list[np.ndarray]) -> np.ndarray:
    cols = []
    for p in preds:
        p = np.asarray(p, dtype=np.float64).reshape(len(p), -1)
        cols.append(p[:, 1:] if task.kind == "binary" else p)
    return np.concatenate(cols, axis=1)


def fit_meta_model(task: Any, oof: list[np.ndarray], y: np.ndarray, *, kind: str, C: float, hidden: list[int],
                   seed: int) -> tuple[list[int], dict[str, torch.Tensor], dict[str, Any]]:
    """(layer sizes, torch state of ``meta_network(layers)``, what the report shows)."""
    x = features(task, oof)
    classify = task.is_classification
    target = y.astype(np.int64).reshape(-1) if classify else np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    if kind == "mlp":
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        cls = MLPClassifier if classify else MLPRegressor
        model = cls(hidden_layer_sizes=tuple(hidden), alpha=1.0 / C, max_iter=500, random_state=seed)
        model.fit(x, target if classify or target.shape[1] > 1 else target[:, 0])
        coefs, intercepts = model.coefs_, model.intercepts_
        _check_classes(model, task)
    else:
        from sklearn.linear_model import LogisticRegression, Ridge

        if classify:
            model = LogisticRegression(C=C, max_iter=2000)
            model.fit(x, target)
            _check_classes(model, task)
        else:
            model = Ridge(alpha=1.0 / C).fit(x, target)
        coefs = [np.atleast_2d(model.coef_).T]
        intercepts = [np.atleast_1d(model.intercept_)]
    layers = [x.shape[1], *[c.shape[1] for c in coefs]]
    state: dict[str, torch.Tensor] = {}
    linear = 0
    for c, b in zip(coefs, intercepts):
        state[f"meta.{linear}.weight"] = torch.as_tensor(c.T, dtype=torch.float32).contiguous()
        state[f"meta.{linear}.bias"] = torch.as_tensor(b, dtype=torch.float32).contiguous()
        linear += 2  # Linear, ReLU, Linear ... in meta_network's Sequential
    train_score = float(model.score(x, target if classify or target.shape[1] > 1 else target[:, 0]))
    info = {"meta_model": type(model).__name__, "features": int(x.shape[1]), "oof_rows": len(x),
            "oof_score": train_score}
    return layers, state, info


def _check_classes(model: Any, task: Any) -> None:
    """The meta-model must have seen every class, or its outputs would not line up with them."""
    classes = getattr(model, "classes_", None)
    if classes is not None and len(classes) != max(task.num_classes, 2):
        raise ValueError(f"the out-of-fold labels hold {len(classes)} of {task.num_classes} classes: "
                         "stacking needs every class in the training split")
