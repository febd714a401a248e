"""The ``tune:`` section against the rest of its spec, so that ``deeppipe validate`` refuses every
search a run would fail on: objectives (registered, on the validation split; a pruner only with
one objective), the sampler and pruner and their arguments, every key path of the
space (each end of each range and each choice is applied to the spec and validated like a
``--params`` override), and conditions (on a known path, able to hold, in sampling order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from deeppipe.errors import SpecError, closest, unknown
from deeppipe.registry import METRICS, PRUNERS, SAMPLERS, metric_direction
from deeppipe.spec.paths import flatten, parse_path, set_path
from deeppipe.tuning.config import MODEL_COSTS, Param, TuneConfig
from deeppipe.tuning.space import _MISSING, _same, grid, value_at

if TYPE_CHECKING:
    from deeppipe.spec.schema import ExperimentSpec

# sections a trial may change; data is read and split once per study, the rest does not train
SEARCHABLE = ("seed", "augment", "model", "train")
MAX_GRID = 100_000  # a grid sampler's points, every combination listed


def entry_path(path: str) -> str:
    return f"tune.space['{path}']"


def directions(tune: TuneConfig, *, file: str | None = None) -> list[str]:
    """'min' / 'max' of each objective: the metrics registry's record unless the section says."""
    out = []
    for i, o in enumerate(tune.objective):
        where = f"tune.objective[{i}]"
        name = o.metric
        if name in MODEL_COSTS:
            out.append("min" if o.direction == "auto" else o.direction)
            continue
        prefix, _, metric = name.rpartition("/")
        if prefix != "val":
            hint = f"val/{metric}" if metric in METRICS else closest(name, [*MODEL_COSTS, "val/loss", "val/accuracy"])
            why = ("tuning on the test split would let it choose the model" if prefix == "test"
                   else "an objective is a validation metric or a model cost")
            raise SpecError(why, path=where, file=file, expected=f"val/<metric> or one of {', '.join(MODEL_COSTS)}",
                            found=name, suggestion=hint)
        out.append(metric_direction(name, o.direction, path=where, file=file))
    return out


def check_tune(raw: dict[str, Any], spec: ExperimentSpec, *, file: str | None, task: Any = None,
               validate: Callable[[dict[str, Any]], Any] | None = None) -> None:
    """Refuse a search that cannot run (one SpecError, at its key path). ``validate`` checks one
    sampled spec dict (``spec.loader.validate`` at the caller's depth); ``task`` the data's task."""
    tune = spec.tune
    if tune is None:
        return
    dirs = directions(tune, file=file)
    _storage(tune, file)
    _objectives_fit(tune, spec, task, file)
    _sampler_and_pruner(tune, spec, dirs, file)
    base = spec.to_dict()
    for path, p in tune.space.items():
        _path_searchable(path, file)
        _conditions(path, p, tune.space, base, file)
    if validate is not None:
        for overrides, path, value in candidates(tune):
            try_sample(raw, overrides, validate, path=path, value=value, file=file)


def _storage(tune: TuneConfig, file: str | None) -> None:
    """A storage URL Optuna can open (its database driver installed), and none that parallel
    workers would corrupt."""
    url = tune.storage
    if url is not None and url.startswith("env:"):
        import os
        import re

        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", url[4:]):
            raise SpecError("env: names an environment variable", path="tune.storage", file=file,
                            expected="env:OPTUNA_STORAGE", found=url)
        url = os.environ.get(url[4:]) or None  # checked where it is set; the run refuses an unset one
    if url is None or url.startswith(("journal:", "file:", "redis://", "rediss://")):
        return
    example = "postgresql://user:password@host:5432/optuna (or journal:<file>)"
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        parsed.get_dialect()
    except Exception as exc:
        scheme = url.split(":", 1)[0]
        raise SpecError(f"not a storage URL Optuna can open ({type(exc).__name__})", path="tune.storage", file=file,
                        expected=example, found=url,
                        suggestion=closest(scheme, ["postgresql", "mysql", "sqlite", "journal"])) from None
    if parsed.get_backend_name() == "sqlite" and tune.workers > 1:
        raise SpecError("SQLite is not safe for parallel workers (Optuna's FAQ)", path="tune.storage", file=file,
                        expected="the default journal file (no tune.storage) or a database server", found=url)


