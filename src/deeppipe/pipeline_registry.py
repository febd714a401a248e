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


def register_pipelines() -> dict[str, Pipeline]:
    pipes = {name: experiment_pipeline(name, path, offline=_offline(path)) for name, path in experiment_files().items()}
    if DEFAULT_EXPERIMENT in pipes:
        pipes["__default__"] = pipes[DEFAULT_EXPERIMENT]
    elif pipes:
        pipes["__default__"] = next(iter(pipes.values()))
    return pipes
