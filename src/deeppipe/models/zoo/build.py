"""``{zoo: NAME, ...overrides}`` -> the zoo file's model section with the overrides applied
(head size, input shape, width and depth, activation, init, the model's own arguments), built
like any hand-written section; a failure names the zoo file and the place in it."""

from __future__ import annotations

from typing import Any

from deeppipe.errors import SpecError, join_path, unknown
from deeppipe.models.build.context import BuildRequest
from deeppipe.models.build.section import build_layer_graph, input_shape
from deeppipe.models.config import ZOO_OVERRIDES
from deeppipe.models.layer_graph import LayerGraph
from deeppipe.models.shapes import fmt
from deeppipe.models.zoo.catalog import load, zoo_file

_HEADS = ("num_classes", "num_outputs")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _zoo_input(default: list[int], in_channels: Any, input_size: Any, path: str, file: str | None
               ) -> tuple[int, ...]:
    """The zoo file's input shape with ``in_channels`` and ``input_size`` applied."""
    shape = list(default)
    if in_channels is not None:
        if not _positive_int(in_channels):
            raise SpecError("in_channels must be a positive whole number", path=join_path(path, "in_channels"),
                            file=file, found=in_channels)
        shape[0 if len(shape) >= 3 else -1] = in_channels
    if input_size is not None:
        sizes = input_size if isinstance(input_size, list) else [input_size]
        if not all(_positive_int(s) for s in sizes):
            raise SpecError("input_size is a positive whole number or a list of them",
                            path=join_path(path, "input_size"), file=file, found=input_size)
        if len(shape) >= 3:
            spatial = len(shape) - 1
            sizes = sizes * spatial if len(sizes) == 1 else sizes
            if len(sizes) != spatial:
                raise SpecError(f"input_size needs {spatial} sizes", path=join_path(path, "input_size"),
                                file=file, found=input_size)
            shape[1:] = sizes
        else:
            shape[0] = sizes[0]  # sequence length, or number of features
    return tuple(shape)


def _head(name: str, declared: dict[str, Any], overrides: dict[str, Any], req: BuildRequest
          ) -> dict[str, Any]:
    """The head-size argument of the zoo model: the override given, else the data's."""
    head_key = next((k for k in _HEADS if k in declared), None)
    given = {k: overrides.pop(k) for k in _HEADS if k in overrides}
    if not given:
        return {head_key: int(req.num_outputs)} if req.num_outputs is not None and head_key else {}
    key, value = next(iter(given.items()))
    at = join_path(req.path, key)
    if head_key is None:
        raise SpecError(f"zoo model '{name}' has no classification head to size", path=at, file=req.file,
                        found=value)
    if len(set(given.values())) > 1:
        raise SpecError("num_classes and num_outputs disagree", path=at, file=req.file, found=given)
    if req.num_outputs is not None and value != req.num_outputs:
        raise SpecError(f"{key} is {value} but the data needs {req.num_outputs} outputs", path=at,
                        file=req.file, expected=str(req.num_outputs), found=value)
    return {head_key: value}


def _shape(zspec: dict[str, Any], in_channels: Any, input_size: Any, explicit: bool, req: BuildRequest
           ) -> tuple[int, ...]:
    """The input to build for: the data's, which the input overrides (if any) must agree with."""
    default = _zoo_input(zspec.get("input") or [], in_channels, input_size, req.path, req.file)
    if req.input_shape is None:
        return default
    shape = tuple(int(s) for s in req.input_shape)
    if ((in_channels is not None or input_size is not None or explicit)
            and len(shape) == len(default) and shape != default):
        key = "input" if explicit else "in_channels" if in_channels is not None else "input_size"
        raise SpecError(f"the overrides ask for input {fmt(default)} but the data's samples are {fmt(shape)}",
                        path=join_path(req.path, key), file=req.file, expected=fmt(shape),
                        found=list(default))
    return shape


def build_zoo(spec: dict[str, Any], req: BuildRequest) -> LayerGraph:
    """Build ``{zoo: NAME, ...overrides}``; see ``deeppipe.models.build_model``."""
    zpath = join_path(req.path, "zoo")
    name = str(spec["zoo"]).lower()
    zspec = load(name, path=zpath, file=req.file)
    declared = dict(zspec.get("args") or {})
    overrides = {k: v for k, v in spec.items() if k not in ("zoo", "pretrained")}  # weights: models.pretrained
    new_args = _head(name, declared, overrides, req)
    in_channels = overrides.pop("in_channels", None)
    input_size = overrides.pop("input_size", None)
    explicit = "input" in overrides
    if explicit:
        zspec["input"] = list(input_shape(overrides.pop("input"), join_path(req.path, "input"), req.file))
    for short, long in (("width", "width_multiplier"), ("depth", "depth_multiplier")):
        if short in overrides and short not in declared:
            overrides[long] = overrides.pop(short)
    for key in ("activation", "init", "width_multiplier", "depth_multiplier"):
        if key in overrides:
            zspec[key] = overrides.pop(key)
    for key, value in overrides.items():
        if key not in declared:
            raise unknown("override", key, [*ZOO_OVERRIDES, *declared], path=join_path(req.path, str(key)),
                          file=req.file)
        new_args[key] = value
    zspec["args"] = {**declared, **new_args}
    shape = _shape(zspec, in_channels, input_size, explicit, req)
    zspec["input"] = list(shape)
    try:
        return build_layer_graph(zspec, BuildRequest(shape, req.num_outputs, req.file, "", req.device))
    except SpecError as e:
        zfile = zoo_file(name).name
        where = f"{zfile}: {e.path}" if e.path else zfile
        raise SpecError(
            f"zoo model '{name}' cannot be built for input {fmt(shape)}: {e.reason} (at {where})",
            path=zpath, file=req.file, expected=e.expected, found=e.found, suggestion=e.suggestion,
        ) from None
