"""What one run of an experiment owes the next, and what it checks of the last.

The Kedro hooks (deeppipe.hooks) call these around every run:

- ``start``: take the experiment's run lock (deeppipe.runlock), then remove what interrupted
  writes of this experiment left behind (deeppipe.files' temporaries, a folder cut mid-swap).
- ``close_orphan``: a run that was killed left its MLflow run RUNNING; unless this run continues
  it (resuming its checkpoint), it is closed as KILLED.
- ``check_inputs``: before a stage reads stored artefacts, each must belong to this run: the
  data set read as this spec reads it, the split drawn as this spec draws it from that data, and
  the model trained on exactly that data and split. A mismatch names the stage to rerun.
- ``provide_inputs``: a part of a pipeline (``--nodes``, ``--from-nodes``, ``--tags evaluate``...)
  gets the resolved spec without its node, and a stored input no earlier run has written stops
  the run with one sentence naming the stage that writes it.
- ``finish``: a completed run clears its finished checkpoints and releases the lock.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deeppipe.errors import SpecError
from deeppipe.files import remove_leftovers
from deeppipe.runlock import RunLock, lock_mode
from deeppipe.training.errors import TrainingError

if TYPE_CHECKING:
    from deeppipe.spec.loader import ResolvedSpec

log = logging.getLogger(__name__)


def start(name: str, *, root: Path | None = None, wait: float | str | None = "env") -> RunLock:
    """Take ``name``'s run lock and clean up after interrupted writes of its artefacts."""
    from deeppipe.layout import artefact, artefacts

    lock = RunLock(artefact(name, "checkpoints", root=root), name).acquire(lock_mode() if wait == "env" else wait)
    try:
        removed = [p for path in artefacts(name, root=root).values() for p in remove_leftovers(path)]
    except BaseException:
        lock.release("failed")
        raise
    if removed:
        log.info("removed %d leftover(s) of interrupted writes of '%s' (first: %s)", len(removed), name, removed[0])
    return lock


def close_orphan(lock: RunLock, keep: str | None) -> list[str]:
    """Close the MLflow run(s) a killed previous holder left RUNNING, but ``keep`` (continued)."""
    prev = lock.previous
    if not prev:
        return []
    import mlflow

    client = mlflow.MlflowClient()
    ids = [prev["mlflow_run_id"]] if prev.get("mlflow_run_id") else _started_since(client, lock.experiment,
                                                                                     prev.get("started"))
    closed = []
    for run_id in ids:
        if run_id == keep:
            continue
        try:
            if client.get_run(run_id).info.status != "RUNNING":
                continue
            client.set_terminated(run_id, "KILLED")
        except mlflow.exceptions.MlflowException:  # deleted, or in another tracking store
            continue
        closed.append(run_id)
        log.info("closed MLflow run %s of the killed previous run as KILLED", run_id)
    return closed


def _started_since(client: Any, experiment: str, started: str | None) -> list[str]:
    """RUNNING runs of the experiment started after the killed holder took the lock (it was killed
    before it could note its run)."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None or not started:
        return []
    try:
        since = int(datetime.fromisoformat(started).timestamp() * 1000)
    except ValueError:
        return []
    runs = client.search_runs([exp.experiment_id],
                              filter_string=f"attributes.status = 'RUNNING' and attributes.start_time >= {since}")
    return [r.info.run_id for r in runs]


def finish(lock: RunLock, *, ok: bool, completed: bool) -> None:
    """Release the lock; a completed run's finished checkpoints are crash insurance no longer needed."""
    try:
        if ok and completed:
            from deeppipe.training.resume import clear_finished

            clear_finished(lock.folder)
    finally:
        lock.release("done" if ok else "failed")


# ------------------------------------------------------------------------------ belonging
def _stale(what: str, path: str, why: str, stage: str, name: str) -> TrainingError:
    return TrainingError(f"{path} does not belong to this run: {why}. A run with other --params (or "
                         f"another stage run) wrote it. Rerun the {stage} stage and those after it (kedro run "
                         f"--pipeline {name} with the same --params, or dvc repro), so {what} is written for this spec.")


