"""Early stopping on any logged validation metric, and best-epoch bookkeeping."""

from __future__ import annotations

import math
from typing import Any

from deeppipe.errors import SpecError
from deeppipe.registry import metric_direction
from deeppipe.training.config import EarlyStoppingConfig


def direction(metric: str, mode: str = "auto") -> str:
    """'min' or 'max': ``auto`` asks the metrics registry (losses and errors go down)."""
    return metric_direction(metric, mode, path="train.early_stopping.monitor")


class BestTracker:
    """Follows one metric; says whether the epoch improved on the best by more than min_delta."""

    def __init__(
        self, monitor: str, mode: str = "auto", min_delta: float = 0.0, patience: int | None = None
    ) -> None:
        self.monitor, self.mode = monitor, direction(monitor, mode)
        self.min_delta, self.patience = min_delta, patience
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0

    def update(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Record the epoch; True when it is the new best."""
        if self.monitor not in metrics:
            known = sorted(k for k in metrics if k != "epoch")
            raise SpecError(
                f"metric '{self.monitor}' is not logged",
                path="train.early_stopping.monitor",
                expected=f"one of {', '.join(known)}",
                found=self.monitor,
                candidates=known,
            )
        value = float(metrics[self.monitor])
        if math.isnan(value):
            improved = False
        elif self.best is None:
            improved = True
        elif self.mode == "min":
            improved = value < self.best - self.min_delta
        else:
            improved = value > self.best + self.min_delta
        if improved:
            self.best, self.best_epoch, self.wait = value, epoch, 0
        else:
            self.wait += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.wait >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = s["best"], s["best_epoch"], int(s["wait"])


def build_tracker(cfg: EarlyStoppingConfig | None, has_val: bool) -> BestTracker:
    if cfg is None:
        return BestTracker("val/loss" if has_val else "train/loss")
    if cfg.monitor.startswith("val/") and not has_val:
        raise SpecError(
            "early stopping monitors a validation metric but there is no validation set",
            path="train.early_stopping.monitor",
            expected="a validation split (data.split.val)",
            found=cfg.monitor,
        )
    return BestTracker(cfg.monitor, cfg.mode, cfg.min_delta, cfg.patience)
