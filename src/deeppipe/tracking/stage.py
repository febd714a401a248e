"""The tracking stages as plain functions: record what a run is (``record_spec``) and put its
model into MLflow's registry (``register``)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deeppipe.errors import SpecError
from deeppipe.tracking.tracker import Tracker

if TYPE_CHECKING:
    from deeppipe.artifact import ModelArtifact
    from deeppipe.data.sources import Samples
    from deeppipe.data.stage import Split
    from deeppipe.spec.loader import ResolvedSpec

log = logging.getLogger(__name__)


def record_spec(rs: ResolvedSpec, tracker: Tracker) -> None:
    """Every resolved spec value as a param, and the tags that say where the run came from."""
    from deeppipe.spec.paths import flatten
    from deeppipe.tracking.provenance import git_commit

    params = flatten(rs.spec.to_dict())
    tracker.log_params({k: ("null" if v is None else v) for k, v in params.items()})
    tags = {"deeppipe.experiment": rs.name, "deeppipe.spec_hash": rs.hash, "deeppipe.spec_file": rs.file,
            "mlflow.note.content": rs.spec.description or rs.name}
    commit = git_commit()
    if commit:
        tags["deeppipe.git_commit"] = commit
    tracker.set_tags(tags)


def register(rs: ResolvedSpec, artifact: ModelArtifact, metrics: dict[str, Any], samples: Samples,
             split: Split) -> dict[str, Any]:
    """Log the model (spec + weights, pyfunc from code) to the active MLflow run, register it and
    move the alias if it beats the version the alias points at (the decision is returned)."""
    import mlflow

    from deeppipe.artifact import save_artifact, serve_outputs
    from deeppipe.evaluation.metrics import selection
    from deeppipe.tracking.model_registry import log_model, promote_if_better

    reg = rs.spec.register
    if mlflow.active_run() is None:
        log.warning("no active MLflow run: model not logged or registered")
        return {"registered": False, "reason": "no active MLflow run"}
    metric, mode = selection(artifact.task, rs.spec.evaluate.selection_metric)
    if metric not in metrics["test"]:  # validation makes this unreachable; say so clearly if not
        raise SpecError("selection metric was not computed", path="evaluate.selection_metric", file=rs.file,
                        expected=f"one of {', '.join(metrics['test'])}", found=metric,
                        candidates=list(metrics["test"]))
    example = samples.x[split.evaluation[:5]].astype(np.float32)
    output = serve_outputs(artifact, artifact.build(), example)
    name = reg.name or rs.name
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        save_artifact(artifact, model_dir)
        info = log_model(model_dir, example, output, name if reg.enabled else None)
    result: dict[str, Any] = {"model_uri": info.model_uri, "registered": reg.enabled}
    if reg.enabled:
        result.update(promote_if_better(name, info.registered_model_version, metric,
                                        float(metrics["test"][metric]), mode, reg.alias))
        verdict = "promoted to" if result["promoted"] else "did not beat"
        log.info("registered %s version %s: %s '%s' (%s=%.4f)", name, result["version"], verdict, reg.alias,
                 metric, result["value"])
    return result