def _objectives_fit(tune: TuneConfig, spec: ExperimentSpec, task: Any, file: str | None) -> None:
    if tune.cv is None and spec.data.split.val == 0:
        raise SpecError("a search scores each trial on the validation split, and there is none", path="data.split.val",
                        file=file, expected="a fraction > 0 (or tune.cv: {folds: 5})", found=0)
    for i, o in enumerate(tune.objective):
        if task is None or o.metric in MODEL_COSTS:
            continue
        entry = METRICS.entry(o.metric.split("/", 1)[1], path=f"tune.objective[{i}]", file=file)
        if task.kind not in entry.tasks:
            raise SpecError(f"metric '{entry.name}' does not apply to a {task.kind} task", path=f"tune.objective[{i}]",
                            file=file, expected=f"a metric for {task.kind}", found=o.metric)
    if tune.pick is not None and not tune.multi:
        raise SpecError("pick chooses among a Pareto front: it needs two or more objectives", path="tune.pick",
                        file=file, found=tune.pick.model_dump())


def _sampler_and_pruner(tune: TuneConfig, spec: ExperimentSpec, dirs: list[str], file: str | None) -> None:
    from deeppipe.tuning.samplers import build_pruner, build_sampler

    s = SAMPLERS.entry(tune.sampler.name, path="tune.sampler.name", file=file)
    if tune.multi and not s.multi_objective:
        options = [e.name for e in SAMPLERS.entries() if e.multi_objective]
        raise SpecError(f"the {s.name} sampler searches one objective; {len(dirs)} are given", path="tune.sampler.name",
                        file=file, expected=f"one of {', '.join(options)}", found=tune.sampler.name)
    points = None
    if s.grid:
        size = 1
        for path, p in tune.space.items():
            n = p.count()
            size *= n or 1
            if size > MAX_GRID:
                raise SpecError(f"the grid has more than {MAX_GRID:,} points", path=entry_path(path), file=file,
                                expected="fewer choices, or a coarser step", found=p.model_dump(by_alias=True))
            if n is None:
                raise SpecError("the grid sampler needs finitely many values", path=entry_path(path), file=file,
                                expected="choices, an int range or a float range with a step", found=p.bounds)
            if p.when:
                raise SpecError("the grid sampler runs every combination once: a conditional value would repeat "
                                "trials", path=join(entry_path(path), "when"), file=file,
                                expected="no conditions with sampler: grid", found=p.when)
        points = grid(tune.space)
    build_sampler(s.name, tune.sampler.kwargs(), seed=0, grid=points, file=file)
    pr = PRUNERS.entry(tune.pruner.name, path="tune.pruner.name", file=file)
    # any val/ objective can be pruned on: a trial computes every objective each epoch (objective.py)
    if pr.name != "none" and tune.multi:
        raise SpecError("Optuna prunes single-objective searches only", path="tune.pruner.name", file=file,
                        expected="none (with several objectives)", found=tune.pruner.name, suggestion="none")
    epochs = tune.epochs or spec.train.epochs
    build_pruner(pr.name, tune.pruner.kwargs(), epochs=epochs * (tune.cv.folds if tune.cv else 1), file=file)


def join(path: str, key: str) -> str:
    return f"{path}.{key}"


def _path_searchable(path: str, file: str | None) -> None:
    try:
        parts = parse_path(path)
    except SpecError as err:
        raise SpecError(err.reason, path=entry_path(path), file=file, expected=err.expected, found=path) from None
    top = str(parts[0])
    if top not in SEARCHABLE:
        from deeppipe.spec.schema import ExperimentSpec

        if top in ExperimentSpec.model_fields:
            why = {"data": "the data are read and split once per study, so every trial sees the same samples",
                   "tune": "the search does not search itself"}.get(top, "it does not change what a trial trains")
            raise SpecError(f"'{top}' cannot be searched: {why}", path=entry_path(path), file=file,
                            expected=f"a key path under {', '.join(SEARCHABLE)}", found=path)
        raise unknown("section", top, SEARCHABLE, path=entry_path(path), file=file)


