"""Running a study: open (or resume) it in its storage, run trials until the study's budget is
spent, in this process and in ``tune.workers - 1`` more, and recover the trials of killed ones.

The budget is the study's, not a process's: ``n_trials`` counts every worker's finished trials
(complete, pruned, failed) except failed ones a retry replaces, so a rerun after a crash, a
second machine or ``tune.workers: 4`` all finish the same number of trials. A worker stops when
the budget is used up (running trials of others included) or its ``tune.timeout`` has passed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import socket
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.trial import TrialState

from deeppipe.errors import SpecError
from deeppipe.training.errors import TrainingError
from deeppipe.tuning import storage as st
from deeppipe.tuning.checks import directions
from deeppipe.tuning.objective import Context, objective
from deeppipe.tuning.samplers import build_pruner, build_sampler
from deeppipe.tuning.space import grid, grid_size

if TYPE_CHECKING:
    from deeppipe.data.sources import Samples
    from deeppipe.data.stage import Split
    from deeppipe.spec.loader import ResolvedSpec

log = logging.getLogger(__name__)
# what a study's identity ignores: how long and where it runs, and what no trial reads
_NOT_IDENTITY = ("n_trials", "timeout", "workers", "storage", "study_name", "keep_top", "retries", "heartbeat")
_NOT_TRAINED = ("description", "evaluate", "register", "ensemble")
SKIPPED = "deeppipe.skipped"


class _Surplus(Exception):
    """A trial created after the budget was used up (two workers asked at the same moment)."""


def study_name(rs: ResolvedSpec) -> str:
    """``tune.study_name``, else ``<experiment>-<digest of what the trials train>``: the same
    command resumes the same study; a changed space, model or data starts a new one, while a
    larger ``n_trials`` or another storage does not."""
    tune = rs.spec.tune
    assert tune is not None
    if tune.study_name:
        return tune.study_name
    d = rs.spec.to_dict()
    for key in _NOT_TRAINED:
        d.pop(key, None)
    d["tune"] = {k: v for k, v in d["tune"].items() if k not in _NOT_IDENTITY}
    if tune.epochs is not None:
        d["train"].pop("epochs", None)
    digest = hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{rs.name}-{digest}"


def describe_search(rs: ResolvedSpec) -> str:
    """One line for ``deeppipe validate``: what is searched, how, how long, and under which study."""
    from deeppipe.registry import SAMPLERS

    tune = rs.spec.tune
    assert tune is not None
    size = grid_size(tune.space) if SAMPLERS.entry(tune.sampler.name).grid else None
    budget = tune.budget(size)
    dirs = directions(tune, file=rs.file)
    goal = ", ".join(f"{d} {o.metric}" for o, d in zip(tune.objective, dirs, strict=True))
    how = f"{budget} trials" if budget is not None else "no trial limit"
    if tune.timeout is not None:
        how += f" or {tune.timeout:g} s"
    return (f"{len(tune.space)} value(s), {goal}; {how} of {tune.epochs or rs.spec.train.epochs} epochs; "
            f"{SAMPLERS.canonical(tune.sampler.name)} sampler, {tune.pruner.name} pruner; study {study_name(rs)}")


@dataclass
class Opened:
    study: optuna.Study
    storage: st.Storage
    budget: int | None
    directions: list[str]
    grid_size: int | None
    created: bool = False  # this process created the study (rather than resumed or joined it)


def open_study(rs: ResolvedSpec, folder: Path, *, worker: int = 0) -> Opened:
    """Create the study, or load it (same name in the same storage): a rerun resumes.

    The sampler's seed is ``tune.seed`` for the one process that starts a study on the embedded
    storage (a reproducible search); ``tune.workers`` add their index, and a process that joins a
    database study or resumes one is salted with its own id: samplers seeded alike in two
    processes would propose the same parameters to both."""
    tune = rs.spec.tune
    assert tune is not None
    dirs = directions(tune, file=rs.file)
    seed = tune.seed if tune.seed is not None else rs.spec.seed
    from deeppipe.registry import SAMPLERS

    is_grid = SAMPLERS.entry(tune.sampler.name).grid
    points = grid(tune.space) if is_grid else None
    epochs = (tune.epochs or rs.spec.train.epochs) * (tune.cv.folds if tune.cv else 1)
    sampler = build_sampler(tune.sampler.name, tune.sampler.kwargs(), seed=seed, grid=points, file=rs.file)
    pruner = build_pruner(tune.pruner.name, tune.pruner.kwargs(), epochs=epochs, file=rs.file)
    storage = st.open_storage(tune.storage, folder, heartbeat=tune.heartbeat, retries=tune.retries)
    name = study_name(rs)
    wanted = ["minimize" if d == "min" else "maximize" for d in dirs]
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # deeppipe logs the study and its winner
    try:  # whether this process created the study decides who is its MLflow parent (tuning.tracking)
        study = optuna.create_study(storage=storage.storage, sampler=sampler, pruner=pruner, study_name=name,
                                    directions=wanted)
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(storage=storage.storage, sampler=sampler, pruner=pruner, study_name=name)
        created = False
    found = ["minimize" if d == optuna.study.StudyDirection.MINIMIZE else "maximize" for d in study.directions]
    if found != wanted:
        raise SpecError(f"study '{name}' in {storage.shown} optimises {found}", path="tune.study_name",
                        file=rs.file, expected=f"a study optimising {wanted} (another study_name)", found=name)
    salt = 0 if is_grid else worker  # a grid is shuffled by its seed: every worker needs the same order
    if not salt and not is_grid and (not storage.embedded or study.get_trials(deepcopy=False)):
        salt = zlib.crc32(f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}".encode())
    if salt:
        study.sampler = build_sampler(tune.sampler.name, tune.sampler.kwargs(), seed=(seed + salt) % 2**32,
                                      grid=points, file=rs.file)
    size = grid_size(tune.space) if is_grid else None
    return Opened(study, storage, tune.budget(size), dirs, size, created)


def search(ctx: Context, opened: Opened, *, timeout: float | None) -> int:
    """Run trials in this process until the study's budget is used up; return how many it ran."""
    study = opened.study
    liveness = st.Liveness(opened.storage.workers) if opened.storage.embedded else None
    ran = 0

    def after(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal ran
        ran += 0 if trial.user_attrs.get(SKIPPED) else 1
        _report(trial, ctx)
        _reap(study, liveness, ctx)
        # the budget can be used up only once trial budget - 1 exists; earlier, skip the read of
        # every trial (a database round trip per trial): a worker that asks for one trial too many
        # meets _budget_guard, which ends it unsampled
        if opened.budget is not None and trial.number + 1 >= opened.budget and _spent(study, opened.budget):
            study.stop()

    with liveness if liveness is not None else _nothing():
        if liveness is not None:
            ctx.stamp = lambda trial: liveness.stamp(trial.study, trial._trial_id)
        _reap(study, liveness, ctx)
        if _spent(study, opened.budget):
            return 0
        run = objective(ctx)
        if opened.budget is not None:
            run = _budget_guard(run, opened.budget)
        callbacks: list[Any] = [after] + ([ctx.runs] if ctx.runs is not None else [])
        study.optimize(run, n_trials=None, timeout=timeout,
                       catch=(SpecError, TrainingError, _Surplus), callbacks=callbacks)
    return ran


def _budget_guard(run: Any, budget: int) -> Any:
    """Workers check the budget before asking for a trial, but two may ask at the same moment.
    Trial numbers are given out one by one by the storage, so the trials numbered before this one
    decide: if they already use up the budget, this one ends before sampling anything (FAILED,
    marked skipped, not counted) and its worker stops. A retry of a failed trial always runs. With
    the grid sampler (trial ``n`` gets grid point ``n``) no point is then drawn twice either."""

    def guarded(trial: optuna.Trial) -> Any:
        # fewer trials than the budget come before trial n < budget: only later ones need a look
        if trial.number >= budget and "fixed_params" not in trial.storage.get_trial_system_attrs(trial._trial_id):
            earlier = [t for t in trial.study.get_trials(deepcopy=False)
                       if t.number < trial.number and not t.user_attrs.get(SKIPPED)]
            if st.used(earlier) >= budget:
                trial.set_user_attr(SKIPPED, True)
                trial.study.stop()
                raise _Surplus(f"the study's {budget} trials are taken (trial {trial.number} came too late)")
        return run(trial)

    return guarded


def _report(trial: optuna.trial.FrozenTrial, ctx: Context) -> None:
    """One line per finished trial (its epochs are not logged)."""
    if trial.user_attrs.get(SKIPPED):
        return
    names = [o.metric for o in ctx.tune.objective]
    if trial.values is not None:
        what = ", ".join(f"{n} {v:.4g}" for n, v in zip(names, trial.values, strict=True))
    elif trial.state == TrialState.PRUNED and trial.intermediate_values:
        what = f"{names[0]} {trial.intermediate_values[max(trial.intermediate_values)]:.4g} when pruned"
    else:
        what = str(trial.user_attrs.get("fail_reason") or trial.system_attrs.get("fail_reason") or "")[:200]
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
    log.info("trial %d %s after %s epochs: %s (%s)", trial.number, trial.state.name.lower(),
             trial.user_attrs.get("epochs", 0), what, params)


def _spent(study: optuna.Study, budget: int | None) -> bool:
    if budget is None:
        return False
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(SKIPPED)]
    return st.used(trials) >= budget


