"""Dotted key paths into nested YAML data: ``model.layers[7].Dropout.p``.

Used by ``--params`` overrides, by Optuna search spaces and by error messages, so all
three agree on what a path means.
"""

from __future__ import annotations

import re
from typing import Any

from deeppipe.errors import SpecError, closest

_TOKEN = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")


def parse_path(path: str) -> list[str | int]:
    """'model.layers[7].Dropout.p' -> ['model', 'layers', 7, 'Dropout', 'p']."""
    parts: list[str | int] = []
    pos = 0
    text = path.strip()
    while pos < len(text):
        if text[pos] == ".":
            if pos == 0 or text[pos - 1] == "." or pos == len(text) - 1:
                raise SpecError("empty key in a key path", path=path, expected="keys joined by single dots",
                                found=path)
            pos += 1
            continue
        m = _TOKEN.match(text, pos)
        if not m:
            raise SpecError("malformed key path", path=path, expected="keys joined by '.', list indices as [N]", found=path)
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not parts:
        raise SpecError("empty key path", path=path, found=path)
    return parts


def format_path(parts: list[str | int] | tuple[str | int, ...]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def get_path(data: Any, path: str) -> Any:
    node = data
    for i, part in enumerate(parse_path(path)):
        node = _step(node, part, parse_path(path)[: i + 1], create=False)
    return node


def set_path(data: dict, path: str, value: Any, *, file: str | None = None) -> None:
    """Set ``value`` at ``path``; missing mapping keys are created (the schema judges them later)."""
    parts = parse_path(path)
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        node = _step(node, part, parts[: i + 1], create=True, file=file)
    last = parts[-1]
    if isinstance(node, list):
        idx = _index(node, last, parts, file)
        node[idx] = value
    elif isinstance(node, dict):
        node[str(last)] = value
    else:
        raise SpecError(
            "cannot set a key inside a plain value",
            path=format_path(parts[:-1]),
            file=file,
            expected="a mapping or a list",
            found=node,
        )


def _index(node: list, part: str | int, parts: list, file: str | None) -> int:
    try:
        idx = int(part)
    except (TypeError, ValueError):
        raise SpecError("this is a list: index it with [N]", path=format_path(parts), file=file,
                        expected=f"an index 0..{len(node) - 1}", found=part) from None
    if not -len(node) <= idx < len(node):
        raise SpecError("list index out of range", path=format_path(parts), file=file,
                        expected=f"an index 0..{len(node) - 1}", found=idx)
    return idx


def _step(node: Any, part: str | int, parts: list, *, create: bool, file: str | None = None) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, parts, file)]
    if isinstance(node, dict):
        key = str(part)
        if key not in node:
            if not create:
                raise SpecError("no such key", path=format_path(parts), file=file,
                                found=key, suggestion=closest(key, node))
            node[key] = {}
        elif node[key] is None and create:
            node[key] = {}
        return node[key]
    raise SpecError("cannot descend into a plain value", path=format_path(parts[:-1]), file=file,
                    expected="a mapping or a list", found=node)


def flatten(data: Any, prefix: str = "", *, into_lists: bool = True) -> dict[str, Any]:
    """Nested dicts/lists -> {dotted path: leaf value}; empty containers stay as leaves."""
    out: dict[str, Any] = {}
    if isinstance(data, dict) and data:
        for k, v in data.items():
            key = str(k)
            if prefix and re.fullmatch(r"\d+", key):
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else key
            out.update(flatten(v, path, into_lists=into_lists))
    elif isinstance(data, list) and data and into_lists:
        for i, v in enumerate(data):
            out.update(flatten(v, f"{prefix}[{i}]", into_lists=into_lists))
    else:
        out[prefix] = data
    return out
