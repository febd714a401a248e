"""Every ``pipelines/<name>.yml`` is a Kedro pipeline named ``<name>``: adding a file adds a pipeline."""

from __future__ import annotations

import os
from pathlib import Path

from kedro.pipeline import Pipeline

from deeppipe.pipelines.experiment import experiment_pipeline

DEFAULT_EXPERIMENT = os.environ.get("DEEPPIPE_DEFAULT_EXPERIMENT", "digits_cnn")


def experiments_dir() -> Path:
    return Path(os.environ.get("DEEPPIPE_PIPELINES_DIR", "pipelines"))


def experiment_files() -> dict[str, Path]:
    folder = experiments_dir()
    files = sorted(folder.glob("*.yml")) + sorted(folder.glob("*.yaml"))
    return {p.stem: p for p in files}


def register_pipelines() -> dict[str, Pipeline]:
    pipes = {name: experiment_pipeline(name, path) for name, path in experiment_files().items()}
    if DEFAULT_EXPERIMENT in pipes:
        pipes["__default__"] = pipes[DEFAULT_EXPERIMENT]
    elif pipes:
        pipes["__default__"] = next(iter(pipes.values()))
    return pipes
