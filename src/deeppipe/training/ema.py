"""Exponential moving average of the weights (``train.ema``): evaluation and the saved model use
the averaged network, which generalises better than the last iterate at no extra training cost.

Built on ``torch.optim.swa_utils.AveragedModel`` with ``use_buffers=True``, so batch-norm running
statistics are averaged along with the weights they were measured for (the averaged network is
never evaluated with statistics that belong to other weights). Integer buffers
(``num_batches_tracked``) are copied, not averaged. ``get_ema_multi_avg_fn`` would average them
(its integer fallback truncates) and has a fixed decay, so the update is written here with the
same ``torch._foreach_lerp_``: ``w_ema <- w_ema + (1 - d) * (w - w_ema)``.

With ``warmup`` (the default) the decay of update t is ``min(decay, (1 + t) / (10 + t))``
(TensorFlow's ``ExponentialMovingAverage(num_updates=...)``): early updates follow the fast-moving
weights instead of remembering the random initialisation for thousands of steps.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from deeppipe.training.config import EmaConfig


class WeightAverage:
    """The averaged copy of ``model``; ``update`` after every optimizer step."""

    def __init__(self, model: nn.Module, cfg: EmaConfig) -> None:
        self.cfg, self.steps, self._d = cfg, 0, cfg.decay
        self.averaged = AveragedModel(model, multi_avg_fn=self._average, use_buffers=True)

    @property
    def module(self) -> nn.Module:
        """The averaged network (what validation, early stopping and the artifact see)."""
        return self.averaged.module

    def decay(self, t: int) -> float:
        """The decay of update ``t`` (0-based; counted here, no host sync on the device)."""
        return min(self.cfg.decay, (1 + t) / (10 + t)) if self.cfg.warmup else self.cfg.decay

    @torch.no_grad()
    def _average(self, ema: list[torch.Tensor], current: list[torch.Tensor], _n: Any) -> None:
        if ema[0].is_floating_point() or ema[0].is_complex():
            torch._foreach_lerp_(ema, current, 1.0 - self._d)
        else:
            torch._foreach_copy_(ema, current)

    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights in (every ``cfg.every`` optimizer steps)."""
        self.steps += 1
        if self.steps % self.cfg.every == 0:
            self._d = self.decay(self.steps // self.cfg.every - 1)
            self.averaged.update_parameters(model)

    def state_dict(self) -> dict[str, Any]:
        return {"averaged": self.averaged.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state is not None:
            self.averaged.load_state_dict(state["averaged"])
            self.steps = int(state["steps"])


def build_ema(model: nn.Module, cfg: EmaConfig | None) -> WeightAverage | None:
    """The weight average ``train.ema`` asks for, or None."""
    return None if cfg is None else WeightAverage(model, cfg)
