"""The test set's curves as tables in DVC's plot formats (CSV files DVC's ``plots`` read and
``dvc plots diff`` compares across runs): ROC and precision-recall (the positive class, or the
micro-average over one-vs-rest for several classes, scikit-learn's), and the reliability curve
(scikit-learn's calibration curve of the top class's probability)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

MAX_POINTS = 1000  # DVC renders every row: longer curves are thinned evenly, ends kept


def _thin(df: pd.DataFrame) -> pd.DataFrame:
    if len(df) <= MAX_POINTS:
        return df.reset_index(drop=True)
    keep = np.unique(np.linspace(0, len(df) - 1, MAX_POINTS).round().astype(int))
    return df.iloc[keep].reset_index(drop=True)


def curve_tables(task: Any, y_true: np.ndarray, pred: np.ndarray) -> dict[str, pd.DataFrame]:
    """{'roc': fpr, tpr; 'precision_recall': recall, precision; 'calibration': confidence,
    accuracy, count} for a classifier; nothing for regression (predictions.csv has its residuals)."""
    if not task.is_classification:
        return {}
    from sklearn.metrics import precision_recall_curve, roc_curve

    from deeppipe.evaluation.metrics import calibration_bins

    y = np.asarray(y_true).astype(np.int64).reshape(-1)
    p = np.asarray(pred, dtype=np.float64)
    if p.shape[1] == 2:
        truth, score = (y == 1).astype(int), p[:, 1]
    else:  # micro-average: every (sample, class) pair one binary decision
        truth, score = np.eye(p.shape[1], dtype=int)[y].ravel(), p.ravel()
    out: dict[str, pd.DataFrame] = {}
    if truth.min() != truth.max():
        fpr, tpr, _ = roc_curve(truth, score)
        precision, recall, _ = precision_recall_curve(truth, score)
        out["roc"] = _thin(pd.DataFrame({"fpr": fpr, "tpr": tpr}))
        out["precision_recall"] = _thin(pd.DataFrame({"recall": recall[::-1], "precision": precision[::-1]}))
    bins = calibration_bins(y, p)
    out["calibration"] = pd.DataFrame({"confidence": bins["confidence"], "accuracy": bins["accuracy"],
                                       "count": bins["count"]})
    return out
