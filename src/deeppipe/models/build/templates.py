"""``$arg`` templates: model and block arguments, bound to the values given and substituted.

Nothing in the spec is evaluated: ``$name`` placeholders are replaced by the values given for
them, as values (whole-string placeholders keep the value's type) or as text.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from deeppipe.errors import SpecError, join_path, unknown

REQUIRED = object()  # a declared argument without a default
_PLACEHOLDER = re.compile(r"\$(?:\$|\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))")


def substitute(obj: Any, values: dict[str, Any], *, path: str, file: str | None,
               skip: frozenset[str] = frozenset()) -> Any:
    """Replace ``$name`` / ``${name}`` by ``values[name]``: a whole-string placeholder becomes the
    value itself (keeping its type), an embedded one its text; ``$$`` is a literal ``$``. Names in
    ``skip`` are left for a later pass (block arguments). Nothing is evaluated."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            key = substitute(k, values, path=path, file=file, skip=skip) if isinstance(k, str) else k
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise SpecError(f"'{k}' must stand for a name, not a {type(key).__name__}", path=path,
                                file=file, found=key)
            out[key] = substitute(v, values, path=join_path(path, str(key)), file=file, skip=skip)
        return out
    if isinstance(obj, list):
        return [substitute(v, values, path=join_path(path, i), file=file, skip=skip)
                for i, v in enumerate(obj)]
    if not isinstance(obj, str) or "$" not in obj:
        return obj

    def lookup(name: str) -> Any:
        if name in values:
            return values[name]
        raise unknown("parameter", f"${name}", [f"${v}" for v in sorted(values)], path=path, file=file)

    whole = _PLACEHOLDER.fullmatch(obj)
    if whole and obj != "$$":
        name = whole.group(1) or whole.group(2)
        if name in skip:
            return obj
        return copy.deepcopy(lookup(name))

    def repl(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$$" if skip else "$"
        name = m.group(1) or m.group(2)
        if name in skip:
            return m.group(0)
        value = lookup(name)
        if isinstance(value, (dict, list)):
            raise SpecError(f"'${name}' is a {type(value).__name__} and cannot be part of a text",
                            path=path, file=file, found=obj)
        return str(value)

    return _PLACEHOLDER.sub(repl, obj)


def declared_args(declared: Any, path: str, file: str | None) -> dict[str, Any]:
    """A block's (or the model's) ``args:`` as name -> default (``REQUIRED`` for none)."""
    if declared is None:
        return {}
    if isinstance(declared, list) and all(isinstance(a, str) for a in declared):
        return {a: REQUIRED for a in declared}
    if isinstance(declared, dict):
        return {str(k): (REQUIRED if v is None else v) for k, v in declared.items()}
    raise SpecError(
        "args: is a list of names (all required) or a mapping of names to defaults (null = required)",
        path=path, file=file, expected="[out, stride] or {out: null, stride: 1}", found=declared,
    )


def bind_args(declared: Any, given: Any, *, what: str, path: str, decl_path: str,
              file: str | None) -> dict[str, Any]:
    """Match the arguments given to a block (or a model) against the ones it declares."""
    params = declared_args(declared, decl_path, file)
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise SpecError(f"the arguments of {what} must be a mapping", path=path, file=file,
                        expected="{arg: value, ...}", found=given)
    for key in given:
        if key not in params:
            raise unknown("argument", key, params, path=join_path(path, str(key)), file=file)
    out = {}
    for key, default in params.items():
        if key in given:
            out[key] = given[key]
        elif default is REQUIRED:
            raise SpecError(f"{what} needs argument '{key}'", path=path, file=file,
                            expected=f"{key}: <value>", found=dict(given))
        else:
            out[key] = default
    return out
