"""Kedro node functions, one per stage. They only wire the stage packages together:
spec -> data -> model -> training -> evaluation -> registry. The catalog decides where
each output lives (conf/base/catalog.yml)."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deeppipe.artifact import ModelArtifact, assemble
from deeppipe.data.task import Task
from deeppipe.spec.loader import ResolvedSpec, load_spec
from deeppipe.spec.paths import flatten
from deeppipe.spec.schema import ExperimentSpec
from deeppipe.tracking.tracker import NullTracker, Tracker

log = logging.getLogger(__name__)
MODELS_ROOT = Path("data/06_models")


def _tracker() -> Tracker:
    from deeppipe.tracking.mlflow_tracker import active_tracker

    return active_tracker() or NullTracker()


def spec_overrides(parameters: dict[str, Any] | None) -> dict[str, Any]:
    """The ``--params`` values: every one addresses the spec (conf/base/parameters.yml is empty),
    so a misspelt section fails validation instead of being ignored."""
    return dict(parameters or {})


# --------------------------------------------------------------------------------- spec
def resolve_spec(parameters: dict[str, Any], *, experiment: str, file: str) -> ResolvedSpec:
    """Load the experiment file with the run's ``--params`` overrides and record it in MLflow."""
    rs = load_spec(file, spec_overrides(parameters), check_model=False, check_data=False)
    tracker = _tracker()
    params = flatten(rs.spec.model_dump(mode="json"))
    tracker.log_params({k: ("null" if v is None else v) for k, v in params.items()})
    tags = {"deeppipe.experiment": experiment, "deeppipe.spec_hash": rs.hash, "deeppipe.spec_file": file,
            "mlflow.note.content": rs.spec.description or experiment}
    commit = _git_commit()
    if commit:
        tags["deeppipe.git_commit"] = commit
    tracker.set_tags(tags)
    return rs


def _git_commit() -> str | None:
    """The checked-out commit (with '-dirty' when files differ), for the run's provenance."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def data_fingerprint(dataset: dict[str, np.ndarray], split: dict[str, np.ndarray]) -> str:
    """SHA-256 of the inputs, targets and split indices a model was trained and tested on."""
    import hashlib

    h = hashlib.sha256()
    for arr in (dataset["x"], dataset["y"], split["train"], split["val"], split["test"]):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------------- data
def ingest(rs: ResolvedSpec) -> dict[str, np.ndarray]:
    """Read the source into arrays (inputs, targets, task) stored under data/02_intermediate."""
    from deeppipe.data.sources import load_source

    d = rs.spec.data
    t0 = time.perf_counter()
    raw = load_source(d.source, on_error=d.on_error, limit=d.limit)
    log.info("ingested %d samples of shape %s (%s, %s) in %.2fs", len(raw.x), raw.sample_shape, raw.task.kind,
             f"{raw.task.num_classes} classes" if raw.task.is_classification else "regression",
             time.perf_counter() - t0)
    return {"x": raw.x, "y": raw.y, "n_official_test": np.asarray(raw.n_official_test),
            "task": np.asarray(json.dumps(raw.task.to_dict())), "meta": np.asarray(json.dumps(raw.meta))}


def split(rs: ResolvedSpec, dataset: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Seeded (stratified) train/val/test indices, plus k-fold indices when asked."""
    from deeppipe.data.split import make_split

    s = rs.spec.data.split
    task = _task(dataset)
    out = make_split(dataset["y"], task, val=s.val, test=s.test, stratify=s.stratify, seed=rs.spec.seed,
                     n_official_test=int(dataset["n_official_test"]), folds=s.folds)
    log.info("split: %d train, %d val, %d test", len(out["train"]), len(out["val"]), len(out["test"]))
    return out


def _task(dataset: dict[str, np.ndarray]) -> Task:
    return Task.from_dict(json.loads(str(dataset["task"])))


def _targets(task: Task, y: np.ndarray) -> np.ndarray:
    if task.kind == "multiclass":
        return y.astype(np.int64)
    return y.astype(np.float32)