def _conditions(path: str, p: Param, space: dict[str, Param], base: dict[str, Any], file: str | None) -> None:
    order = list(space)
    for cond, wanted in p.when.items():
        where = join(entry_path(path), f"when['{cond}']")
        options = wanted if isinstance(wanted, list) else [wanted]
        if cond == path:
            raise SpecError("a value cannot depend on itself", path=where, file=file, found=cond)
        if cond in space:
            if order.index(cond) > order.index(path):
                raise SpecError("a condition reads a value searched before it: list the condition's key first",
                                path=where, file=file, expected=f"'{cond}' above '{path}' in tune.space", found=cond)
            other = space[cond]
            for o in options:
                if not _possible(other, o):
                    hint = closest(str(o), [str(c) for c in other.choices]) if other.choices else None
                    raise SpecError("this condition can never hold", path=where, file=file,
                                    expected=f"a value {cond} can take: {_describe(other)}", found=o, suggestion=hint)
            continue
        current = value_at(base, cond)
        if current is _MISSING:
            try:
                parse_path(cond)
            except SpecError as err:
                raise SpecError(err.reason, path=where, file=file, expected=err.expected, found=cond) from None
            raise SpecError("a condition on a key path neither searched nor in the spec", path=where, file=file,
                            expected=f"a key of tune.space ({', '.join(order)}) or of the spec", found=cond,
                            suggestion=closest(cond, [*order, *flatten(base)]))
        if not any(_same(current, o) for o in options):
            raise SpecError(f"this condition never holds: {cond} is {current!r} and is not searched", path=where,
                            file=file, expected=f"{current!r}, or search {cond}", found=wanted)


def _possible(p: Param, value: Any) -> bool:
    if p.choices is not None:
        return any(_same(c, value) for c in p.choices)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    low, high = p.bounds
    return low <= value <= high


def _describe(p: Param) -> str:
    return f"one of {p.choices}" if p.choices is not None else f"{p.kind} in {list(p.bounds)}"


def candidates(tune: TuneConfig) -> list[tuple[dict[str, Any], str | None, Any]]:
    """The samples validation tries: the spec with the trials' epochs, then each end of each range
    and each choice, with the values its conditions need (the rest as the spec has them)."""
    # a trial trains one model: the ensemble (whose {from_trials: topK} members are these trials'
    # kept models) is built after the study, from the file as written
    base: dict[str, Any] = {"tune": None, "ensemble": None}
    if tune.epochs is not None:
        base["train.epochs"] = tune.epochs
    out: list[tuple[dict[str, Any], str | None, Any]] = [(base, None, None)]
    for path, p in tune.space.items():
        needed = _needed(path, tune.space)
        for value in p.extremes():
            out.append(({**base, **needed, path: value}, path, value))
    return out


def _needed(path: str, space: dict[str, Param], seen: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Values of searched keys that ``path``'s conditions (and theirs) require."""
    out: dict[str, Any] = {}
    for cond, wanted in space[path].when.items():
        if cond in space and cond not in seen:
            out.update(_needed(cond, space, seen | {path}))
            out[cond] = wanted[0] if isinstance(wanted, list) else wanted
    return out


def try_sample(raw: dict[str, Any], overrides: dict[str, Any], validate: Callable[[dict[str, Any]], Any], *,
               path: str | None, value: Any, file: str | None) -> Any:
    """Validate ``raw`` with ``overrides``; a refusal names the search entry that produced it."""
    import copy

    try:
        sample = copy.deepcopy(raw)
        for key, v in overrides.items():
            set_path(sample, key, v, file=file)
        return validate(sample)
    except SpecError as err:
        if path is None:
            raise SpecError(f"with the trials' settings ({overrides}): {err.path}: {err.reason}", path="tune",
                            file=file, expected=err.expected, found=err.found, suggestion=err.suggestion) from None
        where = f" at {err.path}" if err.path and err.path != path else ""
        raise SpecError(f"the searched value {value!r} makes the spec invalid{where}: {err.reason}",
                        path=entry_path(path), file=file, expected=err.expected, found=err.found,
                        suggestion=err.suggestion) from None
