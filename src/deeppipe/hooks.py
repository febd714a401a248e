"""Kedro hooks: one run of an experiment at a time, validated before anything runs, tracked in the
right MLflow run, and leaving nothing half-written behind.

- The experiment's run lock (deeppipe.runlock) is taken before anything else and held until the
  run ends (``DEEPPIPE_LOCK=wait`` queues behind a run in progress instead of stopping); a killed
  run's leftovers are cleaned up and its MLflow run continued or closed (deeppipe.continuity).
- The experiment file (with ``--params`` overrides) is validated before the first node, so a
  mistake stops the run with one clear message and no work done.
- Each spec gets its own MLflow experiment (kedro-mlflow's default is one per project).
- A run's stages are the nodes Kedro selected, however it selected them (``--tags``,
  ``--nodes``, ``--from-nodes``, ``--to-nodes``, ``--from-inputs``). Runs that only prepare data
  are not tracked; runs that evaluate or register a stored model continue the MLflow run that
  trained it; a training run that resumes a checkpoint continues the MLflow run it started
  (``deeppipe.training.resume``). A part of the pipeline gets the resolved spec without its
  node; a stored input nobody wrote yet stops the run with one sentence (deeppipe.continuity).
- Each run gets a distinguishing name and readable tags (deeppipe.tracking.run_naming).
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


def _existing_run(run_id: str) -> Any:
    """A remembered run may live in another tracking store (or have been deleted): then start anew."""
    import mlflow

    try:
        found = mlflow.MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return None
    return found if found.info.lifecycle_stage == "active" else None


def run_to_continue(name: str, stages: set[str], rs: Any) -> str | None:
    """The MLflow run this stage belongs to, if it continues earlier work: the run that trained
    the model being evaluated, or the run of an interrupted training of the same spec and data."""
    from deeppipe.data.sources import source_stamp
    from deeppipe.layout import artefact
    from deeppipe.training.resume import interrupted_run, trained_run

    if "train" not in stages:
        return trained_run(artefact(name, "model"))
    return interrupted_run(artefact(name, "checkpoints"), rs.hash, source_stamp(rs.spec.data.source))


class DeeppipeHooks:
    def __init__(self) -> None:
        self._locks: dict[str, Any] = {}
        self._specs: dict[str, Any] = {}
        self._stages: set[str] = set()
        self._written: set[str] = set()
        self._unsaved: dict[str, int] = {}
        self._noted = False
        self._startup: Any = None
        self._continued: Any = None

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
        from deeppipe.pipelines.experiment import OVERRIDES
        from deeppipe.spec.loader import load_spec

        files = experiment_files()
        names = run_params.get("pipeline_names") or ["__default__"]
        names = [DEFAULT_EXPERIMENT if n == "__default__" else n for n in names]
        # the stages this run carries out, however Kedro selected them (--tags, --nodes,
        # --from-nodes, --to-nodes, --from-inputs): the stage tags of the nodes it runs
        self._stages = stages = continuity.stages_of(pipeline)
        self._written, self._unsaved, self._noted = set(), {}, False
        overrides = dict(run_params.get("runtime_params") or {})
        # the full check (data facts, the network on meta) whenever this run builds or trains;
        # a stage run that only evaluates or registers a stored model checks the spec alone
        deep = bool(stages & {"ingest", "split", "augment", "tune", "train"})
        try:
            self._locks = {}
            for name in sorted(set(names) & set(files)):  # one order: two waiting runs never deadlock
                self._locks[name] = continuity.start(name)
            self._specs = {name: load_spec(files[name], overrides, check_data=deep, check_model=deep)
                           for name in names if name in files}
            catalog[OVERRIDES] = overrides
            for name, rs in self._specs.items():
                continuity.provide_inputs(name, rs, pipeline, catalog, run_params)
            keep = None
            if len(self._specs) == 1:
                (name, rs), = self._specs.items()
                keep = self._configure_mlflow(name, stages, rs, overrides)
            self._close_orphans(keep)
        except BaseException:
            self._finish(ok=False)
            raise

    def _configure_mlflow(self, name: str, stages: set[str], rs: Any, overrides: dict[str, Any]) -> str | None:
        """Point kedro-mlflow at this spec's experiment, the run to continue (returned) and a run
        name that tells runs apart."""
        from deeppipe.tracking.run_naming import run_name

        config = self._mlflow_config()
        if config is None:
            return None
        if stages <= UNTRACKED_TAGS:
            config.tracking.disable_tracking.pipelines = [*config.tracking.disable_tracking.pipelines, name]
            return None
        if config.tracking.experiment.name != name:
            config.tracking.experiment.name = name
            config._set_experiment()
        run_id = run_to_continue(name, stages, rs)
        existing = _existing_run(run_id) if run_id else None
        config.tracking.run.id = run_id if existing is not None else None
        # kedro-mlflow renames a continued run after the pipeline: keep its name
        config.tracking.run.name = existing.info.run_name if existing is not None else run_name(overrides, stages, full="train" in stages)
        self._continued = existing
        if existing is not None:
            log.info("continuing MLflow run %s (%s)", run_id, existing.info.run_name)
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
            if active is not None and self._mlflow_config() is not None:
                from deeppipe.tracking.run_naming import tidy_run_tags

                tidy_run_tags(active.info.run_id, self._continued, self._stages)
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
        completed = not self._stages <= UNTRACKED_TAGS
        locks, self._locks = self._locks, {}
        for lock in locks.values():
            continuity.finish(lock, ok=ok, completed=completed)
