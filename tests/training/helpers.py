"""Helpers shared by the training tests."""

from __future__ import annotations

import torch
from torch import nn

from deeppipe.data.task import Task

DIGITS_TASK = Task("multiclass", 10, tuple(str(i) for i in range(10)))


def mlp(seed: int = 0, hidden: int = 32, inputs: int = 64, outputs: int = 10) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, outputs)
    )


def quiet(**kw) -> dict:
    """A train: section with the progress bar off (tests) plus the given keys."""
    return {"progress": False, **kw}


def max_diff(a: nn.Module, b: nn.Module) -> float:
    return max(
        float((x - y).abs().max()) for x, y in zip(a.state_dict().values(), b.state_dict().values())
    )
