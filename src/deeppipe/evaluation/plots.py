"""PNG plots of a test set: confusion matrix, ROC curves, predicted vs true.

Loss curves are drawn by the training engine (``deeppipe.training.plots``), which knows its series."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def _matrix_figure(cm: np.ndarray, class_names: Sequence[str], title: str, cell: str) -> Figure:
    """scikit-learn's convention: true labels on rows, predictions on columns (both axes labelled);
    colour = the share of the true class; each cell shows its count or its share (``cell``)."""
    n = len(cm)
    size = max(4.0, 0.55 * n + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    norm = cm.astype(float) / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    names = list(class_names) if len(class_names) == n else [str(i) for i in range(n)]
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    ax.set_title(title)
    for i in range(n):
        for j in range(n):
            text = str(cm[i, j]) if cell == "count" else f"{norm[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8 if cell == "count" else 7,
                    color="white" if norm[i, j] > 0.5 else "black")
    return fig


def confusion_matrix_figure(cm: np.ndarray, class_names: Sequence[str], title: str = "Confusion matrix") -> Figure:
    """Counts in the cells, coloured by the share of the true class."""
    return _matrix_figure(cm, class_names, title, "count")


def roc_figure(y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]) -> Figure:
    """ROC curves: one for a binary task, one-vs-rest per class otherwise."""
    from sklearn.metrics import auc, roc_curve

    fig, ax = plt.subplots(figsize=(5.5, 5))
    k = probs.shape[1]
    classes = [1] if k == 2 else list(range(k))
    for c in classes:
        positives = (y_true == c).astype(int)
        if positives.min() == positives.max():
            continue
        fpr, tpr, _ = roc_curve(positives, probs[:, c])
        label = class_names[c] if c < len(class_names) else str(c)
        ax.plot(fpr, tpr, label=f"{label} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=1)
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.set_title("ROC" if k == 2 else "ROC (one-vs-rest)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def regression_figure(y_true: np.ndarray, y_pred: np.ndarray) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(y_true, y_pred, s=10, alpha=0.6)
    lo, hi = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    ax.plot([lo, hi], [lo, hi], "--", color="grey")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.set_title("Predicted vs true (test set)")
    ax.grid(alpha=0.3)
    return fig


def normalized_confusion_figure(cm: np.ndarray, class_names: Sequence[str],
                                title: str = "Confusion matrix (row-normalised)") -> Figure:
    """Each true class's row as shares (recall on the diagonal); true labels on rows."""
    return _matrix_figure(cm, class_names, title, "share")


def pr_figure(y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Precision-recall curves (scikit-learn's), with each curve's average precision."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig, ax = plt.subplots(figsize=(5.5, 5))
    k = probs.shape[1]
    for c in ([1] if k == 2 else list(range(k))):
        positives = (y_true == c).astype(int)
        if positives.min() == positives.max():
            continue
        precision, recall, _ = precision_recall_curve(positives, probs[:, c])
        label = class_names[c] if c < len(class_names) else str(c)
        ax.plot(recall, precision, label=f"{label} (AP {average_precision_score(positives, probs[:, c]):.3f})")
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall" if k == 2 else "Precision-recall (one-vs-rest)")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    return fig


def reliability_figure(bins: dict[str, np.ndarray], ece: float) -> Figure:
    """Reliability diagram: accuracy against confidence per bin (the diagonal is calibrated), with
    how many test samples each bin holds."""
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=1, label="perfectly calibrated")
    ax.plot(bins["confidence"], bins["accuracy"], "o-", label=f"model (ECE {ece:.4f})")
    ax.set_ylabel("Accuracy")
    ax.set_title("Reliability diagram (test)")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    width = float(bins["edges"][1] - bins["edges"][0])
    hist.bar(bins["confidence"], bins["count"], width=width * 0.9)
    hist.set_xlabel("Confidence (top class probability)")
    hist.set_ylabel("Samples")
    hist.set_xlim(0, 1)
    fig.tight_layout()
    return fig


def residual_figure(y_true: np.ndarray, y_pred: np.ndarray) -> Figure:
    """Residuals (true - predicted) against the prediction: structure here is what the model missed."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.scatter(y_pred, y_true - y_pred, s=10, alpha=0.6)
    ax.axhline(0.0, linestyle="--", color="grey")
    ax.set_xlabel("predicted value")
    ax.set_ylabel("residual (true - predicted)")
    ax.set_title("Residuals (test set)")
    ax.grid(alpha=0.3)
    return fig