def _reap(study: optuna.Study, liveness: st.Liveness | None, ctx: Context) -> None:
    killed = st.reap(study, liveness, ctx.tune.retries)
    if killed and ctx.runs is not None:
        ctx.runs.close_killed(study, killed)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def context(rs: ResolvedSpec, samples: Samples, split: Split, opened: Opened, folder: Path, *,
            parent_run: str | None) -> Context:
    """What every trial of this process shares (the MLflow child runs, the kept models, the folds)."""
    tune = rs.spec.tune
    assert tune is not None
    runs = keep = None
    names = [o.metric for o in tune.objective]
    if parent_run is not None:
        from deeppipe.tuning.tracking import TrialRuns

        runs = TrialRuns(parent_run, names, opened.study.study_name)
    if tune.keep_top:
        from deeppipe.tuning.keep import KeepTop

        first = pick_index(rs)
        order = [first] + [i for i in range(len(names)) if i != first]
        keep = KeepTop(folder / "trials", tune.keep_top, opened.directions, order)
    from deeppipe.data.sources import peek

    return Context(rs, samples, split, tune, opened.directions, runs=runs, keep=keep,
                   folds=cv_folds(rs, samples, split) if tune.cv else [],
                   info=peek(rs.spec.data.source, on_error=rs.spec.data.on_error))


