"""SAMME (Zhu, Zou, Rosset & Hastie 2009, "Multi-class AdaBoost"), as scikit-learn's
AdaBoostClassifier computes it, with networks as the weak learners.

A network takes no per-sample weights in deeppipe's training loop, so each round trains on the
training split *resampled* by the current weights (drawn with replacement, its size): AdaBoost by
resampling, the standard way to boost a learner without weighted fitting. The error, the member's
weight and the weight update are scikit-learn's:

    err   = sum(w * miss) / sum(w)            (on the training split, weighted)
    alpha = learning_rate * (ln((1 - err) / err) + ln(K - 1))
    w     = w * exp(alpha * miss)             (renormalised)

A round whose member is no better than chance (err >= 1 - 1/K) is dropped and boosting stops (the
first round failing is an error: there is nothing to boost); a perfect member (err = 0) is kept
with weight 1 and boosting stops, as in scikit-learn.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from deeppipe.ensemble.members import TrainedMember, fit_member, member_spec, predict_rows
from deeppipe.ensemble.methods import Combination
from deeppipe.ensemble.plan import MemberPlan
from deeppipe.errors import SpecError
from deeppipe.tracking.tracker import Tracker

if TYPE_CHECKING:
    from deeppipe.data.sources import Samples
    from deeppipe.data.stage import Split
    from deeppipe.spec.loader import ResolvedSpec

log = logging.getLogger(__name__)


def samme_alpha(err: float, n_classes: int, learning_rate: float = 1.0) -> float:
    return learning_rate * (math.log((1.0 - err) / err) + math.log(n_classes - 1))


def fit_samme(rs: ResolvedSpec, method: Any, learners: list[MemberPlan], samples: Samples, split: Split, *,
              tracker: Tracker) -> tuple[list[TrainedMember], Combination]:
    task = samples.task
    k = max(task.num_classes, 2)
    train = split.train
    y = samples.targets()[train].astype(np.int64).reshape(-1)
    w = np.full(len(train), 1.0 / len(train))
    rng = np.random.default_rng([rs.spec.seed, 7])
    members: list[TrainedMember] = []
    alphas: list[float] = []
    rounds: list[dict[str, float]] = []
    for r in range(method.rounds):
        base = learners[r % len(learners)]
        plan = MemberPlan(r, f"round_{r}", {**base.raw, "seed": int(base.raw.get("seed", 0)) + r}, base.path)
        rows = np.sort(rng.choice(train, size=len(train), replace=True, p=w))
        member = fit_member(rs, plan, samples, split, rows=rows, tracker=tracker)
        miss = predict_rows(member_spec(rs, plan), member.artifact, samples, train).argmax(axis=1) != y
        err = float(np.sum(w * miss) / np.sum(w))
        record = {"round": r, "error": err, "sample_weight_max": float(w.max())}
        if err >= 1.0 - 1.0 / k:
            if not members:
                raise SpecError(f"the first boosting round's member is no better than chance (weighted training "
                                f"error {err:.3f} >= {1 - 1 / k:.3f}): nothing to boost", path="ensemble.members",
                                file=rs.file, expected="a base learner that trains to better than chance",
                                found=err)
            log.info("boosting round %d: error %.4f is no better than chance; stopping", r, err)
            rounds.append({**record, "alpha": 0.0, "kept": 0.0})
            break
        alpha = 1.0 if err <= 0 else samme_alpha(err, k, method.learning_rate)
        members.append(member)
        alphas.append(alpha)
        rounds.append({**record, "alpha": alpha, "kept": 1.0})
        tracker.log_metrics({"boost/error": err, "boost/alpha": alpha}, step=r)
        log.info("boosting round %d: weighted error %.4f, alpha %.4f", r, err, alpha)
        if err <= 0:
            break
        w = w * np.exp(alpha * miss)
        w = w / w.sum()
    return members, Combination("samme", alphas, info={"rounds": rounds, "n_classes": k})
