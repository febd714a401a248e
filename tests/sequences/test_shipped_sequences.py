"""The shipped variable-length sequence experiment, as a user runs it (fewer epochs)."""

from __future__ import annotations

import pytest

from deeppipe.spec.loader import load_spec
from deeppipe.stages import run_experiment
from tests.integration.conftest import REPO

pytestmark = pytest.mark.slow


def test_packed_lstm_classifies_the_trimmed_digit_columns() -> None:
    rs = load_spec(REPO / "pipelines" / "digits_packed_lstm.yml", {"train.epochs": 4})
    run = run_experiment(rs)
    lengths = run.samples.x[:, :, -1].sum(axis=1)
    assert lengths.min() == 2 and lengths.max() == 8  # variable-length: padded to 8 with the mask
    assert run.evaluation.metrics["test"]["accuracy"] >= 0.93  # 0.986 after its 14 epochs (early stopping)