def cv_folds(rs: ResolvedSpec, samples: Samples, split: Split) -> list[Split]:
    """``tune.cv``: k folds of train + val (seeded, stratified for classification when asked);
    each fold's Split trains on the rest and validates on the fold. The test split stays out."""
    from sklearn.model_selection import KFold, StratifiedKFold

    from deeppipe.data.stage import Split as SplitT

    cv = rs.spec.tune.cv
    pool = np.sort(np.concatenate([split.train, split.val]))
    strat = cv.stratified and samples.task.is_classification
    splitter = (StratifiedKFold if strat else KFold)(cv.folds, shuffle=True, random_state=rs.spec.seed)
    y = samples.targets()[pool] if strat else None
    out = []
    for tr, va in splitter.split(pool, y):
        out.append(SplitT(pool[tr], pool[va], split.test))
    return out


def pick_index(rs: ResolvedSpec) -> int:
    tune = rs.spec.tune
    names = [o.metric for o in tune.objective]
    return names.index(tune.pick.objective) if tune.pick is not None and tune.pick.objective else 0


# ---------------------------------------------------------------------------- local workers
def run_workers(ctx: Context, opened: Opened, folder: Path, *, parent_run: str | None) -> int:
    """``tune.workers``: this process and ``workers - 1`` spawned ones search the same study
    (the CPU's threads shared between them); returns the trials this process ran."""
    n = ctx.tune.workers
    if n == 1:
        return search(ctx, opened, timeout=ctx.tune.timeout)
    import mlflow
    import torch

    threads = max(1, (os.cpu_count() or 1) // n)
    mp = multiprocessing.get_context("spawn")
    ready = mp.Barrier(n)  # everyone starts searching together: a worker importing torch gets its share
    args = (ctx.rs.file, ctx.rs.overrides, str(folder), parent_run, mlflow.get_tracking_uri(), ctx.samples,
            ctx.split, threads, ready)
    procs = [mp.Process(target=worker_main, args=(*args, i), name=f"deeppipe-tune-{i}", daemon=False)
             for i in range(1, n)]
    for p in procs:
        p.start()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _wait(ready)
        ran = search(ctx, opened, timeout=ctx.tune.timeout)
    finally:
        torch.set_num_threads(before)
        for p in procs:
            p.join()
    bad = [p.name for p in procs if p.exitcode != 0]
    if bad:
        raise TrainingError(f"tune worker process(es) {', '.join(bad)} failed (exit codes "
                            f"{[p.exitcode for p in procs if p.exitcode != 0]}); the study keeps their finished trials")
    return ran


def _wait(ready: Any) -> None:
    import threading

    try:
        ready.wait(timeout=300)
    except threading.BrokenBarrierError:  # a worker failed to start: the others search without it
        log.warning("a tune worker did not start; searching without it")


def worker_main(file: str, overrides: dict[str, Any], folder: str, parent_run: str | None, tracking_uri: str,
                samples: Samples, split: Split, threads: int, ready: Any, index: int) -> None:
    """A spawned worker: the same spec, data and study; its own trials."""
    import mlflow
    import torch

    from deeppipe.spec.loader import load_spec
    torch.set_num_threads(threads)
    mlflow.set_tracking_uri(tracking_uri)
    rs = load_spec(file, overrides, check_model=False, check_data=False)
    opened = open_study(rs, Path(folder), worker=index)
    ctx = context(rs, samples, split, opened, Path(folder), parent_run=parent_run)
    _wait(ready)
    ran = search(ctx, opened, timeout=ctx.tune.timeout)
    log.info("tune worker %d ran %d trials", os.getpid(), ran)


def counts(study: optuna.Study) -> dict[str, int]:
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(SKIPPED)]
    return {s.name.lower(): sum(1 for t in trials if t.state == s)
            for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
