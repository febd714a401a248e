"""Loss and metric curves (train vs validation) as one PNG, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def history_figure(history: list[dict[str, float]], title: str | None = None) -> Any:
    """Every logged series against the epoch, one readable panel each with a legend: losses (train
    vs val) first, then metrics, the learning rate and gradient/weight norms (log scale, to spot
    vanishing or exploding gradients). Panels wrap onto rows of three, so MLflow's and DVC's
    previews show them at a readable size."""
    import math

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    keys = sorted({k for h in history for k in h} - {"epoch", "epoch_time_s", "samples_per_s"})
    metrics = sorted({k.split("/", 1)[1] for k in keys if "/" in k} - {"loss"})
    panels = [("loss", [k for k in ("train/loss", "val/loss") if k in keys], False)]
    panels += [(m, [k for k in (f"train/{m}", f"val/{m}") if k in keys], False) for m in metrics]
    panels += [(k, [k], k != "lr") for k in ("lr", "grad_norm", "weight_norm") if k in keys]
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.5 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax, (name, series, logy) in zip(flat, panels):
        for key in series:
            pts = [(e, h[key]) for e, h in zip(epochs, history) if key in h]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=key)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        if logy:
            ax.set_yscale("log")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title or "training curves")
    fig.tight_layout()
    return fig


def plot_history(history: list[dict[str, float]], path: str | Path) -> Path:
    """Write :func:`history_figure` as a PNG, atomically."""
    from deeppipe.files import atomic_write
    from deeppipe.plotting import figure_png

    return atomic_write(path, figure_png(history_figure(history), dpi=100))