# -------------------------------------------------------------------------------- train
def augment_offline(rs: ResolvedSpec, dataset: dict[str, np.ndarray], split: dict[str, np.ndarray]
                    ) -> dict[str, np.ndarray]:
    """``augment.offline``: K augmented copies of the training split, written once (DVC-tracked)."""
    from deeppipe.augment import materialise

    tr = split["train"]
    if rs.spec.augment is None or rs.spec.augment.offline is None:
        return {"x": dataset["x"][tr], "y": dataset["y"][tr]}
    x_aug, y_aug = materialise(rs.spec.augment, dataset["x"][tr], dataset["y"][tr], rs.spec.seed)
    log.info("augment.offline: %d training samples -> %d", len(tr), len(x_aug))
    return {"x": x_aug, "y": y_aug}


def train(rs: ResolvedSpec, dataset: dict[str, np.ndarray], split: dict[str, np.ndarray],
          offline: dict[str, np.ndarray] | None = None) -> tuple[ModelArtifact, list[dict]]:
    """Build the network from the spec, train it, return spec + weights + metadata and the history."""
    import torch

    from deeppipe.augment import build_train_source
    from deeppipe.augment.source import augmented_shape
    from deeppipe.data.batches import TensorBatches
    from deeppipe.data.normalize import compute_stats
    from deeppipe.training import fit, resolve_device

    spec = rs.spec
    task = _task(dataset)
    x, y = dataset["x"], _targets(task, dataset["y"])
    tr, va = split["train"], split["val"]
    x_train, y_train = x[tr], y[tr]
    if offline is None and spec.augment is not None and spec.augment.offline is not None:
        offline = augment_offline(rs, dataset, split)  # offline asked for by --params: the pipeline has no stage
    if offline is not None:
        x_train, y_train = offline["x"], _targets(task, offline["y"])
    torch.manual_seed(spec.seed)
    shape = tuple(x.shape[1:])
    if spec.augment is not None and x.ndim == 4:
        shape = tuple(augmented_shape(spec.augment, shape))
    meta: dict[str, Any] = {"experiment": rs.name, "spec_hash": rs.hash, "input_shape": list(shape),
                            "task": task.to_dict(), "normalize": spec.data.normalize}
    if spec.data.normalize:
        mean, std = compute_stats(x[tr])
        meta.update(mean=mean.tolist(), std=std.tolist())
        if task.kind == "regression":
            t_mean, t_std = compute_stats(y[tr].reshape(len(tr), -1))
            meta.update(target_mean=t_mean.tolist(), target_std=t_std.tolist())
    net = assemble(spec.model, meta, file=rs.file)
    tracker = _tracker()
    meta["data_sha256"] = data_fingerprint(dataset, split)
    tracker.set_tags({"deeppipe.data_sha256": meta["data_sha256"]})
    _log_model_description(net, meta, rs, tracker)

    device = resolve_device(spec.train.device)
    _preview_augmentation(rs, x[tr], tracker)
    train_source = build_train_source(spec.augment, x_train, y_train, batch_size=spec.train.batch_size,
                                      device=device, seed=spec.seed, log=log.info)
    val_x = _eval_view(spec, x[va], "val")
    val_source = (TensorBatches(val_x, y[va], spec.train.eval_batch_size, shuffle=False, device=device)
                  if len(va) else None)
    ckpt = checkpoint_dir(rs.name, rs.hash)
    _clear_finished_checkpoints(ckpt.parent)
    _remember_run(ckpt, rs.hash, tracker)
    result = fit(net, train_source, val_source, spec.train, task, tracker=tracker, checkpoint_dir=ckpt,
                 seed=spec.seed, spec_hash=rs.hash)
    net.cpu()
    meta.update(best_epoch=result.best_epoch, epochs_run=result.epochs_run,
                mlflow_run_id=getattr(tracker, "run_id", None), device=str(device))
    artifact = ModelArtifact(spec=spec.model_dump(mode="json"), meta=meta,
                             state_dict={k: v.detach().cpu() for k, v in net.state_dict().items()})
    return artifact, list(result.history)


def _eval_view(spec: ExperimentSpec, x: np.ndarray, split: str) -> np.ndarray:
    """Validation/test inputs, untouched unless ``augment.val`` / ``augment.test`` declare a pipeline."""
    if spec.augment is None or x.ndim != 4:
        return x
    from deeppipe.augment import build_eval_transform

    transform = build_eval_transform(spec.augment, split)
    return transform(x) if transform is not None and len(x) else x


