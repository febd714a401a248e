"""The YAML examples in docs/models.md build (the docs cannot drift from the code)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import yaml

from deeppipe.models import LAYERS, build_model, register_layer

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"
EXAMPLES = [b for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S) if "model:" in b]


def _scale_layer() -> None:
    if "Scale" in LAYERS:
        return

    @register_layer("Scale")
    class Scale(nn.Module):
        def __init__(self, in_features: int, init: float = 1.0):
            super().__init__()
            self.factor = nn.Parameter(torch.full((in_features,), init))

        def forward(self, x):
            return x * self.factor


@pytest.mark.parametrize("text", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_doc_examples_build(text):
    spec = yaml.safe_load(text)
    if "imports" in spec:
        _scale_layer()
    model = spec["model"]
    shape = tuple(model.get("input", (20,) if "imports" in spec else (3, 16, 16)))
    ends_with_auto = "auto" in text
    net = build_model(model, shape, 10 if ends_with_auto else None)
    out = net(torch.rand(2, *shape))
    assert out.shape[0] == 2


def test_there_are_examples():
    assert len(EXAMPLES) >= 5
