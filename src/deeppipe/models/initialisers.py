"""Weight initialisation by name, globally (``model.init``) or per layer (``init:`` on an entry).

By default (``auto``) each weight layer's scheme follows the activation after it: He/Kaiming for
the ReLU family (uniform, with leaky ReLU's slope as ``a``), Glorot/Xavier for sigmoid, tanh,
softmax and linear outputs, LeCun for SELU; recurrent weights are orthogonal. Biases start at zero
(a block can ask for another constant, e.g. the highway gate's negative bias). ``default`` keeps
PyTorch's own initialisation. Norm layers keep weight 1 and bias 0, embeddings N(0, 1).

Every initialiser is registered in ``deeppipe.registry.INITIALISERS`` where it is written, as
``fn(weight, act, act_kwargs, **arguments)``. Random initialisation breaks the symmetry between
the units of a layer; a constant initialiser (``constant``, ``zeros``) makes all of them learn the
same thing and is offered for experiments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from deeppipe.models.meta import Choice, existing_meta
from deeppipe.models.named import split_named
from deeppipe.registry import INITIALISERS, check_kwargs

__all__ = ["INITIALISERS", "can_reset", "initialize", "is_weight_layer", "parse_init"]

# what every initialiser takes from deeppipe, not from the spec
_GIVEN = ("w", "act", "act_kwargs")

_RELU_LIKE = {"relu", "relu6", "elu", "celu", "gelu", "silu", "swish", "mish", "softplus", "hardswish"}


def _nonlinearity(act: str | None, act_kwargs: dict[str, Any]) -> tuple[str, float]:
    """torch.nn.init's (nonlinearity, a) for an activation name."""
    act = (act or "identity").lower()
    if act in _RELU_LIKE:
        return "relu", 0.0
    if act == "leaky_relu":
        return "leaky_relu", float(act_kwargs.get("negative_slope", 0.01))
    if act == "prelu":
        return "leaky_relu", float(act_kwargs.get("init", 0.25))
    if act in ("tanh", "hardtanh"):
        return "tanh", 0.0
    if act in ("sigmoid", "hardsigmoid"):
        return "sigmoid", 0.0
    return "linear", 0.0  # identity, softmax, maxout, selu (LeCun), unknown


@INITIALISERS.register("auto")
def _auto(w: torch.Tensor, act: str | None = None, act_kwargs: dict | None = None) -> None:
    """follow the activation after the layer (He for ReLU-like, Glorot otherwise)"""
    act = (act or "identity").lower()
    nl, slope = _nonlinearity(act, act_kwargs or {})
    # uniform versions: the same variance as the normal ones, and about twice as fast to draw
    if nl in ("relu", "leaky_relu"):
        nn.init.kaiming_uniform_(w, a=slope, mode="fan_in", nonlinearity=nl)
    elif act == "selu":
        nn.init.kaiming_uniform_(w, nonlinearity="linear")
    else:
        nn.init.xavier_uniform_(w)


@INITIALISERS.register("default", aliases=("torch",))
def _keep_torch(w: torch.Tensor, act: str | None = None, act_kwargs: dict | None = None) -> None:
    """keep PyTorch's own initialisation"""  # never called: ``initialize`` leaves such layers alone


def _kaiming(normal: bool) -> Callable[..., None]:
    def init(w: torch.Tensor, act: str | None = None, act_kwargs: dict | None = None,
             mode: str = "fan_in", nonlinearity: str | None = None, a: float | None = None) -> None:
        nl, slope = _nonlinearity(act, act_kwargs or {})
        fn = nn.init.kaiming_normal_ if normal else nn.init.kaiming_uniform_
        fn(w, a=slope if a is None else a, mode=mode, nonlinearity=nonlinearity or nl)

    return init


def _xavier(normal: bool) -> Callable[..., None]:
    def init(w: torch.Tensor, act: str | None = None, act_kwargs: dict | None = None,
             gain: float = 1.0) -> None:
        (nn.init.xavier_normal_ if normal else nn.init.xavier_uniform_)(w, gain=gain)

    return init


def _lecun(normal: bool) -> Callable[..., None]:
    def init(w: torch.Tensor, act: str | None = None, act_kwargs: dict | None = None) -> None:
        # variance 1 / fan_in: Kaiming with a linear gain
        (nn.init.kaiming_normal_ if normal else nn.init.kaiming_uniform_)(w, nonlinearity="linear")

    return init


INITIALISERS.register("kaiming_uniform", aliases=("he_uniform",),
                      doc="He uniform, gain from the activation")(_kaiming(False))
INITIALISERS.register("kaiming_normal", aliases=("he_normal", "kaiming", "he"),
                      doc="He normal, gain from the activation")(_kaiming(True))
INITIALISERS.register("xavier_uniform", aliases=("glorot_uniform", "xavier", "glorot"),
                      doc="Glorot uniform")(_xavier(False))
INITIALISERS.register("xavier_normal", aliases=("glorot_normal",), doc="Glorot normal")(_xavier(True))
INITIALISERS.register("lecun_uniform", doc="variance 1/fan_in, uniform")(_lecun(False))
INITIALISERS.register("lecun_normal", aliases=("lecun",),
                      doc="variance 1/fan_in, normal (pairs with SELU)")(_lecun(True))


@INITIALISERS.register("orthogonal")
def _orthogonal(w: torch.Tensor, act: str | None = None, act_kwargs: dict | None = None,
               gain: float = 1.0) -> None:
    """orthogonal matrix (recurrent weights)"""
    nn.init.orthogonal_(w, gain=gain)


