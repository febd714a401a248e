"""YAML ``model:`` section -> ``nn.Module``.

The builder walks the ``layers:`` list once. For each entry it resolves the layer (torch.nn,
a deeppipe block, a user-registered layer, or a block defined in the spec), fills the input
sizes from the shape flowing in, constructs the layer on the meta device and runs it once on a
meta tensor to learn its output shape: no memory is allocated and no arithmetic done, so even
a ResNet-152 is checked in a fraction of a second. Every failure becomes a SpecError that names the YAML path
and the shapes. The finished network is then materialised on the CPU and initialised (module
order, so a seed gives the same weights every time).

Nothing in the spec is evaluated: ``$name`` placeholders are replaced by the values given for
them, as values (whole-string placeholders keep the value's type) or as text.
"""

from __future__ import annotations

import copy
import inspect
import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from deeppipe.errors import SpecError, closest, join_path
from deeppipe.models import blocks as _blocks  # noqa: F401  (registers the blocks)
from deeppipe.models import layers as _layers
from deeppipe.models.activations import (
    STEP_MESSAGE,
    activation_of,
    is_step,
    make_activation,
    parse_activation,
)
from deeppipe.models.init import can_reset, initialize, is_weight_layer, parse_init
from deeppipe.models.network import Network, NodeInfo
from deeppipe.models.registry import LAYERS
from deeppipe.models.shapes import DESCRIBE, INFERRED, check_flat, check_rank, check_window, fmt

ENTRY_KEYS = ("repeat", "name", "from", "init", "activation", "trainable")
MODEL_KEYS = (
    "layers",
    "input",
    "blocks",
    "args",
    "activation",
    "init",
    "width_multiplier",
    "depth_multiplier",
    "output",
    "description",
)
# Keys a zoo file may carry for people and tools; the builder ignores them.
INFO_KEYS = ("task", "loss", "small_input", "reference", "published_params")
BLOCK_KEYS = ("args", "layers", "output", "description")
DEFAULT_WIDTH_ARGS = ("out_channels", "out_features", "hidden_size")
POSITIVE_KEYS = (
    "out_channels",
    "out_features",
    "hidden_size",
    "num_embeddings",
    "embedding_dim",
    "num_layers",
    "kernel_size",
    "growth_rate",
)
ACTIVATION_LAYER = {"activation", "act"}
_REQUIRED = object()
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\$(?:\$|\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))")

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
    _layers.Reshape,
    _layers.Permute,
    _layers.Transpose,
    _layers._SumPool,
    _layers._GlobalPool,
)
_MAP_PRODUCERS = (
    nn.modules.conv._ConvNd,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.modules.pooling._LPPoolNd,
    nn.Upsample,
    nn.PixelShuffle,
    nn.PixelUnshuffle,
)


# ----------------------------------------------------------------------------- context
@dataclass
class BlockDef:
    name: str
    args: dict[str, Any]
    layers: list[Any]
    output: str | None
    path: str


@dataclass
class Ctx:
    file: str | None
    num_outputs: int | None
    model_input: tuple[int, ...]
    blocks: dict[str, BlockDef]
    activation: Any = None
    width: float = 1.0
    depth: float = 1.0
    stack: tuple[str, ...] = ()
    head_path: str | None = None  # the entry exempt from width_multiplier (the output head)
    shapes: dict = field(default_factory=dict)  # (layer, arguments, input) -> probed output


@dataclass
class Built:
    module: nn.Module
    shape: tuple[int, ...]
    is_map: bool
    type: str


def _err(msg: str, path: str, ctx: Ctx | None, **kw: Any) -> SpecError:
    return SpecError(msg, path=path, file=ctx.file if ctx else None, **kw)


