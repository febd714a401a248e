"""The search space is data: each ``tune.space`` entry maps one-to-one onto a ``trial.suggest_*``
call named by its key path, and a sample is a dict of ``--params``-style overrides.

Conditional entries (``when:``) are suggested only while their conditions hold, in the order the
space lists them, so a trial's parameters are exactly the values its spec uses.
"""

from __future__ import annotations

from typing import Any

import optuna

from deeppipe.spec.paths import get_path
from deeppipe.tuning.config import Param

_MISSING = object()


def suggest(trial: optuna.trial.BaseTrial, space: dict[str, Param], base: dict[str, Any]) -> dict[str, Any]:
    """One sample: {key path: value} for every entry whose conditions hold. ``base`` is the spec
    the sample overrides (a condition on an unsearched path reads its value there)."""
    values: dict[str, Any] = {}
    for path, p in space.items():
        if holds(p, values, space, base):
            values[path] = suggest_one(trial, path, p)
    return values


def suggest_one(trial: optuna.trial.BaseTrial, name: str, p: Param) -> Any:
    if p.choices is not None:
        return trial.suggest_categorical(name, p.choices)
    low, high = p.bounds
    if p.int_ is not None:
        return trial.suggest_int(name, int(low), int(high), step=int(p.step or 1), log=p.log)
    return trial.suggest_float(name, float(low), float(high), step=p.step, log=p.log)


def holds(p: Param, values: dict[str, Any], space: dict[str, Param], base: dict[str, Any]) -> bool:
    """Whether every condition of ``p`` holds for the values sampled so far (or the spec's own)."""
    for path, wanted in p.when.items():
        if path in space:
            current = values.get(path, _MISSING)  # an inactive searched value holds no condition
        else:
            current = value_at(base, path)
        if current is _MISSING or not matches(current, wanted):
            return False
    return True


def matches(value: Any, wanted: Any) -> bool:
    """``when: {k: v}`` holds for ``v``; ``when: {k: [a, b]}`` for either (a name's case ignored)."""
    options = wanted if isinstance(wanted, list) else [wanted]
    return any(_same(value, o) for o in options)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):  # YAML's true is not the number 1
        return a is b
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return a == b


def value_at(raw: dict[str, Any], path: str) -> Any:
    """The spec's value at ``path``, or _MISSING."""
    from deeppipe.errors import SpecError

    try:
        return get_path(raw, path)
    except SpecError:
        return _MISSING


def grid(space: dict[str, Param]) -> dict[str, list[Any]]:
    """Optuna's GridSampler search space: every entry's points (checked finite by validation)."""
    out = {}
    for path, p in space.items():
        pts = p.points()
        if pts is None:
            raise ValueError(f"{path}: a float range without a step has no grid")
        out[path] = pts
    return out


def grid_size(space: dict[str, Param]) -> int:
    n = 1
    for pts in grid(space).values():
        n *= len(pts)
    return n