def _preview_augmentation(rs: ResolvedSpec, x_train: np.ndarray, tracker: Tracker) -> None:
    """The grid of original vs augmented samples, written beside the run's reports and logged."""
    aug = rs.spec.augment
    if aug is None or not aug.train or x_train.ndim != 4:
        return
    from deeppipe.augment import write_preview

    path = Path("data/08_reporting") / rs.name / "augmentation_preview.png"
    write_preview(aug, x_train, path, n=16, seed=rs.spec.seed)
    tracker.log_artifact(path, "plots")


def checkpoint_dir(experiment: str, spec_hash: str) -> Path:
    """One checkpoint folder per resolved spec: a changed value starts fresh, the same spec resumes."""
    return MODELS_ROOT / experiment / "checkpoints" / spec_hash


def _clear_finished_checkpoints(root: Path) -> None:
    """Checkpoints are for crash recovery: a finished one (any spec) is removed so that every
    ``kedro run`` trains (DVC is what skips unchanged work); an unfinished one is kept and resumed."""
    import shutil

    from deeppipe.training import checkpoint_info

    if not root.is_dir():
        return
    for folder in root.iterdir():
        info = checkpoint_info(folder) if folder.is_dir() else None
        if info is not None and info.get("finished"):
            shutil.rmtree(folder, ignore_errors=True)


def _remember_run(ckpt: Path, spec_hash: str, tracker: Tracker) -> None:
    """Record which MLflow run trains this spec, so a killed run resumes into the same MLflow run."""
    from deeppipe.io import atomic_write_text

    run_id = getattr(tracker, "run_id", None)
    if run_id:
        atomic_write_text(ckpt / "run.json", json.dumps({"run_id": run_id, "spec_hash": spec_hash}))


def _log_model_description(net: Any, meta: dict, rs: ResolvedSpec, tracker: Tracker) -> None:
    """Log the resolved spec, the layer table and the graph picture as run artifacts."""
    from deeppipe.models import summarize

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "spec.yaml").write_text(rs.resolved_yaml())
        tracker.log_artifact(root / "spec.yaml")
        try:
            summary = summarize(net.body, tuple(meta["input_shape"]))
            (root / "model_summary.txt").write_text(summary.table())
            tracker.log_artifact(root / "model_summary.txt")
            tracker.log_params({"model.total_params": summary.total_params})
            log.info("model: %s parameters (%s trainable)", f"{summary.total_params:,}",
                     f"{summary.trainable_params:,}")
        except Exception as exc:  # the summary is a convenience: never fail training over it
            log.warning("model summary unavailable: %s", exc)
        try:
            from deeppipe.models import draw_graph

            draw_graph(net.body, tuple(meta["input_shape"]), root / "model_graph.png")
            tracker.log_artifact(root / "model_graph.png")
        except Exception as exc:
            log.warning("model graph picture unavailable: %s", exc)


