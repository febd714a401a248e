"""Load an experiment file, apply ``--params`` overrides, validate, and explain mistakes.

Every failure becomes a SpecError naming the file, the dotted key path, what was expected,
what was found and the closest valid key, so a user never reads a pydantic or torch traceback.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from deeppipe.errors import SpecError, closest
from deeppipe.spec.paths import flatten, format_path, set_path
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
        text = json.dumps(self.spec.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def section_hash(self, *sections: str) -> str:
        dumped = self.spec.model_dump(mode="json")
        text = json.dumps({s: dumped.get(s) for s in sections}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def resolved_yaml(self) -> str:
        return yaml.safe_dump(self.spec.model_dump(mode="json", exclude_none=True), sort_keys=False)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a YAML file safely (no tags, nothing evaluated)."""
    p = Path(path)
    if not p.is_file():
        raise SpecError("experiment file not found", file=str(p), expected="an existing .yml file", found=str(p))
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"not valid YAML{where}: {getattr(exc, 'problem', exc)}", file=str(p)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError("the file must hold a mapping of sections", file=str(p),
                        expected="data:, model:, train: ...", found=type(data).__name__)
    return data


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any], *, file: str | None = None) -> dict[str, Any]:
    """Return a copy of ``raw`` with each dotted-path override set (nested dicts are flattened first)."""
    out = copy.deepcopy(raw)
    for path, value in flatten(overrides, into_lists=False).items():
        if not path:
            continue
        top = path.split(".")[0].split("[")[0]
        if top not in ExperimentSpec.model_fields:
            raise SpecError("unknown section in an override", path=path, file=file,
                            expected=f"one of {', '.join(ExperimentSpec.model_fields)}", found=top,
                            suggestion=closest(top, ExperimentSpec.model_fields))
        set_path(out, path, value, file=file)
    return out


def validate(raw: dict[str, Any], *, file: str | None = None, check_model: bool = True,
             check_data: bool = True) -> ExperimentSpec:
    """Validate a spec dict; raise one SpecError for the first mistake found."""
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        raise _explain(exc, raw, file) from None
    except SpecError as err:  # raised by a section's own validator (augment builds its pipelines)
        raise err.with_context(file=file) from None
    import_user_modules(spec.imports, file=file)
    from deeppipe.training import validate_config

    try:  # optimiser, schedule and loss names and arguments, before any data is read
        validate_config(spec.train)
    except SpecError as err:
        raise err.with_context(file=file) from None
    if check_data:
        from deeppipe.data.sources import check_source

        check_source(spec.data.source, file=file)
    if check_model:
        check_model_section(spec, file=file)
    return spec


def check_model_section(spec: ExperimentSpec, *, file: str | None) -> None:
    """Build the network on the meta device (no memory, no initialisation): shape mistakes surface
    before any data is read or any weight is allocated."""
    from deeppipe.data.sources import peek

    info = peek(spec.data.source)
    from deeppipe.models import build_model

    try:
        build_model(spec.model, tuple(info.sample_shape), info.task.num_outputs, file=file, path="model",
                    device="meta")
    except SpecError as err:
        raise err.with_context(file=file) from None


def load_spec(path: str | Path, overrides: dict[str, Any] | None = None, *, check_model: bool = True,
              check_data: bool = True) -> ResolvedSpec:
    """Read, override, validate: the one entry point the CLI, Kedro hooks and nodes share."""
    p = Path(path)
    raw = read_yaml(p)
    merged = apply_overrides(raw, overrides or {}, file=str(p)) if overrides else raw
    spec = validate(merged, file=str(p), check_model=check_model, check_data=check_data)
    return ResolvedSpec(name=p.stem, file=str(p), spec=spec, raw=merged, overrides=dict(overrides or {}))


def import_user_modules(modules: list[str], *, file: str | None = None) -> None:
    """Import the modules a spec lists under ``imports:`` (their decorators register layers, losses ...)."""
    for i, name in enumerate(modules):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise SpecError(f"cannot import module: {exc}", path=f"imports[{i}]", file=file,
                            expected="an importable Python module name", found=name) from None


# --------------------------------------------------------------------- error translation
def _explain(exc: ValidationError, raw: dict[str, Any], file: str | None) -> SpecError:
    err = exc.errors()[0]
    loc = _user_loc(err["loc"], raw)
    path = format_path(loc)
    kind = err["type"]
    found = err.get("input", ...)
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(loc[-1])
        valid = _fields_at(ExperimentSpec, loc[:-1], raw)
        return SpecError(f"unknown key '{key}'", path=path, file=file,
                         expected=f"one of {', '.join(valid)}" if valid else None, found=key,
                         suggestion=closest(key, valid))
    if kind == "missing":
        return SpecError("required key is missing", path=path, file=file,
                         expected=f"a value for '{loc[-1]}'")
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        options = [o.strip().strip("'\"") for o in expected.replace(" or ", ",").split(",") if o.strip()]
        return SpecError("value not allowed", path=path, file=file, expected=f"one of {expected}",
                         found=found, suggestion=closest(str(found), options))
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = ctx.get("expected_tags", "")
        options = [o.strip().strip("'\"") for o in str(tags).split(",")]
        tag = ctx.get("tag", found)
        return SpecError("unknown type", path=f"{path}.type" if path else "type", file=file,
                         expected=f"one of {tags}", found=tag, suggestion=closest(str(tag), options))
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return SpecError(msg[0].lower() + msg[1:] if msg else kind, path=path, file=file, found=found)


def _user_loc(loc: tuple, raw: Any) -> list[str | int]:
    """Drop pydantic's union-member labels from a location so it matches the user's keys."""
    out: list[str | int] = []
    node = raw
    for part in loc:
        if isinstance(node, dict):
            if part in node:
                out.append(part)
                node = node[part]
            elif isinstance(part, str) and _is_union_label(part):
                continue
            else:
                out.append(part)
                node = None
        elif isinstance(node, list) and isinstance(part, int):
            out.append(part)
            node = node[part] if 0 <= part < len(node) else None
        elif _is_union_label(str(part)):
            continue
        else:
            out.append(part)
            node = None
    return out


def _is_union_label(part: str) -> bool:
    return part in ("sklearn", "idx", "image_folder", "csv", "npz") or "[" in part or part.endswith("-dict")


def _fields_at(model: type[BaseModel], loc: list[str | int], raw: Any) -> list[str]:
    """Names of the keys valid at ``loc`` (for "did you mean")."""
    current: Any = model
    node = raw
    for part in loc:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            current = _models_in(current, node)
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        node = node.get(part) if isinstance(node, dict) else None
        current = _models_in(fields[part].annotation, node)
    return list(getattr(current, "model_fields", {}) or {})


def _models_in(annotation: Any, node: Any) -> Any:
    """Pick the pydantic model inside an annotation (Optional, Union, Annotated, list[...])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _models_in(args[0], node)
    if origin in (typing.Union, types.UnionType):
        models = [m for m in (_models_in(a, node) for a in args) if m is not None]
        if isinstance(node, dict) and "type" in node:
            for m in models:
                t = getattr(m, "model_fields", {}).get("type")
                if t is not None and node["type"] in typing.get_args(t.annotation):
                    return m
        return models[0] if models else None
    if origin in (list, tuple) and args:
        return _models_in(args[0], node)
    return None
