"""One trial: sample the space, load the sampled spec (validated like any spec), train it with the
train stage (``training.stage.fit_experiment``) and score it on the validation split.

A sample the spec refuses is a SpecError: Optuna records the trial as FAILED with the reason
and the study goes on. The trainer's per-epoch record reaches Optuna through the ``Tracker``
seam (``TrialTracker``), which reports the objective and raises ``TrialPruned`` when the pruner
says so; the trial's epochs are counted there too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna

from deeppipe.errors import SpecError
from deeppipe.tracking.tracker import NullTracker, Tracker
from deeppipe.training.errors import TrainingError
from deeppipe.tuning.config import MODEL_COSTS, TuneConfig
from deeppipe.tuning.space import suggest

if TYPE_CHECKING:
    from deeppipe.artifact import ModelArtifact
    from deeppipe.data.sources import Samples
    from deeppipe.data.stage import Split
    from deeppipe.spec.loader import ResolvedSpec
    from deeppipe.training.stage import TrainedModel

log = logging.getLogger(__name__)


class TrialTracker:
    """The tracker a trial trains with: passes everything on to ``inner`` (its MLflow child run)
    and reports ``key`` of every epoch's record to the Optuna trial, as one point of ``curve``."""

    def __init__(self, inner: Tracker, trial: optuna.Trial, key: str | None, curve: Curve) -> None:
        self.inner, self.trial, self.key, self.curve = inner, trial, key, curve
        self.run_id = getattr(inner, "run_id", None)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.inner.log_metrics(metrics, step)
        if "train/loss" not in metrics:  # not an epoch's record
            return
        self.curve.epochs += 1
        if self.key is None or self.key not in metrics:
            return
        point, value = self.curve.add(float(metrics[self.key]))
        if not np.isfinite(value):
            return
        self.trial.report(value, point)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after {self.curve.epochs} epochs: {self.key} = {value:.4g}")

    def log_params(self, params: dict[str, Any]) -> None:
        self.inner.log_params(params)

    def log_artifact(self, path: Any, artifact_path: str | None = None) -> None:
        self.inner.log_artifact(path, artifact_path)

    def set_tags(self, tags: dict[str, str]) -> None:
        self.inner.set_tags(tags)

    def log_dataset(self, *args: Any, **kwargs: Any) -> None:
        for attempt in range(4):
            try:
                return self.inner.log_dataset(*args, **kwargs)
            except Exception as exc:
                # MLflow checks for the data set, then inserts it: two workers logging the same data
                # at once collide on its unique key; the retry finds the one the other inserted
                if attempt == 3 or not any(s in str(exc) for s in ("UNIQUE constraint", "duplicate key")):
                    raise
                time.sleep(0.2 * (attempt + 1))


@dataclass
class Curve:
    """A trial's intermediate values: one per epoch, or with k-fold cross-validation, at step
    ``fold * epochs + epoch`` the mean over the folds so far of their value at that epoch (the
    pruner compares trials on the fold-averaged curve, at equal amounts of training)."""

    epochs_per_fold: int
    fold: int = 0
    epochs: int = 0  # trained in this trial, every fold together
    folds: list[list[float]] = field(default_factory=lambda: [[]])

    def next_fold(self) -> None:
        self.fold += 1
        self.folds.append([])

    def add(self, value: float) -> tuple[int, float]:
        self.folds[self.fold].append(value)
        e = len(self.folds[self.fold])
        at_e = [f[min(e, len(f)) - 1] for f in self.folds if f]
        return self.fold * self.epochs_per_fold + e, float(np.mean(at_e))


@dataclass
class Context:
    """What every trial of a study shares: the spec as resolved for the run, the data read and
    split once, the section, the objectives' directions and the per-trial services."""

    rs: ResolvedSpec
    samples: Samples
    split: Split
    tune: TuneConfig
    directions: list[str]
    runs: Any = None  # tuning.tracking.TrialRuns, or None when untracked
    keep: Any = None  # tuning.keep.KeepTop, or None
    stamp: Callable[[optuna.Trial], None] | None = None
    folds: list[Split] = field(default_factory=list)
    info: Any = None  # the data's facts (deeppipe.data.sources.peek), read once per study


def objective(ctx: Context) -> Callable[[optuna.Trial], float | list[float]]:
    base = ctx.rs.spec.to_dict()
    epochs = ctx.tune.epochs or ctx.rs.spec.train.epochs
    parts = ctx.folds or [ctx.split]
    watched = ctx.tune.objective[0].metric if not ctx.tune.multi else None
    # every objective computed each epoch: the pruner reads the first, and each is then scored on
    # the epoch whose weights the trial kept (not only metrics the engine logs anyway)
    watch_all = tuple(o.metric for o in ctx.tune.objective if o.metric.startswith("val/"))

    def run(trial: optuna.Trial) -> float | list[float]:
        if ctx.stamp is not None:
            ctx.stamp(trial)
        sample = suggest(trial, ctx.tune.space, base)
        inner = ctx.runs.start(trial) if ctx.runs is not None else NullTracker()
        curve = Curve(epochs)
        tracker = TrialTracker(inner, trial, watched, curve)
        try:
            trs = trial_spec(ctx.rs, sample, ctx.tune, ctx.info)
            scores, trained = [], None
            for k, part in enumerate(parts):
                if k:
                    curve.next_fold()
                trained = fit(trs, ctx.samples, part, tracker, watch=watch_all)
                scores.append(score(trs, trained, ctx.samples, part, ctx.tune))
        except (SpecError, TrainingError) as err:  # FAILED with the reason; the study goes on
            what = "the sampled spec is invalid" if isinstance(err, SpecError) else "training failed"
            log.warning("trial %d: %s: %s", trial.number, what, err)
            trial.set_user_attr("fail_reason", f"{what}: {err}")
            raise
        finally:
            trial.set_user_attr("epochs", curve.epochs)
        values = [float(np.mean([s[o.metric] for s in scores])) for o in ctx.tune.objective]
        if len(parts) > 1:
            for o in ctx.tune.objective:
                trial.set_user_attr(f"cv_std/{o.metric}", float(np.std([s[o.metric] for s in scores])))
                trial.set_user_attr(f"cv_folds/{o.metric}", [float(s[o.metric]) for s in scores])
        if ctx.keep is not None and trained is not None:
            ctx.keep.offer(trial, values, trained.artifact)
        return values if ctx.tune.multi else values[0]

    return run


