"""Kedro node functions, one per stage: each only wires one stage function to the catalog's
inputs and outputs (conf/base/catalog.yml) and to the MLflow run kedro-mlflow opened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from deeppipe.artifact import ModelArtifact
from deeppipe.data.sources import Samples
from deeppipe.data.stage import Split
from deeppipe.spec.loader import ResolvedSpec, load_spec
from deeppipe.tracking.mlflow_tracker import current_tracker


def resolve_spec(overrides: dict[str, Any], *, experiment: str, file: str) -> ResolvedSpec:
    """The experiment file with the run's ``--params`` (every one a spec key), recorded in MLflow.
    Reads: the whole file."""
    from deeppipe.tracking.stage import record_spec

    rs = load_spec(file, dict(overrides or {}), check_model=False, check_data=False)
    record_spec(rs, current_tracker())
    return rs


def ingest(rs: ResolvedSpec) -> Samples:
    """Reads: data.source, data.on_error, data.limit."""
    from deeppipe.data.stage import ingest

    return ingest(rs.spec)


def split(rs: ResolvedSpec, samples: Samples) -> Split:
    """Reads: seed, data.split."""
    from deeppipe.data.stage import split

    return split(rs.spec, samples)


def augment_offline(rs: ResolvedSpec, samples: Samples, split: Split) -> Samples | None:
    """Reads: seed, augment (offline, train)."""
    from deeppipe.augment.offline import offline_set

    return offline_set(rs.spec, samples, split)


def train(rs: ResolvedSpec, samples: Samples, split: Split, checkpoints: Path,
          offline: Samples | None = None) -> tuple[ModelArtifact, list[dict], dict[str, bytes]]:
    """Reads: seed, imports, data.normalize, augment, model, train."""
    from deeppipe.training.stage import fit_experiment

    trained = fit_experiment(rs, samples, split, tracker=current_tracker(), checkpoints=checkpoints, offline=offline)
    return trained.artifact, trained.history, trained.plots


def evaluate(rs: ResolvedSpec, samples: Samples, split: Split, artifact: ModelArtifact, history: list[dict]
             ) -> tuple[dict, dict, pd.DataFrame, dict[str, bytes]]:
    """Reads: evaluate, augment.test, augment.tta, train.eval_batch_size."""
    from deeppipe.evaluation.predictor import predictor_for
    from deeppipe.evaluation.stage import evaluate

    result = evaluate(rs, predictor_for(rs.spec, artifact), samples, split, history=history,
                      train_meta=artifact.meta, tracker=current_tracker(), show=False)  # console.ConsoleHooks
    return result.metrics, result.per_class, result.predictions, result.plots


def register(rs: ResolvedSpec, artifact: ModelArtifact, metrics: dict, samples: Samples, split: Split
             ) -> dict[str, Any]:
    """Reads: register, evaluate.selection_metric."""
    from deeppipe.tracking.stage import register

    return register(rs, artifact, metrics, samples, split)
