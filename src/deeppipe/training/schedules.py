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

from deeppipe.errors import SpecError, closest
from deeppipe.registry import Registry
from deeppipe.training.config import ScheduleConfig


class InverseTime:
    """lr = lr0 / (1 + k * t): t counts epochs (or steps when stepped per batch)."""

    def __init__(self, k: float) -> None:
        self.k = float(k)

    def __call__(self, t: int) -> float:
        return 1.0 / (1.0 + self.k * t)


def _inverse_time(opt, k: float = 1.0) -> tls.LRScheduler:
    return tls.LambdaLR(opt, InverseTime(k))


def _cosine(opt, T_max: int | None = None, eta_min: float = 0.0, *, _units: int) -> tls.LRScheduler:
    return tls.CosineAnnealingLR(opt, T_max=T_max or max(1, _units), eta_min=eta_min)


def _onecycle(
    opt,
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
        max_lr = [g["lr"] for g in opt.param_groups]
    has_momentum = all("momentum" in g or "betas" in g for g in opt.param_groups)
    return tls.OneCycleLR(
        opt,
        max_lr=max_lr,
        total_steps=max(1, _units),
        pct_start=pct_start,
        anneal_strategy=anneal_strategy,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        three_phase=three_phase,
        cycle_momentum=cycle_momentum and has_momentum,
    )


# name -> (factory, default interval, needs the number of units it runs for)
SCHEDULES: Registry[tuple[Any, str, bool]] = Registry("schedule")
SCHEDULES.add(
    "inverse_time",
    (_inverse_time, "epoch", False),
    aliases=("inverse_time_decay",),
    doc="lr0 / (1 + k * epoch)",
)
SCHEDULES.add(
    "step", (tls.StepLR, "epoch", False), aliases=("steplr",), doc="x gamma every step_size"
)
SCHEDULES.add(
    "multistep",
    (tls.MultiStepLR, "epoch", False),
    aliases=("multi_step",),
    doc="x gamma at each milestone",
)
SCHEDULES.add(
    "exponential", (tls.ExponentialLR, "epoch", False), aliases=("exp",), doc="x gamma every epoch"
)
SCHEDULES.add("cosine", (_cosine, "epoch", True), doc="cosine annealing to eta_min over T_max")
SCHEDULES.add(
    "cosine_restarts",
    (tls.CosineAnnealingWarmRestarts, "epoch", False),
    aliases=("cosine_warm_restarts", "sgdr"),
    doc="cosine with restarts (SGDR): T_0, T_mult",
)
SCHEDULES.add(
    "onecycle", (_onecycle, "step", True), aliases=("one_cycle",), doc="one-cycle policy, per batch"
)
SCHEDULES.add(
    "plateau",
    (tls.ReduceLROnPlateau, "epoch", False),
    aliases=("reduce_on_plateau", "reducelronplateau"),
    doc="x factor when a metric stalls",
)
SCHEDULES.add(
    "constant", (None, "epoch", False), aliases=("none",), doc="no schedule (warm-up only)"
)
_OWN = set(SCHEDULES.names(include_aliases=True))


def _lookup(name: str, path: str) -> tuple[Any, str, bool]:
    if name in SCHEDULES:
        return SCHEDULES.get(name)
    cls = getattr(tls, name, None)  # any other torch scheduler by class name
    if isinstance(cls, type) and issubclass(cls, tls.LRScheduler | tls.ReduceLROnPlateau):
        return cls, "epoch", False
    names = sorted(_OWN | {n for n in dir(tls) if n.endswith("LR")})
    raise SpecError(
        f"unknown schedule '{name}'",
        path=f"{path}.name",
        expected=f"one of {', '.join(SCHEDULES.names())} or a torch scheduler class",
        found=name,
        suggestion=closest(name, names),
    )


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
        factory, default_interval, needs_units = _lookup(cfg.name, path)
        self.opt = opt
        self.interval = default_interval if cfg.interval == "auto" else cfg.interval
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
            kwargs.setdefault("mode", "max" if _higher_is_better(cfg.monitor) else "min")
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


def _higher_is_better(metric: str) -> bool:
    low = ("loss", "error", "mae", "mse", "rmse", "perplexity")
    return not any(t in metric.lower() for t in low)


def _construct(
    factory: Any, opt: torch.optim.Optimizer, kwargs: dict, path: str, extra: dict
) -> Any:
    import inspect

    params = inspect.signature(factory).parameters
    skip = ("self", "optimizer", "opt", "last_epoch", "verbose", "_units")
    valid = [n for n in params if n not in skip]
    for k in kwargs:
        if k not in valid:
            raise SpecError(
                f"unknown argument '{k}'",
                path=f"{path}.{k}",
                expected=f"one of {', '.join(valid)}",
                found=k,
                suggestion=closest(k, valid),
            )
    try:
        return factory(opt, **kwargs, **extra)
    except (TypeError, ValueError) as exc:
        raise SpecError(str(exc), path=path, found=kwargs) from None


def build_schedule(
    opt: torch.optim.Optimizer, cfg: ScheduleConfig | None, *, epochs: int, steps_per_epoch: int
) -> Schedule | None:
    return (
        None if cfg is None else Schedule(opt, cfg, epochs=epochs, steps_per_epoch=steps_per_epoch)
    )
