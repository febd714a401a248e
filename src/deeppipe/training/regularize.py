"""Weight penalties, the proximal L1 step, soft parameter sharing, and gradient clipping.

Penalty (weights only; biases, norm-layer and activation parameters are never penalised):
    l1 * sum|w|  +  l2 / 2 * sum w^2  +  alpha * (l1_ratio * sum|w| + (1 - l1_ratio) / 2 * sum w^2)
The 1/2 makes the L2 gradient ``l2 * w``, i.e. exactly plain SGD's ``weight_decay`` and
scikit-learn's ElasticNet objective (its ``l1_ratio`` weights the L1 term).

The L1 part is applied as a proximal step by default: after each optimiser step every penalised
weight is soft-thresholded, ``w <- sign(w) max(|w| - lr * a1, 0)`` with the ``lr`` of its
parameter group. A subgradient (``a1 * sign(w)`` added to the gradient) makes weights jump across
zero step after step and never reach it; the proximal step sets them exactly to zero, which is
what makes L1 a feature selector. For plain SGD the two together are exactly proximal gradient
descent (ISTA) on ``loss + a1 |w|_1``; with momentum or an adaptive method (Adam, RMSProp) the
step the optimiser takes is not ``lr * grad``, so the threshold ``lr * a1`` is a decoupled
shrinkage (as AdamW's decay is decoupled), not the proximal operator of that step.

Soft parameter sharing adds ``weight * ||theta_a - theta_b||^2`` between two named sub-networks
of the same shape: every parameter of each (biases too), so the two are pulled together.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from deeppipe.errors import SpecError, join_path, unknown
from deeppipe.training.config import ClipConfig, RegularizationConfig
from deeppipe.training.params import penalised_params

SHARING_PATH = "train.regularization.soft_sharing"
Pair = tuple[list[nn.Parameter], list[nn.Parameter], float]


def coefficients(cfg: RegularizationConfig | None) -> tuple[float, float]:
    """(a1, a2) with penalty a1 * |w|_1 + a2 / 2 * |w|_2^2."""
    if cfg is None:
        return 0.0, 0.0
    a1, a2 = cfg.l1, cfg.l2
    if cfg.elastic_net is not None:
        a1 += cfg.elastic_net.alpha * cfg.elastic_net.l1_ratio
        a2 += cfg.elastic_net.alpha * (1.0 - cfg.elastic_net.l1_ratio)
    return a1, a2


def _proximal(cfg: RegularizationConfig | None) -> bool:
    return cfg is not None and cfg.l1_mode == "proximal"


def build_penalty(
    model: nn.Module, cfg: RegularizationConfig | None
) -> Callable[[], torch.Tensor] | None:
    """A zero-argument function returning the penalty added to the loss, or None when there is
    none (the proximal L1 part is not a loss term: see ``build_proximal``)."""
    a1, a2 = coefficients(cfg)
    if _proximal(cfg):
        a1 = 0.0
    pairs = sharing_pairs(model, cfg) if cfg is not None else []
    if a1 == 0 and a2 == 0 and not pairs:
        return None
    params = penalised_params(model)

    def penalty() -> torch.Tensor:
        total = next(model.parameters()).new_zeros(())
        if a1 and params:
            total = total + a1 * torch.stack(torch._foreach_norm(params, 1)).sum()
        if a2 and params:
            total = total + 0.5 * a2 * torch.stack(torch._foreach_norm(params, 2)).pow(2).sum()
        for pa, pb, weight in pairs:
            diffs = torch._foreach_sub(pa, pb)
            total = total + weight * torch.stack(torch._foreach_norm(diffs, 2)).pow(2).sum()
        return total

    return penalty


def build_proximal(
    opt: torch.optim.Optimizer, model: nn.Module, cfg: RegularizationConfig | None
) -> Callable[[], None] | None:
    """The step to run after every optimiser step: soft-threshold the penalised weights of each
    parameter group by ``lr * a1`` (that group's current lr, so schedules and param groups are
    followed). None when L1 is off or applied as a subgradient."""
    a1, _ = coefficients(cfg)
    if not _proximal(cfg) or a1 == 0:
        return None
    penalised = {id(p) for p in penalised_params(model)}
    groups = [(g, [p for p in g["params"] if id(p) in penalised]) for g in opt.param_groups]
    groups = [(g, ps) for g, ps in groups if ps]

    @torch.no_grad()
    def prox() -> None:
        for group, params in groups:
            t = float(group["lr"]) * a1
            for p in params:
                p.sub_(p.clamp(-t, t))  # w - clamp(w, -t, t) = sign(w) max(|w| - t, 0), exact zeros

    return prox


def _subnetwork(model: nn.Module, name: str, path: str) -> list[tuple[str, nn.Parameter]]:
    """The parameters of the module called ``name`` (or ending in ``.name``: the network may sit
    in a wrapper), with names relative to it."""
    modules = dict(model.named_modules())
    hits = [n for n in modules if n and (n == name or n.endswith("." + name))]
    if not hits:
        top = [n.rsplit(".", 1)[-1] for n in modules if n]
        raise unknown("sub-network", name, sorted(set(top)), path=path)
    found = list(modules[min(hits, key=len)].named_parameters())
    if not found:
        raise SpecError(f"sub-network '{name}' has no parameters to share", path=path, found=name)
    return found


def sharing_pairs(model: nn.Module, cfg: RegularizationConfig, *, path: str = SHARING_PATH) -> list[Pair]:
    """Each ``soft_sharing`` item as (parameters of a, parameters of b, weight), checked: both
    sub-networks exist, are distinct and have the same parameter names and shapes."""
    pairs: list[Pair] = []
    for i, item in enumerate(cfg.soft_sharing):
        a = _subnetwork(model, item.a, join_path(path, i, "a"))
        b = _subnetwork(model, item.b, join_path(path, i, "b"))
        shape_a = [(n, tuple(p.shape)) for n, p in a]
        shape_b = [(n, tuple(p.shape)) for n, p in b]
        if shape_a != shape_b:
            raise SpecError(f"'{item.a}' and '{item.b}' differ in shape, so their parameters cannot be tied",
                            path=join_path(path, i), expected=f"the same layers as '{item.a}': {shape_a}",
                            found=shape_b)
        if any(pa is pb for (_, pa), (_, pb) in zip(a, b)):
            raise SpecError(f"'{item.a}' and '{item.b}' are the same parameters (hard sharing already ties "
                            "them)", path=join_path(path, i), found=[item.a, item.b])
        pairs.append(([p for _, p in a], [p for _, p in b], float(item.weight)))
    return pairs


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
