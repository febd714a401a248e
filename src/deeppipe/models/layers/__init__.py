"""The layers a ``model:`` section may name, all in ``deeppipe.registry.LAYERS``.

deeppipe's own layers and blocks are registered where they are written (``basic``: merging,
pooling, reshaping; ``dense``; ``edges``: fixed filters; ``sequence``: embeddings and recurrent
layers; ``blocks``: the pieces of classic CNNs); then every torch.nn layer is harvested under its
own name (here, after them, so deeppipe's ``RNN``/``LSTM``/``GRU``/``Embedding`` keep theirs); then
whatever user code registers with ``register_layer``. Lookups are case-insensitive with "did you
mean" (deeppipe.registry).

A layer's record says how the builder treats it:

- ``multi_input``: ``forward(*xs)`` takes every tensor named in ``from:`` (Add, Concat).
- ``width_args``: the keyword arguments ``width_multiplier`` scales.
- ``spatial_op``: the output is a feature map (conv-like), so a following ``Linear`` needs a
  ``Flatten`` first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch.nn as nn

from deeppipe.models.layers import basic, blocks, dense, edges, packed, sequence  # noqa: F401  (they register)
from deeppipe.registry import LAYERS

__all__ = ["LAYERS", "register_layer"]

# torch.nn names that are not layers a spec can use: containers, abstract bases, parameters
# (losses and lazy layers are recognised by their names)
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


def _not_a_layer(name: str, _cls: type) -> bool:
    return name in _NOT_LAYERS or name.startswith("Lazy") or name.endswith("Loss")


# after deeppipe's own modules above: a name already taken is not harvested
LAYERS.harvest(nn, base=nn.Module, skip=_not_a_layer)


def register_layer(
    name: str | None = None,
    *,
    aliases: tuple[str, ...] = (),
    multi_input: bool = False,
    width_args: Sequence[str] | None = None,
    spatial_op: bool = False,
) -> Callable[[Any], Any]:
    """Register a layer class (or a function returning an ``nn.Module``) under ``name``: the
    typed face of ``LAYERS.register`` for user code listed in a spec's ``imports:``::

        from deeppipe.models import register_layer

        @register_layer("Scale")
        class Scale(nn.Module):
            def __init__(self, in_features: int, init: float = 1.0): ...

    Arguments named ``in_channels``, ``in_features``, ``input_size``, ``num_features``,
    ``num_channels`` or ``normalized_shape`` are filled in from the incoming shape, exactly as for
    torch.nn layers, so the YAML never states them. ``width_args`` defaults to out_channels,
    out_features and hidden_size.
    """
    record: dict[str, Any] = {"multi_input": multi_input, "spatial_op": spatial_op}
    if width_args is not None:
        record["width_args"] = tuple(width_args)
    return LAYERS.register(name, aliases=aliases, **record)
