"""The model zoo: classic architectures written in the same YAML users write (one file each).

``{zoo: resnet18, num_classes: 10, in_channels: 1, input_size: 32, width: 0.5, dropout: 0.2}``
builds one; the files here are also the examples to copy from.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from deeppipe.errors import SpecError, closest


def _dir() -> Path:
    return Path(str(resources.files(__name__)))


def names() -> list[str]:
    """Every zoo model, sorted."""
    return sorted(p.stem for p in _dir().glob("*.yml"))


def zoo_file(name: str) -> Path:
    return _dir() / f"{name}.yml"


@cache
def _load(name: str) -> dict[str, Any]:
    with open(zoo_file(name), encoding="utf-8") as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise ValueError(f"zoo file {name}.yml is not a mapping")
    return data


def load(name: str, *, path: str = "model.zoo", file: str | None = None) -> dict[str, Any]:
    """The model section of zoo model ``name`` (a fresh copy: callers may change it)."""
    if not isinstance(name, str) or not zoo_file(name.lower()).is_file():
        available = names()
        raise SpecError(
            f"unknown zoo model '{name}'",
            path=path,
            file=file,
            expected=f"one of {', '.join(available)}",
            found=name,
            suggestion=closest(str(name), available),
        )
    return copy.deepcopy(_load(name.lower()))


def info(name: str) -> dict[str, Any]:
    """Description, task, suggested loss, default input and arguments of a zoo model."""
    spec = load(name)
    return {
        "name": name.lower(),
        "description": spec.get("description", ""),
        "task": spec.get("task", "multiclass"),
        "loss": spec.get("loss"),
        "input": spec.get("input"),
        "small_input": spec.get("small_input", spec.get("input")),
        "args": spec.get("args", {}),
        "published_params": spec.get("published_params"),
        "reference": spec.get("reference"),
        "file": str(zoo_file(name.lower())),
    }
