"""What an autoencoder is scored on and shows: reconstruction error, outlier scores, and pictures.

- Row scores (a sample's sum of squared reconstruction errors) rank outliers; column scores (the
  same errors summed over the test samples, per input value) show which features it reconstructs
  worst. With ``data.anomalies`` (classes held out of training) the row score's ROC AUC for
  telling those classes apart is ``outlier_roc_auc``.
- A grid of test inputs above their reconstructions, the column scores of images as a heat map
  (``feature_scores``), and the codes of the layer named ``code``
  in 2-D (the codes themselves when the bottleneck is 2-D, their first two principal components
  otherwise), coloured by the source's labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

CODE = "code"  # the bottleneck's layer name in the zoo autoencoders (models/zoo/*autoencoder.yml)


def scores(x: np.ndarray, recon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row scores (N,), column scores (features,)): sums of squared errors per sample and per input value."""
    err = (np.asarray(recon, dtype=np.float64).reshape(len(x), -1) - np.asarray(x, dtype=np.float64).reshape(len(x), -1)) ** 2
    return err.sum(axis=1), err.sum(axis=0)


def outlier_auc(row: np.ndarray, outlier: np.ndarray) -> float | None:
    """ROC AUC of the row scores for the held-out classes (None without both kinds in the test split)."""
    if outlier.all() or not outlier.any():
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(outlier.astype(int), row))


def codes(net: Any, x: np.ndarray, batch: int = 512) -> np.ndarray | None:
    """The ``code`` layer's outputs for ``x`` (None when the network has no layer of that name)."""
    body = getattr(net, "body", None)
    if body is None or CODE not in getattr(body, "node_names", ()):
        return None
    net.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            xb = net.normalizer(torch.from_numpy(np.ascontiguousarray(x[i:i + batch], dtype=np.float32)))
            out.append(body.outputs(xb, [CODE])[CODE].reshape(len(xb), -1).numpy())
    return np.concatenate(out) if out else None


def in_2d(c: np.ndarray) -> tuple[np.ndarray, str]:
    if c.shape[1] == 2:
        return c, "code"
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=0).fit_transform(c), "PCA of the codes"


def reconstructions_png(experiment: str, x: np.ndarray, recon: np.ndarray, count: int = 8) -> bytes | None:
    """Test images above their reconstructions (images only: (N, C, H, W) with 1 or 3 channels)."""
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        return None
    import matplotlib.pyplot as plt

    from deeppipe.plotting import figure_png

    n = min(count, len(x))
    fig, axes = plt.subplots(2, n, figsize=(1.3 * n, 2.9), squeeze=False)
    for j in range(n):
        for row, img in ((0, x[j]), (1, np.clip(recon[j].reshape(x[j].shape), 0, 1))):
            ax = axes[row, j]
            ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray" if img.shape[0] == 1 else None)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, j].set_title(str(j), fontsize=7)
    axes[0, 0].set_ylabel("input", fontsize=8)
    axes[1, 0].set_ylabel("reconstruction", fontsize=8)
    fig.suptitle(f"{experiment}: test inputs and their reconstructions", fontsize=9)
    return figure_png(fig)


def feature_scores_png(experiment: str, column: np.ndarray, shape: tuple[int, ...]) -> bytes | None:
    """The per-feature scores of image inputs as a heat map (summed over channels): where the
    autoencoder fails most (images only)."""
    if len(shape) != 3:
        return None
    import matplotlib.pyplot as plt

    from deeppipe.plotting import figure_png

    fig, ax = plt.subplots(figsize=(4, 3.6))
    shown = ax.imshow(np.asarray(column).reshape(shape).sum(axis=0), cmap="magma")
    fig.colorbar(shown, ax=ax, label="sum of squared errors over the test samples")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{experiment}: reconstruction error per pixel", fontsize=9)
    return figure_png(fig)


def codes_png(experiment: str, c2: np.ndarray, how: str, labels: np.ndarray, names: list[str],
              outlier: np.ndarray) -> bytes:
    import matplotlib.pyplot as plt

    from deeppipe.plotting import figure_png

    fig, ax = plt.subplots(figsize=(6, 5))
    for k in np.unique(labels):
        mask = labels == k
        name = names[int(k)] if names and int(k) < len(names) else str(k)
        ax.scatter(c2[mask, 0], c2[mask, 1], s=6, label=name + (" (anomaly)" if outlier[mask].all() and outlier.any()
                                                                else ""), alpha=0.7)
    ax.set_xlabel(f"{how} 1")
    ax.set_ylabel(f"{how} 2")
    ax.legend(fontsize=7, markerscale=2, ncol=2)
    ax.set_title(f"{experiment}: test codes by class", fontsize=9)
    return figure_png(fig)


def evaluate_reconstruction(experiment: str, net: Any, x: np.ndarray, recon: np.ndarray, labels: np.ndarray,
                            outlier: np.ndarray, names: list[str], scalars: dict[str, float]
                            ) -> tuple[dict[str, float], pd.DataFrame, dict[str, bytes], dict[str, Any]]:
    """(scalars with outlier_roc_auc, per-sample scores table, plots, per-feature column scores)."""
    row, column = scores(x, recon)
    auc = outlier_auc(row, outlier)
    if auc is not None:
        scalars = {**scalars, "outlier_roc_auc": auc}
    table = pd.DataFrame({"label": [names[int(v)] if names else int(v) for v in labels] if len(labels) else [],
                          "anomaly": outlier.astype(bool), "score": row})
    plots: dict[str, bytes] = {}
    grid = reconstructions_png(experiment, x, recon)
    if grid is not None:
        plots["reconstructions"] = grid
    heat = feature_scores_png(experiment, column, tuple(x.shape[1:]))
    if heat is not None:
        plots["feature_scores"] = heat
    c = codes(net, x)
    if c is not None and len(c) > 2:
        c2, how = in_2d(c)
        plots["codes"] = codes_png(experiment, c2, how, labels, names, outlier)
    return scalars, table, plots, {"column_scores": column.tolist()}
