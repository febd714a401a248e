"""The zoo's catalogue: one ``deeppipe.registry.ZOO`` entry per ``zoo/*.yml`` file, and reading
a file (its model section, or the facts it carries for people and tools)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from deeppipe.registry import ZOO

_DIR = Path(str(resources.files("deeppipe.models.zoo")))


@dataclass(frozen=True)
class ZooFile:
    """One zoo model: a file written in the same YAML users write (also the examples to copy)."""

    name: str
    path: Path

    def spec(self) -> dict[str, Any]:
        """The model section (a fresh copy: callers may change it)."""
        return copy.deepcopy(_read(self.path))


@cache
def _read(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise ValueError(f"zoo file {path.name} is not a mapping")
    return data


# the files are the catalogue: adding a model is adding a file
for _path in sorted(_DIR.glob("*.yml")):
    ZOO.register(_path.stem, doc=f"zoo/{_path.name}")(ZooFile(_path.stem, _path))


def names() -> list[str]:
    """Every zoo model, sorted."""
    return ZOO.names()


def zoo_file(name: str) -> Path:
    """The YAML file of zoo model ``name``."""
    return ZOO.get(name).path


def load(name: Any, *, path: str = "model.zoo", file: str | None = None) -> dict[str, Any]:
    """The model section of zoo model ``name`` (a fresh copy); an unknown name is a SpecError at
    ``path`` with the closest zoo name."""
    return ZOO.get(name, path=path, file=file).spec()


def info(name: str) -> dict[str, Any]:
    """Description, task, suggested loss, default input and arguments of a zoo model."""
    entry = ZOO.entry(name, path="model.zoo")
    spec = entry.obj.spec()
    return {
        "name": entry.name,
        "description": spec.get("description", ""),
        "task": spec.get("task", "multiclass"),
        "loss": spec.get("loss"),
        "input": spec.get("input"),
        "small_input": spec.get("small_input", spec.get("input")),
        "args": spec.get("args", {}),
        "published_params": spec.get("published_params"),
        "reference": spec.get("reference"),
        "file": str(entry.obj.path),
    }
