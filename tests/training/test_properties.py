"""Property-based checks (hypothesis) of formulas users rely on."""

from __future__ import annotations

import itertools
import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deeppipe.data.task import Task
from deeppipe.training.config import LossConfig, ScheduleConfig
from deeppipe.training.losses import build_loss
from deeppipe.training.schedules import Schedule


def _opt(lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


@settings(max_examples=25, deadline=None)
@given(
    lr0=st.floats(1e-4, 1.0),
    k=st.floats(0.0, 5.0),
    epochs=st.integers(1, 8),
    steps=st.integers(1, 4),
)
def test_inverse_time_is_lr0_over_1_plus_k_epoch(lr0, k, epochs, steps):
    opt = _opt(lr0)
    sched = Schedule(
        opt, ScheduleConfig(name="inverse_time", k=k), epochs=epochs, steps_per_epoch=steps
    )
    for e in range(epochs):
        assert math.isclose(opt.param_groups[0]["lr"], lr0 / (1 + k * e), rel_tol=1e-9)
        for _ in range(steps):
            opt.step()
            sched.after_step()
        sched.after_epoch({"val/loss": 1.0})


@settings(max_examples=25, deadline=None)
@given(warmup=st.integers(1, 12), start=st.floats(0.0, 0.9), lr=st.floats(1e-4, 1.0))
def test_warmup_ramps_linearly_and_never_overshoots(warmup, start, lr):
    opt = _opt(lr)
    sched = Schedule(
        opt,
        ScheduleConfig(name="constant", warmup_steps=warmup, warmup_start_factor=start),
        epochs=1,
        steps_per_epoch=warmup + 3,
    )
    seen = []
    for _ in range(warmup + 3):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.after_step()
    assert all(a <= b + 1e-15 for a, b in itertools.pairwise(seen))  # non-decreasing
    assert max(seen) <= lr * (1 + 1e-12) and math.isclose(seen[warmup - 1], lr, rel_tol=1e-9)
    assert math.isclose(seen[0], lr * (start + (1 - start) / warmup), rel_tol=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 6),
    c=st.integers(2, 6),
    margin=st.floats(0.1, 2.0),
    seed=st.integers(0, 10_000),
)
def test_hinge_is_weston_watkins_over_classes(n, c, margin, seed):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, c, generator=g, dtype=torch.float64).float()
    y = torch.randint(0, c, (n,), generator=g)
    loss = build_loss(LossConfig(name="hinge", margin=margin), Task("multiclass", c))(s, y)
    m = (margin - s[torch.arange(n), y][:, None] + s).clamp_min(0)
    m[torch.arange(n), y] = 0
    assert math.isclose(float(loss), float(m.sum(1).mean() / c), rel_tol=1e-5, abs_tol=1e-6)
