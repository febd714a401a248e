"""Learning-rate schedules: torch's schedulers behind one object that knows when to step.

``Schedule`` adds what torch's classes leave to the caller: a linear warm-up in front of any
schedule (including reduce-on-plateau, which SequentialLR cannot chain), and the choice of
stepping per batch or per epoch. Inverse-time decay is the only formula written here.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim import lr_scheduler as tls

from deeppipe.errors import SpecError, join_path
from deeppipe.registry import SCHEDULES, Entry, call_checked, metric_direction
from deeppipe.training.config import ScheduleConfig


class InverseTime:
    """lr = lr0 / (1 + k * t): t counts epochs (or steps when stepped per batch)."""

    def __init__(self, k: float) -> None:
        self.k = float(k)

    def __call__(self, t: int) -> float:
        return 1.0 / (1.0 + self.k * t)


def _inverse_time(optimizer, k: float = 1.0) -> tls.LRScheduler:
    return tls.LambdaLR(optimizer, InverseTime(k))


def _cosine(optimizer, T_max: int | None = None, eta_min: float = 0.0, *, _units: int) -> tls.LRScheduler:
    return tls.CosineAnnealingLR(optimizer, T_max=T_max or max(1, _units), eta_min=eta_min)


def _constant(optimizer) -> None:
    """No schedule: the learning rate stays (after an optional warm-up)."""
    return None


def _onecycle(
    optimizer,
    max_lr: float | list[float] | None = None,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
    cycle_momentum: bool = True,
    *,
    _units: int,
) -> tls.LRScheduler:
    if max_lr is None:  # peak at the spec's learning rate(s)
        max_lr = [g["lr"] for g in optimizer.param_groups]
    has_momentum = all("momentum" in g or "betas" in g for g in optimizer.param_groups)
    return tls.OneCycleLR(
        optimizer,
        max_lr=max_lr,
        total_steps=max(1, _units),
        pct_start=pct_start,
        anneal_strategy=anneal_strategy,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        three_phase=three_phase,
        cycle_momentum=cycle_momentum and has_momentum,
    )


# deeppipe's names; then every torch scheduler by its class name. Records say how each is stepped
# (per epoch or per batch) and whether it needs the number of units it runs for. Schedulers that
# take Python callables or other schedulers cannot be written in YAML, and LRScheduler itself is
# abstract: their records mark them so validation refuses them by name.
SCHEDULES.register("inverse_time", aliases=("inverse_time_decay",), doc="lr0 / (1 + k * epoch)")(_inverse_time)
SCHEDULES.register("step", aliases=("steplr",), doc="x gamma every step_size")(tls.StepLR)
SCHEDULES.register("multistep", aliases=("multi_step",), doc="x gamma at each milestone")(tls.MultiStepLR)
SCHEDULES.register("exponential", aliases=("exp",), doc="x gamma every epoch")(tls.ExponentialLR)
SCHEDULES.register("cosine", needs_units=True, doc="cosine annealing to eta_min over T_max")(_cosine)
SCHEDULES.register("cosine_restarts", aliases=("cosine_warm_restarts", "sgdr"),
                   doc="cosine with restarts (SGDR): T_0, T_mult")(tls.CosineAnnealingWarmRestarts)
SCHEDULES.register("onecycle", aliases=("one_cycle",), interval="step", needs_units=True,
                   doc="one-cycle policy, per batch")(_onecycle)
SCHEDULES.register("plateau", aliases=("reduce_on_plateau", "reducelronplateau"),
                   doc="x factor when a metric stalls")(tls.ReduceLROnPlateau)
SCHEDULES.register("constant", aliases=("none",), doc="no schedule (warm-up only)")(_constant)
for _abstract in (tls.LRScheduler, tls.LambdaLR, tls.MultiplicativeLR, tls.SequentialLR, tls.ChainedScheduler):
    SCHEDULES.register(_abstract.__name__, abstract=True)(_abstract)
SCHEDULES.harvest(tls, base=tls.LRScheduler)


class Schedule:
    """Steps a torch scheduler per batch or per epoch, after an optional linear warm-up."""

    def __init__(
        self,
        opt: torch.optim.Optimizer,
        cfg: ScheduleConfig,
        *,
        epochs: int,
        steps_per_epoch: int,
        path: str = "train.schedule",
    ) -> None:
        entry = schedule_entry(cfg.name, path)
        factory = None if entry.obj is _constant else entry.obj
        needs_units = entry.needs_units
        self.opt = opt
        self.interval = entry.interval if cfg.interval == "auto" else cfg.interval
        self.steps_per_epoch = steps_per_epoch
        self.warmup = int(cfg.warmup_steps or round(cfg.warmup_epochs * steps_per_epoch))
        self.start_factor = cfg.warmup_start_factor
        self.monitor = cfg.monitor
        self.step_count = 0
        self.warm_epoch = False  # did the current epoch contain warm-up steps?
        self.base_lrs = [g["lr"] for g in opt.param_groups]
        self.is_plateau = factory is tls.ReduceLROnPlateau
        if self.is_plateau:
            self.interval = "epoch"  # it needs an epoch's validation metric
        total = epochs * steps_per_epoch if self.interval == "step" else epochs
        warm_units = (
            self.warmup if self.interval == "step" else math.ceil(self.warmup / steps_per_epoch)
        )
        kwargs = cfg.kwargs()
        if self.is_plateau and cfg.mode != "auto":
            kwargs.setdefault("mode", cfg.mode)
        elif self.is_plateau:
            kwargs.setdefault("mode", metric_direction(cfg.monitor, path=join_path(path, "monitor")))
        extra = {"_units": total - warm_units} if needs_units else {}
        self.main = None if factory is None else _construct(factory, opt, kwargs, path, extra)
        if self.warmup:
            self._set_factor(self._warm_factor(0))

    def _set_factor(self, f: float) -> None:
        for g, base in zip(self.opt.param_groups, self.base_lrs):
            g["lr"] = base * f

    @property
    def in_warmup(self) -> bool:
        return self.step_count < self.warmup

    def _warm_factor(self, s: int) -> float:
        """Warm-up step s (from 0) of W uses lr * (f0 + (1 - f0) * (s + 1) / W)."""
        return self.start_factor + (1 - self.start_factor) * min(1.0, (s + 1) / self.warmup)

    def after_step(self) -> None:
        """Called after every optimizer step."""
        self.step_count += 1
        if self.step_count <= self.warmup:
            self.warm_epoch = True
            self._set_factor(self._warm_factor(self.step_count))
            return
        if self.interval == "step" and self.main is not None and not self.is_plateau:
            self.main.step()

    def after_epoch(self, metrics: dict[str, float]) -> None:
        """Called at the end of every epoch with that epoch's logged metrics."""
        warm, self.warm_epoch = self.warm_epoch or self.in_warmup, False
        if warm or self.interval != "epoch" or self.main is None:
            return  # per-epoch schedules start with the first epoch after the warm-up
        if self.is_plateau:
            key = self.monitor
            if key not in metrics and key == "val/loss" and "train/loss" in metrics:
                key = "train/loss"  # no validation set: the default falls back to training loss
            if key not in metrics:
                known = sorted(k for k in metrics if k != "epoch")
                raise SpecError(
                    f"metric '{key}' is not logged",
                    path="train.schedule.monitor",
                    expected=f"one of {', '.join(known)}",
                    found=key,
                    candidates=known,
                )
            self.main.step(metrics[key])
        else:
            self.main.step()

    def state_dict(self) -> dict[str, Any]:
        return {
            "step_count": self.step_count,
            "main": None if self.main is None else self.main.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])
        if self.main is not None and state["main"] is not None:
            self.main.load_state_dict(state["main"])


def schedule_entry(name: str, path: str = "train.schedule") -> Entry:
    """The registry entry of a schedule a spec can use (abstract and callable-taking ones refused)."""
    entry = SCHEDULES.entry(name, path=join_path(path, "name"))
    if entry.abstract:
        usable = [e.name for e in SCHEDULES.entries() if not e.abstract]
        raise SpecError(f"schedule '{entry.name}' cannot be declared in YAML (it is abstract or takes "
                        "Python callables)", path=join_path(path, "name"),
                        expected=f"one of {', '.join(usable)}", found=name)
    return entry


def _construct(factory: Any, opt: torch.optim.Optimizer, kwargs: dict, path: str, extra: dict) -> Any:
    return call_checked(factory, kwargs, path=path, fixed={"optimizer": opt, **extra},
                        skip=("optimizer", "last_epoch", "verbose", *extra))


def build_schedule(
    opt: torch.optim.Optimizer, cfg: ScheduleConfig | None, *, epochs: int, steps_per_epoch: int
) -> Schedule | None:
    return (
        None if cfg is None else Schedule(opt, cfg, epochs=epochs, steps_per_epoch=steps_per_epoch)
    )
