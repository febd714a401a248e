"""MLflow for a study: one parent run per study, every trial a child run of it
(``mlflow.parentRunId``) with its per-epoch metrics, its parameters, its value(s), its state and
its number as tags.

The parent is the MLflow run of the process that created the study; its id is kept in the study
(a user attribute), so a worker that joins the study later (another machine on the same
PostgreSQL, a rerun that resumes it) files its trials under the same parent and marks its own run
as a worker of it. The parent carries the study's latest view (best trial, values, parameters as
``tune.best.*`` tags, counts, figures), updated by every worker that finishes; each run's params
``tune.best.*`` are the winner that run trained with.

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
import time
import warnings
from typing import Any

import mlflow
import optuna
from optuna.trial import TrialState
from optuna_integration.mlflow import MLflowCallback
from optuna_integration.mlflow.mlflow import RUN_ID_ATTRIBUTE_KEY

from deeppipe.tracking.mlflow_tracker import MlflowTracker, mlflow_key

PARENT_ATTR = "deeppipe.mlflow_parent_run"
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

    def _create(self, number: int) -> str:
        return self.client.create_run(self.experiment_id, run_name=f"trial {number}", tags={
            "mlflow.parentRunId": self.parent_id, "optuna.study": self.study_name,
            "optuna.trial": str(number)}).info.run_id

    def start(self, trial: optuna.Trial) -> MlflowTracker:
        run_id = self._create(trial.number)
        # a retried trial carries its first run's id among the copied attributes: this run replaces it
        trial.storage.set_trial_system_attr(trial._trial_id, RUN_ID_ATTRIBUTE_KEY, run_id)
        return MlflowTracker(run_id)

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
        """The runs of trials whose process was killed: closed as KILLED. A trial killed after Optuna
        started it but before its run was created gets one now, so that every trial has its run."""
        for t in study.get_trials(deepcopy=False):
            if t.number not in numbers:
                continue
            try:
                run_id = t.system_attrs.get(RUN_ID_ATTRIBUTE_KEY) or self._create(t.number)
                self.client.set_tag(run_id, "fail_reason", str(t.system_attrs.get("fail_reason")
                                                               or "its process was killed"))
                self.client.set_tag(run_id, "state", "FAIL")
                self.client.set_terminated(run_id, "KILLED")
            except mlflow.exceptions.MlflowException:
                pass


def study_parent(study: optuna.Study, own: str, *, created: bool, wait: float = 5.0) -> str:
    """The study's parent run: ``own`` if this process created the study (or the study names no
    parent this tracking store knows), else the run the study names. A joiner that finds no
    parent yet waits ``wait`` seconds for the creator to name its own (it does so right after
    creating the study), then takes the role itself."""
    client = mlflow.MlflowClient()
    if not created:
        # a study with trials and no parent was searched untracked: nobody is about to name one
        deadline = time.monotonic() + (wait if not study.get_trials(deepcopy=False) else 0.0)
        while True:
            named = study.user_attrs.get(PARENT_ATTR)
            if named is not None or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        if named is not None and named != own:
            try:
                client.get_run(named)  # another tracking server's run id means nothing here
            except mlflow.exceptions.MlflowException:
                named = None
        if named is not None:
            if named != own:
                client.set_tag(own, "deeppipe.tune.parent_run", named)
            return named
    study.set_user_attr(PARENT_ATTR, own)
    return own


def log_summary(parent_id: str, own_id: str, best: dict[str, Any], plots: dict[str, bytes]) -> None:
    """On this run: the winner it trains with (params). On the study's parent (the same run when
    this process created the study): the study's latest view, as tags and metrics that a later
    worker's summary updates (MLflow params cannot change), and the search's figures."""
    from deeppipe.tracking.tracker import log_bytes

    MlflowTracker(own_id).log_params({f"tune.best.{k}": v for k, v in best["params"].items()})
    tracker = MlflowTracker(parent_id)
    counts = best["trials"]
    step = sum(counts.values())  # the best so far after this many trials
    tracker.log_metrics({f"tune/best/{k}": v for k, v in best["values"].items()}, step)
    tracker.log_metrics({f"tune/trials_{k}": v for k, v in counts.items()}, step)
    tracker.set_tags({"deeppipe.tune.study": best["study"], "deeppipe.tune.best_trial": str(best["trial"]),
                      **{mlflow_key(f"tune.best.{k}"): str(v) for k, v in best["params"].items()}})
    for name, png in plots.items():
        log_bytes(tracker, f"{name}.png", png, "tune")