def trial_spec(rs: ResolvedSpec, sample: dict[str, Any], tune: TuneConfig, info: Any = None) -> ResolvedSpec:
    """The run's spec with the sample on top, validated in full (``load_spec``, then the checks
    against the data, whose facts ``info`` the study read once); a trial trains ``tune.epochs``
    and has no ``tune:`` section of its own."""
    from deeppipe.spec.checks import check_experiment
    from deeppipe.spec.loader import load_spec

    # a trial trains one model, quietly: the search logs one line per trial instead of its epochs
    overrides = {**rs.overrides, **sample, "tune": None, "ensemble": None, "train.progress": False}
    if tune.epochs is not None:
        overrides["train.epochs"] = tune.epochs
    trs = load_spec(rs.file, overrides, check_model=False, check_data=False)
    check_experiment(trs.spec, file=rs.file, info=info)
    return trs


def fit(trs: ResolvedSpec, samples: Samples, split: Split, tracker: Tracker, *, watch: tuple[str, ...] = ()
        ) -> TrainedModel:
    """The train stage, as the train node runs it (no checkpoints: a killed trial is run again; no
    network picture: the final model's run has it), computing ``watch`` every epoch."""
    from deeppipe.training.stage import fit_experiment

    with _quiet("deeppipe.training", "deeppipe.augment"):
        return fit_experiment(trs, samples, split, tracker=tracker, checkpoints=None, watch=watch, picture=False)


class _quiet:
    """The named loggers at WARNING for a while (a trial's per-epoch lines)."""

    def __init__(self, *names: str) -> None:
        self.loggers = [logging.getLogger(n) for n in names]
        self.levels: list[int] = []

    def __enter__(self) -> None:
        self.levels = [lg.level for lg in self.loggers]
        for lg in self.loggers:
            lg.setLevel(max(logging.WARNING, lg.getEffectiveLevel()))

    def __exit__(self, *exc: Any) -> None:
        for lg, level in zip(self.loggers, self.levels, strict=True):
            lg.setLevel(level)


def score(trs: ResolvedSpec, trained: TrainedModel, samples: Samples, split: Split, tune: TuneConfig
          ) -> dict[str, float]:
    """Each objective of the trained model: a validation metric from the record of the epoch
    whose weights it kept (or computed on the validation split when not logged), or a model cost."""
    meta = trained.artifact.meta
    rec = next((r for r in trained.history if r.get("epoch") == meta.get("weights_epoch")),
               trained.history[-1] if trained.history else {})
    out: dict[str, float] = {}
    missing = []
    for o in tune.objective:
        if o.metric in MODEL_COSTS:
            out[o.metric] = model_cost(o.metric, trained.artifact, samples, split)
        elif o.metric in rec:
            out[o.metric] = float(rec[o.metric])
        else:
            missing.append(o.metric)
    if missing:
        out.update(validation_scores(trs, trained.artifact, samples, split, missing))
    return out


def validation_scores(trs: ResolvedSpec, artifact: ModelArtifact, samples: Samples, split: Split,
                      keys: list[str]) -> dict[str, float]:
    """Metrics the engine did not log, scored like the evaluate stage scores (its predictor and
    ``compute_metrics``), on the validation split."""
    from deeppipe.augment.apply import eval_view
    from deeppipe.evaluation.metrics import compute_metrics
    from deeppipe.evaluation.predictor import predictor_for

    va = split.val
    pred = predictor_for(trs.spec, artifact).predict(eval_view(trs.spec.augment, samples.x[va], "val"))
    scalars, _ = compute_metrics(samples.task, samples.targets()[va], pred, [k.split("/", 1)[1] for k in keys])
    return {k: float(scalars.get(k.split("/", 1)[1], float("nan"))) for k in keys}


def model_cost(name: str, artifact: ModelArtifact, samples: Samples, split: Split) -> float:
    import torch

    net = artifact.build().eval()
    if name == "params":
        return float(sum(p.numel() for p in net.parameters() if p.requires_grad))
    x = torch.as_tensor(np.ascontiguousarray(samples.x[split.val[:1]]), dtype=torch.float32)
    times = []
    with torch.inference_mode():
        net(x)  # warm-up
        for _ in range(15):
            t0 = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000.0)
