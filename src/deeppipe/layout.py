"""Where things live: the experiments (``pipelines/*.yml``) and, for each, the files of its stages.

The catalog (``conf/base/catalog.yml``) is the one place that places files: its dataset factories
(``"{experiment}.model"`` ...) are read here for the tools that run outside a Kedro session (dvcgen,
the CLI, the hooks deciding which MLflow run to continue), so no path is written twice.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import yaml

from deeppipe.errors import SpecError, unknown

CATALOG = Path("conf/base/catalog.yml")
SUFFIXES = (".yml", ".yaml")


def experiments_dir(root: Path | None = None) -> Path:
    folder = Path(os.environ.get("DEEPPIPE_PIPELINES_DIR", "pipelines"))
    return folder if root is None or folder.is_absolute() else root / folder


def experiment_files(folder: Path | None = None) -> dict[str, Path]:
    """Every experiment file by name (``x.yml`` and ``x.yaml`` alike); Kedro and dvcgen share this."""
    folder = experiments_dir() if folder is None else folder
    files = sorted(p for p in folder.glob("*") if p.suffix in SUFFIXES and p.is_file()) if folder.is_dir() else []
    out: dict[str, Path] = {}
    for p in files:
        if p.stem in out:
            raise SpecError(f"two experiment files are named '{p.stem}'", file=str(p),
                            expected="one file per experiment name", found=[str(out[p.stem]), str(p)])
        out[p.stem] = p
    return out


def resolve_experiment(target: str, folder: Path | None = None) -> Path:
    """An experiment file from a path or a name (``digits_cnn``)."""
    p = Path(target)
    if p.suffix in SUFFIXES or p.exists():
        return p
    files = experiment_files(folder)
    if target in files:
        return files[target]
    raise unknown("experiment", target, files, file=str(experiments_dir() if folder is None else folder))


@cache
def _factories(catalog: Path) -> dict[str, str]:
    entries = yaml.safe_load(catalog.read_text()) or {}
    return {key.split(".", 1)[1]: spec["filepath"] for key, spec in entries.items()
            if isinstance(spec, dict) and key.startswith("{experiment}.") and "filepath" in spec}


def artefact(experiment: str, name: str, *, root: Path | None = None, **fields: str | int) -> Path:
    """The path of one of an experiment's catalog entries: ``artefact("digits_cnn", "model")``;
    an entry with more fields names them: ``artefact("e", "member_{index}", index=0)``."""
    root = Path.cwd() if root is None else root
    factories = _factories((root / CATALOG).resolve())
    if name not in factories:
        raise unknown("catalog entry", name, factories, file=str(root / CATALOG))
    return root / factories[name].format(experiment=experiment, **fields)


def artefacts(experiment: str, *, root: Path | None = None) -> dict[str, Path]:
    """Every entry with the experiment as its only field (``member_{index}`` is one per member)."""
    root = Path.cwd() if root is None else root
    return {name: artefact(experiment, name, root=root) for name in _factories((root / CATALOG).resolve())
            if "{" not in name}
