"""The stages in the order data flows through them, and ``run_experiment`` chaining them.

    spec -> data.stage.ingest -> data.stage.split -> augment.offline.offline_set
         -> training.stage.fit_experiment -> evaluation.stage.evaluate -> tracking.stage.register

Kedro runs each stage as a node (deeppipe.pipelines); ``run_experiment`` runs them all in one
process without Kedro, which is what tuning trials, ensemble members and tests build on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeppipe.augment.offline import offline_set
from deeppipe.data.sources import Samples
from deeppipe.data.stage import Split, ingest, split
from deeppipe.evaluation.predictor import predictor_for
from deeppipe.evaluation.stage import Evaluation, evaluate
from deeppipe.spec.loader import ResolvedSpec
from deeppipe.tracking.tracker import NullTracker, Tracker
from deeppipe.training.stage import TrainedModel, fit_experiment

__all__ = ["ExperimentRun", "evaluate", "fit_experiment", "ingest", "offline_set", "predictor_for",
           "run_experiment", "split"]


@dataclass
class ExperimentRun:
    samples: Samples
    split: Split
    trained: TrainedModel
    evaluation: Evaluation
    registry: dict[str, Any] | None = None


def run_experiment(rs: ResolvedSpec, *, tracker: Tracker | None = None, checkpoints: Path | None = None,
                   register_model: bool = False, show: bool = False) -> ExperimentRun:
    """Every stage of one experiment, in order, in this process. ``register_model`` needs an
    active MLflow run (``mlflow.start_run()``); the tracker decides what else is recorded."""
    tracker = tracker or NullTracker()
    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    offline = offline_set(rs.spec, samples, parts)
    trained = fit_experiment(rs, samples, parts, tracker=tracker, checkpoints=checkpoints, offline=offline)
    result = evaluate(rs, predictor_for(rs.spec, trained.artifact), samples, parts, history=trained.history,
                      train_meta=trained.artifact.meta, tracker=tracker, show=show)
    registry = None
    if register_model:
        from deeppipe.tracking.stage import register

        registry = register(rs, trained.artifact, result.metrics, samples, parts)
    return ExperimentRun(samples, parts, trained, result, registry)
