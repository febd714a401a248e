"""Real searches on digits through the tune stage function: each assertion reads deeppipe's own
output (the study, best_params, the kept models, the Pareto front)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from optuna.trial import TrialState

from deeppipe.data.stage import Split
from deeppipe.tuning.keep import top_trials
from deeppipe.tuning.stage import apply_best, tune
from tests.tuning.conftest import resolved, spec_with


def test_tpe_finds_a_learning_rate_that_beats_the_bad_default(tmp_path: Path) -> None:
    from deeppipe.training.stage import fit_experiment

    spec = spec_with({"objective": "val/accuracy", "n_trials": 8, "sampler": {"name": "tpe", "n_startup_trials": 4},
                      "pruner": "none", "keep_top": 2,
                      "space": {"train.optimizer.lr": {"float": [1.0e-4, 1.0], "log": True}}})
    rs, samples, parts = resolved(tmp_path, spec)
    default = fit_experiment(rs, samples, parts).history[-1]["val/accuracy"]
    result = tune(rs, samples, parts, folder=tmp_path / "study")
    best = result.best
    assert best["trials"] == {"complete": 8, "pruned": 0, "fail": 0} and result.ran == 8
    assert default < 0.3 and best["values"]["val/accuracy"] > default + 0.5, (default, best)
    lr = best["params"]["train.optimizer.lr"]
    assert lr > 1e-3  # far above the default's 1e-5
    # the train stage's spec is the run's with the winner's value, validated
    assert apply_best(rs, best).spec.train.optimizer.lr == lr
    # keep_top: the two best trials' models, best first, each a loadable artifact with its own lr
    kept = top_trials(tmp_path / "study" / "trials")
    values = {t.number: t.value for t in result.study.trials if t.state == TrialState.COMPLETE}
    assert [n for n, _ in kept] == sorted(values, key=values.get, reverse=True)[:2] == best["kept"]
    assert kept[0][1].spec["train"]["optimizer"]["lr"] == lr
    assert len([p for p in (tmp_path / "study" / "trials").iterdir() if p.is_dir()]) == 2


def test_median_pruning_stops_hopeless_trials_early(tmp_path: Path) -> None:
    spec = spec_with({"objective": "val/loss", "n_trials": 10, "epochs": 5, "sampler": {"name": "random"},
                      "pruner": {"name": "median", "n_startup_trials": 2, "n_warmup_steps": 0},
                      "space": {"train.optimizer.lr": {"float": [1.0e-5, 0.5], "log": True}}})
    result = tune(*resolved(tmp_path, spec), folder=tmp_path / "study")
    trials = result.study.trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert result.best["trials"]["pruned"] == len(pruned) >= 2 and len(pruned) + len(complete) == 10
    for t in pruned:  # stopped before the trials' 5 epochs, each epoch reported as a step
        assert 1 <= t.user_attrs["epochs"] < 5 and max(t.intermediate_values) == t.user_attrs["epochs"]
    for t in complete:
        assert t.user_attrs["epochs"] == 5 and sorted(t.intermediate_values) == [1, 2, 3, 4, 5]
    assert result.best["epochs"] < 10 * 5
    # each pruned trial's best loss so far was worse than the median of the completed trials before it
    import numpy as np

    for t in pruned:
        step = max(t.intermediate_values)
        earlier = [c.intermediate_values[step] for c in complete if c.number < t.number]
        assert min(t.intermediate_values.values()) > np.median(earlier)
    assert "intermediate_values" in result.plots


def test_a_metric_the_engine_does_not_log_is_reported_every_epoch_for_the_pruner(tmp_path: Path) -> None:
    spec = spec_with({"objective": "val/balanced_accuracy", "n_trials": 6, "epochs": 3, "sampler": {"name": "random"},
                      "pruner": {"name": "median", "n_startup_trials": 2, "n_warmup_steps": 0},
                      "space": {"train.optimizer.lr": {"float": [1.0e-5, 0.5], "log": True}}})
    result = tune(*resolved(tmp_path, spec), folder=tmp_path / "study")
    trials = result.study.trials
    assert all(sorted(t.intermediate_values) == list(range(1, t.user_attrs["epochs"] + 1)) for t in trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert complete and any(t.state == TrialState.PRUNED for t in trials)
    for t in complete:  # the value is the kept epoch's balanced accuracy, the curve's last point here
        assert t.value == pytest.approx(t.intermediate_values[3])
        assert 0.0 <= t.value <= 1.0


def test_conditional_values_appear_only_when_their_condition_holds(tmp_path: Path) -> None:
    spec = spec_with({"objective": "val/accuracy", "n_trials": 10, "epochs": 1, "sampler": {"name": "random"},
                      "pruner": "none", "space": {
                          "train.optimizer.name": {"choices": ["adam", "sgd"]},
                          "train.optimizer.momentum": {"float": [0.0, 0.95], "when": {"train.optimizer.name": "sgd"}},
                          "train.optimizer.amsgrad": {"choices": [True, False], "when": {"train.optimizer.name": "adam"}},
                          "train.optimizer.lr": {"float": [1.0e-3, 0.1], "log": True}}})
    rs, samples, parts = resolved(tmp_path, spec)
    result = tune(rs, samples, parts, folder=tmp_path / "study")
    names = [t.params["train.optimizer.name"] for t in result.study.trials]
    assert {"adam", "sgd"} <= set(names)
    for t in result.study.trials:
        sgd = t.params["train.optimizer.name"] == "sgd"
        assert ("train.optimizer.momentum" in t.params) is sgd and ("train.optimizer.amsgrad" in t.params) is not sgd
        assert t.state == TrialState.COMPLETE
    # the winner's spec carries exactly its active values
    trained = apply_best(rs, result.best).spec.train.optimizer
    assert ("momentum" in trained.kwargs()) is (trained.name == "sgd")


def test_an_invalid_sample_fails_its_trial_and_the_study_goes_on(tmp_path: Path) -> None:
    # each kernel size alone fits the 8x8 digits, both at 7 do not (8 -> 2 -> nothing): only a
    # sample can show it, and the grid draws every combination once
    convs = {"model": {"layers": [{"Conv2d": {"out_channels": 4, "kernel_size": 1}}, {"ReLU": {}},
                                  {"Conv2d": {"out_channels": 4, "kernel_size": 1}}, {"Flatten": {}},
                                  {"Linear": {"out_features": 10}}]}}
    spec = spec_with({"objective": "val/accuracy", "epochs": 1, "sampler": "grid", "pruner": "none",
                      "space": {"model.layers[0].Conv2d.kernel_size": {"choices": [1, 7]},
                                "model.layers[2].Conv2d.kernel_size": {"choices": [1, 7]}}}, **convs)
    result = tune(*resolved(tmp_path, spec), folder=tmp_path / "study")
    trials = result.study.trials
    assert len(trials) == 4 and result.best["trials"] == {"complete": 3, "pruned": 0, "fail": 1}
    (failed,) = [t for t in trials if t.state == TrialState.FAIL]
    assert failed.params == {"model.layers[0].Conv2d.kernel_size": 7, "model.layers[2].Conv2d.kernel_size": 7}
    assert failed.user_attrs["fail_reason"].startswith("the sampled spec is invalid")
    assert "model.layers[2]" in failed.user_attrs["fail_reason"]
    assert failed.user_attrs["epochs"] == 0  # refused before training


def test_multi_objective_reports_the_pareto_front_and_applies_the_pick_rule(tmp_path: Path) -> None:
    spec = spec_with({"objective": ["val/accuracy", "params"], "pick": {"objective": "val/accuracy", "tolerance": 0.05},
                      "n_trials": 8, "epochs": 3, "sampler": {"name": "nsgaii", "population_size": 4}, "pruner": "none",
                      "space": {"model.layers[1].Linear.out_features": {"int": [4, 64], "log": True},
                                "train.optimizer.lr": {"float": [0.01, 0.3], "log": True}}},
                     train={"epochs": 3, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.01}, "progress": False})
    result = tune(*resolved(tmp_path, spec), folder=tmp_path / "study")
    best = result.best
    front = best["pareto_front"]
    assert front and {f["trial"] for f in front} == {t.number for t in result.study.best_trials}
    acc = max(f["values"]["val/accuracy"] for f in front)
    near = [f for f in front if f["values"]["val/accuracy"] >= acc - 0.05]
    smallest = min(near, key=lambda f: f["values"]["params"])
    assert best["trial"] == smallest["trial"] and best["values"]["params"] == smallest["values"]["params"]
    # params is the network's real size: 64 inputs -> n -> 10
    n = best["params"]["model.layers[1].Linear.out_features"]
    assert best["values"]["params"] == 64 * n + n + n * 10 + 10
    assert {"pareto_front", "optimization_history"} <= set(result.plots)
    assert [o["direction"] for o in best["objectives"]] == ["max", "min"]


def test_cross_validation_scores_the_mean_over_folds(tmp_path: Path) -> None:
    spec = spec_with({"objective": "val/accuracy", "n_trials": 2, "epochs": 2, "cv": {"folds": 3}, "sampler": "random",
                      "pruner": {"name": "median", "n_startup_trials": 1},
                      "space": {"train.optimizer.lr": {"float": [0.01, 0.3], "log": True}}})
    rs, samples, parts = resolved(tmp_path, spec)
    import mlflow

    from deeppipe.tracking.mlflow_tracker import MlflowTracker

    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("cv")
    with mlflow.start_run() as parent:  # the stage's tracker's run is the study's parent
        result = tune(rs, samples, parts, folder=tmp_path / "study", tracker=MlflowTracker())
    client = mlflow.MlflowClient()
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 2
    for run in children:  # the mean over the folds and its spread
        t = result.study.trials[int(run.data.tags["number"])]
        assert run.data.metrics["tune/val/accuracy"] == pytest.approx(t.value)
        assert run.data.metrics["tune/cv_std/val/accuracy"] == pytest.approx(t.user_attrs["cv_std/val/accuracy"])
    mlflow.set_tracking_uri(before)
    for t in result.study.trials:
        folds = t.user_attrs["cv_folds/val/accuracy"]
        assert len(folds) == 3 and t.value == pytest.approx(sum(folds) / 3)
        assert t.user_attrs["epochs"] == 6 and sorted(t.intermediate_values) == [1, 2, 3, 4, 5, 6]
        # the last step is the mean of the three folds' last epochs: the trial's value
        assert t.intermediate_values[6] == pytest.approx(t.value)
    test_rows = set(parts.test.tolist())
    from deeppipe.tuning.study import cv_folds

    folds = cv_folds(rs, samples, parts)
    assert all(isinstance(f, Split) and not (set(f.val.tolist()) | set(f.train.tolist())) & test_rows for f in folds)
    assert json.dumps(result.best)  # best_params.yml is plain data


def test_a_trial_past_the_budget_ends_before_sampling_and_a_retry_still_runs() -> None:
    import optuna
    from optuna.distributions import FloatDistribution

    from deeppipe.tuning.study import _budget_guard, _Surplus

    study = optuna.create_study()
    for v in (1.0, 2.0, 3.0):  # another worker's three trials used the budget of 3
        study.add_trial(optuna.trial.create_trial(value=v, params={"x": v}, distributions={"x": FloatDistribution(0, 5)}))
    ran: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        ran.append(trial.number)
        return trial.suggest_float("x", 0, 5)

    guarded = _budget_guard(objective, budget=3)
    study.optimize(guarded, n_trials=1, catch=(_Surplus,))
    late = study.trials[-1]
    assert late.state == TrialState.FAIL and late.params == {} and late.user_attrs["deeppipe.skipped"] and ran == []
    study.enqueue_trial({"x": 1.0})  # a retry of a failed trial is queued with its parameters: it runs
    study.optimize(guarded, n_trials=1, catch=(_Surplus,))
    assert ran == [4] and study.trials[-1].state == TrialState.COMPLETE


def test_a_timeout_bounds_the_search_and_latency_is_measured(tmp_path: Path) -> None:
    import time

    spec = spec_with({"objective": ["val/accuracy", "latency_ms"], "timeout": 1.5, "epochs": 1, "sampler": "random",
                      "pruner": "none", "space": {"train.optimizer.lr": {"float": [0.01, 0.3], "log": True}}},
                     train={"epochs": 1, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.01}, "progress": False})
    t0 = time.perf_counter()
    result = tune(*resolved(tmp_path, spec), folder=tmp_path / "study")
    took = time.perf_counter() - t0
    n = result.best["trials"]["complete"]
    assert n >= 1 and took < 1.5 + 10  # the last trial finishes, then the search stops
    latency = [t.values[1] for t in result.study.trials if t.values]
    assert all(0 < v < 100 for v in latency)  # ms per sample of a tiny MLP
    assert result.best["objectives"][1] == {"metric": "latency_ms", "direction": "min"}


def test_two_workers_logging_the_same_data_set_at_once_do_not_fail_a_trial() -> None:
    from deeppipe.tracking.tracker import NullTracker
    from deeppipe.tuning.objective import Curve, TrialTracker

    class Racing(NullTracker):
        def __init__(self, error: str) -> None:
            self.calls, self.error = 0, error

        def log_dataset(self, *args, **kwargs) -> None:
            self.calls += 1
            if self.calls == 1:  # what MLflow raises when another process inserted it first
                raise RuntimeError(self.error)

    inner = Racing("(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, datasets.name")
    TrialTracker(inner, None, None, Curve(1)).log_dataset("d", None, None, source="s", digest="x")
    assert inner.calls == 2
    with pytest.raises(RuntimeError, match="disk full"):  # anything else is not swallowed
        TrialTracker(Racing("disk full"), None, None, Curve(1)).log_dataset("d", None, None, source="s", digest="x")
