"""Activations by name: ``activation: leaky_relu`` on a model, a block or a layer entry.

Each name is registered in ``deeppipe.registry.ACTIVATIONS`` where it is written; extra keys are
the module's arguments (``{name: leaky_relu, negative_slope: 0.2}``), checked against its
signature. Step functions are refused: their gradient is zero almost everywhere, so a network
using one cannot learn by backpropagation.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from deeppipe.errors import SpecError
from deeppipe.models.meta import Choice, existing_meta, meta_of
from deeppipe.models.named import split_named
from deeppipe.registry import ACTIVATIONS

__all__ = ["ACTIVATIONS", "STEP_MESSAGE", "activation_of", "is_step", "make_activation",
           "parse_activation"]

# torch.nn's own activations, under the names a spec uses
ACTIVATIONS.register("identity", aliases=("linear", "none"))(nn.Identity)
ACTIVATIONS.register("sigmoid", aliases=("logistic",))(nn.Sigmoid)
ACTIVATIONS.register("tanh")(nn.Tanh)
ACTIVATIONS.register("hardtanh", aliases=("hard_tanh",))(nn.Hardtanh)
ACTIVATIONS.register("relu")(nn.ReLU)
ACTIVATIONS.register("relu6")(nn.ReLU6)
ACTIVATIONS.register("leaky_relu", aliases=("leakyrelu", "lrelu"))(nn.LeakyReLU)
ACTIVATIONS.register("elu")(nn.ELU)
ACTIVATIONS.register("selu")(nn.SELU)
ACTIVATIONS.register("celu")(nn.CELU)
ACTIVATIONS.register("gelu")(nn.GELU)
ACTIVATIONS.register("silu")(nn.SiLU)
ACTIVATIONS.register("mish")(nn.Mish)
ACTIVATIONS.register("softplus")(nn.Softplus)
ACTIVATIONS.register("softsign")(nn.Softsign)
ACTIVATIONS.register("hardswish", aliases=("hard_swish",))(nn.Hardswish)
ACTIVATIONS.register("hardsigmoid", aliases=("hard_sigmoid",))(nn.Hardsigmoid)
# these work along the feature axis, which the builder supplies as `dim`
ACTIVATIONS.register("softmax", needs_dim=True)(nn.Softmax)
ACTIVATIONS.register("log_softmax", aliases=("logsoftmax",), needs_dim=True)(nn.LogSoftmax)


@ACTIVATIONS.register("prelu")
def prelu(num_parameters: int = 1, init: float = 0.25) -> nn.Module:
    """PReLU: a leaky ReLU whose slope is learned (device and dtype are not the spec's to set)."""
    return nn.PReLU(num_parameters=num_parameters, init=init)


@ACTIVATIONS.register("swish")
class Swish(nn.Module):
    """x * sigmoid(beta x); beta = 1 is SiLU."""

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.beta * x) if self.beta != 1.0 else F.silu(x)


@ACTIVATIONS.register("maxout", needs_dim=True)
class MaxoutActivation(nn.Module):
    """Maxout as an activation: the maximum over groups of ``pieces`` consecutive channels.

    The affine pieces are the layer before it (``Maxout`` is the layer that contains them); this
    reduces the channel (or feature) count by ``pieces``.
    """

    def __init__(self, pieces: int = 2, dim: int = 1) -> None:
        super().__init__()
        if pieces < 1:
            raise ValueError("pieces must be >= 1")
        self.pieces = pieces
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dim = self.dim % x.dim()
        size = x.shape[dim]
        if size % self.pieces:
            raise ValueError(f"maxout: {size} channels are not divisible by pieces={self.pieces}")
        shape = (*x.shape[:dim], size // self.pieces, self.pieces, *x.shape[dim + 1 :])
        return x.reshape(shape).amax(dim=dim + 1)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


STEP_MESSAGE = (
    "a step activation has zero gradient almost everywhere, so backpropagation cannot train "
    "the layers before it; use sigmoid (its smooth version), hardtanh or relu"
)
_STEP_NAMES = {"step", "heaviside", "binary_step", "binarystep", "sign", "unit_step", "threshold_step"}


def is_step(name: str) -> bool:
    """Whether ``name`` is a step function (refused: nothing before it could learn)."""
    return str(name).lower().replace("-", "_") in _STEP_NAMES


def parse_activation(value: Any, *, path: str, file: str | None = None) -> Choice:
    """``relu`` or ``{name: leaky_relu, negative_slope: 0.2}`` -> (canonical name, kwargs)."""
    name, kwargs = split_named(value, what="an activation",
                               example="relu or {name: leaky_relu, negative_slope: 0.1}",
                               path=path, file=file)
    if is_step(name):
        raise SpecError(f"step activation '{name}' refused: {STEP_MESSAGE}", path=path, file=file,
                        found=name)
    return ACTIVATIONS.entry(name, path=path, file=file).name, kwargs


def make_activation(value: Any, *, feature_dim: int = 1, path: str = "activation",
                    file: str | None = None) -> nn.Module:
    """Build the activation module named by ``value``; ``feature_dim`` is the batch tensor's axis
    that softmax and maxout work along (1 for features and channels)."""
    name, kwargs = parse_activation(value, path=path, file=file)
    fixed = {"dim": feature_dim} if ACTIVATIONS.entry(name).needs_dim and "dim" not in kwargs else {}
    module = ACTIVATIONS.build(name, kwargs, path=path, file=file, fixed=fixed)
    # what it is, so the initialisation of the layer before it can match it
    meta_of(module).activation = (name, {**kwargs, **fixed})
    return module


# torch.nn classes -> activation name, to match initialisation to layers the user wrote directly.
_CLASS_NAMES = {
    nn.ReLU: "relu",
    nn.ReLU6: "relu",
    nn.LeakyReLU: "leaky_relu",
    nn.PReLU: "prelu",
    nn.RReLU: "leaky_relu",
    nn.ELU: "elu",
    nn.CELU: "elu",
    nn.SELU: "selu",
    nn.GELU: "gelu",
    nn.SiLU: "silu",
    nn.Mish: "mish",
    nn.Tanh: "tanh",
    nn.Hardtanh: "tanh",
    nn.Sigmoid: "sigmoid",
    nn.Hardsigmoid: "sigmoid",
    nn.Softmax: "softmax",
    nn.LogSoftmax: "softmax",
    nn.Softplus: "relu",
    nn.Hardswish: "silu",
    nn.Identity: "identity",
    MaxoutActivation: "maxout",
    Swish: "silu",
}


def activation_of(module: nn.Module) -> Choice | None:
    """The activation a module applies as (name, arguments), or None if it is not an activation."""
    meta = existing_meta(module)
    if meta is not None and meta.activation is not None:
        return meta.activation
    cname = _CLASS_NAMES.get(type(module))
    if cname is None:
        return None
    kwargs: dict[str, Any] = {}
    if isinstance(module, nn.LeakyReLU):
        kwargs["negative_slope"] = module.negative_slope
    return cname, kwargs
