"""Optimisers from the spec: any torch.optim class by name, parameter groups by name pattern.

Weight decay (coupled for SGD/Adam, decoupled for AdamW) goes to weights only unless
``decay_bias_and_norm`` is set: decaying BatchNorm scales or biases only hurts.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from deeppipe.errors import SpecError, closest
from deeppipe.registry import Registry
from deeppipe.training.config import OptimizerConfig
from deeppipe.training.params import select, weight_names

OPTIMIZERS: Registry[type[torch.optim.Optimizer]] = Registry("optimizer")
OPTIMIZERS.add("sgd", torch.optim.SGD, doc="SGD with optional momentum, Nesterov and dampening")
OPTIMIZERS.add(
    "adagrad", torch.optim.Adagrad, doc="AdaGrad: step lr / sqrt(sum g^2) keeps shrinking"
)
OPTIMIZERS.add("rmsprop", torch.optim.RMSprop, doc="RMSProp: step scaled by a moving RMS of g")
OPTIMIZERS.add("adam", torch.optim.Adam, doc="Adam (first moment = momentum)")
OPTIMIZERS.add("adamw", torch.optim.AdamW, doc="Adam with decoupled weight decay")
# Every other torch.optim class by its own name (NAdam, RAdam, Adadelta, Adamax, LBFGS, ...).
for _name, _cls in vars(torch.optim).items():
    if (
        isinstance(_cls, type)
        and issubclass(_cls, torch.optim.Optimizer)
        and _cls is not torch.optim.Optimizer
        and _name.lower() not in OPTIMIZERS
    ):
        OPTIMIZERS.add(_name, _cls)


def _valid_kwargs(cls: type) -> list[str]:
    sig = inspect.signature(cls.__init__)
    return [
        n
        for n, p in sig.parameters.items()
        if n not in ("self", "params") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]


def _check(keys: dict[str, Any], valid: list[str], path: str) -> None:
    for key in keys:
        if key not in valid:
            raise SpecError(
                f"unknown argument '{key}'",
                path=f"{path}.{key}",
                expected=f"one of {', '.join(valid)}",
                found=key,
                suggestion=closest(key, valid),
            )


def build_optimizer(
    model: nn.Module, cfg: OptimizerConfig, *, path: str = "train.optimizer"
) -> torch.optim.Optimizer:
    """An optimizer over the trainable parameters, grouped by pattern and by decay/no-decay."""
    cls = OPTIMIZERS.get(cfg.name, path=f"{path}.name")
    valid = _valid_kwargs(cls)
    extra = cfg.kwargs()
    _check(extra, valid, path)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise SpecError("every parameter is frozen: nothing left to train", path="train.freeze")
    weights = weight_names(model)

    # Each parameter goes to the first group whose pattern matches it, else to the base group.
    owner: dict[str, int] = {}
    for gi, group in enumerate(cfg.param_groups):
        gpath = f"{path}.param_groups[{gi}]"
        _check(group.kwargs(), valid, gpath)
        for n in select(model, group.patterns(), path=f"{gpath}.match"):
            owner.setdefault(n, gi)

    def settings(gi: int | None) -> dict[str, Any]:
        out: dict[str, Any] = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
        if gi is not None:
            g = cfg.param_groups[gi]
            out.update(g.kwargs())
            if g.lr is not None:
                out["lr"] = g.lr
            if g.weight_decay is not None:
                out["weight_decay"] = g.weight_decay
        return out

    buckets: dict[tuple[int | None, bool], list[nn.Parameter]] = {}
    for n, p in named:
        # split off biases / norm parameters only where there is decay to spare them from:
        # every extra group costs a per-step pass of the optimizer's Python code
        gi = owner.get(n)
        decays = cfg.decay_bias_and_norm or n in weights or not settings(gi)["weight_decay"]
        buckets.setdefault((owner.get(n), decays), []).append(p)
    groups = []
    for (gi, decays), params in buckets.items():
        opts = settings(gi)
        if not decays:
            opts["weight_decay"] = 0.0
        groups.append({"params": params, "group": "base" if gi is None else f"group{gi}", **opts})
    if "weight_decay" not in valid:  # e.g. LBFGS
        for g in groups:
            g.pop("weight_decay", None)
    try:
        return cls(groups, **{k: v for k, v in extra.items()})
    except (TypeError, ValueError) as exc:
        raise SpecError(str(exc), path=path, found=cfg.model_dump()) from None
