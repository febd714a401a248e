"""The tune stage as plain functions: ``tune`` searches the spec's ``tune:`` space (each trial is
the train stage on the sampled spec, scored on the validation split) and returns the winner's
parameters (best_params.yml) and the search's figures; ``apply_best`` is the spec the train stage
then trains: the run's spec with the winner's values.

Kedro's tune node calls ``tune``, the ``deeppipe tune`` command and tests call it directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.trial import TrialState

from deeppipe.errors import SpecError
from deeppipe.tracking.tracker import NullTracker, Tracker
from deeppipe.training.errors import TrainingError
from deeppipe.tuning.study import Opened, context, counts, open_study, pick_index, run_workers

if TYPE_CHECKING:
    from deeppipe.data.sources import Samples
    from deeppipe.data.stage import Split
    from deeppipe.spec.loader import ResolvedSpec

log = logging.getLogger(__name__)


@dataclass
class TuneResult:
    """best_params.yml's content, the figures, and how many trials this process ran."""

    best: dict[str, Any]
    plots: dict[str, bytes] = field(default_factory=dict)
    ran: int = 0
    study: optuna.Study | None = None


def tune(rs: ResolvedSpec, samples: Samples, split: Split, *, folder: Path, tracker: Tracker | None = None
         ) -> TuneResult:
    """Search ``rs.spec.tune`` (resuming its study if it exists) and pick the winner. ``folder``
    holds the embedded study and the kept models; ``tracker``'s MLflow run, if any, is the parent
    of one child run per trial."""
    from deeppipe.spec.loader import validate_search
    from deeppipe.tuning.plots import study_plots

    if rs.spec.tune is None:
        raise SpecError("this experiment has no tune: section to search", path="tune", file=rs.file,
                        expected="tune: {space: {...}}")
    validate_search(rs.raw, rs.spec, file=rs.file, check_model=True)  # before any trial trains
    tracker = tracker or NullTracker()
    own = getattr(tracker, "run_id", None)
    opened = open_study(rs, folder)
    parent = None
    if own is not None:
        from deeppipe.tuning.tracking import study_parent

        parent = study_parent(opened.study, own, created=opened.created)
    ctx = context(rs, samples, split, opened, folder, parent_run=parent)
    log.info("tune: study %s in %s (%s trials, %s sampler, %s pruner, %d worker(s))", opened.study.study_name,
             opened.storage.shown, opened.budget or "timed", rs.spec.tune.sampler.name, rs.spec.tune.pruner.name,
             rs.spec.tune.workers)
    ran = run_workers(ctx, opened, folder, parent_run=parent)
    best = summary(rs, opened)
    if ctx.keep is not None:
        best["kept"] = [e["trial"] for e in ctx.keep.finish(opened.study)]
    names = [o.metric for o in rs.spec.tune.objective]
    plots = study_plots(opened.study, names, target=pick_index(rs))
    if parent is not None:
        from deeppipe.tuning.tracking import log_summary

        log_summary(parent, own, best, plots)
    log.info("tune: trial %s wins with %s (%s)", best["trial"], best["values"], best["params"])
    return TuneResult(best, plots, ran, opened.study)


# ------------------------------------------------------------------------------ the winner
def pick(study: optuna.Study, rs: ResolvedSpec, dirs: list[str]) -> optuna.trial.FrozenTrial:
    """The trial the train stage uses: the best one, or with several objectives the pick rule's
    choice on the Pareto front (within ``tolerance`` of the best on its objective, the best on
    the next objectives in order)."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not complete:
        failed = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.FAIL]
        reason = next((t.user_attrs.get("fail_reason") or t.system_attrs.get("fail_reason") for t in failed), None)
        raise TrainingError(f"no trial of study '{study.study_name}' completed ({counts(study)})"
                            + (f"; the first failure: {reason}" if reason else ""))
    tune = rs.spec.tune
    if not tune.multi:
        return study.best_trial
    front = study.best_trials
    i = pick_index(rs)
    sign = [1.0 if d == "min" else -1.0 for d in dirs]
    best_i = min(sign[i] * t.values[i] for t in front)
    slack = tune.pick.tolerance if tune.pick is not None else 0.0
    near = [t for t in front if sign[i] * t.values[i] <= best_i + slack + 1e-12]
    order = [i] + [j for j in range(len(dirs)) if j != i]
    return min(near, key=lambda t: (*tuple(sign[j] * t.values[j] for j in order[1:]), sign[i] * t.values[i], t.number))


def summary(rs: ResolvedSpec, opened: Opened) -> dict[str, Any]:
    """best_params.yml: where the search ran, what it optimised, the winner and its parameters."""
    study = opened.study
    winner = pick(study, rs, opened.directions)
    names = [o.metric for o in rs.spec.tune.objective]
    out: dict[str, Any] = {
        "experiment": rs.name,
        "study": study.study_name,
        "storage": opened.storage.shown,
        "objectives": [{"metric": n, "direction": d} for n, d in zip(names, opened.directions, strict=True)],
        "trial": winner.number,
        "values": {n: float(v) for n, v in zip(names, winner.values, strict=True)},
        "params": _plain(winner.params, rs.spec.tune.space),
        "trials": counts(study),
        "epochs": int(sum(t.user_attrs.get("epochs", 0) for t in study.get_trials(deepcopy=False))),
    }
    if rs.spec.tune.multi:
        out["pareto_front"] = [{"trial": t.number, "values": dict(zip(names, map(float, t.values), strict=True)),
                                "params": _plain(t.params, rs.spec.tune.space)}
                               for t in sorted(study.best_trials, key=lambda t: t.number)]
    return out


def _plain(params: dict[str, Any], space: dict[str, Any]) -> dict[str, Any]:
    """Plain YAML values; a stepped float as its grid point (Optuna's 0.1 + 2 * 0.1 is 0.30000000000000004)."""
    out = {}
    for k, v in params.items():
        v = v.item() if isinstance(v, np.generic) else v
        p = space.get(k)
        if isinstance(v, float) and p is not None and p.step is not None:
            v = round(v, 10)
        out[k] = v
    return out


def apply_best(rs: ResolvedSpec, best: dict[str, Any], *, where: str = "best_params.yml") -> ResolvedSpec:
    """The spec the train stage trains: the run's spec (and ``--params``) with the winner's values
    on top, validated like any spec. ``best`` must come from this spec's study."""
    from deeppipe.spec.loader import load_spec
    from deeppipe.tuning.study import study_name

    if not isinstance(best, dict) or not isinstance(best.get("params"), dict):
        raise TrainingError(f"{where} is not a tune stage's output (no params mapping): rerun the tune stage")
    expected = study_name(rs)
    if best.get("study") != expected:
        raise TrainingError(f"{where} comes from study '{best.get('study')}', but this spec searches study "
                            f"'{expected}' (its space, model or data changed since): rerun the tune stage "
                            f"(kedro run --pipeline {rs.name} --tags tune, or dvc repro)")
    clash = sorted(set(rs.overrides) & set(best["params"]))
    if clash:
        log.warning("--params %s are searched by tune: the winner's values are trained", clash)
    # the model trained is the winner's spec, without the search that found it
    overrides = {**rs.overrides, **best["params"], "tune": None}
    return load_spec(rs.file, overrides, check_model=False, check_data=False)
