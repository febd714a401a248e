"""Two CPU processes on gloo through elastic_launch match one process with the same global batch."""

from __future__ import annotations

import pytest
import torch

from deeppipe.data.batches import TensorBatches
from deeppipe.tracking.tracker import MemoryTracker
from deeppipe.training import TrainConfig, checkpoint_info, fit

from .helpers import max_diff, mlp, quiet

TOLERANCE = 1e-4  # max |w_ddp - w_single| after 3 epochs; docs/training.md states it


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_two_gloo_processes_match_a_single_process_run(digits_tensors, task, tmp_path):
    x, y = digits_tensors
    # 1,201 samples in batches of 64: the last batch (49) splits unevenly, 25 + 24
    train = TensorBatches(x[:1201], y[:1201], 64, seed=3)
    val = TensorBatches(x[1500:], y[1500:], 512, shuffle=False)
    cfg = quiet(
        epochs=3,
        optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9},
        schedule={"name": "cosine"},
        mixup={"alpha": 0.3},
    )
    single = mlp()
    ref = fit(single, train, val, cfg, task, seed=7)

    ddp, tracker = mlp(), MemoryTracker()
    dist_cfg = {**cfg, "distributed": {"nproc_per_node": 2, "backend": "gloo"}}
    r = fit(
        ddp,
        train,
        val,
        dist_cfg,
        task,
        seed=7,
        tracker=tracker,
        checkpoint_dir=tmp_path,
        spec_hash="d",
    )
    assert max_diff(single, ddp) < TOLERANCE
    assert r.epochs_run == 3
    for a, b in zip(ref.history, r.history):
        assert b["train/loss"] == pytest.approx(a["train/loss"], rel=1e-4)  # all ranks' shards
        assert b["val/loss"] == pytest.approx(a["val/loss"], rel=1e-4)
    # rank 0 alone logged (once per epoch, relayed to this process) and checkpointed
    assert [s for s, _ in tracker.metrics] == [1, 2, 3]
    info = checkpoint_info(tmp_path)
    assert info["finished"] and info["epoch"] == 3 and info["spec_hash"] == "d"


def test_worker_errors_come_back_as_clean_messages(monkeypatch, digits_sources, task):
    """A SpecError in a worker is returned (not raised into the launcher's ChildFailedError)
    and the launching process raises it as a TrainingError: no traceback for a user mistake."""
    from deeppipe.errors import SpecError
    from deeppipe.training import TrainingError, distributed

    def bad_rank(*args, **kwargs):
        raise SpecError("metric 'val/f1' is not logged", path="train.early_stopping.monitor")

    monkeypatch.setattr(distributed, "run_rank", bad_rank)
    train, val = digits_sources
    cfg = TrainConfig(**quiet(epochs=1, distributed={"nproc_per_node": 2, "backend": "gloo"}))
    from deeppipe.training.result import FitJob

    out = distributed._worker(FitJob(mlp(), train, val, cfg, task), None)
    assert "train.early_stopping.monitor" in out["error"]

    import torch.distributed.launcher.api as launcher

    monkeypatch.setattr(launcher, "elastic_launch", lambda config, fn: lambda *a: {0: out, 1: out})
    with pytest.raises(TrainingError, match=r"train.early_stopping.monitor"):
        fit(mlp(), train, val, cfg, task)
