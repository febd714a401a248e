"""Every schedule's learning rates, stepped per epoch or per batch, with and without warm-up."""

from __future__ import annotations

import math

import pytest
import torch

from deeppipe.errors import SpecError
from deeppipe.training.config import ScheduleConfig
from deeppipe.training.schedules import Schedule

from .helpers import quiet


def _opt(lr: float = 0.2) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr, momentum=0.9)


def _epoch_lrs(
    spec: dict, epochs: int = 5, lr: float = 0.2, steps: int = 1, metrics: list[float] | None = None
) -> list[float]:
    """The lr each epoch trains with (read at the epoch's start)."""
    opt = _opt(lr)
    sched = Schedule(opt, ScheduleConfig(**spec), epochs=epochs, steps_per_epoch=steps)
    out = []
    for e in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        for _ in range(steps):
            opt.step()
            sched.after_step()
        m = metrics[e] if metrics else 1.0
        sched.after_epoch({"val/loss": m, "val/accuracy": m})
    return out


def test_inverse_time_decay_matches_the_catalogue():
    lrs = _epoch_lrs({"name": "inverse_time", "k": 1.0}, epochs=5, lr=0.2)
    assert lrs[0] == pytest.approx(0.2)
    assert lrs[1:] == pytest.approx([0.1, 0.0667, 0.05, 0.04], abs=5e-5)


def test_step_multistep_exponential():
    assert _epoch_lrs({"name": "step", "step_size": 2, "gamma": 0.1}, lr=1.0) == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01]
    )
    assert _epoch_lrs(
        {"name": "multistep", "milestones": [1, 3], "gamma": 0.5}, lr=1.0
    ) == pytest.approx([1, 0.5, 0.5, 0.25, 0.25])
    assert _epoch_lrs({"name": "exponential", "gamma": 0.9}, lr=1.0) == pytest.approx(
        [0.9**e for e in range(5)]
    )


def test_cosine_and_restarts():
    lrs = _epoch_lrs({"name": "cosine", "eta_min": 0.0}, epochs=4, lr=1.0)
    assert lrs == pytest.approx([0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)])
    sgdr = _epoch_lrs({"name": "cosine_restarts", "T_0": 2}, epochs=6, lr=1.0)
    assert sgdr[0] == sgdr[2] == sgdr[4] == pytest.approx(1.0)  # restarts every 2 epochs
    assert sgdr[1] == pytest.approx(0.5)


def test_onecycle_is_stepped_per_batch_and_peaks_at_lr():
    opt = _opt(0.1)
    sched = Schedule(
        opt, ScheduleConfig(name="onecycle", pct_start=0.25), epochs=2, steps_per_epoch=10
    )
    assert sched.interval == "step"
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.after_step()
    assert lrs[0] == pytest.approx(0.1 / 25)
    assert max(lrs) == pytest.approx(0.1, rel=1e-3) and lrs.index(max(lrs)) in (4, 5)
    assert lrs[-1] < 1e-4


def test_linear_warmup_before_any_schedule():
    opt = _opt(1.0)
    sched = Schedule(
        opt,
        ScheduleConfig(name="exponential", gamma=0.5, warmup_steps=4),
        epochs=5,
        steps_per_epoch=2,
    )
    seen = []
    for _ in range(5):
        for _ in range(2):
            seen.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.after_step()
        sched.after_epoch({})
    assert seen[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # ramp over 4 batches
    assert seen[4:6] == pytest.approx([1.0, 1.0])  # schedule starts after the warm-up
    assert seen[6] == pytest.approx(0.5) and seen[8] == pytest.approx(0.25)
    # warm-up works in front of reduce-on-plateau too (SequentialLR cannot do that)
    lrs = _epoch_lrs(
        {"name": "plateau", "patience": 0, "factor": 0.5, "warmup_epochs": 1},
        epochs=4,
        lr=1.0,
        steps=2,
        metrics=[1, 1, 1, 1],
    )
    assert lrs == pytest.approx([0.5, 1.0, 1.0, 0.5])


def test_reduce_on_plateau_waits_for_a_stall():
    lrs = _epoch_lrs(
        {"name": "plateau", "patience": 1, "factor": 0.1},
        epochs=6,
        lr=1.0,
        metrics=[1.0, 0.9, 0.95, 0.96, 0.97, 0.5],
    )
    assert lrs == pytest.approx([1, 1, 1, 1, 0.1, 0.1])
    with pytest.raises(SpecError, match=r"train.schedule.monitor"):
        _epoch_lrs({"name": "plateau", "monitor": "val/f1"})
    higher = _epoch_lrs(
        {"name": "plateau", "patience": 0, "factor": 0.5, "monitor": "val/accuracy"},
        epochs=3,
        lr=1.0,
    )
    assert higher == pytest.approx([1, 1, 0.5])  # metric read by name, mode auto = max


def test_any_torch_scheduler_by_class_name_and_spec_errors():
    assert _epoch_lrs(
        {"name": "LinearLR", "start_factor": 0.5, "total_iters": 2}, epochs=3, lr=1.0
    ) == pytest.approx([0.5, 0.75, 1.0])
    with pytest.raises(SpecError) as err:
        _epoch_lrs({"name": "cosin"})
    assert "train.schedule.name" in str(err.value) and "did you mean 'cosine'" in str(err.value)
    with pytest.raises(SpecError) as err:
        _epoch_lrs({"name": "step", "step_sise": 2})
    assert "train.schedule.step_sise" in str(err.value) and "step_size" in str(err.value)


def test_schedule_in_fit_logs_the_lr(digits_sources, task):
    from deeppipe.training import fit

    from .helpers import mlp

    train, val = digits_sources
    r = fit(
        mlp(),
        train,
        val,
        quiet(
            epochs=5,
            optimizer={"name": "sgd", "lr": 0.2},
            schedule={"name": "inverse_time", "k": 1},
        ),
        task,
    )
    assert [h["lr"] for h in r.history[1:]] == pytest.approx([0.1, 0.0667, 0.05, 0.04], abs=5e-5)
