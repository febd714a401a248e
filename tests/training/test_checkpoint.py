"""Checkpoints: atomic, complete, refused across specs, and a SIGKILLed run resumes exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from deeppipe.tracking.tracker import MemoryTracker
from deeppipe.training import TrainingError, checkpoint_info, fit
from tests.trackers import Crash

from .helpers import max_diff, mlp, quiet

SCRIPT = Path(__file__).with_name("resume_script.py")
CFG = quiet(
    epochs=4,
    optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9},
    schedule={"name": "step", "step_size": 1, "gamma": 0.5},
    checkpoint={"every": 1},
)




def test_checkpoint_contents_and_info(tmp_path, digits_sources, task):
    train, val = digits_sources
    assert checkpoint_info(tmp_path) is None and checkpoint_info(None) is None
    fit(mlp(), train, val, {**CFG, "epochs": 2}, task, checkpoint_dir=tmp_path, spec_hash="h1")
    info = checkpoint_info(tmp_path)
    assert info["epoch"] == 2 and info["spec_hash"] == "h1" and info["finished"] is True
    state = torch.load(tmp_path / "last.pt", weights_only=True)  # no pickled code inside
    assert {
        "model",
        "optimizer",
        "schedule",
        "scaler",
        "rng",
        "epoch",
        "best_metric",
        "spec_hash",
        "history",
    } <= set(state)
    assert state["schedule"]["main"]["last_epoch"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # atomic writes


def test_crash_and_resume_matches_uninterrupted(tmp_path, digits_sources, task):
    train, val = digits_sources
    ref = mlp()
    fit(ref, train, val, CFG, task, seed=4)
    model = mlp()
    with pytest.raises(KeyboardInterrupt):
        fit(
            model,
            train,
            val,
            CFG,
            task,
            tracker=Crash(at=3),
            checkpoint_dir=tmp_path,
            seed=4,
            spec_hash="h",
        )
    assert checkpoint_info(tmp_path)["epoch"] == 2  # epoch 3 logged, crash before its save
    tracker = MemoryTracker()
    resumed = mlp(seed=99)  # different init: everything must come from the checkpoint
    result = fit(
        resumed,
        train,
        val,
        CFG,
        task,
        tracker=tracker,
        checkpoint_dir=tmp_path,
        seed=4,
        spec_hash="h",
    )
    assert result.resumed_from == 2 and result.epochs_run == 4
    assert [s for s, _ in tracker.metrics] == [3, 4]  # only the missing epochs are logged
    assert max_diff(ref, resumed) == 0.0
    # a finished run is not trained again
    again = fit(
        mlp(seed=5),
        train,
        val,
        CFG,
        task,
        tracker=(t2 := MemoryTracker()),
        checkpoint_dir=tmp_path,
        seed=4,
        spec_hash="h",
    )
    assert again.epochs_run == 4 and t2.metrics == []


def test_checkpoint_from_another_spec_is_refused(tmp_path, digits_sources, task):
    train, val = digits_sources
    fit(mlp(), train, val, {**CFG, "epochs": 1}, task, checkpoint_dir=tmp_path, spec_hash="old")
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(TrainingError) as err:
        fit(mlp(), train, val, {**CFG, "epochs": 1}, task, checkpoint_dir=tmp_path, spec_hash="new")
    assert "different spec" in str(err.value) and "not loaded" in str(err.value)
    assert (tmp_path / "last.pt").read_bytes() == before
    restart = {**CFG, "epochs": 1, "checkpoint": {"on_mismatch": "restart"}}
    r = fit(mlp(), train, val, restart, task, checkpoint_dir=tmp_path, spec_hash="new")
    assert r.resumed_from is None and checkpoint_info(tmp_path)["spec_hash"] == "new"


class NanAfter(nn.Module):
    """A real MLP whose output turns NaN from forward call ``at`` on (a diverging run)."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.net, self.calls, self.at = mlp(), 0, at

    def forward(self, x):
        if self.training:
            self.calls += 1
        out = self.net(x)
        return out * float("nan") if self.training and self.calls > self.at else out


def test_non_finite_loss_stops_naming_epoch_and_step(tmp_path, digits_sources, task):
    train, val = digits_sources  # 24 batches per epoch
    model = NanAfter(at=24 * 2 + 5)
    with pytest.raises(TrainingError) as err:
        fit(model, train, val, CFG, task, checkpoint_dir=tmp_path, spec_hash="h")
    msg = str(err.value)
    assert "nan in epoch 3" in msg and "step 5 " in msg and "last good checkpoint (after epoch 2)" in msg
    info = checkpoint_info(tmp_path)
    assert info["epoch"] == 2 and not info["finished"]
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_out_of_memory_names_the_batch_size(digits_sources, task):
    class Oom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(64, 10)

        def forward(self, x):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    train, val = digits_sources
    with pytest.raises(TrainingError) as err:
        fit(Oom(), train, val, quiet(epochs=1, batch_size=64), task)
    assert "train.batch_size 64" in str(err.value) and "grad_accumulation" in str(err.value)


def _run(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_sigkill_mid_training_then_restart_gives_identical_weights(tmp_path):
    full = _run([str(tmp_path / "a"), str(tmp_path / "full.pt")])
    victim = _run([str(tmp_path / "b"), str(tmp_path / "resumed.pt"), "0.25"])
    deadline = time.time() + 60
    while time.time() < deadline:
        info = checkpoint_info(tmp_path / "b")
        if info and info["epoch"] >= 3:
            break
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    info = checkpoint_info(tmp_path / "b")
    assert 3 <= info["epoch"] < 8 and not info["finished"]
    assert not (tmp_path / "resumed.pt").exists()
    again = _run([str(tmp_path / "b"), str(tmp_path / "resumed.pt")])
    assert again.wait(120) == 0, again.stderr.read().decode()[-2000:]
    assert full.wait(120) == 0, full.stderr.read().decode()[-2000:]
    a = torch.load(tmp_path / "full.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-identical, not merely close
    assert checkpoint_info(tmp_path / "b")["finished"] is True
