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
    from deeppipe.augment.apply import eval_rows
    from deeppipe.evaluation.report import print_summary

    tracker = tracker or NullTracker()
    task = samples.task
    te = split.evaluation
    if not len(split.test):
        log.warning("no test split (data.split.test: 0): evaluating on the validation split")
    x_test = eval_rows(rs.spec.augment, samples.x, te, "test")
    if task.kind == "reconstruction":  # an autoencoder: scored against its inputs (evaluation.reconstruction)
        return _evaluate_reconstruction(rs, predictor, samples, split, x_test, train_meta or {}, tracker, show)
    y_test = samples.targets()[te]
    pred = predictor.predict(x_test)
    scalars, tables = compute_metrics(task, y_test, pred, rs.spec.evaluate.choices())
    meta = train_meta or {}
    # at the step of the epoch whose weights were scored, so the logged model links them too
    tracker.log_metrics({f"test/{k}": v for k, v in scalars.items()}, step=meta.get("weights_epoch"))
    plots = _plots(rs.name, task, y_test, pred, tables, history)
    if task.is_classification and not samples.meta.get("text"):  # saliency maps (images) or feature importance
        # (tables): evaluation.saliency; token ids have no gradient
        from deeppipe.evaluation.saliency import explain

        plots.update(explain(rs.name, getattr(predictor, "net", None), samples, split, x_test, y_test,
                             seed=rs.spec.seed))
    window, baseline = samples.meta.get("window"), None
    if window:  # forecasting: the naive baselines' metrics on the same windows, and a forecast plot
        from deeppipe.evaluation.forecast import baselines, forecast_png

        baseline, base_preds = baselines(task, window, samples.x[te], y_test, rs.spec.evaluate.choices())
        tracker.log_metrics({f"test/{b}/{k}": v for b, m in baseline.items() for k, v in m.items()},
                            step=meta.get("weights_epoch"))
        times = window.get("times") or []
        plots["forecast"] = forecast_png(rs.name, window, samples.x[te], y_test, pred, base_preds,
                                         [times[i] for i in te if i < len(times)])
    for name, png in plots.items():
        log_bytes(tracker, f"{name}.png", png, "plots")
    if task.is_classification:
        names = list(task.class_names)
        predictions = pd.DataFrame({"actual": [names[i] for i in y_test.astype(int)],
                                    "predicted": [names[i] for i in pred.argmax(axis=1)]})
    elif task.per_step:  # tags or CTC label sequences, one line each (evaluation.sequence_metrics)
        from deeppipe.evaluation.sequence_metrics import step_predictions

        predictions = step_predictions(task, y_test, pred)
    else:
        actual, predicted = y_test.reshape(len(y_test), -1)[:, 0], pred.reshape(len(pred), -1)[:, 0]
        predictions = pd.DataFrame({"actual": actual, "predicted": predicted, "residual": actual - predicted})
    metrics = _record(scalars, meta, split)
    if baseline is not None:
        metrics["baselines"] = baseline
    if show:
        print_summary(rs.name, metrics)
    return Evaluation(metrics, predictions, plots, tables.get("per_class", {}))


def _record(scalars: dict[str, float], meta: dict[str, Any], split: Split) -> dict[str, Any]:
    """metrics.json: the headline figures, the epoch the weights come from, what was scored."""
    return {"test": scalars,
            "train": {"best_epoch": meta.get("best_epoch"), "weights_epoch": meta.get("weights_epoch"),
                      "epochs_run": meta.get("epochs_run")},
            "evaluated_on": {"split": "test" if len(split.test) else "val", "samples": len(split.evaluation)}}


