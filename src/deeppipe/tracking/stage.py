"""The tracking stages as plain functions: record what a run is (``record_spec``) and put its
model into MLflow's registry (``register``)."""

from __future__ import annotations

import hashlib
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

    params = {k: _redacted(v) for k, v in flatten(rs.spec.to_dict()).items()}
    tracker.log_params({k: ("null" if v is None else v) for k, v in params.items()})
    tags = {"deeppipe.experiment": rs.name, "deeppipe.spec_hash": rs.hash, "deeppipe.spec_file": rs.file,
            "mlflow.note.content": rs.spec.description or rs.name}
    commit = git_commit()
    if commit:
        tags["deeppipe.git_commit"] = commit
    tracker.set_tags(tags)


def _redacted(value: Any) -> Any:
    """A URL's password never reaches MLflow (``tune.storage: postgresql://user:secret@host/db``)."""
    if isinstance(value, str) and "://" in value and "@" in value:
        from urllib.parse import urlsplit, urlunsplit

        try:
            parts = urlsplit(value)
        except ValueError:
            return value
        if parts.password:
            netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
            return urlunsplit(parts._replace(netloc=netloc))
    return value


def register(rs: ResolvedSpec, artifact: ModelArtifact, metrics: dict[str, Any], samples: Samples,
             split: Split) -> dict[str, Any]:
    """Log the model (spec + weights, pyfunc from code) to the active MLflow run, register it and
    move the alias if it beats the version the alias points at (the decision is returned)."""
    import mlflow

    from deeppipe.artifact import save_artifact
    from deeppipe.evaluation.metrics import selection
    from deeppipe.tracking import serving
    from deeppipe.tracking.model_registry import (
        alias_version,
        describe_version,
        log_model,
        promote_if_better,
        registered_version,
    )

    reg = rs.spec.register
    run = mlflow.active_run()
    if run is None:
        log.warning("no active MLflow run: model not logged or registered")
        return {"registered": False, "reason": "no active MLflow run"}
    metric, mode = selection(artifact.task, rs.spec.evaluate.selection_metric)
    if metric not in metrics["test"]:  # validation makes this unreachable; say so clearly if not
        raise SpecError("selection metric was not computed", path="evaluate.selection_metric", file=rs.file,
                        expected=f"one of {', '.join(metrics['test'])}", found=metric,
                        candidates=list(metrics["test"]))
    example: Any = samples.x[split.evaluation[:5]].astype(np.float32)
    if artifact.meta.get("vocabulary"):  # a text model takes raw strings (its signature: a string column)
        from deeppipe.data.text_vocab import decode

        example = decode(example, samples.meta["text"])
    output = serving.output_modes(artifact.task)[0]
    answer = serving.predict(artifact, artifact.build(), example, output)
    name = reg.name or rs.name
    meta = artifact.meta
    metadata = {"deeppipe": {"experiment": rs.name, "input": serving.input_contract(artifact),
                             "spec_hash": rs.hash, "data_sha256": meta.get("data_sha256")}}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        save_artifact(artifact, model_dir)
        weights = hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()[:16]
        held = registered_version(name, run.info.run_id, weights) if reg.enabled else None
        if held is not None:
            value = float(metrics["test"][metric])
            current = alias_version(name, reg.alias)
            log.info("%s version %s already holds this model (run %s): not registered again", name, held.version,
                     run.info.run_id)
            return {"model_uri": held.source, "registered": True, "registered_model": name,
                    "version": str(held.version), "alias": reg.alias, "metric": metric, "value": value,
                    "previous_version": current, "promoted": current == str(held.version), "already": True}
        info, version = log_model(model_dir, example, answer, name if reg.enabled else None, output=output,
                                  step=int(meta.get("weights_epoch") or 0), metadata=metadata)
    result: dict[str, Any] = {"model_uri": info.model_uri, "registered": reg.enabled}
    if reg.enabled:
        value = float(metrics["test"][metric])
        result.update(promote_if_better(name, version, metric, value, mode, reg.alias))
        describe_version(name, result["version"], _description(rs, metric, value, run.info.run_id), {
            "deeppipe.experiment": rs.name, "deeppipe.spec_hash": rs.hash,
            "deeppipe.git_commit": _commit(), "deeppipe.data_sha256": meta.get("data_sha256"),
            "deeppipe.run_id": run.info.run_id, "deeppipe.selection_metric": metric,
            "deeppipe.weights_sha256": weights,
        })
        verdict = "promoted to" if result["promoted"] else "did not beat"
        log.info("registered %s version %s: %s '%s' (%s=%.4f)", name, result["version"], verdict, reg.alias,
                 metric, result["value"])
    return result


def _commit() -> str | None:
    from deeppipe.tracking.provenance import git_commit

    return git_commit()


def _description(rs: ResolvedSpec, metric: str, value: float, run_id: str) -> str:
    """The registry page's text for a version: what the experiment is and where the model came from."""
    lines = [rs.spec.description or rs.name, "",
             f"experiment `{rs.name}` ({rs.file}), spec hash {rs.hash}, trained by MLflow run {run_id}",
             f"test {metric} = {value:.4f}"]
    return "\n".join(lines)
