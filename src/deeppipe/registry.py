"""Named registries: layers, blocks, losses, optimizers, schedules, metrics, ensemble methods.

Adding a component is one decorated function or class (timm's ``@register_model`` idea).
Lookups of unknown names raise a SpecError with the closest valid name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from deeppipe.errors import SpecError, closest

T = TypeVar("T")


class Registry(Generic[T]):
    """A case-insensitive name -> object map with aliases and helpful errors."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._canonical: dict[str, str] = {}
        self._docs: dict[str, str] = {}

    def register(
        self, name: str | None = None, *, aliases: tuple[str, ...] = (), doc: str | None = None
    ) -> Callable[[T], T]:
        """Decorator: ``@LOSSES.register("huber")`` registers the function or class below it."""

        def deco(obj: T) -> T:
            self.add(name or getattr(obj, "__name__", str(obj)), obj, aliases=aliases, doc=doc)
            return obj

        return deco

    def add(self, name: str, obj: T, *, aliases: tuple[str, ...] = (), doc: str | None = None) -> None:
        for key in (name, *aliases):
            self._items[key.lower()] = obj
            self._canonical[key.lower()] = name
        self._docs[name] = doc or (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def get(self, name: str, *, path: str = "", file: str | None = None) -> T:
        try:
            return self._items[name.lower()]
        except (KeyError, AttributeError):
            raise SpecError(
                f"unknown {self.kind} '{name}'",
                path=path,
                file=file,
                expected=f"one of {', '.join(sorted(self.names()))}",
                found=name,
                suggestion=closest(str(name), self.names(include_aliases=True)),
            ) from None

    def canonical(self, name: str) -> str:
        return self._canonical.get(name.lower(), name)

    def names(self, include_aliases: bool = False) -> list[str]:
        if include_aliases:
            return sorted(set(self._canonical) | set(self._canonical.values()))
        return sorted(set(self._canonical.values()))

    def docs(self) -> dict[str, str]:
        return dict(sorted(self._docs.items()))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self.names())} entries)"


def call_with(obj: Callable[..., Any], kwargs: dict[str, Any], *, path: str, file: str | None = None) -> Any:
    """Call ``obj(**kwargs)`` and turn an unexpected-keyword TypeError into a SpecError."""
    import inspect

    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        sig = None
    if sig is not None and not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        valid = [n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        for key in kwargs:
            if key not in valid:
                raise SpecError(
                    f"unknown argument '{key}'",
                    path=f"{path}.{key}" if path else key,
                    file=file,
                    expected=f"one of {', '.join(v for v in valid if v != 'self')}",
                    found=key,
                    suggestion=closest(key, valid),
                )
    try:
        return obj(**kwargs)
    except (TypeError, ValueError) as exc:
        raise SpecError(str(exc), path=path, file=file, found=kwargs) from None
