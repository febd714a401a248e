"""One registered layer from one entry: look it up, check its arguments against its signature,
fill in what the incoming shape says (in_channels, in_features ...), construct it on the meta
device and probe its output shape."""

from __future__ import annotations

import inspect
import math
import warnings
from typing import Any

import torch
import torch.nn as nn

from deeppipe.errors import SpecError, join_path, unknown
from deeppipe.models.activations import STEP_MESSAGE, is_step, make_activation, parse_activation
from deeppipe.models.build.context import Built, Ctx, Flow, clean, err
from deeppipe.models.build.entries import ACTIVATION_LAYER, Entry
from deeppipe.models.build.probe import cached, probe
from deeppipe.models.shapes import INFERRED, check_flat, check_rank, check_window, fmt
from deeppipe.registry import LAYERS, check_kwargs

POSITIVE_KEYS = ("out_channels", "out_features", "hidden_size", "num_embeddings", "embedding_dim",
                 "num_layers", "kernel_size", "growth_rate")
# sizes that may be written symbolically: `auto` (the data's outputs) or `input` (the model input's)
SIZE_KEYS = ("out_features", "out_channels", "hidden_size", "num_classes", "num_outputs",
             "embedding_dim", "num_channels", "shape", "size")


def symbolic(key: str, value: Any, ctx: Ctx, path: str) -> Any:
    """``auto`` = the data's number of outputs; ``input`` = the model input's size."""
    if not isinstance(value, str) or key not in SIZE_KEYS:
        return value
    low = value.lower()
    if low == "auto":
        if ctx.num_outputs is None:
            raise err(
                f"{key}: auto means 'as many as the data needs', but no number of outputs is known here "
                "(pass --num-classes, or give the number)",
                path, ctx, found=value,
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
        raise err(f"'input' is not a size for {key}", path, ctx,
                  expected="out_channels, out_features or shape", found=value)
    return value


def _scale(value: Any, w: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, int) or w == 1.0:
        return value
    return max(1, round(value * w))


def feature_dim(shape: tuple[int, ...], is_map: bool) -> int:
    """The batch tensor's axis that softmax and maxout work along: channels or features."""
    return 1 if (is_map or len(shape) == 1) else len(shape)


def _activation_layer(entry: Entry, flow: Flow, ctx: Ctx, path: str) -> nn.Module:
    args = dict(entry.args)
    name = args.pop("name", None) or ctx.activation
    if name is None:
        raise err("Activation needs a name here (no model-wide activation: is set)", path, ctx,
                  expected="e.g. - Activation: {name: relu}", found=entry.args)
    value = {**name, **args} if isinstance(name, dict) else {"name": name, **args}
    with torch.device("meta"):
        return make_activation(value, feature_dim=feature_dim(flow.shapes[0], flow.maps[0]), path=path,
                               file=ctx.file)


def build_layer(entry: Entry, flow: Flow, ctx: Ctx, path: str, *, scale_width: bool) -> Built:
    """One registered layer: resolve, infer, construct on meta, probe its output shape."""
    tname = entry.type
    lpath = join_path(path, tname)
    if is_step(tname):
        raise err(f"step activation '{tname}' refused: {STEP_MESSAGE}", lpath, ctx, found=tname)
    if tname.lower() in ACTIVATION_LAYER:
        if len(flow.shapes) != 1:
            raise err("Activation takes one input", lpath, ctx, found=entry.sources)
        return probe(_activation_layer(entry, flow, ctx, lpath), None, tname, flow, ctx, lpath)
    if tname not in LAYERS:
        blocks = [b.name for b in ctx.blocks.values()]
        raise unknown("layer", tname, [*LAYERS.names(include_aliases=True), *blocks], path=lpath,
                      file=ctx.file, listed=[*blocks, *LAYERS.names()])
    record = LAYERS.entry(tname)
    cls, canonical = record.obj, record.name
    kwargs: dict[str, Any] = {k: symbolic(k, v, ctx, join_path(lpath, str(k))) for k, v in entry.args.items()}
    for k in kwargs:
        if not isinstance(k, str):
            raise err("argument names must be strings", lpath, ctx, found=k)
    params = _parameters(cls)
    multi = record.multi_input
    if len(flow.shapes) > 1 and not multi:
        raise err(
            f"{canonical} takes one input but from: names {len(flow.shapes)}; merge them first with Add or Concat",
            join_path(path, "from"), ctx, found=entry.sources,
        )
    # unknown arguments, before anything is inferred
    check_kwargs(cls, kwargs, path=lpath, file=ctx.file)
    for key in POSITIVE_KEYS:
        value = kwargs.get(key)
        if key in kwargs and (isinstance(value, bool) or (isinstance(value, (int, float)) and value < 1)):
            raise err(f"{key} must be a positive whole number", join_path(lpath, key), ctx,
                      expected="e.g. 32", found=value)
    if scale_width and ctx.width != 1.0:
        for key in record.width_args:
            if key in kwargs and key in entry.args and not isinstance(entry.args[key], str):
                kwargs[key] = _scale(kwargs[key], ctx.width)
    if not multi:
        _infer_sizes(cls, canonical, params, kwargs, flow, ctx, lpath)
    _fill_defaults(cls, params, kwargs, flow, ctx, lpath)
    missing = [n for n, p in params.items() if _takes(params, n) and p.default is p.empty and n not in kwargs]
    if missing:
        raise err(f"{canonical} needs {', '.join(missing)}", lpath, ctx,
                  expected=", ".join(f"{m}: <value>" for m in missing), found=entry.args)
    if multi:
        _check_merge(canonical, kwargs, entry, flow, ctx, lpath)
    else:
        check_window(cls, canonical, kwargs, flow.shapes[0], lpath, ctx.file, flow.src_text)
    return _construct(cls, canonical, kwargs, entry, flow, ctx, lpath, spatial=record.spatial_op)


def _parameters(cls: Any) -> dict[str, inspect.Parameter]:
    """The layer's parameters by name (empty when its signature cannot be read)."""
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return {}
    return {n: p for n, p in sig.parameters.items() if n != "self"}


def _takes(params: dict[str, inspect.Parameter], key: str) -> bool:
    p = params.get(key)
    return p is not None and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)


