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


def train_member(rs: ResolvedSpec, samples: Samples, split: Split, previous: Any = None, *, index: int) -> Any:
    """Reads: ensemble (the member's entry: its model, seed, params), seed, model, train;
    ``previous``: the snapshot cycle it continues from."""
    from deeppipe.ensemble.stage import train_member

    return train_member(rs, index, samples, split, previous, tracker=current_tracker())


def combine_members(rs: ResolvedSpec, samples: Samples, split: Split, *members: Any
                    ) -> tuple[ModelArtifact, list[dict], dict[str, bytes]]:
    """Reads: ensemble.method (fitted on the validation split or out-of-fold predictions)."""
    from deeppipe.ensemble.stage import combine

    trained = combine(rs, list(members), samples, split, tracker=current_tracker())
    return trained.artifact, trained.history, trained.plots


def fit_ensemble(rs: ResolvedSpec, samples: Samples, split: Split) -> tuple[ModelArtifact, list[dict], dict[str, bytes]]:
    """Reads: ensemble (a sequential method: boosting), seed, model, train."""
    from deeppipe.ensemble.stage import fit_ensemble

    trained = fit_ensemble(rs, samples, split, tracker=current_tracker())
    return trained.artifact, trained.history, trained.plots


def compare_members(rs: ResolvedSpec, samples: Samples, split: Split, artifact: ModelArtifact) -> dict[str, Any]:
    """Reads: evaluate (every member and the ensemble on the same test split)."""
    from deeppipe.ensemble.stage import compare

    return compare(rs, artifact, samples, split, tracker=current_tracker())


def report(rs: ResolvedSpec, samples: Samples, split: Split, artifact: ModelArtifact, metrics: dict,
           history: list[dict], plots: dict[str, bytes], train_plots: dict[str, bytes],
           per_class: dict | None = None, members: dict | None = None, cv: dict | None = None) -> str:
    """Reads: the whole resolved spec (shown in the report)."""
    from deeppipe.evaluation.stage import report

    return report(rs, artifact, samples, split, metrics=metrics, history=history, plots={**train_plots, **plots},
                  members=members, cv=cv, per_class=per_class, tracker=current_tracker())


def curves(rs: ResolvedSpec, samples: Samples, split: Split, artifact: ModelArtifact) -> dict[str, pd.DataFrame]:
    """Reads: augment.test, augment.tta (the test predictions the curves are drawn from)."""
    from deeppipe.evaluation.stage import curves

    return curves(rs, artifact, samples, split)


def cross_validate(rs: ResolvedSpec, samples: Samples, split: Split) -> dict[str, Any]:
    """Reads: evaluate.cv, evaluate.metrics, and what training reads (each fold trains a model)."""
    from deeppipe.evaluation.stage import cross_validate

    return cross_validate(rs, samples, split, tracker=current_tracker())


def tune(rs: ResolvedSpec, samples: Samples, split: Split, study: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Reads: tune, and everything a trial trains (seed, imports, augment, model, train)."""
    from deeppipe.tuning.stage import tune

    result = tune(rs, samples, split, folder=study, tracker=current_tracker())
    return result.best, result.plots


def apply_best(rs: ResolvedSpec, best: dict[str, Any]) -> ResolvedSpec:
    """Reads: tune (the study best_params.yml must come from)."""
    from deeppipe.tuning.stage import apply_best

    return apply_best(rs, best)
