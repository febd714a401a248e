"""The ``--params`` parser shared by ``deeppipe`` and ``kedro run`` (deeppipe.cli replaces Kedro's).

``"train.epochs=3,train.optimizer.betas=[0.9, 0.99],model.layers[7].Dropout.p=0.3"`` becomes
``{"train.epochs": 3, "train.optimizer.betas": [0.9, 0.99], "model.layers[7].Dropout.p": 0.3}``:
items are split at commas outside brackets and quotes, keys are dotted key paths, values are
YAML scalars or flow collections, parsed with the same safe loader as the experiment files.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from deeppipe.errors import SpecError
from deeppipe.spec.paths import parse_path
from deeppipe.spec.reading import parse_yaml

_OPEN, _CLOSE = "[{(", "]})"


def split_items(text: str) -> list[str]:
    """Split at top-level commas: ``a=[1,2],b=3`` -> ``['a=[1,2]', 'b=3']``."""
    items, depth, quote, current = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif ch == "," and depth == 0:
            items.append("".join(current))
            current = []
            continue
        current.append(ch)
    items.append("".join(current))
    return [i.strip() for i in items if i.strip()]


def parse_params(values: str | Iterable[str] | None) -> dict[str, Any]:
    """``key.path=value`` items (one string or several) -> {dotted path: value}; a malformed item
    or a bad key path is a SpecError naming it."""
    if values is None:
        return {}
    where = "--params"  # a mistake here is in the command line, not in the experiment file
    texts = [values] if isinstance(values, str) else list(values)
    out: dict[str, Any] = {}
    for text in texts:
        for item in split_items(text):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise SpecError("an override must look like key.path=value", file=where,
                                expected="e.g. train.epochs=3 or train.optimizer.betas=[0.9,0.99]", found=item)
            try:
                parse_path(key)  # refuses empty keys (train..epochs) and malformed indices
            except SpecError as err:
                raise err.with_context(file=where) from None
            value = value.strip()
            try:
                out[key] = parse_yaml(value, file=where) if value else None
            except SpecError as err:
                raise SpecError(err.reason, path=key, file=where, found=value) from None
    return out
