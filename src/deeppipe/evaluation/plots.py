"""PNG plots a user looks at first: confusion matrix, loss curves, ROC curves."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Save atomically (temp file + rename) and close the figure."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=target.suffix, dir=target.parent, prefix=f".{target.stem}.")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, target)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def confusion_matrix_figure(cm: np.ndarray, class_names: Sequence[str], title: str = "Confusion matrix") -> Figure:
    """scikit-learn's convention: true labels on rows, predictions on columns (both axes labelled)."""
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
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    return fig


def history_figure(history: list[dict[str, float]], title: str = "Training curves") -> Figure:
    """Train vs validation loss, and every validation metric, per epoch."""
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    metric_keys = sorted({k for h in history for k in h if k.startswith("val/") and k != "val/loss"})
    ncols = 2 if metric_keys else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6 * ncols, 4), squeeze=False)
    ax = axes[0, 0]
    for key, style in (("train/loss", "-o"), ("val/loss", "-s")):
        ys = [h.get(key) for h in history]
        if any(v is not None for v in ys):
            ax.plot(epochs, [np.nan if v is None else v for v in ys], style, label=key, markersize=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    if metric_keys:
        ax2 = axes[0, 1]
        for key in metric_keys:
            ax2.plot(epochs, [h.get(key, np.nan) for h in history], "-o", label=key, markersize=3)
        ax2.set_xlabel("epoch")
        ax2.set_title("validation metrics")
        ax2.grid(alpha=0.3)
        ax2.legend()
    return fig


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