def _infer_sizes(cls: Any, canonical: str, params: dict[str, inspect.Parameter], kwargs: dict[str, Any],
                 flow: Flow, ctx: Ctx, lpath: str) -> None:
    """Input sizes from the shape flowing in; a given one must agree with it."""
    in_shape, is_map = flow.shapes[0], flow.maps[0]
    if "in_features" in params or canonical in ("Linear", "Bilinear"):
        check_flat(canonical, in_shape, is_map, lpath, ctx.file, flow.src_text)
    check_rank(cls, canonical, in_shape, lpath, ctx.file, flow.src_text)
    for key, (rule, described) in INFERRED.items():
        if key not in params:
            continue
        if key == "input_size" and len(in_shape) != 2 and isinstance(cls, type) and issubclass(cls, nn.RNNBase):
            raise err(f"{canonical} expects a (time, features) sequence per sample but gets {fmt(in_shape)}"
                      f"{flow.src_text}", lpath, ctx, expected="(T, F)", found=in_shape)
        inferred = int(rule(in_shape))
        if key not in kwargs:
            kwargs[key] = inferred
        elif kwargs[key] != inferred:
            raise err(
                f"{key} is {kwargs[key]} but the input {fmt(in_shape)}{flow.src_text} gives {key} = "
                f"{inferred} (its {described}); leave {key} out, it is inferred",
                join_path(lpath, key), ctx, expected=str(inferred), found=kwargs[key],
            )
    if "normalized_shape" in params and "normalized_shape" not in kwargs:
        kwargs["normalized_shape"] = list(in_shape) if (is_map and len(in_shape) >= 2) else [in_shape[-1]]


