"""Kedro hooks: one run of an experiment at a time, validated before anything runs, tracked in the
right MLflow run, and leaving nothing half-written behind.

- The experiment's run lock (deeppipe.runlock) is taken before anything else and held until the
  run ends (``DEEPPIPE_LOCK=wait`` queues behind a run in progress instead of stopping); a killed
  run's leftovers are cleaned up and its MLflow run continued or closed (deeppipe.continuity).
- The experiment file (with ``--params`` overrides) is validated before the first node, so a
  mistake stops the run with one clear message and no work done.
- Each spec gets its own MLflow experiment (kedro-mlflow's default is one per project).
- Stage runs that only prepare data (``--tags ingest,split``) are not tracked; stage runs that
  evaluate an existing model continue that model's MLflow run; a training run that resumes a
  checkpoint continues the MLflow run it started (``deeppipe.training.resume``).
- Before a node runs, the stored artefacts it reads must belong to this run; the files a node
  writes become visible together, when all of them are written (``deeppipe.files`` batches).
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


def run_to_continue(name: str, tags: set[str], rs: Any) -> str | None:
    """The MLflow run this stage belongs to, if it continues earlier work: the run that trained
    the model being evaluated, or the run of an interrupted training of the same spec and data."""
    from deeppipe.data.sources import source_stamp
    from deeppipe.layout import artefact
    from deeppipe.training.resume import interrupted_run, trained_run

    if tags and "train" not in tags:
        return trained_run(artefact(name, "model"))
    return interrupted_run(artefact(name, "checkpoints"), rs.hash, source_stamp(rs.spec.data.source))


class DeeppipeHooks:
    def __init__(self) -> None:
        self._locks: dict[str, Any] = {}
        self._specs: dict[str, Any] = {}
        self._tags: set[str] = set()
        self._written: set[str] = set()
        self._unsaved: dict[str, int] = {}
        self._noted = False
        self._startup: Any = None

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        from deeppipe.runlock import startup_lock

        self._end_startup()
        self._startup = startup_lock(context.project_path)  # until the catalog (and MLflow's store) exist

    @hook_impl
    def after_catalog_created(self, catalog: Any) -> None:
        self._end_startup()

    def _end_startup(self) -> None:
        lock, self._startup = self._startup, None
        if lock is not None:
            lock.release()

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        from deeppipe import continuity
        from deeppipe.layout import experiment_files
        from deeppipe.pipeline_registry import DEFAULT_EXPERIMENT
        from deeppipe.spec.loader import load_spec

        files = experiment_files()
        names = run_params.get("pipeline_names") or ["__default__"]
        names = [DEFAULT_EXPERIMENT if n == "__default__" else n for n in names]
        self._tags = tags = set(run_params.get("tags") or [])
        self._written, self._unsaved, self._noted = set(), {}, False
        overrides = dict(run_params.get("runtime_params") or {})
        # the full check (data facts, the network on meta) whenever this run builds or trains;
        # a stage run that only evaluates or registers a stored model checks the spec alone
        deep = not tags or bool(tags & {"ingest", "split", "augment", "train"})
        try:
            self._locks = {}
            for name in sorted(set(names) & set(files)):  # one order: two waiting runs never deadlock
                self._locks[name] = continuity.start(name)
            self._specs = {name: load_spec(files[name], overrides, check_data=deep, check_model=deep)
                           for name in names if name in files}
            keep = None
            if len(self._specs) == 1:
                (name, rs), = self._specs.items()
                keep = self._configure_mlflow(name, tags, rs)
            self._close_orphans(keep)
        except BaseException:
            self._finish(ok=False)
            raise

    def _configure_mlflow(self, name: str, tags: set[str], rs: Any) -> str | None:
        """Point kedro-mlflow at this spec's experiment and the run to continue (returned)."""
        config = self._mlflow_config()
        if config is None:
            return None
        if tags and tags <= UNTRACKED_TAGS:
            config.tracking.disable_tracking.pipelines = [*config.tracking.disable_tracking.pipelines, name]
            return None
        if config.tracking.experiment.name != name:
            config.tracking.experiment.name = name
            config._set_experiment()
        run_id = run_to_continue(name, tags, rs)
        config.tracking.run.id = run_id if run_id and _run_exists(run_id) else None
        if config.tracking.run.id:
            log.info("continuing MLflow run %s", config.tracking.run.id)
        return config.tracking.run.id

    @staticmethod
    def _mlflow_config() -> Any:
        try:
            from kedro_mlflow.framework.hooks.mlflow_hook import mlflow_hook
        except ImportError:  # kedro-mlflow not installed: nothing to configure
            return None
        config = getattr(mlflow_hook, "mlflow_config", None)
        if config is None or getattr(mlflow_hook, "_already_active_mlflow", False):
            return None
        return config

    def _close_orphans(self, keep: str | None) -> None:
        from deeppipe import continuity

        if self._mlflow_config() is not None:
            for lock in self._locks.values():
                continuity.close_orphan(lock, keep)

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any]) -> None:
        from deeppipe import continuity

        if not self._noted:  # kedro-mlflow has opened the run by now: the lock's record names it
            self._noted = True
            import mlflow

            active = mlflow.active_run()
            for lock in self._locks.values():
                lock.note(mlflow_run_id=active.info.run_id if active else None)
        name = node.namespace
        stored = {f"{name}.{k}" for k in ("dataset", "split", "model")} & set(inputs)
        if name in self._specs and not stored <= self._written:  # read from disk, not written in this run
            continuity.check_inputs(self._specs[name], name, inputs)

    @hook_impl
    def before_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        from deeppipe.files import begin_batch

        if node.name not in self._unsaved:
            self._unsaved[node.name] = len(node.outputs)
            begin_batch()

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        from deeppipe.files import commit_batch

        self._written.add(dataset_name)
        self._unsaved[node.name] -= 1
        if self._unsaved[node.name] == 0:  # every output of the node is written: let them in together
            del self._unsaved[node.name]
            commit_batch()

    @hook_impl(trylast=True)
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._finish(ok=True)

    @hook_impl(trylast=True)
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._finish(ok=False)

    def _finish(self, *, ok: bool) -> None:
        from deeppipe import continuity
        from deeppipe.files import abort_batch

        abort_batch()
        self._end_startup()
        self._unsaved = {}
        completed = not self._tags or not self._tags <= UNTRACKED_TAGS
        locks, self._locks = self._locks, {}
        for lock in locks.values():
            continuity.finish(lock, ok=ok, completed=completed)
