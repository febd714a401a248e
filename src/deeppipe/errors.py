"""One error type for every user mistake, so the CLI and Kedro can print it without a traceback.

A SpecError names the file, the dotted key path, what was expected, what was found and,
when a close valid name exists, suggests it ("did you mean 'train'?").
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import click


def closest(name: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The candidate nearest to ``name`` (case-insensitive), or None if nothing is close."""
    cands = list(dict.fromkeys(str(c) for c in candidates))
    lowered = {c.lower(): c for c in cands}
    hit = difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[hit[0]] if hit else None


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SpecError(click.ClickException):
    """A mistake in an experiment spec (or in a value given on the command line).

    Subclassing ``click.ClickException`` makes both ``deeppipe`` and ``kedro`` print the
    message and exit with status 1 instead of showing a traceback.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        file: str | None = None,
        expected: str | None = None,
        found: Any = ...,
        suggestion: str | None = None,
        candidates: Iterable[str] | None = None,
    ) -> None:
        self.reason = message
        self.path = path
        self.file = file
        self.expected = expected
        self.found = found
        if suggestion is None and candidates is not None and found is not ...:
            suggestion = closest(str(found), candidates)
        self.suggestion = suggestion
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.file or "<spec>"
        head = f"{where}: {self.path}: {self.reason}" if self.path else f"{where}: {self.reason}"
        lines = [head]
        if self.expected is not None:
            lines.append(f"  expected: {self.expected}")
        if self.found is not ...:
            lines.append(f"  found:    {_short(self.found)}")
        if self.suggestion:
            lines.append(f"  did you mean '{self.suggestion}'?")
        return "\n".join(lines)

    def with_context(self, *, file: str | None = None, prefix: str = "") -> SpecError:
        """Return the same error located in ``file`` under the key path ``prefix``."""
        path = self.path
        if prefix:
            path = f"{prefix}.{path}" if path and not path.startswith("[") else f"{prefix}{path}"
        return SpecError(
            self.reason,
            path=path,
            file=file or self.file,
            expected=self.expected,
            found=self.found,
            suggestion=self.suggestion,
        )

    def __str__(self) -> str:  # click uses .message; tests and logs use str()
        return self._render()

    @property
    def message(self) -> str:  # type: ignore[override]
        return self._render()

    @message.setter
    def message(self, _value: str) -> None:  # click assigns it in __init__
        pass


def join_path(*parts: str | int) -> str:
    """Build a dotted key path: join_path('model', 'layers', 3, 'Conv2d') -> model.layers[3].Conv2d."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "":
            continue
        else:
            out = f"{out}.{part}" if out else str(part)
    return out