# ----------------------------------------------------------------------------- substitution
def substitute(
    obj: Any,
    values: dict[str, Any],
    *,
    path: str,
    file: str | None,
    skip: frozenset[str] = frozenset(),
) -> Any:
    """Replace ``$name`` / ``${name}`` by ``values[name]``: a whole-string placeholder becomes the
    value itself (keeping its type), an embedded one its text; ``$$`` is a literal ``$``. Names in
    ``skip`` are left for a later pass (block arguments). Nothing is evaluated."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            key = (
                substitute(k, values, path=path, file=file, skip=skip) if isinstance(k, str) else k
            )
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise SpecError(
                    f"'{k}' must stand for a name, not a {type(key).__name__}",
                    path=path,
                    file=file,
                    found=key,
                )
            out[key] = substitute(v, values, path=join_path(path, str(key)), file=file, skip=skip)
        return out
    if isinstance(obj, list):
        return [
            substitute(v, values, path=f"{path}[{i}]", file=file, skip=skip)
            for i, v in enumerate(obj)
        ]
    if not isinstance(obj, str) or "$" not in obj:
        return obj

    def lookup(name: str) -> Any:
        if name in values:
            return values[name]
        raise SpecError(
            f"unknown parameter '${name}'",
            path=path,
            file=file,
            expected=f"one of {', '.join('$' + v for v in sorted(values))}"
            if values
            else "no parameters here",
            found=f"${name}",
            suggestion=("$" + c) if (c := closest(name, values)) else None,
        )

    whole = _PLACEHOLDER.fullmatch(obj)
    if whole and obj != "$$":
        name = whole.group(1) or whole.group(2)
        if name in skip:
            return obj
        return copy.deepcopy(lookup(name))

    def repl(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$$" if skip else "$"
        name = m.group(1) or m.group(2)
        if name in skip:
            return m.group(0)
        value = lookup(name)
        if isinstance(value, (dict, list)):
            raise SpecError(
                f"'${name}' is a {type(value).__name__} and cannot be part of a text",
                path=path,
                file=file,
                found=obj,
            )
        return str(value)

    return _PLACEHOLDER.sub(repl, obj)


def _bind_args(
    declared: Any, given: Any, *, what: str, path: str, decl_path: str, ctx: Ctx | None
) -> dict[str, Any]:
    """Match the arguments given to a block (or a model) against the ones it declares."""
    params = _declared_args(declared, decl_path, ctx)
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise _err(
            f"the arguments of {what} must be a mapping",
            path,
            ctx,
            expected="{arg: value, ...}",
            found=given,
        )
    for key in given:
        if key not in params:
            raise _err(
                f"unknown argument '{key}' for {what}",
                join_path(path, str(key)),
                ctx,
                expected=f"one of {', '.join(params)}" if params else "no arguments",
                found=key,
                suggestion=closest(str(key), params),
            )
    out = {}
    for key, default in params.items():
        if key in given:
            out[key] = given[key]
        elif default is _REQUIRED:
            raise _err(
                f"{what} needs argument '{key}'",
                path,
                ctx,
                expected=f"{key}: <value>",
                found=dict(given),
            )
        else:
            out[key] = default
    return out


def _declared_args(declared: Any, path: str, ctx: Ctx | None) -> dict[str, Any]:
    if declared is None:
        return {}
    if isinstance(declared, list) and all(isinstance(a, str) for a in declared):
        return {a: _REQUIRED for a in declared}
    if isinstance(declared, dict):
        return {str(k): (_REQUIRED if v is None else v) for k, v in declared.items()}
    raise _err(
        "args: is a list of names (all required) or a mapping of names to defaults (null = required)",
        path,
        ctx,
        expected="[out, stride] or {out: null, stride: 1}",
        found=declared,
    )


# ----------------------------------------------------------------------------- entries
@dataclass
class Entry:
    type: str
    args: dict[str, Any]
    repeat: int | None = None
    name: str | None = None
    sources: list[Any] | None = None
    init: tuple[str, dict] | None = None
    activation: Any = None
    trainable: bool = True


def parse_entry(raw: Any, path: str, ctx: Ctx) -> Entry:
    if isinstance(raw, str):
        return Entry(type=raw, args={})
    if not isinstance(raw, dict) or not raw:
        raise _err(
            "a layer entry is '- LayerName: {arguments}' (optionally with repeat:, name:, from:, init:, "
            "activation:, trainable:)",
            path,
            ctx,
            expected="e.g. - Conv2d: {out_channels: 32, kernel_size: 3}",
            found=raw,
        )
    types = [k for k in raw if k not in ENTRY_KEYS]
    if len(types) != 1:
        names = ", ".join(map(str, types)) or "none"
        raise _err(
            f"a layer entry names exactly one layer, found {names}; "
            f"the other keys may only be {', '.join(ENTRY_KEYS)}",
            path,
            ctx,
            expected="one layer name",
            found=list(raw),
            suggestion=next((c for t in types if (c := closest(str(t), ENTRY_KEYS))), None),
        )
    tname = types[0]
    if not isinstance(tname, str):
        raise _err("a layer name must be a string", path, ctx, found=tname)
    args = raw[tname]
    if args is None:
        args = {}
    if not isinstance(args, dict):
        if tname.lower() in ACTIVATION_LAYER and isinstance(args, str):
            args = {"name": args}
        else:
            raise _err(
                f"the arguments of {tname} must be a mapping",
                f"{path}.{tname}",
                ctx,
                expected=f"{tname}: {{argument: value, ...}} (or {tname}: {{}})",
                found=args,
            )
    e = Entry(type=tname, args=dict(args))
    if "repeat" in raw:
        r = raw["repeat"]
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            raise _err(
                "repeat must be a whole number >= 0",
                f"{path}.repeat",
                ctx,
                expected="e.g. 3",
                found=r,
            )
        e.repeat = r
    if "name" in raw:
        n = raw["name"]
        if not isinstance(n, str) or not _NAME.match(n) or n.isdigit() or n == "input":
            raise _err(
                "a layer name is an identifier (letters, digits, _; not 'input')",
                f"{path}.name",
                ctx,
                expected="e.g. conv1",
                found=n,
            )
        if hasattr(Network, n) or n in (
            "infos",
            "node_names",
            "node_inputs",
            "output_index",
            "input_shape",
            "output_shape",
        ):
            raise _err(
                f"'{n}' is reserved (an attribute of the network); choose another name",
                f"{path}.name",
                ctx,
                found=n,
            )
        e.name = n
    if "from" in raw:
        src = raw["from"]
        src = src if isinstance(src, list) else [src]
        if not src or not all(isinstance(s, (str, int)) and not isinstance(s, bool) for s in src):
            raise _err(
                "from: is a layer name, 'input', a negative offset (-1 = previous) or a list of them",
                f"{path}.from",
                ctx,
                expected="e.g. from: [conv1, -1]",
                found=raw["from"],
            )
        e.sources = src
    if "init" in raw:
        e.init = parse_init(raw["init"], path=f"{path}.init", file=ctx.file)
    if "activation" in raw:
        parse_activation(raw["activation"], path=f"{path}.activation", file=ctx.file)
        e.activation = raw["activation"]
    if "trainable" in raw:
        if not isinstance(raw["trainable"], bool):
            raise _err(
                "trainable must be true or false", f"{path}.trainable", ctx, found=raw["trainable"]
            )
        e.trainable = raw["trainable"]
    return e


# ----------------------------------------------------------------------------- single layers
def _signature(obj: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None


def _is_map_out(
    module: nn.Module, in_shape: tuple[int, ...], in_is_map: bool, out: tuple[int, ...]
) -> bool:
    if isinstance(module, _MAP_PRODUCERS) or getattr(module, "spatial_op", False):
        return len(out) >= 2
    if isinstance(module, (nn.Flatten, nn.Linear, nn.RNNBase, nn.Embedding, _layers._GlobalPool)):
        return False
    if isinstance(module, (_layers.Permute, _layers.Transpose)) and len(out) == 2:
        return not in_is_map  # (C, L) <-> (T, F)
    if len(out) == len(in_shape):
        return in_is_map
    return len(out) >= 3


SIZE_KEYS = (
    "out_features",
    "out_channels",
    "hidden_size",
    "num_classes",
    "num_outputs",
    "embedding_dim",
    "num_channels",
    "shape",
    "size",
)


def _symbolic(key: str, value: Any, ctx: Ctx, path: str) -> Any:
    """``auto`` = the data's number of outputs; ``input`` = the model input's size."""
    if not isinstance(value, str) or key not in SIZE_KEYS:
        return value
    low = value.lower()
    if low == "auto":
        if ctx.num_outputs is None:
            raise _err(
                f"{key}: auto means 'as many as the data needs', but no number of outputs is known here "
                "(pass --num-classes, or give the number)",
                path,
                ctx,
                found=value,
            )
        return int(ctx.num_outputs)
    if low == "input":
        shape = ctx.model_input
        if key in ("out_channels", "num_channels"):
            return shape[0]
        if key in ("out_features", "hidden_size", "embedding_dim"):
            return math.prod(shape)
        if key in ("shape", "size"):
            return list(shape)
        raise _err(
            f"'input' is not a size for {key}",
            path,
            ctx,
            expected="out_channels, out_features or shape",
            found=value,
        )
    return value


def _scale(value: Any, w: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, int) or w == 1.0:
        return value
    return max(1, round(value * w))


def _src_text(src: str) -> str:
    return f" from {src}" if src else ""


def _activation_layer(
    entry: Entry, in_shape: tuple[int, ...], is_map: bool, ctx: Ctx, path: str
) -> nn.Module:
    args = dict(entry.args)
    name = args.pop("name", None) or ctx.activation
    if name is None:
        raise _err(
            "Activation needs a name here (no model-wide activation: is set)",
            path,
            ctx,
            expected="e.g. - Activation: {name: relu}",
            found=entry.args,
        )
    value = {**name, **args} if isinstance(name, dict) else {"name": name, **args}
    feature_dim = 1 if (is_map or len(in_shape) == 1) else len(in_shape)
    with torch.device("meta"):
        return make_activation(value, feature_dim=feature_dim, path=path, file=ctx.file)


def build_layer(
    entry: Entry,
    in_shapes: list[tuple[int, ...]],
    in_maps: list[bool],
    ctx: Ctx,
    path: str,
    src: str,
    *,
    scale_width: bool,
) -> Built:
    """One registered layer: resolve, infer, construct on meta, probe its output shape."""
    tname = entry.type
    lpath = f"{path}.{tname}"
    if is_step(tname):
        raise _err(f"step activation '{tname}' refused: {STEP_MESSAGE}", lpath, ctx, found=tname)
    if tname.lower() in ACTIVATION_LAYER:
        if len(in_shapes) != 1:
            raise _err("Activation takes one input", lpath, ctx, found=entry.sources)
        module = _activation_layer(entry, in_shapes[0], in_maps[0], ctx, lpath)
        return _probe(module, None, tname, in_shapes, in_maps, ctx, lpath, src)
    if tname not in LAYERS:
        names = LAYERS.names(include_aliases=True) + [b.name for b in ctx.blocks.values()]
        hit = closest(tname, names)
        if hit is not None and hit in LAYERS:
            hit = LAYERS.canonical(hit)
        raise _err(
            f"unknown layer '{tname}'",
            lpath,
            ctx,
            expected="a torch.nn layer, a deeppipe block, a registered layer or a block defined under blocks:",
            found=tname,
            suggestion=hit,
        )
    cls = LAYERS.get(tname)
    canonical = LAYERS.canonical(tname)
    kwargs: dict[str, Any] = {
        k: _symbolic(k, v, ctx, f"{lpath}.{k}") for k, v in entry.args.items()
    }
    for k in kwargs:
        if not isinstance(k, str):
            raise _err("argument names must be strings", lpath, ctx, found=k)
    sig = _signature(cls)
    params = dict(sig.parameters) if sig else {}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    valid = [
        n
        for n, p in params.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"
    ]
    multi = bool(getattr(cls, "multi_input", False))
    if len(in_shapes) > 1 and not multi:
        raise _err(
            f"{canonical} takes one input but from: names {len(in_shapes)}; merge them first with Add or Concat",
            f"{path}.from",
            ctx,
            found=entry.sources,
        )
    in_shape, is_map = in_shapes[0], in_maps[0]

    # unknown arguments, before anything is inferred
    if sig is not None and not takes_any:
        for key in kwargs:
            if key not in valid:
                raise _err(
                    f"unknown argument '{key}' for {canonical}",
                    f"{lpath}.{key}",
                    ctx,
                    expected=f"one of {', '.join(v for v in valid if v not in INFERRED)}",
                    found=key,
                    suggestion=closest(key, valid),
                )

    for key in POSITIVE_KEYS:
        value = kwargs.get(key)
        if key in kwargs and (
            isinstance(value, bool) or (isinstance(value, (int, float)) and value < 1)
        ):
            raise _err(
                f"{key} must be a positive whole number",
                f"{lpath}.{key}",
                ctx,
                expected="e.g. 32",
                found=value,
            )

    # width multiplier
    if scale_width and ctx.width != 1.0:
        for key in getattr(cls, "width_args", DEFAULT_WIDTH_ARGS):
            if key in kwargs and key in entry.args and not isinstance(entry.args[key], str):
                kwargs[key] = _scale(kwargs[key], ctx.width)

    # input sizes from the shape flowing in
    if not multi:
        if "in_features" in params or canonical in ("Linear", "Bilinear"):
            check_flat(canonical, in_shape, is_map, lpath, ctx.file, _src_text(src))
        check_rank(cls, canonical, in_shape, lpath, ctx.file, _src_text(src))
        for key, rule in INFERRED.items():
            if key not in params:
                continue
            if (
                key == "input_size"
                and len(in_shape) != 2
                and isinstance(cls, type)
                and issubclass(cls, nn.RNNBase)
            ):
                raise _err(
                    f"{canonical} expects a (time, features) sequence per sample but gets {fmt(in_shape)}"
                    f"{_src_text(src)}",
                    lpath,
                    ctx,
                    expected="(T, F)",
                    found=in_shape,
                )
            inferred = int(rule(in_shape))
            if key in kwargs:
                if kwargs[key] != inferred:
                    raise _err(
                        f"{key} is {kwargs[key]} but the input {fmt(in_shape)}{_src_text(src)} gives {key} = "
                        f"{inferred} (its {DESCRIBE[key]}); leave {key} out, it is inferred",
                        f"{lpath}.{key}",
                        ctx,
                        expected=str(inferred),
                        found=kwargs[key],
                    )
            else:
                kwargs[key] = inferred
        if "normalized_shape" in params and "normalized_shape" not in kwargs:
            kwargs["normalized_shape"] = (
                list(in_shape) if (is_map and len(in_shape) >= 2) else [in_shape[-1]]
            )
    hook = getattr(cls, "infer_args", None)
    if callable(hook):
        for key, value in hook(in_shape, is_map).items():
            if key in valid or takes_any:
                kwargs.setdefault(key, value)
    if "activation" in params and "activation" not in kwargs and ctx.activation is not None:
        kwargs["activation"] = ctx.activation
    if "batch_first" in params and "batch_first" not in kwargs:
        kwargs["batch_first"] = True
    if cls in (nn.Softmax, nn.LogSoftmax, nn.Softmin) and kwargs.get("dim") is None:
        kwargs["dim"] = (
            1 if (is_map or len(in_shape) == 1) else len(in_shape)
        )  # classes / channels axis
    if "activation" in kwargs and "activation" in params:
        parse_activation(kwargs["activation"], path=f"{lpath}.activation", file=ctx.file)

    # required arguments nobody gave
    missing = [
        n
        for n, p in params.items()
        if n in valid
        and p.default is p.empty
        and n not in kwargs
        and p.kind is not p.VAR_POSITIONAL
    ]
    if missing:
        raise _err(
            f"{canonical} needs {', '.join(missing)}",
            lpath,
            ctx,
            expected=", ".join(f"{m}: <value>" for m in missing),
            found=entry.args,
        )
    if not multi:
        check_window(cls, canonical, kwargs, in_shape, lpath, ctx.file, _src_text(src))
    if multi:
        _check_merge(canonical, kwargs, in_shapes, entry, ctx, lpath)

    def factory() -> nn.Module:
        return cls(**kwargs)

    try:
        with torch.device("meta"), warnings.catch_warnings():
            # a zero-sized layer warns here; the probe below reports it as a SpecError
            warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
            module = factory()
    except SpecError:
        raise
    except Exception as exc:  # torch's own argument checks: report them at the YAML path
        raise _err(
            f"{canonical} cannot be built with these arguments: {_clean(exc)}",
            lpath,
            ctx,
            found=entry.args,
        ) from None
    if not isinstance(module, nn.Module):
        raise _err(
            f"{canonical} did not return an nn.Module (got {type(module).__name__})", lpath, ctx
        )
    # identical layers on identical inputs (the repeated blocks of a stage) are probed once
    key = (id(cls), repr(sorted(kwargs.items())), tuple(in_shapes), tuple(in_maps))
    known = ctx.shapes.get(key)
    if known is not None:
        shape, is_map = known
        if not can_reset(module):
            module._dp_factory = factory
        return Built(module, shape, is_map, canonical)
    built = _probe(module, factory, canonical, in_shapes, in_maps, ctx, lpath, src)
    ctx.shapes[key] = (built.shape, built.is_map)
    return built


def _clean(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _check_merge(
    name: str, kwargs: dict, shapes: list[tuple[int, ...]], entry: Entry, ctx: Ctx, path: str
) -> None:
    listed = ", ".join(f"{s} {fmt(sh)}" for s, sh in zip(entry.sources or ["previous"], shapes))
    if name in ("Add", "Multiply"):
        if len(set(shapes)) > 1:
            raise _err(
                f"{name} needs inputs of one shape, got {listed}",
                path,
                ctx,
                expected=fmt(shapes[0]),
                found=[fmt(s) for s in shapes],
            )
    elif name == "Concat":
        dim = int(kwargs.get("dim", 0))
        ranks = {len(s) for s in shapes}
        if len(ranks) > 1:
            raise _err(
                f"Concat needs inputs of one rank, got {listed}",
                path,
                ctx,
                found=[fmt(s) for s in shapes],
            )
        rank = ranks.pop()
        if not -rank <= dim < rank:
            raise _err(
                f"Concat dim {dim} is outside the {rank} axes of its inputs",
                f"{path}.dim",
                ctx,
                found=dim,
            )
        d = dim % rank
        rest = {tuple(s[:d] + s[d + 1 :]) for s in shapes}
        if len(rest) > 1:
            raise _err(
                f"Concat along axis {d} needs every other axis to match, got {listed}",
                path,
                ctx,
                expected="equal sizes except along the concatenation axis",
                found=[fmt(s) for s in shapes],
            )


def _probe(
    module: nn.Module,
    factory: Any,
    name: str,
    in_shapes: list[tuple[int, ...]],
    in_maps: list[bool],
    ctx: Ctx,
    path: str,
    src: str,
) -> Built:
    """Run the layer once on a meta tensor (or, if the layer cannot run on meta, on a tiny real one)."""
    closed_form = getattr(module, "dp_output_shape", None)
    if callable(closed_form) and len(in_shapes) == 1:
        try:
            shape = tuple(int(v) for v in closed_form(in_shapes[0]))
        except Exception as exc:
            raise _err(
                f"{name} cannot take the input {fmt(in_shapes[0])}{_src_text(src)}: {_clean(exc)}",
                path,
                ctx,
                found=in_shapes[0],
            ) from None
        if factory is not None and not can_reset(module):
            module._dp_factory = factory
        return Built(module, shape, _is_map_out(module, in_shapes[0], in_maps[0], shape), name)
    was_training = module.training
    module.eval()
    out: Any = None
    try:
        xs = [torch.zeros((2, *s), device="meta") for s in in_shapes]
        with torch.no_grad():
            out = module(*xs)
    except Exception as exc:
        meta_exc = exc
        out = None
        if (
            factory is not None
            and isinstance(exc, (NotImplementedError, RuntimeError))
            and "meta" in str(exc).lower()
        ):
            try:  # data-dependent layers: run a real copy on zeros
                real = factory().eval()
                with torch.no_grad():
                    out = real(*[torch.zeros((2, *s)) for s in in_shapes])
                out = out.to("meta") if isinstance(out, torch.Tensor) else out
            except Exception as exc2:
                meta_exc = exc2
                out = None
        if out is None:
            shapes = " and ".join(fmt(s) for s in in_shapes)
            raise _err(
                f"{name} cannot take the input {shapes}{_src_text(src)}: {_clean(meta_exc)}",
                path,
                ctx,
                found=in_shapes[0] if len(in_shapes) == 1 else in_shapes,
            ) from None
    finally:
        module.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise _err(
            f"{name} returns {type(out).__name__}, not a tensor; a layer in a chain must return one tensor "
            "(recurrent layers: use deeppipe's RNN/LSTM/GRU, which take output: last|all)",
            path,
            ctx,
        )
    shape = tuple(int(s) for s in out.shape[1:])
    if out.dim() == 0 or out.shape[0] != 2:
        raise _err(
            f"{name} changed the batch axis (got {tuple(out.shape)} for a batch of 2)", path, ctx
        )
    if any(s <= 0 for s in shape):
        raise _err(
            f"{name} turns {fmt(in_shapes[0])}{_src_text(src)} into the empty {fmt(shape)}; the input is too small "
            "for it",
            path,
            ctx,
            found=in_shapes[0],
        )
    is_map = _is_map_out(module, in_shapes[0], in_maps[0], shape)
    if factory is not None and not can_reset(module):
        module._dp_factory = factory  # rebuilt for real when materialised (see materialize)
    return Built(module, shape, is_map, name)


# ----------------------------------------------------------------------------- graphs
def _resolve_sources(entry: Entry, i: int, names: dict[str, int], ctx: Ctx, path: str) -> list[int]:
    if entry.sources is None:
        return [i - 1]
    out = []
    for s in entry.sources:
        if isinstance(s, int):
            j = i + s if s < 0 else s
            if (s >= 0 and s >= i) or j < -1:
                raise _err(
                    f"from: {s} does not point at an earlier layer (this is layer {i}; use a name, 'input' or -1 "
                    "for the previous layer)",
                    f"{path}.from",
                    ctx,
                    found=s,
                )
            out.append(j)
        elif s == "input":
            out.append(-1)
        elif s in names:
            out.append(names[s])
        else:
            raise _err(
                f"from: '{s}' is not the name of an earlier layer",
                f"{path}.from",
                ctx,
                expected=f"one of input, {', '.join(names)}"
                if names
                else "input (no earlier layer has a name)",
                found=s,
                suggestion=closest(s, [*names, "input"]),
            )
    return out


def build_sequence(
    layers: Any,
    in_shape: tuple[int, ...],
    in_is_map: bool,
    ctx: Ctx,
    path: str,
    *,
    output: str | None = None,
    block_type: str | None = None,
) -> Network:
    if not isinstance(layers, list) or not layers:
        raise _err(
            "layers: is a non-empty list of layer entries",
            path,
            ctx,
            expected="- Conv2d: {...}",
            found=layers,
        )
    names: dict[str, int] = {}
    node_names: list[str] = []
    modules: list[nn.Module] = []
    inputs: list[tuple[int, ...]] = []
    infos: list[NodeInfo] = []
    shapes: dict[int, tuple[tuple[int, ...], bool]] = {-1: (in_shape, in_is_map)}
    describe = {-1: "the input"}
    for i, raw in enumerate(layers):
        epath = f"{path}[{i}]"
        entry = parse_entry(raw, epath, ctx)
        srcs = _resolve_sources(entry, i, names, ctx, epath)
        in_shapes = [shapes[j][0] for j in srcs]
        in_maps = [shapes[j][1] for j in srcs]
        src = describe[srcs[0]] if len(srcs) == 1 else ""
        count = entry.repeat
        if count is not None and ctx.depth != 1.0 and count > 0:
            count = max(1, round(count * ctx.depth))
        copies: list[Built] = []
        for _r in range(1 if count is None else count):
            b = build_node(
                entry, in_shapes, in_maps, ctx, epath, src, scale_width=epath != ctx.head_path
            )
            copies.append(b)
            in_shapes, in_maps = [b.shape], [b.is_map]
            src = f"{epath}.{entry.type} (copy {len(copies)} of {count})"
        if count is None:
            built = copies[0]
            module = built.module
        elif count == 0:
            if len(srcs) != 1:
                raise _err(
                    "repeat: 0 needs a single input", f"{epath}.repeat", ctx, found=entry.sources
                )
            module = nn.Identity()
            built = Built(module, shapes[srcs[0]][0], shapes[srcs[0]][1], entry.type)
        else:
            module = nn.Sequential(*(c.module for c in copies))
            built = copies[-1]
        if count is not None:
            module._dp_type = f"{copies[0].type if copies else entry.type} x{count}"
        _apply_entry_options(module, entry)
        key = entry.name or str(i)
        if key in names:
            raise _err(f"the name '{key}' is used twice", f"{epath}.name", ctx, found=key)
        if entry.name:
            names[key] = i
        node_names.append(key)
        modules.append(module)
        inputs.append(tuple(srcs))
        shapes[i] = (built.shape, built.is_map)
        describe[i] = f"{epath}.{entry.type} {fmt(built.shape)}"
        infos.append(
            NodeInfo(
                name=key,
                type=getattr(module, "_dp_type", built.type),
                path=f"{epath}.{entry.type}",
                inputs=tuple("input" if j == -1 else node_names[j] for j in srcs),
                shape=built.shape,
                is_map=built.is_map,
                repeat=count,
            )
        )
    out_index = len(node_names) - 1
    if output is not None:
        if output not in names:
            raise _err(
                f"output: '{output}' is not the name of a layer",
                f"{path.rsplit('.', 1)[0]}.output",
                ctx,
                found=output,
                suggestion=closest(output, names),
            )
        out_index = names[output]
    _check_reachable(node_names, inputs, out_index, infos, ctx)
    return Network(node_names, modules, inputs, out_index, infos, in_shape, block_type)


def _check_reachable(
    names: list[str], inputs: list[tuple[int, ...]], out: int, infos: list[NodeInfo], ctx: Ctx
) -> None:
    seen = {out}
    todo = [out]
    while todo:
        k = todo.pop()
        for j in inputs[k]:
            if j >= 0 and j not in seen:
                seen.add(j)
                todo.append(j)
    dead = [k for k in range(len(names)) if k not in seen]
    if dead:
        k = dead[0]
        raise _err(
            f"the output of layer '{names[k]}' is never used: no later layer takes it (from:) and it is not the "
            "model's output; remove it or name it in a from: list",
            infos[k].path,
            ctx,
            found=names[k],
        )


def _apply_entry_options(module: nn.Module, entry: Entry) -> None:
    if entry.init is not None:
        for m in module.modules():
            if (is_weight_layer(m) or isinstance(m, nn.RNNBase)) and getattr(
                m, "_dp_init", None
            ) is None:
                m._dp_init = entry.init
    if not entry.trainable:
        for p in module.parameters():
            p.requires_grad_(False)
        module._dp_frozen = True


def build_node(
    entry: Entry,
    in_shapes: list[tuple[int, ...]],
    in_maps: list[bool],
    ctx: Ctx,
    path: str,
    src: str,
    *,
    scale_width: bool,
) -> Built:
    """One copy of an entry: a spec-defined block or a registered layer, plus its ``activation:``."""
    key = entry.type.lower()
    if key in ctx.blocks:
        built = build_block(ctx.blocks[key], entry, in_shapes, in_maps, ctx, path, src)
    else:
        built = build_layer(entry, in_shapes, in_maps, ctx, path, src, scale_width=scale_width)
    if entry.activation is not None:
        feature_dim = 1 if (built.is_map or len(built.shape) == 1) else len(built.shape)
        with torch.device("meta"):
            act = make_activation(
                entry.activation, feature_dim=feature_dim, path=f"{path}.activation", file=ctx.file
            )
        name, kwargs = act._dp_activation
        if is_weight_layer(built.module) and not hasattr(built.module, "_dp_act"):
            built.module._dp_act, built.module._dp_act_kwargs = name, kwargs
        seq = nn.Sequential(built.module, act)
        seq._dp_type = f"{built.type}+{name}"
        probed = _probe(
            act, None, name, [built.shape], [built.is_map], ctx, f"{path}.activation", src
        )
        built = Built(seq, probed.shape, probed.is_map, seq._dp_type)
    return built


def build_block(
    bdef: BlockDef,
    entry: Entry,
    in_shapes: list[tuple[int, ...]],
    in_maps: list[bool],
    ctx: Ctx,
    path: str,
    src: str,
) -> Built:
    lpath = f"{path}.{entry.type}"
    if bdef.name in ctx.stack:
        raise _err(
            f"block '{bdef.name}' uses itself ({' -> '.join((*ctx.stack, bdef.name))})", lpath, ctx
        )
    if len(in_shapes) != 1:
        raise _err(
            f"block '{bdef.name}' takes one input; merge them first with Add or Concat",
            f"{path}.from",
            ctx,
            found=entry.sources,
        )
    values = _bind_args(
        bdef.args,
        entry.args,
        what=f"block '{bdef.name}'",
        path=lpath,
        decl_path=f"{bdef.path}.args",
        ctx=ctx,
    )
    values = {k: _symbolic(k, v, ctx, f"{lpath}.{k}") for k, v in values.items()}
    body = substitute(bdef.layers, values, path=f"{bdef.path}.layers", file=ctx.file)
    inner = Ctx(**{**ctx.__dict__, "stack": (*ctx.stack, bdef.name), "head_path": None})
    try:
        net = build_sequence(
            body,
            in_shapes[0],
            in_maps[0],
            inner,
            f"{bdef.path}.layers",
            output=bdef.output,
            block_type=bdef.name,
        )
    except SpecError as e:
        raise SpecError(
            f"{e.reason} (in block '{bdef.name}' used at {lpath}{_src_text(src)}, input {fmt(in_shapes[0])})",
            path=e.path,
            file=e.file,
            expected=e.expected,
            found=e.found,
            suggestion=e.suggestion,
        ) from None
    last = net.infos[net.output_index]
    return Built(net, net.output_shape, last.is_map, bdef.name)


# ----------------------------------------------------------------------------- activation matching
def _activation_after(
    net: Network, k: int, after: tuple[str, dict] | None
) -> tuple[str, dict] | None:
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
        m = net._modules[net.node_names[j]]
        act = activation_of(m)
        if act is not None:
            return act
        if isinstance(m, _TRANSPARENT):
            cur = j
            continue
        return None


def tag_activations(module: nn.Module, after: tuple[str, dict] | None) -> None:
    """Tell every weight layer which activation follows it, so ``init: auto`` can match it."""
    if isinstance(module, Network):
        for k, name in enumerate(module.node_names):
            tag_activations(module._modules[name], _activation_after(module, k, after))
    elif isinstance(module, nn.Sequential) and getattr(module, "_dp_type", None):
        children = list(module)
        for c_idx, child in enumerate(children):
            nxt = activation_of(children[c_idx + 1]) if c_idx + 1 < len(children) else after
            tag_activations(child, nxt if c_idx + 1 == len(children) or nxt is not None else None)
    elif is_weight_layer(module) and not hasattr(module, "_dp_act"):
        name, kwargs = after if after is not None else ("identity", {})
        module._dp_act, module._dp_act_kwargs = name, kwargs


# ----------------------------------------------------------------------------- materialising
def materialize(
    net: nn.Module, default_init: tuple[str, dict], device: str | torch.device = "cpu"
) -> nn.Module:
    """Give the meta-built network real storage on the CPU and initialise it.

    Layers whose every tensor can be refilled by ``reset_parameters`` (all of torch.nn's and
    deeppipe's) are moved with ``to_empty`` and initialised once; any other layer (a user layer
    keeping a tensor in a plain attribute, say) is constructed again for real from its arguments.
    """
    net.to_empty(device=device)
    rebuilt: list[nn.Module] = []
    for name, m in list(net.named_modules()):
        factory = getattr(m, "_dp_factory", None)
        if factory is None or any(m is r or _is_inside(m, r) for r in rebuilt):
            continue
        parent = net.get_submodule(name.rsplit(".", 1)[0]) if "." in name else net
        real = factory().to(device)
        for attr in ("_dp_init", "_dp_act", "_dp_act_kwargs", "_dp_type", "_dp_frozen"):
            if hasattr(m, attr):
                setattr(real, attr, getattr(m, attr))
        if getattr(m, "_dp_frozen", False):
            for p in real.parameters():
                p.requires_grad_(False)
        setattr(parent, name.rsplit(".", 1)[-1], real)
        rebuilt.append(real)
    initialize(net, default_init, fresh=True)
    return net


def _is_inside(m: nn.Module, root: nn.Module) -> bool:
    return any(m is x for x in root.modules())


# ----------------------------------------------------------------------------- entry point
def _head_path(layers: Any, lpath: str) -> str | None:
    """The last top-level entry that sets a width: the head, which width_multiplier leaves alone."""
    if not isinstance(layers, list):
        return None
    for i in range(len(layers) - 1, -1, -1):
        raw = layers[i]
        if not isinstance(raw, dict):
            continue
        for key, args in raw.items():
            if (
                key not in ENTRY_KEYS
                and isinstance(args, dict)
                and any(k in args for k in DEFAULT_WIDTH_ARGS)
            ):
                return f"{lpath}[{i}]"
    return None


def _input_shape(value: Any, path: str, ctx_file: str | None) -> tuple[int, ...]:
    flat: list[Any] = []
    for v in value if isinstance(value, (list, tuple)) else [value]:
        flat.extend(v if isinstance(v, (list, tuple)) else [v])
    if not flat or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in flat):
        raise SpecError(
            "input: is the per-sample shape, a list of positive whole numbers",
            path=path,
            file=ctx_file,
            expected="e.g. [1, 28, 28] for images or [30] for 30 features",
            found=value,
        )
    return tuple(int(v) for v in flat)


def _multiplier(spec: dict, key: str, path: str, file: str | None) -> float:
    v = spec.get(key, 1.0)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
        raise SpecError(
            f"{key} must be a positive number",
            path=join_path(path, key),
            file=file,
            expected="e.g. 0.5 or 2",
            found=v,
        )
    return float(v)


def _parse_blocks(raw: Any, path: str, ctx_file: str | None) -> dict[str, BlockDef]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SpecError(
            "blocks: maps block names to {args: [...], layers: [...]}",
            path=path,
            file=ctx_file,
            found=raw,
        )
    out = {}
    for name, body in raw.items():
        bpath = join_path(path, str(name))
        if not isinstance(name, str) or not _NAME.match(name):
            raise SpecError("a block name is an identifier", path=bpath, file=ctx_file, found=name)
        if name in LAYERS:
            raise SpecError(
                f"the block name '{name}' is already a layer ({LAYERS.canonical(name)}); choose another name",
                path=bpath,
                file=ctx_file,
                found=name,
            )
        if isinstance(body, list):
            body = {"layers": body}
        if not isinstance(body, dict) or "layers" not in body:
            raise SpecError(
                "a block is {args: [...], layers: [...]}",
                path=bpath,
                file=ctx_file,
                expected="{args: [out], layers: [- Conv2d: {out_channels: $out, ...}]}",
                found=body,
            )
        for key in body:
            if key not in BLOCK_KEYS:
                raise SpecError(
                    f"unknown block key '{key}'",
                    path=join_path(bpath, str(key)),
                    file=ctx_file,
                    expected=f"one of {', '.join(BLOCK_KEYS)}",
                    found=key,
                    suggestion=closest(str(key), BLOCK_KEYS),
                )
        _declared_args(body.get("args"), join_path(bpath, "args"), None)
        out[name.lower()] = BlockDef(
            name, body.get("args"), body["layers"], body.get("output"), bpath
        )
    return out


def build_network(
    spec: dict[str, Any],
    input_shape: tuple[int, ...] | None,
    num_outputs: int | None,
    *,
    file: str | None,
    path: str,
    device: str | torch.device | None,
    input_is_default: bool = False,
) -> nn.Module:
    """Build a hand-written (non-zoo) model section; see ``deeppipe.models.build_model``."""
    for key in spec:
        if key == "imports":
            raise SpecError(
                "imports: belongs at the top level of the experiment file, not under model:",
                path=join_path(path, "imports"),
                file=file,
                found=spec[key],
            )
        if key not in MODEL_KEYS and key not in INFO_KEYS:
            raise SpecError(
                f"unknown model key '{key}'",
                path=join_path(path, str(key)),
                file=file,
                expected=f"one of {', '.join(MODEL_KEYS)} (or zoo: NAME)",
                found=key,
                suggestion=closest(str(key), [*MODEL_KEYS, "zoo"]),
            )
    if "layers" not in spec:
        raise SpecError(
            "a model is a layer list or a zoo name",
            path=path,
            file=file,
            expected="layers: [...] or zoo: resnet18",
            found=sorted(spec),
        )
    args = _bind_args(
        spec.get("args"),
        {},
        what="the model",
        path=join_path(path, "args"),
        decl_path=join_path(path, "args"),
        ctx=Ctx(file, None, (), {}),
    )
    block_args: set[str] = set()
    for body in (spec.get("blocks") or {}).values() if isinstance(spec.get("blocks"), dict) else []:
        if isinstance(body, dict):
            block_args |= set(_declared_args(body.get("args"), path, None))
    spec = dict(spec)
    for key in ("layers", "input", "output"):
        if key in spec:
            spec[key] = substitute(spec[key], args, path=join_path(path, key), file=file)
    if isinstance(spec.get("blocks"), dict):
        spec["blocks"] = {
            n: substitute(
                b,
                args,
                path=join_path(path, "blocks", str(n)),
                file=file,
                skip=frozenset(_declared_args(b.get("args"), path, None))
                if isinstance(b, dict)
                else frozenset(),
            )
            for n, b in spec["blocks"].items()
        }

    # the input shape: the data's, checked against the spec's own
    spec_input = (
        _input_shape(spec["input"], join_path(path, "input"), file) if "input" in spec else None
    )
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
        if spec_input is not None and spec_input != shape and not input_is_default:
            raise SpecError(
                f"model input {fmt(spec_input)} does not match the data's sample shape {fmt(shape)}",
                path=join_path(path, "input"),
                file=file,
                expected=fmt(shape),
                found=list(spec_input),
            )
    elif spec_input is not None:
        shape = spec_input
    else:
        raise SpecError(
            "the input shape is unknown: give model.input (e.g. [1, 28, 28]) or build with data",
            path=join_path(path, "input"),
            file=file,
            expected="input: [C, H, W] or [features]",
        )

    default_act = spec.get("activation")
    if default_act is not None:
        parse_activation(default_act, path=join_path(path, "activation"), file=file)
    default_init = (
        parse_init(spec["init"], path=join_path(path, "init"), file=file)
        if "init" in spec
        else ("auto", {})
    )
    ctx = Ctx(
        file=file,
        num_outputs=num_outputs,
        model_input=shape,
        blocks=_parse_blocks(spec.get("blocks"), join_path(path, "blocks"), file),
        activation=default_act,
        width=_multiplier(spec, "width_multiplier", path, file),
        depth=_multiplier(spec, "depth_multiplier", path, file),
    )
    layers = spec["layers"]
    lpath = join_path(path, "layers")
    ctx.head_path = _head_path(layers, lpath)
    output = spec.get("output")
    if output is not None and not isinstance(output, str):
        raise SpecError(
            "output: is the name of a layer",
            path=join_path(path, "output"),
            file=file,
            found=output,
        )
    net = build_sequence(layers, shape, len(shape) >= 3, ctx, lpath, output=output)

    if num_outputs is not None:
        out_shape = net.output_shape
        if out_shape != (int(num_outputs),) and out_shape != shape:
            last = net.infos[net.output_index]
            raise SpecError(
                f"the network's output {fmt(out_shape)} does not match the {num_outputs} output(s) the data needs; "
                f"end with a layer of {num_outputs} units (out_features: auto follows the data)",
                path=last.path,
                file=file,
                expected=fmt((int(num_outputs),)),
                found=out_shape,
            )
    tag_activations(net, None)
    if device is not None and torch.device(device).type == "meta":
        return net
    materialize(net, default_init)
    if device is not None:
        net.to(device)
    return net