# ----------------------------------------------------------------------------- evaluate
def evaluate(rs: ResolvedSpec, dataset: dict[str, np.ndarray], split: dict[str, np.ndarray],
             artifact: ModelArtifact, history: list[dict]) -> tuple[dict, pd.DataFrame, dict[str, bytes]]:
    """Test-set metrics, predictions and plots; prints the summary table."""
    from deeppipe.evaluation import compute_metrics
    from deeppipe.evaluation.metrics import check_metric_names
    from deeppipe.evaluation.plots import (
        confusion_matrix_figure,
        regression_figure,
        roc_figure,
    )
    from deeppipe.evaluation.report import figure_png, print_summary
    from deeppipe.training import predict
    from deeppipe.training.plots import history_figure

    task = _task(dataset)
    te = split["test"]
    if len(te) == 0:
        te = split["val"]
        log.warning("no test split (data.split.test: 0): evaluating on the validation split")
    x_test = _eval_view(rs.spec, dataset["x"][te], "test")
    y_test = _targets(task, dataset["y"][te])
    net = artifact.build()
    outputs = _predict(net, x_test, rs, task, predict)
    if rs.spec.evaluate.metrics:
        check_metric_names(task, rs.spec.evaluate.metrics, file=rs.file)
    scalars, extras = compute_metrics(task, y_test, outputs, rs.spec.evaluate.metrics)
    _tracker().log_metrics({f"test/{k}": v for k, v in scalars.items()})

    names = list(task.class_names)
    plots: dict[str, bytes] = {}
    if history:
        plots["loss_curves"] = figure_png(history_figure(history, title=f"{rs.name}: training curves"))
    if task.is_classification:
        y_pred = extras["y_pred"]
        if "confusion_matrix" in extras:
            plots["confusion_matrix"] = figure_png(confusion_matrix_figure(extras["confusion_matrix"], names,
                                                                           title=f"{rs.name}: confusion matrix (test)"))
        plots["roc"] = figure_png(roc_figure(y_test.astype(np.int64), extras["probs"], names))
        predictions = pd.DataFrame({"actual": [names[i] for i in y_test.astype(int)],
                                    "predicted": [names[i] for i in y_pred]})
    else:
        pred = outputs.reshape(len(outputs), -1)[:, 0]
        truth = y_test.reshape(len(y_test), -1)[:, 0]
        plots["predicted_vs_true"] = figure_png(regression_figure(truth, pred))
        predictions = pd.DataFrame({"actual": truth, "predicted": pred})
    _log_plots(plots)
    metrics = {"test": scalars, "train": {"best_epoch": artifact.meta.get("best_epoch"),
                                          "epochs_run": artifact.meta.get("epochs_run")}}
    if "per_class" in extras:
        metrics["per_class"] = extras["per_class"]
    print_summary(rs.name, task, scalars, len(te), artifact.meta)
    return metrics, predictions, plots


def _predict(net: Any, x: np.ndarray, rs: ResolvedSpec, task: Task, predict: Any) -> np.ndarray:
    """Raw outputs; with ``augment.tta`` the views' probabilities are averaged (not their logits)
    and turned back into log-odds so the metrics read them like any other output."""
    bs = rs.spec.train.eval_batch_size
    aug = rs.spec.augment
    if aug is None or not aug.tta or x.ndim != 4:
        return predict(net, x, batch_size=bs)
    from deeppipe.augment import tta_predict
    from deeppipe.evaluation import probabilities

    if not task.is_classification:
        return tta_predict(lambda xb: predict(net, xb, batch_size=bs), x, aug, seed=rs.spec.seed)
    probs = tta_predict(lambda xb: probabilities(task, predict(net, xb, batch_size=bs)), x, aug,
                        seed=rs.spec.seed)
    p = np.clip(probs, 1e-12, 1.0)
    if task.kind == "binary":
        return np.log(p[:, 1:2]) - np.log(p[:, 0:1])
    return np.log(p)


def _log_plots(plots: dict[str, bytes]) -> None:
    tracker = _tracker()
    with tempfile.TemporaryDirectory() as tmp:
        for name, png in plots.items():
            p = Path(tmp) / f"{name}.png"
            p.write_bytes(png)
            tracker.log_artifact(p, "plots")


# ----------------------------------------------------------------------------- register
def register(rs: ResolvedSpec, artifact: ModelArtifact, metrics: dict, dataset: dict[str, np.ndarray],
             split: dict[str, np.ndarray]) -> dict[str, Any]:
    """Log the model (spec + weights, pyfunc from code), register it and move the alias if it is better."""
    import mlflow

    from deeppipe.artifact import save_artifact, serve_outputs
    from deeppipe.evaluation.metrics import selection
    from deeppipe.tracking.registry import log_model, promote_if_better

    reg = rs.spec.register
    if mlflow.active_run() is None:
        log.warning("no active MLflow run: model not logged or registered")
        return {"registered": False, "reason": "no active MLflow run"}
    task = artifact.task
    metric, mode = selection(task, rs.spec.evaluate.selection_metric)
    if metric not in metrics["test"]:
        from deeppipe.errors import SpecError

        raise SpecError("selection metric was not computed", path="evaluate.selection_metric", file=rs.file,
                        expected=f"one of {', '.join(metrics['test'])}", found=metric,
                        candidates=list(metrics["test"]))
    idx = split["test"] if len(split["test"]) else split["val"]
    example = dataset["x"][idx[:5]].astype(np.float32)
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
