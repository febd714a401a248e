"""Activations by name: ``activation: leaky_relu`` on a model, a block or a layer entry.

A name maps to a factory returning an ``nn.Module``; extra keys are that module's arguments
(``{name: leaky_relu, negative_slope: 0.2}``). Step functions are refused: their gradient is zero
almost everywhere, so a network using one cannot learn by backpropagation.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from deeppipe.errors import SpecError
from deeppipe.registry import Registry, call_with

ACTIVATIONS: Registry[Any] = Registry("activation")


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


def _softmax(dim: int = 1) -> nn.Module:
    return nn.Softmax(dim=dim)


def _log_softmax(dim: int = 1) -> nn.Module:
    return nn.LogSoftmax(dim=dim)


def _prelu(num_parameters: int = 1, init: float = 0.25) -> nn.Module:
    return nn.PReLU(num_parameters=num_parameters, init=init)


class Swish(nn.Module):
    """x * sigmoid(beta x); beta = 1 is SiLU."""

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.beta * x) if self.beta != 1.0 else F.silu(x)


# name -> (factory, takes a `dim` argument)
_TABLE: list[tuple[str, Any, tuple[str, ...]]] = [
    ("identity", nn.Identity, ("linear", "none")),
    ("sigmoid", nn.Sigmoid, ("logistic",)),
    ("tanh", nn.Tanh, ()),
    ("hardtanh", nn.Hardtanh, ("hard_tanh",)),
    ("relu", nn.ReLU, ()),
    ("relu6", nn.ReLU6, ()),
    ("leaky_relu", nn.LeakyReLU, ("leakyrelu", "lrelu")),
    ("prelu", _prelu, ()),
    ("elu", nn.ELU, ()),
    ("selu", nn.SELU, ()),
    ("celu", nn.CELU, ()),
    ("gelu", nn.GELU, ()),
    ("silu", nn.SiLU, ()),
    ("swish", Swish, ()),
    ("mish", nn.Mish, ()),
    ("softplus", nn.Softplus, ()),
    ("softsign", nn.Softsign, ()),
    ("hardswish", nn.Hardswish, ("hard_swish",)),
    ("hardsigmoid", nn.Hardsigmoid, ("hard_sigmoid",)),
    ("softmax", _softmax, ()),
    ("log_softmax", _log_softmax, ("logsoftmax",)),
    ("maxout", MaxoutActivation, ()),
]
for _name, _factory, _aliases in _TABLE:
    ACTIVATIONS.add(_name, _factory, aliases=_aliases)

# Activations whose factory takes the feature axis (softmax over classes, maxout over channels).
_NEEDS_DIM = {"softmax", "log_softmax", "maxout"}

STEP_MESSAGE = (
    "a step activation has zero gradient almost everywhere, so backpropagation cannot train "
    "the layers before it; use sigmoid (its smooth version), hardtanh or relu"
)
_STEP_NAMES = {
    "step",
    "heaviside",
    "binary_step",
    "binarystep",
    "sign",
    "unit_step",
    "threshold_step",
}


def is_step(name: str) -> bool:
    return str(name).lower().replace("-", "_") in _STEP_NAMES


def parse_activation(
    value: Any, *, path: str, file: str | None = None
) -> tuple[str, dict[str, Any]]:
    """``relu`` or ``{name: leaky_relu, negative_slope: 0.2}`` -> (canonical name, kwargs)."""
    if isinstance(value, str):
        name, kwargs = value, {}
    elif isinstance(value, dict) and "name" in value:
        kwargs = dict(value)
        name = kwargs.pop("name")
    else:
        raise SpecError(
            "an activation is a name or {name: ..., <arguments>}",
            path=path,
            file=file,
            expected="e.g. relu or {name: leaky_relu, negative_slope: 0.1}",
            found=value,
        )
    if not isinstance(name, str):
        raise SpecError("an activation name must be a string", path=path, file=file, found=name)
    if is_step(name):
        raise SpecError(
            f"step activation '{name}' refused: {STEP_MESSAGE}", path=path, file=file, found=name
        )
    ACTIVATIONS.get(name, path=path, file=file)
    return ACTIVATIONS.canonical(name), kwargs


def make_activation(
    value: Any, *, feature_dim: int = 1, path: str = "activation", file: str | None = None
) -> nn.Module:
    """Build the activation module named by ``value``; ``feature_dim`` is the batch tensor's axis
    that softmax and maxout work along (1 for features and channels)."""
    name, kwargs = parse_activation(value, path=path, file=file)
    factory = ACTIVATIONS.get(name)
    if name in _NEEDS_DIM:
        kwargs.setdefault("dim", feature_dim)
    module = call_with(factory, kwargs, path=path, file=file)
    module._dp_activation = (
        name,
        dict(kwargs),
    )  # matches the initialisation of the layer before it
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
}


def activation_of(module: nn.Module) -> tuple[str, dict[str, Any]] | None:
    """The activation a module applies as (name, arguments), or None if it is not an activation."""
    tagged = getattr(module, "_dp_activation", None)
    if tagged is not None:
        return tagged
    if isinstance(module, MaxoutActivation):
        return "maxout", {}
    if isinstance(module, Swish):
        return "silu", {}
    cname = _CLASS_NAMES.get(type(module))
    if cname is None:
        return None
    kwargs: dict[str, Any] = {}
    if isinstance(module, nn.LeakyReLU):
        kwargs["negative_slope"] = module.negative_slope
    return cname, kwargs
