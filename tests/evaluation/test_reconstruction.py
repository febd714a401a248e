"""Autoencoders as experiments (issue 13): `data.task: reconstruction`, classes held out as
anomalies, outlier scores and their ROC AUC, the reconstructions grid and the 2-D codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from deeppipe.errors import SpecError
from deeppipe.evaluation.reconstruction import scores
from deeppipe.spec.loader import load_spec

SPEC = {"seed": 0, "data": {"source": {"type": "sklearn", "name": "digits"}, "task": "reconstruction",
                            "anomalies": [9], "split": {"val": 0.1, "test": 0.2}},
        "model": {"zoo": "mlp_autoencoder", "code": 2, "hidden": 128},
        "train": {"epochs": 20, "batch_size": 32, "progress": False, "optimizer": {"name": "adam", "lr": 0.003}}}


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "ae.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_scores_are_zero_for_a_perfect_reconstruction_and_grow_with_the_error() -> None:
    x = np.random.default_rng(0).random((5, 1, 4, 4))
    row, column = scores(x, x)
    assert np.all(row == 0) and np.all(column == 0) and column.shape == (16,)
    worse = x.copy()
    worse[2, 0, 1, 1] += 0.5
    row, column = scores(x, worse)
    assert np.argmax(row) == 2 and np.argmax(column) == 5 and row[2] == pytest.approx(0.25)


def test_held_out_digits_are_found_by_their_reconstruction_error(tmp_path: Path, monkeypatch) -> None:
    from deeppipe.stages import run_experiment

    monkeypatch.chdir(tmp_path)
    run = run_experiment(load_spec(_write(tmp_path, SPEC)))
    y, parts = run.samples.y, run.split
    assert not np.isin(y[parts.train], [9]).any() and not np.isin(y[parts.val], [9]).any()
    assert (y[parts.test] == 9).sum() == (y == 9).sum()  # every 9 is in the test split
    metrics, table = run.evaluation.metrics["test"], run.evaluation.predictions
    assert metrics["reconstruction_mse"] < 0.08 and metrics["outlier_roc_auc"] > 0.75, metrics
    assert table["anomaly"].tolist() == (y[parts.test] == 9).tolist()
    assert table.loc[table["anomaly"], "score"].mean() > 1.3 * table.loc[~table["anomaly"], "score"].mean()
    assert {"reconstructions", "codes"} <= set(run.evaluation.plots)
    assert len(run.evaluation.per_class["column_scores"]) == 64  # one per pixel of the 8x8 digits


@pytest.mark.parametrize(("data", "model", "word"), [
    ({"anomalies": [9]}, None, "need task: reconstruction"),
    ({"task": "reconstruction", "anomalies": [11]}, None, "did you mean '1'?"),
    ({"task": "reconstruction", "anomalies": list(range(10))}, None, "nothing normal"),
    ({}, None, "data.task: reconstruction"),  # an autoencoder on labelled data: the hint
])
def test_validation_refuses_what_an_autoencoder_run_would_fail_on(tmp_path: Path, data: dict, model, word: str) -> None:
    raw = {**SPEC, "data": {"source": {"type": "sklearn", "name": "digits"}, **data}}
    with pytest.raises(SpecError) as err:
        load_spec(_write(tmp_path, raw))
    assert word in str(err.value) and "ae.yml" in str(err.value)
