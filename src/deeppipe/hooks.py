"""Kedro hooks: validate the spec before anything runs and point kedro-mlflow at the right run.

- The experiment file (with ``--params`` overrides) is validated before the first node, so a
  mistake stops the run with one clear message and no work done.
- Each spec gets its own MLflow experiment (kedro-mlflow's default is one per project).
- Stage runs that only prepare data (``--tags ingest,split``) are not tracked; stage runs that
  evaluate an existing model continue that model's MLflow run; a training run that resumes a
  checkpoint continues the MLflow run it started.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
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


class DeeppipeHooks:
    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        from deeppipe.pipeline_registry import DEFAULT_EXPERIMENT, experiment_files
        from deeppipe.pipelines.nodes import spec_overrides
        from deeppipe.spec.loader import load_spec

        files = experiment_files()
        names = run_params.get("pipeline_names") or ["__default__"]
        names = [DEFAULT_EXPERIMENT if n == "__default__" else n for n in names]
        tags = set(run_params.get("tags") or [])
        overrides = spec_overrides(run_params.get("runtime_params"))
        needs_data = not tags or tags & {"ingest"}
        resolved = {name: load_spec(files[name], overrides, check_data=bool(needs_data))
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
        run_id = self._run_to_continue(name, tags, spec_hash)
        config.tracking.run.id = run_id if run_id and _run_exists(run_id) else None
        if config.tracking.run.id:
            log.info("continuing MLflow run %s", config.tracking.run.id)

    @staticmethod
    def _run_to_continue(name: str, tags: set[str], spec_hash: str) -> str | None:
        """The MLflow run this stage belongs to, if it continues earlier work: the run that trained
        the model being evaluated, or the run of an interrupted training of the same spec."""
        models = Path("data/06_models") / name
        if tags and "train" not in tags:
            meta = models / "model" / "meta.json"
            if meta.is_file():
                return json.loads(meta.read_text()).get("mlflow_run_id")
            return None
        from deeppipe.pipelines.nodes import checkpoint_dir

        ckpt = checkpoint_dir(name, spec_hash)
        run_file = ckpt / "run.json"
        if run_file.is_file():
            from deeppipe.training import checkpoint_info

            info = checkpoint_info(ckpt)
            remembered = json.loads(run_file.read_text())
            if (info and not info.get("finished") and info.get("spec_hash") == spec_hash
                    and remembered.get("spec_hash") == spec_hash):
                return remembered.get("run_id")
        return None
