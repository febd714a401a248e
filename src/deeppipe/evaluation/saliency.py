"""Why a classifier decided: backpropagated saliency (Simonyan et al., 2013).

The saliency of an input is ``|d s_c / d x|``, the gradient of the winning class's score (its
logit) with respect to every input value. For images, a grid of a few test samples per class
beside their saliency maps (the maximum over channels); for tables, each feature's importance is
its saliency averaged over the correctly classified training samples, drawn as a ranked bar chart.
The gradient flows through the saved network as it is (its Standardize included), in eval mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

MAX_ROWS = 2_000  # training samples averaged for tabular importance (a seeded subset beyond this)


def saliency(net: torch.nn.Module, x: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(|d winning logit / d x| shaped like ``x``, the winning classes)."""
    net.eval()
    grads, wins = [], []
    for i in range(0, len(x), batch):
        xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch], dtype=np.float32)).requires_grad_(True)
        out = net(xb)
        if out.shape[1] == 1:  # binary: one logit; the winning side's score is +-logit
            win = (out[:, 0] > 0).long()
            score = torch.where(win == 1, out[:, 0], -out[:, 0])
        else:
            win = out.argmax(1)
            score = out.gather(1, win[:, None])[:, 0]
        (g,) = torch.autograd.grad(score.sum(), xb)
        grads.append(g.abs().numpy())
        wins.append(win.numpy())
    return np.concatenate(grads), np.concatenate(wins)


def feature_importance(net: torch.nn.Module, x: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
    """Mean saliency per feature over the correctly classified samples (all samples if none are)."""
    if len(x) > MAX_ROWS:
        keep = np.random.default_rng(seed).choice(len(x), MAX_ROWS, replace=False)
        x, y = x[keep], y[keep]
    g, win = saliency(net, x)
    right = win == np.asarray(y).astype(np.int64).reshape(-1)
    g = g[right] if right.any() else g
    return g.reshape(len(g), -1).mean(axis=0)


def saliency_png(experiment: str, net: torch.nn.Module, x: np.ndarray, y: np.ndarray, names: list[str],
                 per_class: int = 2, max_classes: int = 10) -> bytes:
    """A few test images per class (up to ``max_classes``) above their saliency maps."""
    import matplotlib.pyplot as plt

    from deeppipe.plotting import figure_png

    y = np.asarray(y).astype(np.int64).reshape(-1)
    picks = [i for c in np.unique(y)[:max_classes] for i in np.flatnonzero(y == c)[:per_class]]
    g, win = saliency(net, x[picks])
    fig, axes = plt.subplots(2, len(picks), figsize=(1.2 * len(picks), 2.8), squeeze=False)
    for j, i in enumerate(picks):
        img = x[i]
        axes[0, j].imshow(img[0] if img.shape[0] == 1 else np.clip(img.transpose(1, 2, 0), 0, 1),
                          cmap="gray" if img.shape[0] == 1 else None)
        axes[1, j].imshow(g[j].max(axis=0), cmap="hot")
        label = names[int(y[i])] if names else str(y[i])
        guess = names[int(win[j])] if names else str(win[j])
        axes[0, j].set_title(label if label == guess else f"{label}->{guess}", fontsize=7)
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[1, 0].set_ylabel("saliency", fontsize=8)
    fig.suptitle(f"{experiment}: |d winning-class score / d input| (title: true -> predicted)", fontsize=9)
    return figure_png(fig)


def importance_png(experiment: str, importance: np.ndarray, names: list[str] | None = None, top: int = 20) -> bytes:
    import matplotlib.pyplot as plt

    from deeppipe.plotting import figure_png

    order = np.argsort(importance)[::-1][:top]
    labels = [names[i] if names and i < len(names) else f"feature {i}" for i in order]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(order) + 1.2))
    ax.barh(range(len(order))[::-1], importance[order], color="C0")
    ax.set_yticks(range(len(order))[::-1], labels, fontsize=7)
    ax.set_xlabel("mean |d winning-class score / d feature| (correctly classified training samples)")
    ax.set_title(f"{experiment}: feature importance by saliency", fontsize=9)
    return figure_png(fig)


def explain(experiment: str, net: Any, samples: Any, split: Any, x_test: np.ndarray, y_test: np.ndarray,
            seed: int = 0) -> dict[str, bytes]:
    """The plots a classifier's evaluation adds: a saliency grid for images, feature importance for tables."""
    if net is None or not samples.task.is_classification:
        return {}
    names = list(samples.task.class_names)
    if x_test.ndim == 4 and x_test.shape[1] in (1, 3):
        return {"saliency": saliency_png(experiment, net, x_test, y_test, names)}
    if x_test.ndim == 2:
        tr = split.train
        imp = feature_importance(net, samples.x[tr], samples.y[tr], seed=seed)
        return {"feature_importance": importance_png(experiment, imp, samples.meta.get("feature_names"))}
    return {}
