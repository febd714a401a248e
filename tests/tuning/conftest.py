"""Tiny real searches: scikit-learn's digits, an MLP that trains an epoch in a few milliseconds,
the tune stage called directly (``tuning.stage.tune``) or through ``kedro run`` / ``deeppipe tune``."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from deeppipe.data.stage import Split, ingest, split
from deeppipe.spec.loader import ResolvedSpec, load_spec

MLP: dict[str, Any] = {
    "description": "digits MLP for tuning tests",
    "seed": 3,
    "data": {"source": {"type": "sklearn", "name": "digits"}, "split": {"val": 0.2, "test": 0.2}},
    "model": {"layers": [{"Flatten": {}}, {"Linear": {"out_features": 32}}, {"ReLU": {}}, {"Dropout": {"p": 0.1}},
                         {"Linear": {"out_features": 10}}]},
    # a deliberately bad default: SGD at 1e-5 learns next to nothing in a few epochs
    "train": {"epochs": 3, "batch_size": 64, "optimizer": {"name": "sgd", "lr": 1.0e-5}, "progress": False},
}


def spec_with(tune: dict[str, Any], **sections: Any) -> dict[str, Any]:
    out = copy.deepcopy(MLP)
    out.update(copy.deepcopy(sections))
    out["tune"] = tune
    return out


def write(tmp: Path, spec: dict[str, Any], name: str = "digits_search") -> Path:
    path = tmp / f"{name}.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def resolved(tmp: Path, spec: dict[str, Any], name: str = "digits_search") -> tuple[ResolvedSpec, Any, Split]:
    rs = load_spec(write(tmp, spec, name))
    samples = ingest(rs.spec)
    return rs, samples, split(rs.spec, samples)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # journal paths are shown relative to the working folder
