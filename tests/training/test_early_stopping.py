"""Early stopping: patience, min_delta, direction, and the best epoch's weights restored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deeppipe.errors import SpecError
from deeppipe.training import fit, predict
from deeppipe.training.early_stopping import BestTracker, direction

from .helpers import mlp, quiet


def test_direction_and_patience_logic():
    assert direction("val/loss") == "min" and direction("val/accuracy") == "max"
    assert direction("val/rmse") == "min" and direction("val/loss", "max") == "max"
    t = BestTracker("val/accuracy", min_delta=0.01, patience=2)
    seq = [0.5, 0.505, 0.52, 0.52, 0.525]
    improved = [t.update(e, {"val/accuracy": v}) for e, v in enumerate(seq)]
    assert improved == [True, False, True, False, False]  # 0.505 and 0.525 are within min_delta
    assert t.best_epoch == 2 and t.should_stop
    t = BestTracker("val/loss", patience=1)
    assert t.update(0, {"val/loss": float("nan")}) is False


def test_stops_and_restores_the_best_epochs_weights(digits_sources, task):
    train, val = digits_sources
    model = mlp(hidden=64)
    # a learning rate high enough to overfit / oscillate so val/loss turns up
    cfg = quiet(
        epochs=30,
        optimizer={"name": "adam", "lr": 0.05},
        early_stopping={"monitor": "val/loss", "patience": 2},
    )
    r = fit(model, train, val, cfg, task)
    losses = [h["val/loss"] for h in r.history]
    assert r.stopped_early and r.epochs_run < 30 and r.restored_best
    assert r.best_epoch == int(np.argmin(losses)) + 1 < r.epochs_run  # epochs count from 1
    assert r.epochs_run - r.best_epoch == 2  # stopped after `patience` bad epochs
    # the model holds the best epoch's weights: its val loss is the best epoch's value
    x, y = val.x, val.y
    out = torch.from_numpy(predict(model, x))
    best = torch.nn.functional.cross_entropy(out, y)
    assert float(best) == pytest.approx(losses[r.best_epoch - 1], rel=1e-5)
    assert float(best) < losses[-1]


def test_monitor_max_metric_and_no_restore(digits_sources, task):
    train, val = digits_sources
    cfg = quiet(
        epochs=30,
        optimizer={"name": "adam", "lr": 0.05},
        early_stopping={"monitor": "val/accuracy", "patience": 2, "restore_best": False},
    )
    r = fit(mlp(hidden=64), train, val, cfg, task)
    accs = [h["val/accuracy"] for h in r.history]
    assert r.stopped_early and r.best_metric == max(accs) and not r.restored_best


def test_bad_monitor_is_a_spec_error(digits_sources, task):
    train, val = digits_sources
    with pytest.raises(SpecError) as err:
        fit(mlp(), train, val, quiet(epochs=2, early_stopping={"monitor": "val/acc"}), task)
    assert "train.early_stopping.monitor" in str(err.value)
    assert "did you mean 'val/accuracy'" in str(err.value)
    with pytest.raises(SpecError, match="no validation set"):
        fit(mlp(), train, None, quiet(epochs=2, early_stopping={}), task)
