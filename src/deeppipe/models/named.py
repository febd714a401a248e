"""Reading "a name, or {name: ..., arguments}" values (``activation:``, ``init:``) the one same way."""

from __future__ import annotations

from typing import Any

from deeppipe.errors import SpecError


def split_named(value: Any, *, what: str, example: str, path: str, file: str | None
                ) -> tuple[str, dict[str, Any]]:
    """``relu`` or ``{name: leaky_relu, negative_slope: 0.2}`` -> (name, arguments), unchecked.

    ``what`` names the kind of value in the message ("an activation"), ``example`` shows one."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        kwargs = dict(value)
        return kwargs.pop("name"), kwargs
    raise SpecError(f"{what} is a name or {{name: ..., <arguments>}}", path=path, file=file,
                    expected=f"e.g. {example}", found=value)
