"""Training one member: ``training.stage.fit_experiment`` on the member's spec and on the rows its
plan draws (the training split, a bootstrap sample of it, or boosting's weighted resample), plus
K-fold out-of-fold predictions when the method stacks. Predictions go through the evaluation
stage's predictor seam (``evaluation.predictor.predictor_for``), as at test time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deeppipe.data.stage import Split
from deeppipe.ensemble.stacking import FoldProvenance, fold_indices
from deeppipe.tracking.tracker import NullTracker, Tracker

if TYPE_CHECKING:
    from deeppipe.artifact import ModelArtifact
    from deeppipe.data.sources import Samples
    from deeppipe.ensemble.plan import MemberPlan
    from deeppipe.spec.loader import ResolvedSpec

log = logging.getLogger(__name__)


@dataclass
class TrainedMember:
    """A trained member, the rows it trained on (with repeats for a bootstrap sample) and, for
    stacking, its out-of-fold predictions on the training split with the folds' provenance."""

    name: str
    artifact: ModelArtifact
    history: list[dict[str, Any]]
    rows: np.ndarray
    oof: np.ndarray | None = None
    folds: list[FoldProvenance] = field(default_factory=list)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """What the member's node stores beside its model (``<experiment>.member_<i>_fit``)."""
        out = {"rows": self.rows}
        if self.oof is not None:
            out["oof"] = self.oof
            for k, f in enumerate(self.folds):
                out[f"fold_{k}_fit"], out[f"fold_{k}_predicted"] = f.fit_rows, f.predicted_rows
        return out


def save_member(member: TrainedMember, path: str | Path) -> None:
    """A member's folder, swapped in whole: ``model/`` (a model folder), ``fit.npz`` (its rows,
    out-of-fold predictions and folds), ``history.json``."""
    import json

    from deeppipe.artifact import save_artifact
    from deeppipe.files import atomic_dir, save_npz

    with atomic_dir(path) as tmp:
        save_artifact(member.artifact, tmp / "model")
        save_npz(tmp / "fit.npz", member.to_arrays())
        (tmp / "history.json").write_text(json.dumps({"name": member.name, "history": member.history}))


def load_member(path: str | Path) -> TrainedMember:
    import json

    from deeppipe.artifact import load_artifact
    from deeppipe.files import load_npz

    root = Path(path)
    arrays = load_npz(root / "fit.npz")
    record = json.loads((root / "history.json").read_text())
    n_folds = sum(1 for k in arrays if k.endswith("_fit"))
    folds = [FoldProvenance(arrays[f"fold_{k}_fit"], arrays[f"fold_{k}_predicted"]) for k in range(n_folds)]
    return TrainedMember(record["name"], load_artifact(root / "model"), record["history"], arrays["rows"],
                         arrays.get("oof"), folds)


class PrefixTracker:
    """A member's logging inside the ensemble's run: its metrics, params and files under its name
    (``member_0/val/loss``), so members do not overwrite each other's series."""

    def __init__(self, inner: Tracker, prefix: str) -> None:
        self.inner, self.prefix = inner, prefix
        self.run_id = getattr(inner, "run_id", None)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.inner.log_metrics({f"{self.prefix}/{k}": v for k, v in metrics.items()}, step=step)

    def log_params(self, params: dict[str, Any]) -> None:
        self.inner.log_params({f"{self.prefix}.{k}": v for k, v in params.items()})

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.inner.log_artifact(path, "/".join(p for p in ("members", self.prefix, artifact_path) if p))

    def set_tags(self, tags: dict[str, str]) -> None:
        pass  # the run's tags describe the ensemble, not one member

    def log_dataset(self, name: str, features: Any, targets: Any, *, source: str, digest: str,
                    context: str = "training") -> None:
        pass  # the ensemble's data set is logged once, by the ensemble


def predict_rows(rs: ResolvedSpec, artifact: ModelArtifact, samples: Samples, rows: np.ndarray) -> np.ndarray:
    """The member's predictions (probabilities or values) on ``rows``, as evaluation sees them."""
    from deeppipe.augment.apply import eval_rows
    from deeppipe.evaluation.predictor import predictor_for

    if not len(rows):
        return np.zeros((0, artifact.task.num_outputs), dtype=np.float64)
    return predictor_for(rs.spec, artifact).predict(eval_rows(rs.spec.augment, samples.x, rows, "val"))


