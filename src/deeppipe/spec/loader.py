"""Read an experiment file safely, apply ``--params`` overrides, validate, and explain mistakes.

``load_spec`` is the one entry point the CLI, the Kedro hook, the nodes and the stage functions
share. Validation has two depths: the spec alone (schema, component names and arguments) and,
with ``check_model``, the spec against its data (``spec.checks``: the task, the sample shape and
the network built on the meta device), which is what ``deeppipe validate`` and the start of
``kedro run`` do, so a spec that validates does not fail after work has started.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deeppipe.config import parse_section
from deeppipe.errors import SpecError, join_path, unknown
from deeppipe.spec.paths import flatten, set_path
from deeppipe.spec.reading import parse_yaml, read_yaml

__all__ = ["ResolvedSpec", "apply_overrides", "load_spec", "parse", "parse_yaml", "read_yaml", "validate"]
from deeppipe.spec.schema import ExperimentSpec


@dataclass(frozen=True)
class ResolvedSpec:
    """A validated experiment: the pydantic spec, the plain dict it came from, and where from."""

    name: str
    file: str
    spec: ExperimentSpec
    raw: dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        """Content hash of the resolved spec: checkpoints and runs are matched by it."""
        text = json.dumps(self.spec.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def resolved_yaml(self) -> str:
        return yaml.safe_dump(self.spec.to_dict(exclude_none=True), sort_keys=False)


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any], *, file: str | None = None) -> dict[str, Any]:
    """Return a copy of ``raw`` with each dotted-path override set (nested dicts are flattened first)."""
    out = copy.deepcopy(raw)
    for path, value in flatten(overrides, into_lists=False).items():
        if not path:
            continue
        top = path.split(".")[0].split("[")[0]
        if top not in ExperimentSpec.model_fields:
            err = unknown("section", top, ExperimentSpec.model_fields, path=path, file=file)
            raise SpecError("unknown section in an override", path=path, file=file, expected=err.expected,
                            found=top, suggestion=err.suggestion)
        set_path(out, path, value, file=file)
    return out


def parse(raw: dict[str, Any], *, file: str | None = None) -> ExperimentSpec:
    """The spec alone: the modules under ``imports:`` first (they register components the
    sections may name), then every section's schema and its component names and arguments."""
    imports = raw.get("imports") if isinstance(raw, dict) else None
    if isinstance(imports, list):
        import_user_modules([m for m in imports if isinstance(m, str)], file=file, check=True)
    spec = parse_section(ExperimentSpec, raw, file=file)
    from deeppipe.training.checks import validate_config

    validate_config(spec.train, file=file)
    return spec


def validate(raw: dict[str, Any], *, file: str | None = None, check_model: bool = True,
             check_data: bool = True) -> ExperimentSpec:
    """Validate a spec dict; raise one SpecError for the first mistake found.

    ``check_data``: the data path exists. ``check_model``: everything a run needs from the data
    and the network agrees with the spec (reads the data's shape and task, builds on meta)."""
    spec = parse(raw, file=file)
    if spec.model.pretrained is not None:  # images of another size: resized to the pretrained network's
        from deeppipe.spec.source_size import with_source_size

        spec = with_source_size(spec, file=file)
    if check_data or check_model:
        from deeppipe.data.sources import check_source

        check_source(spec.data.source, file=file)
    if check_model:
        from deeppipe.spec.checks import check_experiment

        check_experiment(spec, file=file)
    validate_search(raw, spec, file=file, check_model=check_model)
    return spec


def validate_search(raw: dict[str, Any], spec: ExperimentSpec, *, file: str | None, check_model: bool) -> None:
    """The ``tune:`` section against its spec: each sample a search may draw is validated at the
    same depth (``check_model``: against the data, the network built on meta)."""
    if spec.tune is None:
        return
    from deeppipe.tuning.checks import check_tune

    task = None
    if check_model:
        from deeppipe.data.sources import peek

        task = peek(spec.data.source, spec.data.on_error).task
    check_tune(raw, spec, file=file, task=task, validate=lambda sample: validate(
        sample, file=file, check_model=check_model, check_data=False))


def load_spec(path: str | Path, overrides: dict[str, Any] | None = None, *, check_model: bool = True,
              check_data: bool = True) -> ResolvedSpec:
    """Read, override, validate: the one entry point the CLI, Kedro hooks and nodes share."""
    p = Path(path)
    raw = read_yaml(p)
    merged = apply_overrides(raw, overrides or {}, file=str(p)) if overrides else raw
    spec = validate(merged, file=str(p), check_model=check_model, check_data=check_data)
    return ResolvedSpec(name=p.stem, file=str(p), spec=spec, raw=merged, overrides=dict(overrides or {}))


def import_user_modules(modules: list[str], *, file: str | None = None, check: bool = False) -> None:
    """Import the modules a spec lists under ``imports:`` (their decorators register layers, losses ...)."""
    import re

    for i, name in enumerate(modules):
        path = join_path("imports", i)
        if check and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", name):
            raise SpecError("not an absolute module name", path=path, file=file,
                            expected="a dotted module name such as my_package.layers", found=name)
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise SpecError(f"cannot import module: {exc}", path=path, file=file,
                            expected="an importable Python module name", found=name) from None
