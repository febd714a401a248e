"""Giving the network built on the meta device real storage, then initialising it."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn as nn

from deeppipe.models.initialisers import initialize
from deeppipe.models.meta import Choice, existing_meta, set_meta


def materialize(net: nn.Module, default_init: Choice, device: str | torch.device = "cpu") -> nn.Module:
    """Give the meta-built network real storage on the CPU and initialise it.

    Layers whose every tensor can be refilled by ``reset_parameters`` (all of torch.nn's and
    deeppipe's) are moved with ``to_empty`` and initialised once; any other layer (a user layer
    keeping a tensor in a plain attribute, say) is constructed again for real from its arguments.
    """
    net.to_empty(device=device)
    rebuilt: list[nn.Module] = []
    for name, m in list(net.named_modules()):
        meta = existing_meta(m)
        if meta is None or meta.factory is None or any(m is r or _is_inside(m, r) for r in rebuilt):
            continue
        parent = net.get_submodule(name.rsplit(".", 1)[0]) if "." in name else net
        real = meta.factory().to(device)
        set_meta(real, replace(meta, factory=None))  # what the meta copy knew, minus the recipe
        if meta.frozen:
            for p in real.parameters():
                p.requires_grad_(False)
        setattr(parent, name.rsplit(".", 1)[-1], real)
        rebuilt.append(real)
    initialize(net, default_init, fresh=True)
    return net


def _is_inside(m: nn.Module, root: nn.Module) -> bool:
    return any(m is x for x in root.modules())