def _fill_defaults(cls: Any, params: dict[str, inspect.Parameter], kwargs: dict[str, Any], flow: Flow,
                   ctx: Ctx, lpath: str) -> None:
    """What deeppipe supplies when the spec does not: the layer's own ``infer_args``, the model's
    activation, batch-first sequences, the feature axis of softmax."""
    in_shape, is_map = flow.shapes[0], flow.maps[0]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    hook = getattr(cls, "infer_args", None)
    if callable(hook):
        for key, value in hook(in_shape, is_map).items():
            if _takes(params, key) or takes_any:
                kwargs.setdefault(key, value)
    if "activation" in params and "activation" not in kwargs and ctx.activation is not None:
        kwargs["activation"] = ctx.activation
    if "batch_first" in params and "batch_first" not in kwargs:
        kwargs["batch_first"] = True
    if cls in (nn.Softmax, nn.LogSoftmax, nn.Softmin) and kwargs.get("dim") is None:
        kwargs["dim"] = feature_dim(in_shape, is_map)  # classes / channels axis
    if "activation" in kwargs and "activation" in params:
        parse_activation(kwargs["activation"], path=join_path(lpath, "activation"), file=ctx.file)


def _construct(cls: Any, canonical: str, kwargs: dict[str, Any], entry: Entry, flow: Flow, ctx: Ctx,
               lpath: str, *, spatial: bool) -> Built:
    """The layer built on the meta device, then probed (once per distinct layer and input)."""

    def factory() -> nn.Module:
        return cls(**kwargs)

    try:
        with torch.device("meta"), warnings.catch_warnings():
            # a zero-sized layer warns here; the probe reports it as a SpecError
            warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
            module = factory()
    except SpecError:
        raise
    except Exception as exc:  # torch's own argument checks: report them at the YAML path
        raise err(f"{canonical} cannot be built with these arguments: {clean(exc)}", lpath, ctx,
                  found=entry.args) from None
    if not isinstance(module, nn.Module):
        raise err(f"{canonical} did not return an nn.Module (got {type(module).__name__})", lpath, ctx)
    # identical layers on identical inputs (the repeated blocks of a stage) are probed once
    key = (id(cls), repr(sorted(kwargs.items())), tuple(flow.shapes), tuple(flow.maps))
    known = ctx.shapes.get(key)
    if known is not None:
        return cached(module, factory, *known, canonical)
    built = probe(module, factory, canonical, flow, ctx, lpath, spatial=spatial)
    ctx.shapes[key] = (built.shape, built.is_map)
    return built


def _check_merge(name: str, kwargs: dict, entry: Entry, flow: Flow, ctx: Ctx, path: str) -> None:
    shapes = flow.shapes
    listed = ", ".join(f"{s} {fmt(sh)}" for s, sh in zip(entry.sources or ["previous"], shapes))
    if name in ("Add", "Multiply"):
        if len(set(shapes)) > 1:
            raise err(f"{name} needs inputs of one shape, got {listed}", path, ctx, expected=fmt(shapes[0]),
                      found=[fmt(s) for s in shapes])
    elif name == "Concat":
        dim = int(kwargs.get("dim", 0))
        ranks = {len(s) for s in shapes}
        if len(ranks) > 1:
            raise err(f"Concat needs inputs of one rank, got {listed}", path, ctx,
                      found=[fmt(s) for s in shapes])
        rank = ranks.pop()
        if not -rank <= dim < rank:
            raise err(f"Concat dim {dim} is outside the {rank} axes of its inputs", join_path(path, "dim"),
                      ctx, found=dim)
        d = dim % rank
        rest = {tuple(s[:d] + s[d + 1 :]) for s in shapes}
        if len(rest) > 1:
            raise err(f"Concat along axis {d} needs every other axis to match, got {listed}", path, ctx,
                      expected="equal sizes except along the concatenation axis",
                      found=[fmt(s) for s in shapes])
