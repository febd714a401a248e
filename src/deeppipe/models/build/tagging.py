"""Telling every weight layer which activation follows it, so ``init: auto`` can match it (He for
the ReLU family, Glorot for sigmoid, tanh and linear outputs), looking through the layers that
pass an activation through (norms, dropout, pooling, reshapes)."""

from __future__ import annotations

import torch.nn as nn

from deeppipe.models.activations import activation_of
from deeppipe.models.initialisers import is_weight_layer
from deeppipe.models.layer_graph import LayerGraph
from deeppipe.models.layers.basic import Permute, Reshape, Transpose, _GlobalPool, _SumPool
from deeppipe.models.meta import Choice, existing_meta, meta_of

# Layers that pass the activation of the layer after them through (for init matching).
_TRANSPARENT = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.LocalResponseNorm,
    nn.modules.dropout._DropoutNd,
    nn.Dropout,
    nn.Identity,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.Flatten,
    nn.Unflatten,
    Reshape,
    Permute,
    Transpose,
    _SumPool,
    _GlobalPool,
)


def _activation_after(net: LayerGraph, k: int, after: Choice | None) -> Choice | None:
    """The activation applied to node k's output, looking through norms, dropout and pooling."""
    consumers: dict[int, list[int]] = {}
    for j, inp in enumerate(net.node_inputs):
        for s in inp:
            consumers.setdefault(s, []).append(j)
    cur = k
    while True:
        nxt = consumers.get(cur, [])
        if not nxt:
            return after if cur == net.output_index else None
        if len(nxt) != 1:
            return None
        j = nxt[0]
        m = net.node_module(j)
        act = activation_of(m)
        if act is not None:
            return act
        if isinstance(m, _TRANSPARENT):
            cur = j
            continue
        return None


def tag_activations(module: nn.Module, after: Choice | None) -> None:
    """Tell every weight layer which activation follows it, so ``init: auto`` can match it."""
    meta = existing_meta(module)
    if isinstance(module, LayerGraph):
        for k in range(len(module.node_names)):
            tag_activations(module.node_module(k), _activation_after(module, k, after))
    elif isinstance(module, nn.Sequential) and meta is not None and meta.type:
        children = list(module)
        for c_idx, child in enumerate(children):
            nxt = activation_of(children[c_idx + 1]) if c_idx + 1 < len(children) else after
            tag_activations(child, nxt if c_idx + 1 == len(children) or nxt is not None else None)
    elif is_weight_layer(module) and (meta is None or meta.act is None):
        meta_of(module).act = after if after is not None else ("identity", {})
