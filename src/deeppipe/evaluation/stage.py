"""The evaluate stage as a plain function: score a predictor on the test split, draw the plots.

Any ``Predictor`` (one model, TTA, an ensemble) goes through the same path; Kedro's evaluate node
and tests call ``evaluate`` directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from deeppipe.evaluation.metrics import compute_metrics
from deeppipe.evaluation.predictor import Predictor
from deeppipe.tracking.tracker import NullTracker, Tracker, log_bytes

if TYPE_CHECKING:
    from deeppipe.data.sources import Samples
    from deeppipe.data.stage import Split
    from deeppipe.spec.loader import ResolvedSpec

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """metrics.json's content (the headline figures), the per-class figures (their own file, so
    ``dvc metrics show`` stays narrow), the test predictions (DVC's plots read them), the plots."""

    metrics: dict[str, Any]
    predictions: pd.DataFrame
    plots: dict[str, bytes] = field(default_factory=dict)
    per_class: dict[str, Any] = field(default_factory=dict)

    @property
    def scalars(self) -> dict[str, float]:
        return self.metrics["test"]


def evaluate(rs: ResolvedSpec, predictor: Predictor, samples: Samples, split: Split, *,
             history: list[dict[str, Any]] | None = None, train_meta: dict[str, Any] | None = None,
             tracker: Tracker | None = None, show: bool = True) -> Evaluation:
    """Test-set metrics (``test/<name>`` in the tracker), predictions and plots; ``show`` prints
    the summary table."""
    from deeppipe.augment.apply import eval_view
    from deeppipe.evaluation.report import print_summary

    tracker = tracker or NullTracker()
    task = samples.task
    te = split.evaluation
    if not len(split.test):
        log.warning("no test split (data.split.test: 0): evaluating on the validation split")
    x_test = eval_view(rs.spec.augment, samples.x[te], "test")
    y_test = samples.targets()[te]
    pred = predictor.predict(x_test)
    scalars, tables = compute_metrics(task, y_test, pred, rs.spec.evaluate.choices())
    meta = train_meta or {}
    # at the step of the epoch whose weights were scored, so the logged model links them too
    tracker.log_metrics({f"test/{k}": v for k, v in scalars.items()}, step=meta.get("weights_epoch"))
    plots = _plots(rs.name, task, y_test, pred, tables, history)
    for name, png in plots.items():
        log_bytes(tracker, f"{name}.png", png, "plots")
    if task.is_classification:
        names = list(task.class_names)
        predictions = pd.DataFrame({"actual": [names[i] for i in y_test.astype(int)],
                                    "predicted": [names[i] for i in pred.argmax(axis=1)]})
    else:
        actual, predicted = y_test.reshape(len(y_test), -1)[:, 0], pred.reshape(len(pred), -1)[:, 0]
        predictions = pd.DataFrame({"actual": actual, "predicted": predicted, "residual": actual - predicted})
    metrics: dict[str, Any] = {
        "test": scalars,
        "train": {"best_epoch": meta.get("best_epoch"), "weights_epoch": meta.get("weights_epoch"),
                  "epochs_run": meta.get("epochs_run")},
        "evaluated_on": {"split": "test" if len(split.test) else "val", "samples": len(te)},
    }
    if show:
        print_summary(rs.name, metrics)
    return Evaluation(metrics, predictions, plots, tables.get("per_class", {}))


def _plots(name: str, task: Any, y: np.ndarray, pred: np.ndarray, tables: dict[str, Any],
           history: list[dict[str, Any]] | None) -> dict[str, bytes]:
    from deeppipe.evaluation.plots import confusion_matrix_figure, regression_figure, roc_figure
    from deeppipe.plotting import figure_png
    from deeppipe.training.plots import history_figure

    plots: dict[str, bytes] = {}
    if history:
        plots["loss_curves"] = figure_png(history_figure(history, title=f"{name}: training curves"))
    if task.is_classification:
        names = list(task.class_names)
        if "confusion_matrix" in tables:
            plots["confusion_matrix"] = figure_png(confusion_matrix_figure(
                tables["confusion_matrix"], names, title=f"{name}: confusion matrix (test)"))
        plots["roc"] = figure_png(roc_figure(y.astype(np.int64), pred, names))
    else:
        plots["predicted_vs_true"] = figure_png(regression_figure(y.reshape(len(y), -1)[:, 0],
                                                                  pred.reshape(len(pred), -1)[:, 0]))
    return plots
