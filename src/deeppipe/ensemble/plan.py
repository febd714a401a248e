"""Members declared once, expanded into the specs they train with.

Each member is the experiment itself with what its entry changes (``ensemble.config``), so it is
validated, trained and scored by exactly the stages a single model goes through: ``validate`` on
its spec at ``deeppipe validate`` time, ``fit_experiment`` at run time.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deeppipe.errors import SpecError, join_path

if TYPE_CHECKING:
    from deeppipe.ensemble.config import EnsembleConfig, MemberConfig
    from deeppipe.spec.schema import ExperimentSpec

# what ``experiment: other`` takes from the other file: how its model is built and trained
TAKEN_FROM_EXPERIMENT = ("imports", "augment", "model", "train")


@dataclass(frozen=True)
class MemberPlan:
    """One member to train: its label, its full spec (no ``ensemble:``), where it was declared,
    and how its training rows are drawn (``bootstrap``: with replacement, the train split's size)."""

    index: int
    name: str
    raw: dict[str, Any]
    path: str
    bootstrap: bool = False
    trial: int | None = None  # rank among the kept tuning trials (from_trials)
    snapshot: int | None = None  # cycle of a snapshot run; cycle k > 0 starts from member ``after``
    after: int | None = None


@dataclass(frozen=True)
class EnsembleShape:
    """What the Kedro pipeline and dvc.yaml need to know of an ensemble before any data is read:
    how many members, whether the method trains them round by round, and for each member the
    member it continues from (a snapshot run's previous cycle), if any."""

    count: int
    sequential: bool
    after: tuple[int | None, ...]


def base_raw(spec: ExperimentSpec) -> dict[str, Any]:
    """The experiment as plain data without its ensemble: what every member starts from."""
    raw = spec.to_dict(exclude_none=True)
    raw.pop("ensemble", None)
    raw.pop("tune", None)
    return raw


def plan_members(spec: ExperimentSpec, *, file: str | None = None) -> list[MemberPlan]:
    """Every member of ``spec.ensemble``, in declaration order, expanded (bagging: n members)."""
    from deeppipe.ensemble.config import member_path

    cfg: EnsembleConfig = spec.ensemble
    base = base_raw(spec)
    plans: list[MemberPlan] = []
    for i, entry in enumerate(cfg.members):
        path = member_path(i)
        if entry.from_trials is not None:
            for rank in range(entry.count or 0):
                plans.append(MemberPlan(len(plans), f"trial_{rank + 1}", base, path, trial=rank))
            continue
        raw = _member_raw(base, entry, file=file, path=path)
        if entry.snapshots is not None:
            cycle = _cycle_raw(raw, entry.snapshots, file=file, path=path)
            first = len(plans)
            for k in range(entry.snapshots):
                one = {**copy.deepcopy(cycle), "seed": (entry.seed if entry.seed is not None else spec.seed) + k}
                plans.append(MemberPlan(len(plans), f"{entry.name or 'snapshot'}_{k}", one, path, snapshot=k,
                                        after=first + k - 1 if k else None))
            continue
        for k in range(entry.count or 1):
            n = len(plans)
            one = copy.deepcopy(raw)
            one["seed"] = entry.seed + k if entry.seed is not None else spec.seed + n
            label = entry.name or ("bag" if entry.bagging else "member")
            name = f"{label}_{k}" if (entry.count or 1) > 1 else (entry.name or f"member_{n}")
            plans.append(MemberPlan(n, name, one, path, bootstrap=entry.bagging is not None))
    names = [p.name for p in plans]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SpecError("two members have the same name", path="ensemble.members", file=file,
                        expected="a different name for every member", found=dup)
    return plans


def _member_raw(base: dict[str, Any], entry: MemberConfig, *, file: str | None, path: str) -> dict[str, Any]:
    from deeppipe.spec.paths import flatten, set_path

    raw = copy.deepcopy(base)
    if entry.experiment is not None:
        raw.update(_from_experiment(entry.experiment, file=file, path=join_path(path, "experiment")))
    if entry.model is not None:
        raw["model"] = copy.deepcopy(entry.model)
    if entry.params:
        for key in entry.params:
            if str(key).split(".")[0].split("[")[0] in ("ensemble", "data", "evaluate", "register", "tune"):
                raise SpecError("a member shares the experiment's data, evaluation and registry",
                                path=join_path(path, "params", str(key)), file=file,
                                expected="a key under seed, imports, augment, model or train", found=key)
        for key, value in flatten(entry.params, into_lists=False).items():
            set_path(raw, key, value, file=file)
    return raw


def _cycle_raw(raw: dict[str, Any], snapshots: int, *, file: str | None, path: str) -> dict[str, Any]:
    """One cycle of a snapshot run (Huang et al. 2017): ``train.epochs / snapshots`` epochs of
    cosine annealing from the learning rate down, the next cycle restarting from this one's
    weights at the full rate; no early stopping (every cycle runs to its end)."""
    train = copy.deepcopy(raw.get("train") or {})
    epochs = int(train.get("epochs", 10))
    if epochs < snapshots or epochs % snapshots:
        raise SpecError("a snapshot run splits train.epochs into equal cycles", path=join_path(path, "snapshots"),
                        file=file, expected=f"a divisor of train.epochs ({epochs})", found=snapshots)
    train.update(epochs=epochs // snapshots, schedule={"name": "cosine"})
    train.pop("early_stopping", None)
    return {**raw, "train": train}


def _from_experiment(name: str, *, file: str | None, path: str) -> dict[str, Any]:
    from deeppipe.layout import experiment_files
    from deeppipe.spec.reading import read_yaml

    folder = Path(file).parent if file else Path("pipelines")
    files = experiment_files(folder)
    if name not in files:
        from deeppipe.errors import unknown

        raise unknown("experiment", name, files, path=path, file=file)
    if file is not None and Path(files[name]).resolve() == Path(file).resolve():
        raise SpecError("a member cannot be the ensemble's own experiment", path=path, file=file,
                        expected="another experiment's name", found=name)
    other = read_yaml(files[name])
    return {k: copy.deepcopy(other[k]) for k in TAKEN_FROM_EXPERIMENT if k in other}


def parse_member(plan: MemberPlan, *, file: str | None = None) -> ExperimentSpec:
    """The member's spec, parsed as an experiment; a mistake is reported at the member's entry."""
    from deeppipe.config import parse_section
    from deeppipe.spec.schema import ExperimentSpec
    from deeppipe.training.checks import validate_config

    try:
        spec = parse_section(ExperimentSpec, plan.raw, file=file)
        validate_config(spec.train, file=file)
    except SpecError as err:
        raise err.with_context(file=file, prefix=plan.path) from None
    return spec


def pipeline_shape(raw: Any) -> EnsembleShape | None:
    """The ``EnsembleShape`` of a raw experiment's ``ensemble:`` section, read without the data (the
    Kedro pipeline has one node per member); None without one, or when the section is broken
    (validation reports that when the run starts)."""
    from deeppipe.config import parse_section
    from deeppipe.ensemble.config import EnsembleConfig
    from deeppipe.registry import ENSEMBLES

    section = raw.get("ensemble") if isinstance(raw, dict) else None
    if section is None:
        return None
    try:
        cfg = parse_section(EnsembleConfig, section, path="ensemble")
    except SpecError:
        return None
    after: list[int | None] = []
    for m in cfg.members:
        start = len(after)
        after += [start + k - 1 if m.snapshots is not None and k else None for k in range(m.count or 0)]
    return EnsembleShape(len(after), bool(ENSEMBLES.entry(cfg.method.name).sequential), tuple(after))
