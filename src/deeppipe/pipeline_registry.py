"""Every ``pipelines/<name>.yml`` is a Kedro pipeline named ``<name>``: adding a file adds a pipeline."""

from __future__ import annotations

import os
from typing import Any

from kedro.pipeline import Pipeline

from deeppipe.layout import experiment_files
from deeppipe.pipelines.experiment import experiment_pipeline

DEFAULT_EXPERIMENT = os.environ.get("DEEPPIPE_DEFAULT_EXPERIMENT", "digits_cnn")

# The run's --params, parsed by deeppipe.cli's `kedro run` before Kedro builds the pipelines, so a
# stage that --params switches on (augment.offline) is part of the pipeline as if the file said it.
RUNTIME_OVERRIDES: dict[str, Any] = {}


def _offline(path: Any) -> bool:
    from deeppipe.augment.config import offline_enabled
    from deeppipe.errors import SpecError
    from deeppipe.spec.loader import apply_overrides
    from deeppipe.spec.reading import read_yaml

    try:
        raw = apply_overrides(read_yaml(path), RUNTIME_OVERRIDES, file=str(path))
    except SpecError:  # a broken file is reported by validation when the pipeline runs
        return False
    return offline_enabled(raw.get("augment"))


def _ensemble(path: Any) -> Any:
    """The file's ``ensemble.plan.EnsembleShape`` (None without one): one train node per member."""
    from deeppipe.ensemble.plan import pipeline_shape
    from deeppipe.errors import SpecError
    from deeppipe.spec.reading import read_yaml

    try:
        return pipeline_shape(read_yaml(path))
    except SpecError:
        return None


def _tuned(path: Any) -> bool:
    """Whether the file (with the run's --params) has a tune: section: the tune stage runs first."""
    from deeppipe.errors import SpecError
    from deeppipe.spec.loader import apply_overrides
    from deeppipe.spec.reading import read_yaml

    try:
        raw = apply_overrides(read_yaml(path), RUNTIME_OVERRIDES, file=str(path))
    except SpecError:
        return False
    return isinstance(raw.get("tune"), dict)


def _cv(path: Any) -> bool:
    """Whether the file (with the run's --params) asks for evaluate.cv: a cross-validation node."""
    from deeppipe.errors import SpecError
    from deeppipe.spec.loader import apply_overrides
    from deeppipe.spec.reading import read_yaml

    try:
        raw = apply_overrides(read_yaml(path), RUNTIME_OVERRIDES, file=str(path))
    except SpecError:
        return False
    evaluate = raw.get("evaluate")
    return isinstance(evaluate, dict) and isinstance(evaluate.get("cv"), dict)


def register_pipelines() -> dict[str, Pipeline]:
    pipes = {name: experiment_pipeline(name, path, offline=_offline(path), ensemble=_ensemble(path),
                                      tuned=_tuned(path), cv=_cv(path))
             for name, path in experiment_files().items()}
    if DEFAULT_EXPERIMENT in pipes:
        pipes["__default__"] = pipes[DEFAULT_EXPERIMENT]
    elif pipes:
        pipes["__default__"] = next(iter(pipes.values()))
    return pipes
