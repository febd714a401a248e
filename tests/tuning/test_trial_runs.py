"""deeppipe.tuning.tracking.TrialRuns: every trial of a study has its MLflow child run, even one whose
process was killed after Optuna started it and before its run was created."""

from __future__ import annotations

from pathlib import Path

import mlflow
import optuna
from optuna.trial import TrialState
from optuna_integration.mlflow.mlflow import RUN_ID_ATTRIBUTE_KEY

from deeppipe.tuning.tracking import TrialRuns


def test_a_trial_killed_before_its_run_existed_gets_a_killed_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("trials")
    parent = client.create_run(experiment).info.run_id
    runs = TrialRuns(parent, ["val/accuracy"], "study")
    study = optuna.create_study(direction="maximize")
    started = study.ask()
    runs.start(started)  # its run exists: closed as it is
    orphan = study.ask()  # started by Optuna, killed before runs.start
    for t in (started, orphan):
        study._storage.set_trial_system_attr(t._trial_id, "fail_reason", "its process was killed")
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    runs.close_killed(study, [started.number, orphan.number])

    children = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent}'")
    assert sorted(r.data.tags["optuna.trial"] for r in children) == ["0", "1"]
    for r in children:
        assert r.info.status == "KILLED" and r.data.tags["state"] == "FAIL"
        assert r.data.tags["fail_reason"] == "its process was killed"
        assert r.data.tags["mlflow.runName"] == f"trial {r.data.tags['optuna.trial']}"
    first = study.trials[0].system_attrs[RUN_ID_ATTRIBUTE_KEY]
    assert first in {r.info.run_id for r in children}  # the started trial's own run, not a second one
