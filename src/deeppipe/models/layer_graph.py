"""The module ``build_model`` returns: a ``LayerGraph``, a plain ``nn.Module`` running a list of
nodes in order.

Each node is one entry of the spec's ``layers:`` list (a layer, a block, or a repeated entry) and
takes the outputs of earlier nodes (``from:``; by default the previous node). Child modules are
named by the entry's ``name:`` or its index in the list, so parameter names are deterministic
(``3.weight``, ``stem.conv.weight``) and a state_dict saved with safetensors loads into the
network rebuilt from the same spec. A node written ``share: <name>`` (hard parameter sharing) runs
the named node's module again and has no child of its own: one set of parameters, stored once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from deeppipe.models.meta import meta_of


@dataclass
class NodeInfo:
    """What the builder knows about a node: its spec path, type, inputs and per-sample output shape."""

    name: str
    type: str
    path: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    is_map: bool = False
    repeat: int | None = None


class LayerGraph(nn.Module):
    """A directed acyclic graph of modules, executed in the order of the spec.

    ``infos`` (one ``NodeInfo`` per node: name, type, spec path, inputs, output shape),
    ``node_names``, ``input_shape`` and ``output_shape`` describe what was built, for checks
    that need the network's structure without running it."""

    def __init__(
        self,
        names: list[str],
        modules: list[nn.Module],
        inputs: list[tuple[int, ...]],
        output: int,
        infos: list[NodeInfo],
        input_shape: tuple[int, ...],
        block_type: str | None = None,
        shares: dict[int, int] | None = None,
    ) -> None:
        super().__init__()
        shares = dict(shares or {})
        for k, (name, module) in enumerate(zip(names, modules)):
            if k not in shares:
                self.add_module(name, module)
        self.node_names = list(names)
        # the child each node runs: its own, or the one of the node it shares (share: <name>)
        self.node_modules = [names[shares.get(k, k)] for k in range(len(names))]
        self.node_inputs = [tuple(i) for i in inputs]  # -1 is the network's input
        self.output_index = output
        self.infos = list(infos)
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(infos[output].shape) if infos else tuple(input_shape)
        if block_type:
            meta_of(self).type = block_type
        n = len(names)
        self._chain = output == n - 1 and all(
            inp == (k - 1,) for k, inp in enumerate(self.node_inputs)
        )
        # the last node that reads each output, so intermediate tensors are freed early
        last_use = {-1: -1}
        for k, inp in enumerate(self.node_inputs):
            for j in inp:
                last_use[j] = k
        self._last_use = last_use

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._chain:
            for key in self.node_modules:
                x = self._modules[key](x)
            return x
        return self._run(x, None)[self.output_index]

    def _run(self, x: torch.Tensor, keep: set[int] | None) -> dict[int, torch.Tensor]:
        outs: dict[int, torch.Tensor] = {-1: x}
        for k, key in enumerate(self.node_modules):
            args = [outs[j] for j in self.node_inputs[k]]
            outs[k] = self._modules[key](*args)
            if keep is None:
                for j in set(self.node_inputs[k]):
                    if self._last_use.get(j) == k and j != self.output_index:
                        del outs[j]
            if k == self.output_index and keep is None:
                break
        return outs

    def node_module(self, k: int) -> nn.Module:
        """The module node ``k`` runs (a shared node's is its owner's)."""
        return self._modules[self.node_modules[k]]

    def outputs(self, x: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
        """The outputs of the named nodes (feature extraction, e.g. an autoencoder's ``code``)."""
        index = {n: k for k, n in enumerate(self.node_names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise KeyError(f"no node named {missing}; nodes: {self.node_names}")
        outs = self._run(x, set(index[n] for n in names))
        return {n: outs[index[n]] for n in names}
