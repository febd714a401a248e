"""The base of every spec section: one strict pydantic model, one "name + arguments" type, and
the one translator from pydantic's errors to a SpecError a user can act on.

Each stage declares its own section (``data.config``, ``augment.config``, ``models.config``,
``training.config``, ``evaluation.config``, ``tracking.config``) on these bases; ``spec.schema``
only puts them together.
"""

from __future__ import annotations

import types
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from deeppipe.errors import SpecError, join_path, unknown

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """A spec section: unknown keys are mistakes, assignments are validated too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, data: Any) -> Any:
        if data is None:
            return {}
        return data

    @model_validator(mode="before")
    @classmethod
    def _no_bool_as_number(cls, data: Any) -> Any:
        return no_bool_as_number(cls, data)


def no_bool_as_number(model: type[BaseModel], data: Any) -> Any:
    """pydantic takes ``true`` for 1 in a number field (``epochs: true`` would train one epoch): a
    boolean where the field takes none is handed on as a value every number type refuses, so the
    error names the key."""
    if not isinstance(data, dict):
        return data
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    bad = [k for k, v in data.items() if isinstance(v, bool) and k in fields and not _admits_bool(fields[k].annotation)]
    return {**data, **{k: _Boolean(data[k]) for k in bad}} if bad else data


class _Boolean:
    """A YAML boolean standing where a number or name belongs (what the error's ``found`` shows)."""

    def __init__(self, value: bool) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"{str(self.value).lower()} (a YAML boolean)"


def _admits_bool(annotation: Any) -> bool:
    """Whether a field's type takes a boolean as itself (bool, Any, Literal[True], a union with them)."""
    if annotation is bool or annotation is Any or annotation is None:
        return annotation is not None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _admits_bool(args[0])
    if origin in (typing.Union, types.UnionType):
        return any(_admits_bool(a) for a in args)
    if origin is typing.Literal:
        return any(isinstance(a, bool) for a in args)
    return annotation is object


class Component(BaseModel):
    """A component chosen by name plus that component's own keyword arguments
    (``{name: adamw, lr: 0.002}``); the registry checks the arguments against its signature."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    name: str

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, data: Any) -> Any:
        return no_bool_as_number(cls, {"name": data} if isinstance(data, str) else data)

    def kwargs(self) -> dict[str, Any]:
        """The component's own arguments: the extra keys plus declared fields other than ``name``
        that the section adds for deeppipe itself (subclasses exclude those)."""
        return dict(self.model_extra or {})


def parse_section(model: type[M], raw: Any, *, path: str = "", file: str | None = None,
                  context: dict[str, Any] | None = None) -> M:
    """Validate ``raw`` as ``model``; the first mistake becomes one SpecError at its key path."""
    try:
        return model.model_validate(raw, context={"file": file, **(context or {})})
    except ValidationError as exc:
        raise explain(exc, model, raw, file=file, prefix=path) from None
    except SpecError as err:  # raised by a section's own validator
        raise err.with_context(file=file, prefix=path if not err.path.startswith(path) else "") from None


def explain(exc: ValidationError, model: type[BaseModel], raw: Any, *, file: str | None,
            prefix: str = "") -> SpecError:
    """pydantic's first error, told in the user's terms: the key path as written in the YAML,
    the valid keys for an unknown one, the allowed values for a literal."""
    # an unknown key explains more than the "missing" error it often causes beside it
    errors = sorted(exc.errors(), key=lambda e: e.get("type") != "extra_forbidden")
    err = errors[0]
    loc = _user_loc(err["loc"], raw)
    path = join_path(prefix, *loc) if loc else prefix
    kind = err["type"]
    found = err.get("input", ...)
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(loc[-1])
        return unknown("key", key, fields_at(model, loc[:-1], raw), path=path, file=file)
    if kind == "missing":
        return SpecError("required key is missing", path=path, file=file, expected=f"a value for '{loc[-1]}'")
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        options = [o.strip().strip("'\"") for o in expected.replace(" or ", ",").split(",") if o.strip()]
        err_ = unknown("value", found, options, path=path, file=file)
        return SpecError("value not allowed", path=path, file=file, expected=f"one of {expected}", found=found,
                         suggestion=err_.suggestion)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = [o.strip().strip("'\"") for o in str(ctx.get("expected_tags", "")).split(",")]
        tag = ctx.get("tag", found)
        return unknown("type", tag, tags, path=join_path(path, "type"), file=file)
    if kind in ("model_type", "model_attributes_type", "dict_type") and not isinstance(found, dict):
        return SpecError("expected a mapping of keys", path=path, file=file,
                         expected="key: value pairs", found=found)
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return SpecError(msg[0].lower() + msg[1:] if msg else kind, path=path, file=file, found=found)


def _user_loc(loc: tuple, raw: Any) -> list[str | int]:
    """Drop pydantic's union-member labels (``function-after[...]``, tags) from a location, so it
    reads like the user's keys."""
    out: list[str | int] = []
    node = raw
    for part in loc:
        if isinstance(node, dict):
            if part in node:
                out.append(part)
                node = node[part]
            elif isinstance(part, str) and _is_label(part, node):
                continue
            else:
                out.append(part)
                node = None
        elif isinstance(node, list) and isinstance(part, int):
            out.append(part)
            node = node[part] if 0 <= part < len(node) else None
        elif isinstance(part, str) and _is_label(part, node):
            continue
        else:
            out.append(part)
            node = None
    return out


def _is_label(part: str, node: Any) -> bool:
    if "[" in part or part.endswith("-dict") or part in ("str", "int", "float", "bool", "list", "dict"):
        return True
    return isinstance(node, dict) and node.get("type") == part  # a discriminated union's tag


def fields_at(model: type[BaseModel], loc: list[str | int], raw: Any) -> list[str]:
    """The keys valid at ``loc`` inside ``model`` (for "did you mean")."""
    current: Any = model
    node = raw
    for part in loc:
        if isinstance(current, _Values):  # a mapping of user-chosen keys (blocks by name)
            node = node.get(part) if isinstance(node, dict) else None
            current = _model_in(current.annotation, node)
            continue
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            current = _model_in(current, node)
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        node = node.get(part) if isinstance(node, dict) else None
        current = _model_in(fields[part].annotation, node)
    return list(getattr(current, "model_fields", {}) or {})


class _Values:
    """The value type of a ``dict[str, X]`` field: the next key path part is a user's key."""

    def __init__(self, annotation: Any) -> None:
        self.annotation = annotation


def _model_in(annotation: Any, node: Any) -> Any:
    """The pydantic model inside an annotation (Optional, Union, Annotated, list[...])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _model_in(args[0], node)
    if origin in (typing.Union, types.UnionType):
        models = [m for m in (_model_in(a, node) for a in args) if m is not None and not isinstance(m, _Values)]
        if not models:
            return next((m for m in (_model_in(a, node) for a in args) if isinstance(m, _Values)), None)
        if isinstance(node, dict) and "type" in node:
            for m in models:
                t = getattr(m, "model_fields", {}).get("type")
                if t is not None and node["type"] in typing.get_args(t.annotation):
                    return m
        return models[0] if models else None
    if origin in (list, tuple) and args:
        return _model_in(args[0], node)
    if origin is dict and len(args) == 2:
        return _Values(args[1])
    return None
