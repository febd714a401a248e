"""The ensemble methods a spec can name (``ensemble.method``), registered in
``deeppipe.registry.ENSEMBLES``: each fits how its members are combined (fixed weights, weights
fitted on the validation split, a meta-model on out-of-fold predictions, boosting weights) and
returns a ``Combination``, which ``ensemble.network.EnsembleNetwork`` applies in torch, so an
ensemble is one network: served, exported and scored like a single model.

A method's record: ``tasks`` it fits, ``sequential`` (members trained round by round, not
independently: boosting) and ``needs`` (what fitting the combination reads: ``val`` predictions,
``oof`` out-of-fold predictions, or nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from deeppipe.errors import SpecError
from deeppipe.registry import ENSEMBLES

CLASSIFICATION = ("multiclass", "binary")
REGRESSION = ("regression",)
# per-step tags are combined step by step; CTC is not: members place a label's spike at different
# steps (the alignment is theirs to choose), so averaging per-step posteriors drops labels
# (measured: two members of edit accuracy 0.72 and 0.79 gave 0.49 soft-voted)
STEPS = ("tagging",)


@dataclass
class Combination:
    """How member outputs become the ensemble's: ``kind`` (soft, hard, mean, samme, stack), one
    weight per member, and for stacking the meta-model's layer sizes and weights."""

    kind: str
    weights: list[float]
    layers: list[int] = field(default_factory=list)
    state: dict[str, torch.Tensor] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "weights": [float(w) for w in self.weights], "layers": list(self.layers),
                "info": self.info}


@dataclass
class MemberOutputs:
    """What combining reads: every member's predictions (probabilities or values) on the
    validation split and, for stacking, out of fold on the training split."""

    task: Any
    val: list[np.ndarray]
    y_val: np.ndarray
    oof: list[np.ndarray] | None = None
    y_oof: np.ndarray | None = None
    seed: int = 0


class Method:
    """What every method shares: the task check and fixed or equal weights."""

    combination = "soft"

    def __init__(self, weights: list[float] | None = None) -> None:
        if weights is not None and (not weights or any(not isinstance(w, (int, float)) or isinstance(w, bool)
                                                       or w < 0 for w in weights) or sum(weights) <= 0):
            raise ValueError("weights are non-negative numbers, one per member, not all zero")
        self.weights = None if weights is None else [float(w) for w in weights]

    @property
    def entry(self) -> Any:
        """This method's registry entry (its record: tasks, sequential, needs)."""
        return next(e for e in ENSEMBLES.entries() if e.obj is type(self))

    def check(self, task: Any, *, plans: list[Any], n_train: int, n_val: int, file: str | None = None) -> None:
        """Refuse what a run would fail on: the task, the weights, the split, the members."""
        entry, n_members = self.entry, len(plans)
        if task.kind == "ctc":
            raise SpecError("a CTC model's outputs cannot be combined step by step: each member places a label "
                            "at steps of its own choosing (its alignment), so averaging or voting per step drops "
                            "labels", path="ensemble", file=file, expected="no ensemble: section for a CTC task",
                            found=entry.name)
        if task.kind not in entry.tasks:
            fitting = [e.name for e in ENSEMBLES.entries() if task.kind in e.tasks]
            raise SpecError(f"ensemble method '{entry.name}' does not fit a {task.kind} task",
                            path="ensemble.method.name", file=file, expected=f"one of {', '.join(fitting)}",
                            found=entry.name)
        if self.weights is not None and len(self.weights) != n_members:
            raise SpecError("one weight per member", path="ensemble.method.weights", file=file,
                            expected=f"{n_members} weights", found=self.weights)
        if entry.needs == "val" and n_val == 0:
            raise SpecError(f"'{entry.name}' fits its weights on the validation split (never the test split), "
                            "and this split has none", path="data.split.val", file=file,
                            expected="a validation fraction such as 0.1", found=0)

    def combine(self, outputs: MemberOutputs) -> Combination:
        n = len(outputs.val)
        return Combination(self.combination, self.weights or [1.0] * n)


@ENSEMBLES.register("soft_voting", aliases=("voting", "probability_averaging"),
                    tasks=(*CLASSIFICATION, *STEPS))
class SoftVoting(Method):
    """The (weighted) mean of the members' class probabilities (tagging: of each step's)."""


@ENSEMBLES.register("hard_voting", aliases=("majority_voting", "max_voting"), tasks=(*CLASSIFICATION, *STEPS))
class HardVoting(Method):
    """The class most members predict (weighted votes; ties go to the lower class index, as in
    scikit-learn's VotingClassifier); probabilities are the vote shares. Tagging: per step."""

    combination = "hard"


@ENSEMBLES.register("averaging", aliases=("mean",), tasks=REGRESSION)
class Averaging(Method):
    """The (weighted) mean of the members' predicted values."""

    combination = "mean"


