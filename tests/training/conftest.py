"""Fixtures for the training tests: digits as batch sources on the CPU."""

from __future__ import annotations

import pytest
import torch

from deeppipe.data.batches import TensorBatches
from deeppipe.data.task import Task

from .helpers import DIGITS_TASK


@pytest.fixture(scope="session")
def digits_tensors(digits):
    x, y = digits
    return torch.from_numpy(x), torch.from_numpy(y)


@pytest.fixture
def digits_sources(digits_tensors):
    """1,500 training and 297 validation digits, batches of 64."""
    x, y = digits_tensors
    train = TensorBatches(x[:1500], y[:1500], 64, seed=0)
    val = TensorBatches(x[1500:], y[1500:], 512, shuffle=False)
    return train, val


@pytest.fixture
def task() -> Task:
    return DIGITS_TASK
