"""The Tracker implementation that writes to the active MLflow run (started by kedro-mlflow)."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Any

import mlflow

from deeppipe.tracking.tracker import NullTracker, Tracker

MAX_PARAM_LEN = 6000  # MLflow 3's limit for a param value
_BAD = re.compile(r"[^A-Za-z0-9_\-. :/]")


def mlflow_key(key: str) -> str:
    """MLflow names allow no brackets: model.layers[3].Conv2d -> model.layers.3.Conv2d."""
    return _BAD.sub("_", key.replace("[", ".").replace("]", ""))


class MlflowTracker:
    """Logs to the active run; metrics go in one batch call per step, params in batches of 100."""

    def __init__(self, run_id: str | None = None) -> None:
        active = mlflow.active_run()
        self.run_id = run_id or (active.info.run_id if active else None)
        self.client = mlflow.MlflowClient()

    @property
    def enabled(self) -> bool:
        return self.run_id is not None

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if not self.enabled:
            return
        from mlflow.entities import Metric
        from mlflow.utils.time import get_current_time_millis

        now = get_current_time_millis()
        batch = [Metric(mlflow_key(k), float(v), now, step or 0) for k, v in metrics.items()
                 if v is not None and isinstance(v, (int, float)) and math.isfinite(float(v))]
        for i in range(0, len(batch), 1000):
            self.client.log_batch(self.run_id, metrics=batch[i : i + 1000], synchronous=True)

    def log_params(self, params: dict[str, Any]) -> None:
        if not self.enabled:
            return
        from mlflow.entities import Param

        existing = self.client.get_run(self.run_id).data.params
        items = []
        for k, v in params.items():
            k = mlflow_key(k)
            text = str(v)[:MAX_PARAM_LEN]
            if k in existing:  # a resumed run: MLflow refuses to change a param, and it is the same spec
                continue
            items.append(Param(k, text))
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100], synchronous=True)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        if self.enabled:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tags(self, tags: dict[str, str]) -> None:
        if self.enabled:
            for k, v in tags.items():
                self.client.set_tag(self.run_id, k, str(v))


    def log_dataset(self, name: str, features: Any, targets: Any, *, source: str, digest: str,
                    context: str = "training") -> None:
        """The run's data as an MLflow dataset input (name, digest, source, schema): the Dataset
        column of the runs table and the run page show what the model was trained on."""
        if not self.enabled:
            return
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.entities import DatasetInput, InputTag

        _, _, where = source.partition(":")  # "idx:data/01_raw/fashion-mnist", "sklearn:digits"
        origin: Any = (Path(where).resolve().as_uri() if where and Path(where).exists()
                       else CodeDatasetSource(tags={"deeppipe.source": source}))
        with warnings.catch_warnings():  # "can be interpreted in multiple ways": both mean a local file
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_numpy(features, targets=targets, source=origin, name=name, digest=digest)
        tag = InputTag(key="mlflow.data.context", value=context)
        self.client.log_inputs(self.run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), tags=[tag])])


def active_tracker() -> MlflowTracker | None:
    """The tracker for the active MLflow run, or None outside a tracked session."""
    return MlflowTracker() if mlflow.active_run() is not None else None


def current_tracker() -> Tracker:
    """The active MLflow run's tracker, or one that records nothing (untracked stages)."""
    return active_tracker() or NullTracker()