@ENSEMBLES.register("weighted_averaging", tasks=(*CLASSIFICATION, *REGRESSION), needs="val")
class WeightedAveraging(Method):
    """Member weights on the simplex fitted on the validation split: the weighted mean of
    probabilities with the least log loss (classification), of values with the least squared error."""

    def __init__(self) -> None:
        super().__init__(None)

    def combine(self, outputs: MemberOutputs) -> Combination:
        from scipy.optimize import minimize

        preds = np.stack([np.asarray(p, dtype=np.float64).reshape(len(p), -1) for p in outputs.val])  # (M, N, K)
        classify = outputs.task.is_classification
        y = outputs.y_val.astype(np.int64).reshape(-1) if classify else outputs.y_val.reshape(len(outputs.y_val), -1)

        def loss(z: np.ndarray) -> float:
            w = np.exp(z - z.max())
            mix = np.tensordot(w / w.sum(), preds, axes=1)
            if classify:
                return float(-np.log(np.clip(mix[np.arange(len(y)), y], 1e-15, None)).mean())
            return float(((mix - y) ** 2).mean())

        z = minimize(loss, np.zeros(len(preds)), method="Powell", options={"xtol": 1e-4, "ftol": 1e-8}).x
        w = np.exp(z - z.max())
        w = w / w.sum()
        return Combination("soft" if classify else "mean", w.tolist(),
                           info={"fitted_on": "val", "val_loss": loss(z), "equal_weights_val_loss":
                                 loss(np.zeros(len(preds)))})


@ENSEMBLES.register("stacking", tasks=(*CLASSIFICATION, *REGRESSION), needs="oof")
class Stacking(Method):
    """A meta-model on the members' out-of-fold predictions (K-fold training of each member, so
    it never sees a member's prediction on that member's own training rows): logistic regression
    (ridge for regression) by default, or a small network (``meta_model: mlp``)."""

    def __init__(self, folds: int = 5, meta_model: str = "linear", C: float = 1.0,
                 hidden: list[int] | None = None) -> None:
        super().__init__(None)
        if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2:
            raise ValueError("folds must be a whole number of at least 2")
        if meta_model not in ("linear", "logistic_regression", "ridge", "mlp"):
            raise ValueError(f"meta_model is linear (logistic regression / ridge) or mlp, not '{meta_model}'")
        if C <= 0:
            raise ValueError("C (the meta-model's inverse regularisation strength) must be positive")
        self.folds, self.meta_model, self.C = folds, meta_model, float(C)
        self.hidden = [int(h) for h in (hidden or [32])]

    def check(self, task: Any, *, plans: list[Any], n_train: int, n_val: int, file: str | None = None) -> None:
        super().check(task, plans=plans, n_train=n_train, n_val=n_val, file=file)
        fixed = [p for p in plans if p.bootstrap or p.trial is not None or p.snapshot is not None]
        if fixed:
            raise SpecError("stacking trains every member K-fold on the training split for out-of-fold "
                            "predictions: bootstrap samples, snapshots and kept trial models have none",
                            path=fixed[0].path, file=file, expected="model variants ({seed: 1}, {zoo: ...})",
                            found=fixed[0].name)
        if self.folds > n_train:
            raise SpecError("more folds than training samples", path="ensemble.method.folds", file=file,
                            expected=f"2 .. {n_train}", found=self.folds)

    def combine(self, outputs: MemberOutputs) -> Combination:
        from deeppipe.ensemble.stacking import fit_meta_model

        assert outputs.oof is not None and outputs.y_oof is not None, "stacking needs out-of-fold predictions"
        layers, state, info = fit_meta_model(outputs.task, outputs.oof, outputs.y_oof, kind=self.meta_model,
                                             C=self.C, hidden=self.hidden, seed=outputs.seed)
        return Combination("stack", [1.0] * len(outputs.oof), layers, state, info)


@ENSEMBLES.register("samme", aliases=("boosting", "adaboost"), tasks=CLASSIFICATION, sequential=True)
class Samme(Method):
    """SAMME (multi-class AdaBoost): each round trains a member on the training rows resampled by
    the current sample weights, weighs it by alpha = learning_rate * (ln((1 - err) / err) +
    ln(K - 1)) and raises the weights of the rows it got wrong; stops when a member is no better
    than chance (err >= 1 - 1/K). The ensemble predicts argmax of the alpha-weighted votes."""

    combination = "samme"

    def __init__(self, rounds: int = 10, learning_rate: float = 1.0) -> None:
        super().__init__(None)
        if not isinstance(rounds, int) or isinstance(rounds, bool) or not 1 <= rounds <= 100:
            raise ValueError("rounds must be a whole number from 1 to 100")
        if learning_rate <= 0:
            raise ValueError("learning_rate must be positive")
        self.rounds, self.learning_rate = rounds, float(learning_rate)