@INITIALISERS.register("normal")
def _normal(w: torch.Tensor, act: str | None = None, act_kwargs: dict | None = None,
           mean: float = 0.0, std: float = 0.01) -> None:
    """N(mean, std)"""
    nn.init.normal_(w, mean=mean, std=std)


@INITIALISERS.register("uniform")
def _uniform(w: torch.Tensor, act: str | None = None, act_kwargs: dict | None = None,
            a: float = -0.05, b: float = 0.05) -> None:
    """U(a, b)"""
    nn.init.uniform_(w, a=a, b=b)


@INITIALISERS.register("constant")
def _constant(w: torch.Tensor, act: str | None = None, act_kwargs: dict | None = None,
             val: float = 0.0) -> None:
    """every weight = val (breaks nothing but symmetry: avoid)"""
    nn.init.constant_(w, val)


@INITIALISERS.register("zeros")
def _zeros(w: torch.Tensor, act: str | None = None, act_kwargs: dict | None = None) -> None:
    """every weight 0"""
    nn.init.zeros_(w)


@INITIALISERS.register("ones")
def _ones(w: torch.Tensor, act: str | None = None, act_kwargs: dict | None = None) -> None:
    """every weight 1"""
    nn.init.ones_(w)


def parse_init(value: Any, *, path: str, file: str | None = None) -> Choice:
    """``kaiming_normal`` or ``{name: normal, std: 0.02}`` -> (canonical name, kwargs), checked."""
    name, kwargs = split_named(value, what="an initialisation",
                               example="kaiming_normal or {name: normal, std: 0.02}", path=path, file=file)
    entry = INITIALISERS.entry(name, path=path, file=file)
    check_kwargs(entry.obj, kwargs, path=path, file=file, skip=_GIVEN)
    return entry.name, kwargs


# ----------------------------------------------------------------------------- applying
WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd)


def is_weight_layer(module: nn.Module) -> bool:
    """A layer whose weights ``init:`` chooses (dense and convolutional layers)."""
    return isinstance(module, WEIGHT_LAYERS)


def _init_weight_layer(module: nn.Module, scheme: Choice, act: Choice | None,
                       bias: float) -> None:
    name, kwargs = scheme
    fn = INITIALISERS.get(name)
    act_name, act_kwargs = act if act is not None else (None, {})
    for pname in ("weight", "weight1", "weight2"):
        w = getattr(module, pname, None)
        if isinstance(w, torch.Tensor):
            fn(w, act_name, act_kwargs, **kwargs)
    b = getattr(module, "bias", None)
    if isinstance(b, torch.Tensor):
        nn.init.constant_(b, float(bias))


def _init_recurrent(module: nn.RNNBase, scheme: Choice) -> None:
    name, kwargs = scheme
    gate_act = "tanh" if module.mode in ("RNN_TANH",) else "sigmoid"
    if module.mode == "RNN_RELU":
        gate_act = "relu"
    gates = {"LSTM": 4, "GRU": 3}.get(module.mode, 1)
    for pname, p in module.named_parameters(recurse=False):
        if pname.startswith("weight_hh") and name == "auto":
            for gate in p.chunk(gates, dim=0):  # each gate's recurrent matrix is orthogonal
                nn.init.orthogonal_(gate)
        elif pname.startswith("weight"):
            INITIALISERS.get(name)(p, gate_act, {}, **kwargs)
        elif pname.startswith("bias"):
            nn.init.zeros_(p)


def _owns_tensors(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False)) or any(
        True for _ in module.buffers(recurse=False)
    )


def _resets(module: nn.Module) -> bool:
    return callable(getattr(type(module), "reset_parameters", None)) or callable(
        getattr(type(module), "_reset_parameters", None))


def reset_module(module: nn.Module) -> bool:
    """Refill a module's own parameters and buffers with its default initialisation."""
    for fn_name in ("reset_parameters", "_reset_parameters"):
        fn = getattr(type(module), fn_name, None)
        if callable(fn):
            getattr(module, fn_name)()
            return True
    return not _owns_tensors(module)


def can_reset(module: nn.Module) -> bool:
    """True if every tensor of this module tree can be refilled after ``to_empty`` (see build)."""
    for m in module.modules():
        if any(isinstance(v, torch.Tensor) for v in vars(m).values()):
            return False  # a tensor attribute that is neither parameter nor buffer
        if _owns_tensors(m) and not _resets(m):
            return False
    return True


def initialize(model: nn.Module, default: Choice = ("auto", {}), *, fresh: bool = False) -> None:
    """Initialise every layer of ``model`` in module order (deterministic for a given seed).

    ``fresh=True`` means the tensors hold garbage (after ``to_empty``): every module's own tensors
    are refilled, by the chosen scheme for weight layers and by the module's ``reset_parameters``
    for everything else.
    """
    with torch.no_grad():
        for module in model.modules():
            meta = existing_meta(module)
            scheme = (meta.init if meta is not None else None) or default
            act = meta.act if meta is not None else None
            ours = scheme[0] != "default" and (scheme[0] != "auto" or act is not None)
            if is_weight_layer(module) and ours:
                if fresh:
                    for pname, _p in module.named_parameters(recurse=False):
                        if pname not in ("weight", "bias", "weight1", "weight2"):
                            reset_module(module)
                            break
                    for _ in module.buffers(recurse=False):
                        reset_module(module)
                        break
                _init_weight_layer(module, scheme, act, meta.bias if meta is not None else 0.0)
            elif isinstance(module, nn.RNNBase) and scheme[0] != "default":
                _init_recurrent(module, scheme)
            elif fresh:
                reset_module(module)