def _evaluate_reconstruction(rs: ResolvedSpec, predictor: Predictor, samples: Samples, split: Split,
                             x_test: np.ndarray, meta: dict[str, Any], tracker: Tracker, show: bool) -> Evaluation:
    from deeppipe.data.stage import anomaly_rows
    from deeppipe.evaluation.reconstruction import evaluate_reconstruction
    from deeppipe.evaluation.report import print_summary

    te = split.evaluation
    x_test = np.asarray(x_test)  # scored against the inputs themselves: read whole
    recon = predictor.predict(x_test)
    scalars, _ = compute_metrics(samples.task, x_test, recon, rs.spec.evaluate.choices())
    names = list(samples.meta.get("labels", {}).get("class_names") or [])
    scalars, table, plots, per_feature = evaluate_reconstruction(
        rs.name, getattr(predictor, "net", None), x_test, recon, samples.y[te], anomaly_rows(rs.spec, samples)[te],
        names, scalars)
    tracker.log_metrics({f"test/{k}": v for k, v in scalars.items()}, step=meta.get("weights_epoch"))
    for name, png in plots.items():
        log_bytes(tracker, f"{name}.png", png, "plots")
    metrics = _record(scalars, meta, split)
    if show:
        print_summary(rs.name, metrics)
    return Evaluation(metrics, table, plots, per_feature)


def report(rs: ResolvedSpec, artifact: Any, samples: Samples, split: Split, *, metrics: dict[str, Any],
           history: list[dict[str, Any]] | None, plots: dict[str, bytes], members: dict[str, Any] | None = None,
           cv: dict[str, Any] | None = None, per_class: dict[str, Any] | None = None,
           tracker: Tracker | None = None) -> str:
    """The run's one-file HTML report (``evaluation.html_report``), logged to the tracker too."""
    from deeppipe.evaluation.html_report import build_report

    return build_report(rs, artifact, samples, split, metrics=metrics, history=history, plots=plots,
                        members=members, cv=cv, per_class=per_class, tracker=tracker)


def curves(rs: ResolvedSpec, artifact: Any, samples: Samples, split: Split) -> dict[str, pd.DataFrame]:
    """ROC, precision-recall and reliability curves of the test split as tables (DVC's plots)."""
    from deeppipe.augment.apply import eval_rows
    from deeppipe.evaluation.curves import curve_tables
    from deeppipe.evaluation.predictor import predictor_for

    te = split.evaluation
    pred = predictor_for(rs.spec, artifact).predict(eval_rows(rs.spec.augment, samples.x, te, "test"))
    return curve_tables(samples.task, samples.targets()[te], pred)


def cross_validate(rs: ResolvedSpec, samples: Samples, split: Split, *, tracker: Tracker | None = None
                   ) -> dict[str, Any]:
    """``evaluate.cv``: K-fold cross-validation on the training split (``evaluation.cv``)."""
    from deeppipe.evaluation.cv import cross_validate

    return cross_validate(rs, samples, split, tracker=tracker)


def _plots(name: str, task: Any, y: np.ndarray, pred: np.ndarray, tables: dict[str, Any],
           history: list[dict[str, Any]] | None) -> dict[str, bytes]:
    import deeppipe.evaluation.plots as ep
    from deeppipe.evaluation.metrics import calibration_bins, ece
    from deeppipe.plotting import figure_png
    from deeppipe.training.plots import history_figure

    plots: dict[str, bytes] = {}
    if history:
        plots["loss_curves"] = figure_png(history_figure(history, title=f"{name}: training curves"))
    if task.is_classification:
        names = list(task.class_names)
        if "confusion_matrix" in tables:
            plots["confusion_matrix"] = figure_png(ep.confusion_matrix_figure(
                tables["confusion_matrix"], names, title=f"{name}: confusion matrix (test)"))
            plots["confusion_matrix_normalized"] = figure_png(ep.normalized_confusion_figure(
                tables["confusion_matrix"], names, title=f"{name}: confusion matrix, row-normalised (test)"))
        labels = y.astype(np.int64).reshape(-1)
        plots["roc"] = figure_png(ep.roc_figure(labels, pred, names))
        plots["precision_recall"] = figure_png(ep.pr_figure(labels, pred, names))
        plots["reliability"] = figure_png(ep.reliability_figure(calibration_bins(labels, pred), ece(labels, pred)))
    elif not task.per_step:
        true, predicted = y.reshape(len(y), -1)[:, 0], pred.reshape(len(pred), -1)[:, 0]
        plots["predicted_vs_true"] = figure_png(ep.regression_figure(true, predicted))
        plots["residuals"] = figure_png(ep.residual_figure(true, predicted))
    return plots
