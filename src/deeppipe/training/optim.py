"""Optimisers from the spec: any torch.optim class by name, parameter groups by name pattern.

Weight decay (coupled for SGD/Adam, decoupled for AdamW) goes to weights only unless
``decay_bias_and_norm`` is set: decaying BatchNorm scales or biases only hurts.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from deeppipe.errors import SpecError, join_path
from deeppipe.registry import OPTIMIZERS, check_kwargs, parameters
from deeppipe.training.config import OptimizerConfig
from deeppipe.training.params import select, weight_names

# deeppipe's short names for the classic optimisers, then every other torch.optim class by its own
# name (NAdam, RAdam, Adadelta, Adamax, ...). LBFGS needs a closure and SparseAdam sparse
# gradients: the engine's step provides neither, so validation refuses them by these records.
OPTIMIZERS.register("sgd", doc="SGD with optional momentum, Nesterov and dampening")(torch.optim.SGD)
OPTIMIZERS.register("adagrad", doc="AdaGrad: step lr / sqrt(sum g^2) keeps shrinking")(torch.optim.Adagrad)
OPTIMIZERS.register("rmsprop", doc="RMSProp: step scaled by a moving RMS of g")(torch.optim.RMSprop)
OPTIMIZERS.register("adam", doc="Adam (first moment = momentum)")(torch.optim.Adam)
OPTIMIZERS.register("adamw", doc="Adam with decoupled weight decay")(torch.optim.AdamW)
OPTIMIZERS.register("LBFGS", needs_closure=True)(torch.optim.LBFGS)
OPTIMIZERS.register("SparseAdam", sparse_only=True)(torch.optim.SparseAdam)
OPTIMIZERS.harvest(torch.optim, base=torch.optim.Optimizer, skip=lambda name, cls: cls is torch.optim.Optimizer)

# the classes with fused CUDA kernels (Adagrad's fused kernel is CPU-only: never asked for here)
FUSED_ON_CUDA = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)


def optimizer_arguments(cls: type) -> list[str]:
    """The keyword arguments an optimiser class takes from the spec (not its params)."""
    found = parameters(cls, skip=("params",))
    return found[0] if found else []


def build_optimizer(
    model: nn.Module, cfg: OptimizerConfig, *, path: str = "train.optimizer", fused: bool = False
) -> torch.optim.Optimizer:
    """An optimizer over the trainable parameters, grouped by pattern and by decay/no-decay;
    ``fused``: torch's fused kernels where the class has them (one launch per step on CUDA)."""
    cls = OPTIMIZERS.get(cfg.name, path=join_path(path, "name"))
    valid = optimizer_arguments(cls)
    extra = cfg.kwargs()
    check_kwargs(cls, extra, path=path, skip=("params",))
    if fused and issubclass(cls, FUSED_ON_CUDA) and "fused" not in extra and "foreach" not in extra:
        extra = {**extra, "fused": True}
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise SpecError("every parameter is frozen: nothing left to train", path="train.freeze")
    weights = weight_names(model)

    # Each parameter goes to the first group whose pattern matches it, else to the base group.
    owner: dict[str, int] = {}
    for gi, group in enumerate(cfg.param_groups):
        gpath = join_path(path, "param_groups", gi)
        check_kwargs(cls, group.kwargs(), path=gpath, skip=("params",))
        for n in select(model, group.patterns(), path=join_path(gpath, "match")):
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
    except Exception as exc:  # torch's own checks raise ValueError, TypeError, IndexError, KeyError ...
        text = str(exc).strip().splitlines()
        raise SpecError(f"{cls.__name__} refuses these arguments: {text[0] if text else type(exc).__name__}",
                        path=path, found=extra or cfg.model_dump(exclude={"param_groups"})) from None
