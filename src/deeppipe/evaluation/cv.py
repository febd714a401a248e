"""``evaluate.cv: {folds: K, stratified: true}``: K-fold cross-validation of any experiment (one
model or an ensemble), every metric's mean and standard deviation over the folds.

The folds split the *training* split (seeded; stratified for classification when asked). Each
fold's model trains on the other K - 1 folds by the train stage's own ``fit_experiment`` (an
ensemble: ``ensemble.stage.fit_ensemble``), early-stops on the validation split as the real run
does, and is scored on the fold it never saw; the test split takes no part. The standard
deviation is numpy's (ddof 0), as scikit-learn's ``cross_val_score(...).std()`` users report it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from deeppipe.tracking.tracker import NullTracker, Tracker, log_bytes

if TYPE_CHECKING:
    from deeppipe.data.sources import Samples
    from deeppipe.data.stage import Split
    from deeppipe.spec.loader import ResolvedSpec

log = logging.getLogger(__name__)


def fold_splits(rs: ResolvedSpec, samples: Samples, split: Split) -> list[tuple[Split, np.ndarray]]:
    """[(the fold model's split, the held-out rows)], one per fold."""
    from sklearn.model_selection import KFold, StratifiedKFold

    from deeppipe.data.stage import Split as SplitT

    cv = rs.spec.evaluate.cv
    train = split.train
    y = samples.targets()[train]
    strat = cv.stratified and samples.task.is_classification
    if strat:
        counts = np.bincount(y.astype(np.int64).reshape(-1))
        strat = bool(counts[counts > 0].min() >= cv.folds)  # too few of a class: plain folds
    splitter = (StratifiedKFold if strat else KFold)(cv.folds, shuffle=True, random_state=rs.spec.seed)
    return [(SplitT(train[keep], split.val, split.test), train[held])
            for keep, held in splitter.split(train, y.reshape(len(y), -1)[:, 0] if strat else None)]


def cross_validate(rs: ResolvedSpec, samples: Samples, split: Split, *, tracker: Tracker | None = None
                   ) -> dict[str, Any]:
    """The fold table and every metric's mean and standard deviation (``cv.json``)."""
    import json

    from deeppipe.augment.apply import eval_rows
    from deeppipe.evaluation.metrics import compute_metrics
    from deeppipe.evaluation.predictor import predictor_for

    tracker = tracker or NullTracker()
    cv = rs.spec.evaluate.cv
    choices = rs.spec.evaluate.choices()
    y = samples.targets()
    rows = []
    for k, (fold_split, held) in enumerate(fold_splits(rs, samples, split)):
        log.info("cross-validation fold %d/%d: %d training rows, %d held out", k + 1, cv.folds,
                 len(fold_split.train), len(held))
        artifact = _fit(rs, samples, fold_split)
        pred = predictor_for(rs.spec, artifact).predict(eval_rows(rs.spec.augment, samples.x, held, "test"))
        scalars, _ = compute_metrics(samples.task, y[held], pred, choices)
        rows.append({"fold": k + 1, "samples": len(held), **scalars})
        tracker.log_metrics({f"cv/{m}": v for m, v in scalars.items()}, step=k + 1)
    keys = [m for m in rows[0] if m not in ("fold", "samples") and all(m in r for r in rows)]
    mean = {m: float(np.mean([r[m] for r in rows])) for m in keys}
    std = {m: float(np.std([r[m] for r in rows])) for m in keys}
    tracker.log_metrics({**{f"cv/{m}_mean": v for m, v in mean.items()}, **{f"cv/{m}_std": v for m, v in std.items()}})
    out = {"folds": cv.folds, "stratified": cv.stratified, "rows": rows, "mean": mean, "std": std}
    log_bytes(tracker, "cv.json", json.dumps(out, indent=2))
    return out


def _fit(rs: ResolvedSpec, samples: Samples, split: Split) -> Any:
    if rs.spec.ensemble is not None:
        from deeppipe.ensemble.stage import fit_ensemble

        return fit_ensemble(rs, samples, split).artifact
    from deeppipe.training.stage import fit_experiment

    return fit_experiment(rs, samples, split).artifact
