"""A forecast beside its baselines: the same metrics for the naive forecast (the last observed
value, held for the whole horizon) and the seasonal-naive one (the value one season earlier) on
the same test windows, and a plot of a few windows (history, truth, forecast, naive).

A network that does not beat the naive forecast has learnt nothing a user could not have had for
free; the baselines are computed from the raw windows, never from the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deeppipe.evaluation.metrics import compute_metrics


def naive(x: np.ndarray, window: dict[str, Any]) -> np.ndarray:
    """``(N, horizon * K)``: each target's last observed value, for every step of the horizon."""
    last = x[:, -1, window["target_index"]]
    return np.tile(last, (1, int(window["horizon"])))


def seasonal_naive(x: np.ndarray, window: dict[str, Any]) -> np.ndarray | None:
    """The value one season before each forecast step (whole seasons back for steps past one
    season); None without ``data.source.season``."""
    m = window.get("season")
    if not m:
        return None
    lookback, horizon = int(window["lookback"]), int(window["horizon"])
    steps = []
    for h in range(1, horizon + 1):
        back = m * -(-h // m)  # the smallest multiple of the season reaching back into the window
        steps.append(x[:, lookback + h - 1 - back, window["target_index"]])
    return np.concatenate(steps, axis=1)


def baselines(task: Any, window: dict[str, Any], x: np.ndarray, y: np.ndarray,
              choices: Any) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """The metrics of each baseline on these windows (``{"naive": {...}, "seasonal_naive": {...}}``)
    and their forecasts."""
    preds = {"naive": naive(x, window)}
    seasonal = seasonal_naive(x, window)
    if seasonal is not None:
        preds["seasonal_naive"] = seasonal
    return {name: compute_metrics(task, y, p, choices)[0] for name, p in preds.items()}, preds


def forecast_png(experiment: str, window: dict[str, Any], x: np.ndarray, y: np.ndarray, pred: np.ndarray,
                 base: dict[str, np.ndarray], times: list[str] | None = None, count: int = 3) -> bytes:
    """A few test windows, evenly spread, of the first target: the input history, the truth, the
    network's forecast and the baselines'."""
    import matplotlib.pyplot as plt

    from deeppipe.plotting import figure_png

    lookback, horizon = int(window["lookback"]), int(window["horizon"])
    k = len(window["targets"])
    col = window["target_index"][0]
    picks = np.unique(np.linspace(0, len(x) - 1, num=min(count, len(x))).astype(int))
    fig, axes = plt.subplots(len(picks), 1, figsize=(8, 2.6 * len(picks)), squeeze=False)
    past, future = np.arange(-lookback, 0), np.arange(horizon)
    for ax, i in zip(axes[:, 0], picks, strict=True):
        ax.plot(past, x[i, :, col], color="0.5", label="history")
        ax.plot(future, y[i, ::k], "k.-", label="truth")
        ax.plot(future, pred[i, ::k], "C0.-", label="forecast")
        for j, (name, p) in enumerate(base.items()):
            ax.plot(future, p[i, ::k], ls="--", color=f"C{j + 1}", label=name.replace("_", "-"))
        when = f" (first forecast step: {times[i]})" if times and i < len(times) else ""
        ax.set_title(f"test window {i}{when}", fontsize=9)
        ax.axvline(-0.5, color="0.8", lw=0.8)
        ax.legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("steps from the forecast origin")
    fig.suptitle(f"{experiment}: forecasts of {window['targets'][0]}")
    fig.tight_layout()
    return figure_png(fig)
