"""Weight penalties added to the loss and gradient clipping applied before the step.

Penalty (weights only; biases and norm-layer parameters are never penalised):
    l1 * sum|w|  +  l2 / 2 * sum w^2  +  alpha * (l1_ratio * sum|w| + (1 - l1_ratio) / 2 * sum w^2)
The 1/2 makes the L2 gradient ``l2 * w``, i.e. exactly plain SGD's ``weight_decay`` and
scikit-learn's ElasticNet objective (its ``l1_ratio`` weights the L1 term).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from deeppipe.training.config import ClipConfig, RegularizationConfig
from deeppipe.training.params import penalised_params


def coefficients(cfg: RegularizationConfig | None) -> tuple[float, float]:
    """(a1, a2) with penalty a1 * |w|_1 + a2 / 2 * |w|_2^2."""
    if cfg is None:
        return 0.0, 0.0
    a1, a2 = cfg.l1, cfg.l2
    if cfg.elastic_net is not None:
        a1 += cfg.elastic_net.alpha * cfg.elastic_net.l1_ratio
        a2 += cfg.elastic_net.alpha * (1.0 - cfg.elastic_net.l1_ratio)
    return a1, a2


def build_penalty(
    model: nn.Module, cfg: RegularizationConfig | None
) -> Callable[[], torch.Tensor] | None:
    """A zero-argument function returning the current penalty, or None when there is none."""
    a1, a2 = coefficients(cfg)
    if a1 == 0 and a2 == 0:
        return None
    params = penalised_params(model)

    def penalty() -> torch.Tensor:
        total = params[0].new_zeros(())
        if a1:
            total = total + a1 * torch.stack(torch._foreach_norm(params, 1)).sum()
        if a2:
            total = total + 0.5 * a2 * torch.stack(torch._foreach_norm(params, 2)).pow(2).sum()
        return total

    return penalty


def clip_gradients(params: list[nn.Parameter], cfg: ClipConfig) -> None:
    """Clamp components (by value), then rescale to the norm bound (global or per tensor)."""
    if cfg.value is not None:
        torch.nn.utils.clip_grad_value_(params, cfg.value)
    if cfg.norm is not None:
        if cfg.per_parameter:
            for p in params:
                if p.grad is not None:
                    torch.nn.utils.clip_grad_norm_([p], cfg.norm, norm_type=cfg.norm_type)
        else:
            torch.nn.utils.clip_grad_norm_(params, cfg.norm, norm_type=cfg.norm_type)


def global_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """L2 norm of all tensors together, without a host sync."""
    if not tensors:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors, 2)))
