"""The ensemble stage as plain functions: train the members, fit their combination, return one
model artifact that the evaluate and register stages take as they take a single model.

``train_member`` (one member: Kedro runs one node each, so ``kedro run --nodes`` retrains one and
a parallel runner trains several at once) and ``combine`` (the method's fit on validation or
out-of-fold predictions) are what the Kedro nodes call; ``fit_ensemble`` runs everything in one
process, and is the path of sequential methods (boosting), whose members depend on each other.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from deeppipe.ensemble.members import (
    TrainedMember,
    check_member,
    fit_member,
    member_spec,
    predict_rows,
)
from deeppipe.ensemble.methods import MemberOutputs
from deeppipe.ensemble.plan import MemberPlan, plan_members
from deeppipe.tracking.tracker import NullTracker, Tracker, log_bytes
from deeppipe.training.stage import TrainedModel

if TYPE_CHECKING:
    from deeppipe.data.sources import Samples
    from deeppipe.data.stage import Split
    from deeppipe.spec.loader import ResolvedSpec

log = logging.getLogger(__name__)


def members_of(rs: ResolvedSpec) -> list[MemberPlan]:
    """The members the spec declares, expanded (what the pipeline makes one node each for)."""
    return plan_members(rs.spec, file=rs.file)


def train_member(rs: ResolvedSpec, index: int, samples: Samples, split: Split,
                 previous: TrainedMember | None = None, *, tracker: Tracker | None = None) -> TrainedMember:
    """Member ``index`` of the ensemble, trained (or, from tuning trials, loaded); a snapshot
    run's cycle continues from ``previous``, the member its plan says it comes ``after``."""
    from deeppipe.ensemble.trials import kept_trial

    plan = members_of(rs)[index]
    if plan.after is not None:
        if previous is None:
            raise ValueError(f"member {plan.name} continues from member {plan.after}: pass it as previous")
        init = previous.artifact.state_dict
        return fit_member(rs, plan, samples, split, tracker=tracker, init=init)
    method = rs.spec.ensemble.build_method(file=rs.file)
    if plan.trial is not None:
        artifact = kept_trial(rs, plan.trial)
        return TrainedMember(plan.name, artifact, [], split.train)
    folds = getattr(method, "folds", 0) if method.entry.needs == "oof" else 0
    return fit_member(rs, plan, samples, split, folds=folds, tracker=tracker)


def combine(rs: ResolvedSpec, members: list[TrainedMember], samples: Samples, split: Split, *,
            tracker: Tracker | None = None) -> TrainedModel:
    """Fit the method's combination of trained members and pack them into one artifact."""
    tracker = tracker or NullTracker()
    method = rs.spec.ensemble.build_method(file=rs.file)
    plans = members_of(rs)
    if len(members) != len(plans):
        raise ValueError(f"{len(members)} members given; the spec declares {len(plans)}")
    for plan, member in zip(plans, members):
        check_member(rs, plan, member, samples, split)
    y = samples.targets()
    val = [predict_rows(member_spec(rs, p), m.artifact, samples, split.val) for p, m in zip(plans, members)]
    needs_oof = method.entry.needs == "oof"
    outputs = MemberOutputs(samples.task, val, y[split.val],
                            oof=[m.oof for m in members] if needs_oof else None,
                            y_oof=y[split.train] if needs_oof else None, seed=rs.spec.seed)
    combination = method.combine(outputs)
    return _packed(rs, members, combination, samples, split, tracker)


def fit_ensemble(rs: ResolvedSpec, samples: Samples, split: Split, *, tracker: Tracker | None = None
                 ) -> TrainedModel:
    """Every member and the combination, in this process."""
    tracker = tracker or NullTracker()
    method = rs.spec.ensemble.build_method(file=rs.file)
    if method.entry.sequential:
        from deeppipe.ensemble.boosting import fit_samme

        members, combination = fit_samme(rs, method, members_of(rs), samples, split, tracker=tracker)
        return _packed(rs, members, combination, samples, split, tracker)
    members: list[TrainedMember] = []
    for plan in members_of(rs):
        previous = members[plan.after] if plan.after is not None else None
        members.append(train_member(rs, plan.index, samples, split, previous, tracker=tracker))
    return combine(rs, members, samples, split, tracker=tracker)


def compare(rs: ResolvedSpec, artifact: Any, samples: Samples, split: Split, *,
            tracker: Tracker | None = None) -> dict[str, Any]:
    """Every member and the ensemble on the same test split, and the members' disagreement."""
    from deeppipe.ensemble.compare import compare_members

    return compare_members(rs, artifact, samples, split, tracker=tracker)


def _packed(rs: ResolvedSpec, members: list[TrainedMember], combination: Any, samples: Samples, split: Split,
            tracker: Tracker) -> TrainedModel:
    from deeppipe.ensemble.artifact import pack
    from deeppipe.plotting import figure_png
    from deeppipe.tracking.provenance import data_fingerprint

    name = rs.spec.ensemble.method.name
    artifact = pack(rs.spec.to_dict(), [(m.name, m.artifact) for m in members], combination,
                    {"method": name, "experiment": rs.name, "spec_hash": rs.hash,
                     "mlflow_run_id": getattr(tracker, "run_id", None)})
    # the experiment's data and split (bootstrap members each have their own fingerprint)
    artifact.meta["data_sha256"] = data_fingerprint(samples, split)
    tracker.log_params({"ensemble.method": name, "ensemble.members": len(members),
                        **{f"ensemble.weight.{m.name}": round(float(w), 6)
                           for m, w in zip(members, combination.weights)}})
    log.info("ensemble %s of %d members; weights %s", name, len(members),
             ", ".join(f"{m.name}={w:.3f}" for m, w in zip(members, combination.weights)))
    history = mean_history([m.history for m in members])
    plots: dict[str, bytes] = {}
    if any(m.history for m in members):
        plots["members_curves"] = figure_png(members_figure(members, title=f"{rs.name}: every member's curves"))
        log_bytes(tracker, "members_curves.png", plots["members_curves"], "plots")
    return TrainedModel(artifact, history, plots)


def members_figure(members: list[TrainedMember], title: str) -> Any:
    """Each member's training and validation loss per epoch, side by side (the ensemble's own
    history.json is the members' mean)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key in zip(axes, ("train/loss", "val/loss")):
        for m in members:
            pts = [(h.get("epoch", e), h[key]) for e, h in enumerate(m.history) if key in h]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, label=m.name)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def mean_history(histories: list[list[dict[str, Any]]]) -> list[dict[str, float]]:
    """Per epoch, the members' mean of every series they all logged (the ensemble's curves)."""
    histories = [h for h in histories if h]
    if not histories:
        return []
    out = []
    for e in range(max(len(h) for h in histories)):
        recs = [h[e] for h in histories if e < len(h)]
        keys = set.intersection(*(set(r) for r in recs)) - {"epoch"}
        out.append({"epoch": recs[0].get("epoch", e),
                    **{k: float(np.mean([r[k] for r in recs])) for k in sorted(keys)}})
    return out
