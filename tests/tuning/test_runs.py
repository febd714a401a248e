"""The search as users run it: ``kedro run`` (tune, then train the winner) and a search killed with
SIGKILL and started again (the PostgreSQL workers are in test_postgres.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests.integration.conftest import BIN, env, make_project, run
from tests.tuning.conftest import spec_with

pytestmark = pytest.mark.slow
NAME = "digits_search"
LR = {"train.optimizer.lr": {"float": [1.0e-3, 0.5], "log": True}}


def _study(project: Path) -> optuna.Study:
    best = yaml.safe_load((project / f"data/06_models/{NAME}/best_params.yml").read_text())
    return _journal(project, best["study"])


def _journal(project: Path, name: str | None = None) -> optuna.Study:
    path = project / f"data/06_models/{NAME}/tune/study.journal"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    name = name or optuna.get_all_study_names(storage)[0]
    return optuna.load_study(study_name=name, storage=storage)


def test_kedro_run_tunes_then_trains_the_winner_with_two_local_workers(tmp_path: Path) -> None:
    import mlflow

    tune = {"objective": "val/accuracy", "n_trials": 4, "epochs": 8, "workers": 2, "sampler": "random",
            "pruner": "none", "space": {**LR, "model.layers[3].Dropout.p": {"float": [0.0, 0.3]}}}
    project = make_project(tmp_path / "p", {NAME: spec_with(tune)})
    run(["kedro", "run", "--pipeline", NAME], project)
    best = yaml.safe_load((project / f"data/06_models/{NAME}/best_params.yml").read_text())
    study = _study(project)
    trials = [t for t in study.trials if not t.user_attrs.get("deeppipe.skipped")]  # past the budget: unsampled
    assert best["trials"]["complete"] == 4 == len(trials)
    workers = {t.system_attrs["deeppipe.worker"] for t in trials}
    assert len(workers) == 2  # both processes ran trials of the one study
    assert best["storage"] == f"journal:data/06_models/{NAME}/tune/study.journal"
    # the final model is the winner's spec (train.epochs of the spec, not tune.epochs)
    model_spec = yaml.safe_load((project / f"data/06_models/{NAME}/model/spec.yaml").read_text())
    assert model_spec["train"]["optimizer"]["lr"] == best["params"]["train.optimizer.lr"] == study.best_params[
        "train.optimizer.lr"]
    assert model_spec["train"]["epochs"] == 3 and model_spec.get("tune") is None
    plots = {p.stem for p in (project / f"data/08_reporting/{NAME}/tune").glob("*.png")}
    assert {"optimization_history", "param_importances", "parallel_coordinate", "slice",
            "intermediate_values"} <= plots
    # MLflow: the run is the study's parent, one child per trial with its number, state and value
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(NAME).experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(int(r.data.tags["number"]) for r in children) == list(range(4))
    assert all(r.data.tags["state"] == "COMPLETE" and r.info.status == "FINISHED" for r in children)
    winner = next(r for r in children if int(r.data.tags["number"]) == best["trial"])
    assert winner.data.metrics["tune/val/accuracy"] == pytest.approx(best["values"]["val/accuracy"])
    assert len(client.get_metric_history(winner.info.run_id, "val/accuracy")) == 8  # per epoch
    assert parent.data.params["tune.best.train.optimizer.lr"] == str(best["params"]["train.optimizer.lr"])
    assert parent.data.tags["tune.best.train.optimizer.lr"] == str(best["params"]["train.optimizer.lr"])
    assert parent.data.tags["deeppipe.tune.best_trial"] == str(best["trial"])
    # a key path with a list index is a valid MLflow name on the parent and the children
    assert winner.data.params["model.layers.3.Dropout.p"] == str(best["params"]["model.layers[3].Dropout.p"])
    assert "model.layers.3.Dropout.p_distribution" in winner.data.tags
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "tune")} >= {"tune/optimization_history.png"}
    # the train stage reads best_params.yml: a value written there is the one the next model trains
    best["params"]["train.optimizer.lr"] = 0.0123
    (project / f"data/06_models/{NAME}/best_params.yml").write_text(yaml.safe_dump(best))
    run(["kedro", "run", "--pipeline", NAME, "--tags", "train"], project)
    model_spec = yaml.safe_load((project / f"data/06_models/{NAME}/model/spec.yaml").read_text())
    assert model_spec["train"]["optimizer"]["lr"] == 0.0123


def test_a_killed_search_resumes_keeps_finished_trials_and_finishes_the_budget(tmp_path: Path) -> None:
    tune = {"objective": "val/accuracy", "n_trials": 4, "epochs": 40, "sampler": "random", "pruner": "none",
            "space": LR}
    project = make_project(tmp_path / "p", {NAME: spec_with(tune)})
    cmd = [str(BIN / "kedro"), "run", "--pipeline", NAME, "--tags", "ingest,split,tune"]
    proc = subprocess.Popen(cmd, cwd=project, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    journal = project / f"data/06_models/{NAME}/tune/study.journal"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if journal.exists() and journal.stat().st_size:
            trials = _journal(project).trials
            if sum(t.state == TrialState.COMPLETE for t in trials) >= 2 and trials[-1].state == TrialState.RUNNING:
                break
    else:
        proc.kill()
        pytest.fail("the search never got two trials done")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {t.number: t.value for t in _journal(project).trials if t.state == TrialState.COMPLETE}
    interrupted = [t.number for t in _journal(project).trials if t.state == TrialState.RUNNING]
    assert len(interrupted) == 1
    run(cmd, project)  # the same command again
    study = _study(project)
    done = {t.number: t.value for t in study.trials if t.state == TrialState.COMPLETE}
    assert len(done) == 4 and all(done[n] == v for n, v in before.items())  # kept, not rerun
    (killed,) = [t for t in study.trials if t.state == TrialState.FAIL]
    assert killed.number == interrupted[0] and killed.system_attrs["fail_reason"] == "its process was killed"
    (retry,) = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed.number]
    assert retry.state == TrialState.COMPLETE and retry.params == killed.params  # run again, never lost
    # one MLflow parent for the study: the killed run; the rerun files its trials there and names it
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(NAME).experiment_id])
    own = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    (first,) = [r for r in own if "deeppipe.tune.parent_run" not in r.data.tags]
    (rerun,) = [r for r in own if r.info.run_id != first.info.run_id]
    assert rerun.data.tags["deeppipe.tune.parent_run"] == first.info.run_id
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {first.info.run_id}
    assert len(children) == len(study.trials)
