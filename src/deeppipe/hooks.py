"""Kedro hooks: validate the spec before anything runs and point kedro-mlflow at the right run.

- The experiment file (with ``--params`` overrides) is validated before the first node, so a
  mistake stops the run with one clear message and no work done.
- Each spec gets its own MLflow experiment (kedro-mlflow's default is one per project).
- Stage runs that only prepare data (``--tags ingest,split``) are not tracked; stage runs that
  evaluate an existing model continue that model's MLflow run; a training run that resumes a
  checkpoint continues the MLflow run it started (``deeppipe.training.resume``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from kedro.framework.hooks import hook_impl

log = logging.getLogger(__name__)
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

UNTRACKED_TAGS = {"ingest", "split", "augment"}


def _run_exists(run_id: str) -> bool:
    """A remembered run may live in another tracking store (or have been deleted): then start anew."""
    import mlflow

    try:
        return mlflow.MlflowClient().get_run(run_id).info.lifecycle_stage == "active"
    except mlflow.exceptions.MlflowException:
        return False


def run_to_continue(name: str, tags: set[str], spec_hash: str) -> str | None:
    """The MLflow run this stage belongs to, if it continues earlier work: the run that trained
    the model being evaluated, or the run of an interrupted training of the same spec."""
    from deeppipe.layout import artefact
    from deeppipe.training.resume import interrupted_run, trained_run

    if tags and "train" not in tags:
        return trained_run(artefact(name, "model"))
    return interrupted_run(artefact(name, "checkpoints"), spec_hash)


class DeeppipeHooks:
    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        from deeppipe.layout import experiment_files
        from deeppipe.pipeline_registry import DEFAULT_EXPERIMENT
        from deeppipe.spec.loader import load_spec

        files = experiment_files()
        names = run_params.get("pipeline_names") or ["__default__"]
        names = [DEFAULT_EXPERIMENT if n == "__default__" else n for n in names]
        tags = set(run_params.get("tags") or [])
        overrides = dict(run_params.get("runtime_params") or {})
        # the full check (data facts, the network on meta) whenever this run builds or trains;
        # a stage run that only evaluates or registers a stored model checks the spec alone
        deep = not tags or bool(tags & {"ingest", "split", "augment", "train"})
        resolved = {name: load_spec(files[name], overrides, check_data=deep, check_model=deep)
                    for name in names if name in files}
        if len(resolved) == 1:
            (name, rs), = resolved.items()
            self._configure_mlflow(name, tags, rs.hash)

    def _configure_mlflow(self, name: str, tags: set[str], spec_hash: str) -> None:
        try:
            from kedro_mlflow.framework.hooks.mlflow_hook import mlflow_hook
        except ImportError:  # kedro-mlflow not installed: nothing to configure
            return
        config = getattr(mlflow_hook, "mlflow_config", None)
        if config is None or getattr(mlflow_hook, "_already_active_mlflow", False):
            return
        if tags and tags <= UNTRACKED_TAGS:
            config.tracking.disable_tracking.pipelines = [*config.tracking.disable_tracking.pipelines, name]
            return
        if config.tracking.experiment.name != name:
            config.tracking.experiment.name = name
            config._set_experiment()
        run_id = run_to_continue(name, tags, spec_hash)
        config.tracking.run.id = run_id if run_id and _run_exists(run_id) else None
        if config.tracking.run.id:
            log.info("continuing MLflow run %s", config.tracking.run.id)
