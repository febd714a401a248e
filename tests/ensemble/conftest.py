"""Real digits (scikit-learn's 1,797 8x8 images), ingested and split once; tiny members trained
for a few epochs, so every ensemble test runs on real predictions in seconds."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from deeppipe.data.stage import ingest, split
from deeppipe.spec.loader import ResolvedSpec, load_spec

REPO_CONF = Path(__file__).resolve().parents[2] / "conf" / "base"
CNN = {"layers": [{"Conv2d": {"out_channels": 6, "kernel_size": 3, "padding": 1}}, {"ReLU": {}},
                  {"MaxPool2d": {"kernel_size": 2}}, {"Flatten": {}}, {"Linear": {"out_features": 10}}]}
MLP = {"layers": [{"Flatten": {}}, {"Linear": {"out_features": 24}}, {"ReLU": {}}, {"Linear": {"out_features": 10}}]}
BASE: dict[str, Any] = {
    "seed": 5,
    "data": {"source": {"type": "sklearn", "name": "digits"}, "split": {"val": 0.1, "test": 0.2}},
    "model": CNN,
    "train": {"epochs": 2, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.01}, "progress": False},
}


def spec_with(tmp: Path, ensemble: dict[str, Any], name: str = "digits_ens", **sections: Any) -> ResolvedSpec:
    raw = copy.deepcopy(BASE)
    raw.update(copy.deepcopy(sections))
    raw["ensemble"] = ensemble
    folder = tmp / "pipelines"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_spec(path, check_model=False, check_data=False)


@pytest.fixture(scope="session")
def digits() -> tuple[Any, Any]:
    rs = load_spec_dict(BASE)
    samples = ingest(rs.spec)
    return samples, split(rs.spec, samples)


def load_spec_dict(raw: dict[str, Any]) -> ResolvedSpec:
    from deeppipe.spec.loader import validate

    return ResolvedSpec("digits", "pipelines/digits.yml", validate(raw, check_model=False, check_data=False), raw)


@pytest.fixture(scope="session")
def voters(digits: tuple[Any, Any], tmp_path_factory: pytest.TempPathFactory) -> tuple[ResolvedSpec, list[Any]]:
    """Three differently seeded digits CNNs, trained once for every voting test."""
    from deeppipe.ensemble.stage import train_member

    samples, parts = digits
    rs = spec_with(tmp_path_factory.mktemp("voters"), {"method": "soft_voting",
                                                        "members": [{"seed": 1}, {"seed": 2}, {"seed": 3}]})
    return rs, [train_member(rs, i, samples, parts) for i in range(3)]
