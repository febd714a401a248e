"""The README's YAML examples parse, and its model examples build."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from deeppipe.models import build_model

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```yaml\n(.*?)```", README, flags=re.S)


def test_there_are_examples() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("block", BLOCKS)
def test_yaml_example_parses(block: str) -> None:
    yaml.safe_load(block)


@pytest.mark.parametrize("block", [b for b in BLOCKS if "layers:" in b and "imports:" not in b])
def test_model_example_builds(block: str) -> None:
    spec = yaml.safe_load(block)["model"]
    net = build_model(spec, (3, 32, 32), 10, device="meta")
    assert net is not None


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.startswith("train:")])
def test_train_example_is_valid(block: str) -> None:
    from deeppipe.training import validate_config

    cfg = validate_config(yaml.safe_load(block)["train"])
    assert cfg.epochs > 0
