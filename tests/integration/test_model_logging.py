"""Logging a model costs what MLflow needs and no more: the requirement scan MLflow runs while it
checks the input example (a map of every installed distribution to its modules) is skipped, since
deeppipe pins exactly this environment's versions; the logged model still loads and answers."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest

from deeppipe.artifact import save_artifact
from deeppipe.data.stage import ingest, split
from deeppipe.spec.loader import ResolvedSpec, validate
from deeppipe.tracking import model_registry, serving
from deeppipe.training.stage import fit_experiment

RAW = {"seed": 1, "data": {"source": {"type": "sklearn", "name": "digits"}, "split": {"val": 0.1, "test": 0.2}},
       "model": {"layers": [{"Flatten": {}}, {"Linear": {"out_features": 32}}, {"ReLU": {}}, {"Linear": {"out_features": 10}}]},
       "train": {"epochs": 2, "batch_size": 64, "progress": False}}


def test_logging_a_model_skips_only_the_requirement_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow.utils.requirements_utils as ru

    scans = []
    real = ru._init_modules_to_packages_map
    monkeypatch.setattr(ru, "_init_modules_to_packages_map", lambda: (scans.append(1), real())[1])
    rs = ResolvedSpec("digits_mlp", "pipelines/digits_mlp.yml", validate(RAW, check_model=False, check_data=False), RAW)
    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    artifact = fit_experiment(rs, samples, parts).artifact
    example = samples.x[parts.test[:5]].astype(np.float32)
    answer = serving.predict(artifact, artifact.build(), example, "proba")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("model_logging")  # not an experiment id another test's store made active
    try:
        save_artifact(artifact, tmp_path / "model")
        with mlflow.start_run():
            info, _ = model_registry.log_model(tmp_path / "model", example, answer, None)
        assert scans == []  # MLflow loaded the model to check the example, without the scan
        assert mlflow.pyfunc.warn_dependency_requirement_mismatches is ru.warn_dependency_requirement_mismatches
        loaded = mlflow.pyfunc.load_model(info.model_uri)
        assert scans  # MLflow's own check is back for everyone else
        np.testing.assert_allclose(loaded.predict(example), answer, rtol=1e-6)
    finally:
        mlflow.set_tracking_uri(None)
