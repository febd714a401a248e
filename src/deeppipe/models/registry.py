"""The layer registry: every name a ``model:`` section may use as a layer.

It holds the torch.nn modules by their own names (``Conv2d``, ``LSTM`` ...), deeppipe's blocks
(``ConvBNAct``, ``BasicBlock`` ...) and whatever user code registers with ``@register_layer``.
Lookups are case-insensitive and unknown names get a "did you mean" (deeppipe.registry).

A few class attributes tell the builder how to treat a layer; all are optional:

- ``multi_input = True``: ``forward(*xs)`` takes every tensor named in ``from:`` (Add, Concat).
- ``width_args = ("out_channels",)``: keyword arguments that ``width_multiplier`` scales.
- ``spatial_op = True``: the output is a feature map (conv-like), which is how the builder knows
  that a following ``Linear`` needs a ``Flatten`` first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn as nn

from deeppipe.registry import Registry

LAYERS: Registry[Any] = Registry("layer")

# torch.nn names that are not layers a spec can use: containers, losses, abstract bases.
_NOT_LAYERS = {
    "Module",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "ParameterList",
    "ParameterDict",
    "Container",
    "RNNBase",
    "RNNCellBase",
    "Parameter",
    "UninitializedParameter",
    "UninitializedBuffer",
    "Buffer",
}


def _register_torch_layers() -> None:
    for name in dir(nn):
        obj = getattr(nn, name)
        if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
            continue
        if name in _NOT_LAYERS or name.startswith(("Lazy", "_")) or name.endswith("Loss"):
            continue
        LAYERS.add(name, obj)


_register_torch_layers()


def register_layer(
    name: str | None = None,
    *,
    aliases: tuple[str, ...] = (),
    multi_input: bool | None = None,
    width_args: tuple[str, ...] | None = None,
) -> Callable[[Any], Any]:
    """Register a layer class (or a function returning an ``nn.Module``) under ``name``.

    Usage in user code listed in a spec's ``imports:``::

        from deeppipe.models import register_layer

        @register_layer("Scale")
        class Scale(nn.Module):
            def __init__(self, in_features: int, init: float = 1.0): ...

    Arguments named ``in_channels``, ``in_features``, ``input_size``, ``num_features``,
    ``num_channels`` or ``normalized_shape`` are filled in from the incoming shape, exactly as for
    torch.nn layers, so the YAML never states them.
    """

    def deco(obj: Any) -> Any:
        if multi_input is not None:
            obj.multi_input = multi_input
        if width_args is not None:
            obj.width_args = tuple(width_args)
        LAYERS.add(name or obj.__name__, obj, aliases=aliases)
        return obj

    return deco
