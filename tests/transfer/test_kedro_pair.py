"""A pre-training pair in a Kedro project (issue 13): an autoencoder on unlabelled digits saved in
the project's model folder, then `kedro run` of a classifier that loads its encoder from there and
fine-tunes in two phases, in one Kedro run and one MLflow run whose epochs continue across them."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from deeppipe.artifact import save_artifact
from deeppipe.data.stage import ingest, split
from deeppipe.spec.loader import load_spec
from deeppipe.training.stage import fit_experiment
from tests.integration.conftest import make_project, run

ENCODER = [{"Flatten": {}}, {"Linear": {"out_features": 64}, "name": "enc1", "activation": "relu"},
           {"Linear": {"out_features": 16}, "name": "code"}]
AE = {"seed": 0, "data": {"source": {"type": "sklearn", "name": "digits"}, "task": "reconstruction",
                          "split": {"val": 0.1, "test": 0.3}},
      "model": {"layers": [*ENCODER, {"Linear": {"out_features": "input"}, "name": "dec"}, {"Reshape": {"shape": "input"}}]},
      "train": {"epochs": 3, "batch_size": 32, "progress": False, "optimizer": {"name": "adam", "lr": 0.003}}}
CLASSIFIER = {"seed": 0, "data": {"source": {"type": "sklearn", "name": "digits"},
                                  "split": {"val": 0.2, "test": 0.3, "stratify": False}},
              "model": {"layers": [*ENCODER, "ReLU", {"Linear": {"out_features": "auto"}, "name": "head"}],
                        "pretrained": {"from": "data/06_models/ae/model", "layers": ["enc1.*", "code.*"],
                                       "fine_tune": {"head_epochs": 2, "lr_factor": 0.1}}},
              "train": {"epochs": 4, "batch_size": 32, "progress": False, "optimizer": {"name": "adam", "lr": 0.003}}}


@pytest.mark.slow
def test_an_encoder_pretrained_by_kedro_run_is_fine_tuned_in_two_phases_in_one_mlflow_run(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", {"ae": AE, "cls": CLASSIFIER})
    ae = load_spec(project / "pipelines/ae.yml")  # the first of the pair in-process (one kedro start saved)
    samples = ingest(ae.spec)
    save_artifact(fit_experiment(ae, samples, split(ae.spec, samples)).artifact, project / "data/06_models/ae/model")
    run(["kedro", "run", "--pipelines", "cls"], project)
    history = json.loads((project / "data/08_reporting/cls/history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4] and [h["phase"] for h in history] == [1, 1, 2, 2]
    assert [round(h["lr"], 6) for h in history] == [0.003, 0.003, 0.0003, 0.0003]
    assert json.loads((project / "data/08_reporting/cls/metrics.json").read_text())["test"]["accuracy"] > 0.5
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cls")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1  # one MLflow run for both phases
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "phase")]
    assert sorted(steps) == [1, 2, 3, 4]
    assert runs[0].data.tags["deeppipe.pretrained"] == "data/06_models/ae/model"
