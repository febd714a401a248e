"""MLflow for a study: the run's own MLflow run is the study's parent; every trial gets a child run
(``mlflow.parentRunId``) with its per-epoch metrics, its parameters, its value(s), its state and
its number as tags.

optuna-integration's ``MLflowCallback`` logs a finished trial (values, params, the tags
``number``, ``state``, ``direction``, the distributions, user attributes) and is used for that.
What it lacks is written here: it opens the trial's run only when the trial has finished (its
``track_in_mlflow`` decorator starts a fluent run in the calling process, which neither names an
explicit parent nor works from worker processes that have no active parent run), so a child run
is created with the MLflow client when the trial starts, its id stored where the callback looks
for it; its parameter names must be MLflow keys (``model.layers[3]`` has brackets MLflow refuses);
and a pruned or failed trial's run is closed as KILLED or FAILED rather than FINISHED.

optuna-integration marks ``MLflowCallback`` deprecated since 4.9 (to be removed in 6.0; MLflow's own
``mlflow.optuna.MlflowStorage`` keeps a whole study in MLflow instead, which would replace the journal
and database storages deeppipe needs for resuming and many workers). pyproject pins
optuna-integration below 6; what the callback does for us is ``__call__`` + ``_set_tags`` above it,
about thirty lines to take in when it goes.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import mlflow
import optuna
from optuna.trial import TrialState
from optuna_integration.mlflow import MLflowCallback
from optuna_integration.mlflow.mlflow import RUN_ID_ATTRIBUTE_KEY

from deeppipe.tracking.mlflow_tracker import MlflowTracker, mlflow_key

_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}


class _Callback(MLflowCallback):
    """MLflowCallback, with the trial's parameter names (params, and the ``<name>_distribution``
    tags it writes) as MLflow keys."""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        renamed = copy.copy(trial)
        renamed.params = {mlflow_key(k): v for k, v in trial.params.items()}
        renamed.distributions = {mlflow_key(k): d for k, d in trial.distributions.items()}
        super().__call__(study, renamed)


class TrialRuns:
    """Child runs of ``parent_id`` (in its experiment), one per trial; also an Optuna callback."""

    def __init__(self, parent_id: str, objectives: list[str], study_name: str) -> None:
        self.client = mlflow.MlflowClient()
        self.parent_id = parent_id
        self.experiment_id = self.client.get_run(parent_id).info.experiment_id
        self.study_name = study_name
        with warnings.catch_warnings():  # deprecated since Optuna 4.9 (see the module's docstring)
            warnings.simplefilter("ignore", FutureWarning)
            self.callback = _Callback(metric_name=[f"tune/{o}" for o in objectives], create_experiment=False,
                                      mlflow_kwargs={"nested": True, "experiment_id": self.experiment_id})

    def start(self, trial: optuna.Trial) -> MlflowTracker:
        run = self.client.create_run(self.experiment_id, run_name=f"trial {trial.number}", tags={
            "mlflow.parentRunId": self.parent_id, "optuna.study": self.study_name,
            "optuna.trial": str(trial.number)})
        # a retried trial carries its first run's id among the copied attributes: this run replaces it
        trial.storage.set_trial_system_attr(trial._trial_id, RUN_ID_ATTRIBUTE_KEY, run.info.run_id)
        return MlflowTracker(run.info.run_id)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        run_id = trial.system_attrs.get(RUN_ID_ATTRIBUTE_KEY)
        if run_id is None:
            return
        self.callback(study, trial)
        spread = {f"tune/{k}": float(v) for k, v in trial.user_attrs.items() if k.startswith("cv_std/")}
        if spread:  # cross-validation: the spread over the folds beside the mean
            MlflowTracker(run_id).log_metrics(spread)
        self.client.set_tag(run_id, "mlflow.runName", f"trial {trial.number}")  # the callback names it "<n>"
        reason = trial.user_attrs.get("fail_reason") or trial.system_attrs.get("fail_reason")
        if reason:
            self.client.set_tag(run_id, "fail_reason", str(reason)[:5000])
        self.client.set_terminated(run_id, _STATUS.get(trial.state, "FINISHED"))

    def close_killed(self, study: optuna.Study, numbers: list[int]) -> None:
        """The runs of trials whose process was killed: closed as KILLED."""
        for t in study.get_trials(deepcopy=False):
            run_id = t.system_attrs.get(RUN_ID_ATTRIBUTE_KEY)
            if t.number in numbers and run_id:
                try:
                    self.client.set_tag(run_id, "state", "FAIL")
                    self.client.set_terminated(run_id, "KILLED")
                except mlflow.exceptions.MlflowException:
                    pass


def log_summary(parent_id: str, best: dict[str, Any], plots: dict[str, bytes]) -> None:
    """The winner's parameters and values on the parent run, and the search's figures."""
    from deeppipe.tracking.tracker import log_bytes

    tracker = MlflowTracker(parent_id)
    tracker.log_params({f"tune.best.{k}": v for k, v in best["params"].items()})
    tracker.log_metrics({f"tune/best/{k}": v for k, v in best["values"].items()})
    counts = best["trials"]
    tracker.log_metrics({f"tune/trials_{k}": v for k, v in counts.items()})
    tracker.set_tags({"deeppipe.tune.study": best["study"], "deeppipe.tune.best_trial": str(best["trial"])})
    for name, png in plots.items():
        log_bytes(tracker, f"{name}.png", png, "tune")
