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
    key = str(name).lower()
    if len(key) >= 3:  # an abbreviation ('acc', 'mom') means the name it starts
        starts = sorted((c for c in lowered if c.startswith(key) and c != key), key=len)
        if starts:
            return lowered[starts[0]]
    hit = difflib.get_close_matches(key, list(lowered), n=1, cutoff=cutoff)
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
        head = f"{self.path}: {self.reason}" if self.path else self.reason
        if self.file:
            head = f"{self.file}: {head}"
        lines = [head]
        if self.expected is not None:
            lines.append(f"  expected: {self.expected}")
        if self.found is not ...:
            lines.append(f"  found:    {_short(self.found)}")
        if self.suggestion:
            lines.append(f"  did you mean '{self.suggestion}'?")
        return "\n".join(lines)

    def with_context(self, *, file: str | None = None, prefix: str = "") -> SpecError:
        """Return the same error under the key path ``prefix``, located in ``file`` unless it
        already names one (a data file it could not read is the better place to point at)."""
        path = join_path(prefix, self.path) if prefix else self.path
        return type(self)(
            self.reason,
            path=path,
            file=self.file or file,
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


def unknown(what: str, name: Any, valid: Iterable[str], *, path: str = "", file: str | None = None,
            listed: Iterable[str] | None = None) -> SpecError:
    """The one "unknown <what> 'x' ... did you mean 'y'?" error: every lookup of a user-given name
    (registry entries, keyword arguments, spec keys, experiment names) reports through it.

    ``valid`` are the names the suggestion is drawn from (aliases included); ``listed`` the ones
    shown as expected (default: ``valid``)."""
    valid = [str(v) for v in valid]
    shown = list(dict.fromkeys(str(v) for v in (listed if listed is not None else valid)))
    if len(shown) > 40:
        expected = f"one of {', '.join(shown[:40])}, ... ({len(shown)} in all)"
    else:
        expected = f"one of {', '.join(shown)}" if shown else "none here"
    return SpecError(f"unknown {what} '{name}'", path=path, file=file, expected=expected, found=name,
                     suggestion=closest(str(name), valid) if isinstance(name, (str, int)) else None)


def join_path(*parts: str | int) -> str:
    """Build a dotted key path: join_path('model', 'layers', 3, 'Conv2d') -> model.layers[3].Conv2d.

    A string part may itself be a path ('model.layers[3]') or an index ('[3]'); empty parts are
    skipped, so join_path(prefix, key) works whether or not there is a prefix."""
    out = ""
    for part in parts:
        if isinstance(part, bool):
            part = str(part)
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "":
            continue
        elif str(part).startswith("["):
            out += str(part)
        else:
            out = f"{out}.{part}" if out else str(part)
    return out
