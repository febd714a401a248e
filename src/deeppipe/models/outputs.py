"""The function a built network applies last: what validation compares with the task and the loss.

A regression head must be the identity (deeppipe standardises regression targets, so they take any
real value; a ReLU head cannot predict below the training mean), and a loss that applies softmax
or sigmoid itself (cross-entropy, BCE on logits) must get raw scores, not probabilities. The walk
starts at the output node and looks through what keeps the range of its input (dropout, reshapes,
pooling), into blocks, repeated entries and ``activation:`` options.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

from deeppipe.models.activations import activation_of
from deeppipe.models.layer_graph import LayerGraph
from deeppipe.models.layers.basic import Permute, Reshape, Transpose, _GlobalPool, _SumPool

# layers whose output stays in the range of their input (a ReLU before them still bounds it)
_KEEPS_RANGE = (
    nn.modules.dropout._DropoutNd,
    nn.Dropout,
    nn.Identity,
    nn.Flatten,
    nn.Unflatten,
    Reshape,
    Permute,
    Transpose,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    _SumPool,
    _GlobalPool,
)


@dataclass(frozen=True)
class OutputFunction:
    """The last activation of a network: its name (``relu``, ``softmax``, ``log_softmax`` ...),
    the class applying it and the spec path of the layer entry it belongs to."""

    name: str
    layer: str
    path: str


def _name(module: nn.Module) -> str | None:
    if isinstance(module, nn.LogSoftmax):  # activation_of files it under softmax (for init)
        return "log_softmax"
    act = activation_of(module)
    return None if act is None or act[0] == "identity" else act[0]


def _last(module: nn.Module, path: str) -> OutputFunction | bool | None:
    """The module's last activation, None if it ends in something else, True if it keeps the
    range of its input (look further back)."""
    name = _name(module)
    if name is not None:
        return OutputFunction(name, type(module).__name__, path)
    if isinstance(module, LayerGraph):
        return output_function(module)
    if isinstance(module, nn.Sequential):  # an entry with activation:, or repeated copies
        for child in reversed(module):
            found = _last(child, path)
            if found is not True:
                return found
        return True
    return True if isinstance(module, _KEEPS_RANGE) else None


def output_function(net: LayerGraph) -> OutputFunction | None:
    """The activation the network's output comes out of, or None for a linear (identity) output."""
    k = net.output_index
    while k >= 0:
        found = _last(net.node_module(k), net.infos[k].path)
        if found is not True:
            return found
        inputs = net.node_inputs[k]
        if len(inputs) != 1:
            return None
        k = inputs[0]
    return None