def check_inputs(rs: ResolvedSpec, name: str, inputs: dict[str, Any], *, root: Path | None = None) -> None:
    """Refuse a stage's stored inputs that another run wrote (see the module's docstring)."""
    from deeppipe.layout import artefact

    samples, split, model = (inputs.get(f"{name}.{k}") for k in ("dataset", "split", "model"))
    where = {k: str(artefact(name, k, root=root)) for k in ("dataset", "split", "model")}
    if samples is not None:
        from deeppipe.data.stage import read_as

        stored = samples.meta.get("read_as")
        if stored is not None and stored != read_as(rs.spec):
            raise _stale("the data set", where["dataset"], "it was read with other data.source, data.on_error, "
                         "data.limit or data.task settings", "ingest", name)
    if samples is not None and split is not None:
        from deeppipe.data.stage import split_indices

        expected = split_indices(rs.spec, samples)
        for part in ("train", "val", "test"):
            if not np.array_equal(expected[part], getattr(split, part)):
                raise _stale("the split", where["split"], f"its {part} indices are not the ones this spec's seed "
                             "and data.split draw from the stored data set", "split", name)
    if model is not None and samples is not None and split is not None:
        from deeppipe.tracking.provenance import data_fingerprint

        trained_on, now = model.meta.get("data_sha256"), data_fingerprint(samples, split)
        if trained_on is not None and trained_on != now:
            raise _stale("the model", where["model"], f"it was trained on data and split with fingerprint "
                         f"{trained_on}, but the stored data set and split give {now}", "train", name)


# ------------------------------------------------------------------------------ partial runs
def _stage(node: Any) -> str:
    """The stage a node belongs to: its stage tag (a stage may have several nodes: ensemble members)."""
    from deeppipe.pipelines.experiment import STAGES

    return next((t for t in STAGES if t in node.tags), node.name.rpartition(".")[2])


def stages_of(pipeline: Any) -> set[str]:
    """The stages a (filtered) pipeline carries out; the spec-resolving node, in every stage, is none."""
    return {_stage(n) for n in pipeline.nodes if not n.name.endswith("resolve_spec")}


def provide_inputs(name: str, rs: ResolvedSpec, pipeline: Any, catalog: Any, run_params: dict[str, Any]) -> None:
    """Give a part of ``name``'s pipeline what its missing upstream nodes would have given it:
    the resolved spec (in memory only) is put in the catalog; a stored artefact that does not
    exist yet stops the run before any work, naming the stage that writes it."""
    free = set(pipeline.inputs())
    if f"{name}.spec" in free:
        catalog[f"{name}.spec"] = rs
    from kedro.framework.project import pipelines

    full = pipelines.get(name)
    if full is None:
        return
    writers = {out: _stage(node) for node in full.nodes for out in node.outputs}
    missing = [ds for ds in sorted(free) if ds in writers and ds != f"{name}.checkpoints"
               and not catalog.exists(ds)]
    if missing:
        ds = missing[0]
        order = list(dict.fromkeys(_stage(n) for n in full.nodes if not n.name.endswith("resolve_spec")))
        running = stages_of(pipeline)
        before = order[:min(order.index(s) for s in running if s in order)]
        raise TrainingError(
            f"this run ({_selection(run_params)}) reads {ds}, which no earlier run has written "
            f"({_where(name, ds)}); the {writers[ds]} stage writes it. Run the whole pipeline "
            f"(kedro run --pipeline {name}), or the stages before first (kedro run --pipeline {name} "
            f"--tags {','.join(before)}), or dvc repro.")


def _selection(run_params: dict[str, Any]) -> str:
    parts = [f"--{k.replace('_', '-')} {','.join(v)}" for k in ("tags", "node_names", "from_nodes", "to_nodes",
                                                                  "from_inputs") if (v := run_params.get(k))]
    return " ".join(parts).replace("--node-names", "--nodes") or "the whole pipeline"


def _where(name: str, ds: str) -> str:
    from deeppipe.layout import artefact

    try:
        return str(artefact(name, ds.rpartition(".")[2]))
    except (SpecError, OSError):  # not a file of the catalog's factories
        return ds
