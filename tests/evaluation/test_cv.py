"""``evaluate.cv``: K-fold cross-validation on the training split, with real training: each fold's
model never trains on the rows it is scored on, the test split takes no part, and the summary is
the mean and standard deviation of the fold scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import deeppipe.training.stage as training_stage
from deeppipe.data.stage import ingest, split
from deeppipe.evaluation.cv import cross_validate, fold_splits
from deeppipe.spec.loader import ResolvedSpec, validate

RAW = {"seed": 4, "data": {"source": {"type": "sklearn", "name": "digits"}, "split": {"val": 0.1, "test": 0.2}},
       "model": {"layers": [{"Flatten": {}}, {"Linear": {"out_features": 10}}]},
       "train": {"epochs": 1, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.02}, "progress": False},
       "evaluate": {"metrics": ["accuracy", "f1_macro", "log_loss"], "cv": {"folds": 3, "stratified": True}}}


def test_k_fold_cross_validation_on_the_training_split(monkeypatch: pytest.MonkeyPatch) -> None:
    rs = ResolvedSpec("digits_cv", "pipelines/digits_cv.yml", validate(RAW, check_model=False, check_data=False), RAW)
    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    trained_on = []
    real = training_stage.fit_experiment

    def fit(rs_, samples_, split_, **kw):
        trained_on.append(np.asarray(split_.train))
        return real(rs_, samples_, split_, **kw)

    monkeypatch.setattr(training_stage, "fit_experiment", fit)
    result = cross_validate(rs, samples, parts)
    folds = fold_splits(rs, samples, parts)
    held = [h for _, h in folds]
    assert len(result["rows"]) == 3 and len(trained_on) == 3
    assert np.array_equal(np.sort(np.concatenate(held)), np.sort(parts.train))  # every training row once
    for rows, h in zip(trained_on, held):
        assert not np.intersect1d(rows, h).size and len(rows) + len(h) == len(parts.train)
        assert not np.intersect1d(rows, parts.test).size and not np.intersect1d(h, parts.test).size
    y = samples.targets()[parts.train]
    for h in held:  # stratified: each fold keeps the class proportions
        share = np.bincount(samples.targets()[h], minlength=10) / len(h)
        assert np.abs(share - np.bincount(y, minlength=10) / len(y)).max() < 0.02
    for metric in ("accuracy", "f1_macro", "log_loss"):
        scores = [r[metric] for r in result["rows"]]
        assert result["mean"][metric] == pytest.approx(np.mean(scores))
        assert result["std"][metric] == pytest.approx(np.std(scores))
    assert 0.6 < result["mean"]["accuracy"] <= 1.0


def test_the_pipeline_has_a_cross_validation_node_when_asked(tmp_path: Path) -> None:
    from deeppipe.pipelines.experiment import experiment_pipeline

    pipe = experiment_pipeline("digits_cv", tmp_path / "digits_cv.yml", cv=True)
    names = {n.name for n in pipe.nodes}
    assert "digits_cv.cross_validate" in names
    report = next(n for n in pipe.nodes if n.name == "digits_cv.report")
    assert "digits_cv.cv" in report.inputs
    assert "digits_cv.cross_validate" not in {n.name for n in experiment_pipeline("digits_cv", tmp_path / "x.yml").nodes}
