"""Weight initialisation by name, globally (``model.init``) or per layer (``init:`` on an entry).

By default (``auto``) each weight layer's scheme follows the activation after it: He/Kaiming for
the ReLU family (uniform, with leaky ReLU's slope as ``a``), Glorot/Xavier for sigmoid, tanh, softmax and
linear outputs, LeCun for SELU; recurrent weights are orthogonal. Biases start at zero (a block
can ask for another constant, e.g. the highway gate's negative bias). ``default`` keeps PyTorch's
own initialisation. Norm layers keep weight 1 and bias 0, embeddings N(0, 1).

Random initialisation breaks the symmetry between the units of a layer; a constant initialiser
(``constant``, ``zeros``) makes all of them learn the same thing and is offered for experiments.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from deeppipe.errors import SpecError
from deeppipe.registry import Registry

INITS: Registry[Any] = Registry("initialisation")

_RELU_LIKE = {
    "relu",
    "relu6",
    "elu",
    "celu",
    "gelu",
    "silu",
    "swish",
    "mish",
    "softplus",
    "hardswish",
}


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


def _kaiming(normal: bool):
    def init(
        w: torch.Tensor,
        act: str | None = None,
        act_kwargs: dict | None = None,
        mode: str = "fan_in",
        nonlinearity: str | None = None,
        a: float | None = None,
    ) -> None:
        nl, slope = _nonlinearity(act, act_kwargs or {})
        nl = nonlinearity or nl
        slope = slope if a is None else a
        fn = nn.init.kaiming_normal_ if normal else nn.init.kaiming_uniform_
        fn(w, a=slope, mode=mode, nonlinearity=nl)

    return init


def _xavier(normal: bool):
    def init(
        w: torch.Tensor, act: str | None = None, act_kwargs: dict | None = None, gain: float = 1.0
    ) -> None:
        (nn.init.xavier_normal_ if normal else nn.init.xavier_uniform_)(w, gain=gain)

    return init


def _lecun(normal: bool):
    def init(w: torch.Tensor, act: str | None = None, act_kwargs: dict | None = None) -> None:
        # variance 1 / fan_in: Kaiming with a linear gain
        (nn.init.kaiming_normal_ if normal else nn.init.kaiming_uniform_)(w, nonlinearity="linear")

    return init


def _orthogonal(
    w: torch.Tensor, act: str | None = None, act_kwargs: dict | None = None, gain: float = 1.0
) -> None:
    nn.init.orthogonal_(w, gain=gain)


def _normal(
    w: torch.Tensor,
    act: str | None = None,
    act_kwargs: dict | None = None,
    mean: float = 0.0,
    std: float = 0.01,
) -> None:
    nn.init.normal_(w, mean=mean, std=std)


def _uniform(
    w: torch.Tensor,
    act: str | None = None,
    act_kwargs: dict | None = None,
    a: float = -0.05,
    b: float = 0.05,
) -> None:
    nn.init.uniform_(w, a=a, b=b)


def _constant(
    w: torch.Tensor, act: str | None = None, act_kwargs: dict | None = None, val: float = 0.0
) -> None:
    nn.init.constant_(w, val)


def _zeros(w: torch.Tensor, act: str | None = None, act_kwargs: dict | None = None) -> None:
    nn.init.zeros_(w)


def _ones(w: torch.Tensor, act: str | None = None, act_kwargs: dict | None = None) -> None:
    nn.init.ones_(w)


def _auto(w: torch.Tensor, act: str | None = None, act_kwargs: dict | None = None) -> None:
    act = (act or "identity").lower()
    nl, slope = _nonlinearity(act, act_kwargs or {})
    # uniform versions: the same variance as the normal ones, and about twice as fast to draw
    if nl in ("relu", "leaky_relu"):
        nn.init.kaiming_uniform_(w, a=slope, mode="fan_in", nonlinearity=nl)
    elif act == "selu":
        nn.init.kaiming_uniform_(w, nonlinearity="linear")
    else:
        nn.init.xavier_uniform_(w)


INITS.add(
    "auto", _auto, doc="follow the activation after the layer (He for ReLU-like, Glorot otherwise)"
)
INITS.add("default", None, aliases=("torch",), doc="keep PyTorch's own initialisation")
INITS.add(
    "kaiming_uniform",
    _kaiming(False),
    aliases=("he_uniform",),
    doc="He uniform, gain from the activation",
)
INITS.add(
    "kaiming_normal",
    _kaiming(True),
    aliases=("he_normal", "kaiming", "he"),
    doc="He normal, gain from the activation",
)
INITS.add(
    "xavier_uniform",
    _xavier(False),
    aliases=("glorot_uniform", "xavier", "glorot"),
    doc="Glorot uniform",
)
INITS.add("xavier_normal", _xavier(True), aliases=("glorot_normal",), doc="Glorot normal")
INITS.add("lecun_uniform", _lecun(False), doc="variance 1/fan_in, uniform")
INITS.add(
    "lecun_normal",
    _lecun(True),
    aliases=("lecun",),
    doc="variance 1/fan_in, normal (pairs with SELU)",
)
INITS.add("orthogonal", _orthogonal, doc="orthogonal matrix (recurrent weights)")
INITS.add("normal", _normal, doc="N(mean, std)")
INITS.add("uniform", _uniform, doc="U(a, b)")
INITS.add("constant", _constant, doc="every weight = val (breaks nothing but symmetry: avoid)")
INITS.add("zeros", _zeros, doc="every weight 0")
INITS.add("ones", _ones, doc="every weight 1")


def parse_init(value: Any, *, path: str, file: str | None = None) -> tuple[str, dict[str, Any]]:
    """``kaiming_normal`` or ``{name: normal, std: 0.02}`` -> (canonical name, kwargs), checked."""
    if isinstance(value, str):
        name, kwargs = value, {}
    elif isinstance(value, dict) and isinstance(value.get("name"), str):
        kwargs = dict(value)
        name = kwargs.pop("name")
    else:
        raise SpecError(
            "an initialisation is a name or {name: ..., <arguments>}",
            path=path,
            file=file,
            expected="e.g. kaiming_normal or {name: normal, std: 0.02}",
            found=value,
        )
    fn = INITS.get(name, path=path, file=file)
    canonical = INITS.canonical(name)
    if kwargs:
        import inspect

        valid = (
            [p for p in inspect.signature(fn).parameters if p not in ("w", "act", "act_kwargs")]
            if fn
            else []
        )
        for key in kwargs:
            if key not in valid:
                from deeppipe.errors import closest

                raise SpecError(
                    f"unknown argument '{key}' for initialisation '{canonical}'",
                    path=f"{path}.{key}",
                    file=file,
                    expected=f"one of {', '.join(valid)}" if valid else "no arguments",
                    found=key,
                    suggestion=closest(key, valid),
                )
    return canonical, kwargs


# ----------------------------------------------------------------------------- applying
WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd)


def is_weight_layer(module: nn.Module) -> bool:
    return isinstance(module, WEIGHT_LAYERS)


def _init_weight_layer(
    module: nn.Module, scheme: tuple[str, dict], act: str | None, act_kwargs: dict
) -> None:
    name, kwargs = scheme
    fn = INITS.get(name)
    for pname in ("weight", "weight1", "weight2"):
        w = getattr(module, pname, None)
        if isinstance(w, torch.Tensor):
            fn(w, act, act_kwargs, **kwargs)
    b = getattr(module, "bias", None)
    if isinstance(b, torch.Tensor):
        nn.init.constant_(b, float(getattr(module, "_dp_bias", 0.0)))


def _init_recurrent(module: nn.RNNBase, scheme: tuple[str, dict]) -> None:
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
            INITS.get(name)(p, gate_act, {}, **kwargs)
        elif pname.startswith("bias"):
            nn.init.zeros_(p)


def _owns_tensors(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False)) or any(
        True for _ in module.buffers(recurse=False)
    )


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
        if _owns_tensors(m) and not (
            callable(getattr(type(m), "reset_parameters", None))
            or callable(getattr(type(m), "_reset_parameters", None))
        ):
            return False
    return True


def initialize(
    model: nn.Module, default: tuple[str, dict] = ("auto", {}), *, fresh: bool = False
) -> None:
    """Initialise every layer of ``model`` in module order (deterministic for a given seed).

    ``fresh=True`` means the tensors hold garbage (after ``to_empty``): every module's own tensors
    are refilled, by the chosen scheme for weight layers and by the module's ``reset_parameters``
    for everything else.
    """
    with torch.no_grad():
        for module in model.modules():
            scheme = getattr(module, "_dp_init", None) or default
            act = getattr(module, "_dp_act", None)
            act_kwargs = getattr(module, "_dp_act_kwargs", {})
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
                _init_weight_layer(module, scheme, act, act_kwargs)
            elif isinstance(module, nn.RNNBase) and scheme[0] != "default":
                _init_recurrent(module, scheme)
            elif fresh:
                reset_module(module)
