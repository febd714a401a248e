"""What the ensemble added: every member and the ensemble scored on the same test split with the
same metrics (``evaluate.metrics``, through the metric registry), and the members' pairwise
disagreement (classification: the share of test samples two members label differently;
regression: the root mean squared difference of their predictions)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from deeppipe.tracking.tracker import NullTracker, Tracker, log_bytes

if TYPE_CHECKING:
    from deeppipe.data.sources import Samples
    from deeppipe.data.stage import Split
    from deeppipe.spec.loader import ResolvedSpec


def disagreement(task: Any, preds: list[np.ndarray]) -> np.ndarray:
    """(M, M) pairwise disagreement of the members' test predictions."""
    m = len(preds)
    out = np.zeros((m, m))
    if task.is_classification or task.per_step:  # the labels, of each step for tagging and CTC
        labels = [p.argmax(axis=-1) for p in preds]
        for i in range(m):
            for j in range(m):
                out[i, j] = float(np.mean(labels[i] != labels[j]))
    else:
        flat = [np.asarray(p, dtype=np.float64).reshape(len(p), -1) for p in preds]
        for i in range(m):
            for j in range(m):
                out[i, j] = float(np.sqrt(np.mean((flat[i] - flat[j]) ** 2)))
    return out


def compare_members(rs: ResolvedSpec, artifact: Any, samples: Samples, split: Split, *,
                    tracker: Tracker | None = None) -> dict[str, Any]:
    """The member-vs-ensemble table (``ensemble_members.json``), logged to the run too."""
    import json

    from deeppipe.augment.apply import eval_rows
    from deeppipe.evaluation.metrics import compute_metrics
    from deeppipe.evaluation.predictor import predictor_for

    tracker = tracker or NullTracker()
    task = samples.task
    te = split.evaluation
    x = eval_rows(rs.spec.augment, samples.x, te, "test")
    y = samples.targets()[te]
    choices = rs.spec.evaluate.choices()
    names = list(artifact.member_names)
    weights = artifact.ensemble["combination"]["weights"]
    rows, preds = [], []
    for i, name in enumerate(names):
        pred = predictor_for(rs.spec, artifact.member(i)).predict(x)
        preds.append(pred)
        scalars, _ = compute_metrics(task, y, pred, choices)
        stacked = artifact.ensemble["combination"]["kind"] == "stack"  # the meta-model weighs them, not one number
        rows.append({"model": name, "weight": None if stacked else float(weights[i]), **scalars})
        tracker.log_metrics({f"{name}/test/{k}": v for k, v in scalars.items()})
    scalars, _ = compute_metrics(task, y, predictor_for(rs.spec, artifact).predict(x), choices)
    rows.append({"model": "ensemble", "weight": None, **scalars})
    keys = [k for k in scalars if all(k in r for r in rows)]
    mean = {k: float(np.mean([r[k] for r in rows[:-1]])) for k in keys}
    matrix = disagreement(task, preds)
    off = matrix[~np.eye(len(names), dtype=bool)]
    out = {"method": artifact.ensemble.get("method"), "evaluated_on": {"split": "test" if len(split.test) else "val",
                                                                        "samples": len(te)},
           "rows": rows, "mean_member": mean,
           "disagreement": {"names": names, "matrix": matrix.round(6).tolist(),
                            "measure": "share of labels that differ" if task.is_classification or task.per_step else "RMS difference",
                            "mean": float(off.mean()) if off.size else 0.0},
           "combination": artifact.ensemble["combination"]}
    tracker.log_metrics({"test/members_mean_disagreement": out["disagreement"]["mean"]})
    log_bytes(tracker, "ensemble_members.json", json.dumps(out, indent=2))
    return out