def member_spec(rs: ResolvedSpec, plan: MemberPlan) -> ResolvedSpec:
    """The member's validated spec, named ``<experiment>.<member>``."""
    from deeppipe.ensemble.plan import parse_member
    from deeppipe.spec.loader import ResolvedSpec

    return ResolvedSpec(name=f"{rs.name}.{plan.name}", file=rs.file, spec=parse_member(plan, file=rs.file),
                        raw=plan.raw)


def check_member(rs: ResolvedSpec, plan: MemberPlan, member: TrainedMember, samples: Samples, split: Split) -> None:
    """A stored member must be the one this spec and data declare: trained by the member's spec
    on the rows its plan draws from this data and split (else another run wrote it)."""
    from deeppipe.files import ArtefactError
    from deeppipe.tracking.provenance import data_fingerprint

    if plan.trial is not None:
        return
    meta = member.artifact.meta
    expected = member_spec(rs, plan).hash
    if meta.get("spec_hash") not in (None, expected):
        raise ArtefactError(f"ensemble member {plan.name} was trained for another spec (hash {meta['spec_hash']}, "
                            f"this member's is {expected}): retrain it (kedro run --pipeline {rs.name} --nodes "
                            f"{rs.name}.member_{plan.index}, or dvc repro)")
    drawn_as_planned = plan.bootstrap or np.array_equal(member.rows, split.train)
    trained_on = data_fingerprint(samples, Split(member.rows, split.val, split.test))
    if not drawn_as_planned or meta.get("data_sha256") not in (None, trained_on):
        raise ArtefactError(f"ensemble member {plan.name} was trained on other data or another split: retrain it "
                            f"(kedro run --pipeline {rs.name} --nodes {rs.name}.member_{plan.index}, or dvc repro)")


def draw_rows(plan: MemberPlan, split: Split, seed: int) -> np.ndarray:
    """The member's training rows: the training split, or a bootstrap sample of it (drawn with
    replacement, the size of the training split, its own seed)."""
    if not plan.bootstrap:
        return split.train
    rng = np.random.default_rng([seed, plan.index])
    return np.sort(rng.choice(split.train, size=len(split.train), replace=True))


def fit_member(rs: ResolvedSpec, plan: MemberPlan, samples: Samples, split: Split, *, folds: int = 0,
               rows: np.ndarray | None = None, tracker: Tracker | None = None,
               init: dict[str, Any] | None = None) -> TrainedMember:
    """Train one member of the ensemble experiment ``rs`` on ``rows`` (default: what its plan
    draws), with ``folds`` K-fold out-of-fold predictions for stacking; ``init`` is the state the
    training starts from (a snapshot run's previous cycle)."""
    from deeppipe.training.stage import fit_experiment

    tracker = tracker or NullTracker()
    mrs = member_spec(rs, plan)
    rows = draw_rows(plan, split, mrs.spec.seed) if rows is None else rows
    mine = Split(rows, split.val, split.test, split.folds)
    log.info("ensemble member %s: %d training rows (%s)", plan.name, len(rows),
             "bootstrap sample" if plan.bootstrap else "the training split")
    oof, provenance = None, []
    if folds:
        oof, provenance = out_of_fold(mrs, plan, samples, mine, folds, seed=rs.spec.seed, tracker=tracker)
    trained = fit_experiment(mrs, samples, mine, tracker=PrefixTracker(tracker, plan.name), init=init)
    return TrainedMember(plan.name, trained.artifact, trained.history, rows, oof, provenance)


def out_of_fold(mrs: ResolvedSpec, plan: MemberPlan, samples: Samples, split: Split, folds: int, *, seed: int,
                tracker: Tracker) -> tuple[np.ndarray, list[FoldProvenance]]:
    """(predictions on every training row by the fold model that did not train on it, provenance).
    The folds are drawn with the experiment's seed, so every member shares them."""
    from deeppipe.training.stage import fit_experiment

    train = split.train
    y = samples.targets()[train]
    task = samples.task
    held_out = fold_indices(train, y, folds, stratify=task.is_classification, seed=seed)
    oof: np.ndarray | None = None
    provenance = []
    for k, held in enumerate(held_out):
        keep = np.ones(len(train), dtype=bool)
        keep[held] = False
        fold_split = Split(train[keep], split.val, split.test)
        fold = fit_experiment(mrs, samples, fold_split, tracker=PrefixTracker(tracker, f"{plan.name}/fold_{k}"))
        pred = predict_rows(mrs, fold.artifact, samples, train[held])
        if oof is None:
            oof = np.zeros((len(train), pred.reshape(len(pred), -1).shape[1]), dtype=np.float64)
        oof[held] = pred.reshape(len(pred), -1)
        provenance.append(FoldProvenance(train[keep], train[held]))
    assert oof is not None
    return oof, provenance
