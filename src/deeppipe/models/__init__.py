"""Networks from YAML: ``build_model(spec, input_shape, num_outputs)`` -> ``nn.Module``.

The ``model:`` section of an experiment is either a layer list (a chain, or a graph with
``name:``/``from:``), with reusable ``blocks:``, or ``zoo: NAME`` plus overrides. See docs/models.md.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from deeppipe.errors import SpecError, closest, join_path
from deeppipe.models import zoo
from deeppipe.models.activations import ACTIVATIONS, make_activation
from deeppipe.models.builder import build_network
from deeppipe.models.graph import draw_graph
from deeppipe.models.init import INITS
from deeppipe.models.network import Network, NodeInfo
from deeppipe.models.registry import LAYERS, register_layer
from deeppipe.models.shapes import conv_out, fmt
from deeppipe.models.summary import ModelSummary, SummaryRow, summarize

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "LAYERS",
    "ModelSummary",
    "Network",
    "NodeInfo",
    "SummaryRow",
    "build_model",
    "conv_out",
    "draw_graph",
    "make_activation",
    "register_layer",
    "summarize",
    "zoo",
]

ZOO_OVERRIDES = (
    "num_classes",
    "num_outputs",
    "in_channels",
    "input_size",
    "input",
    "width",
    "width_multiplier",
    "depth",
    "depth_multiplier",
    "activation",
    "init",
)


def build_model(
    spec: dict[str, Any] | str,
    input_shape: tuple[int, ...] | None,
    num_outputs: int | None = None,
    *,
    file: str | None = None,
    path: str = "model",
    device: str | torch.device | None = None,
) -> nn.Module:
    """Build the network a ``model:`` section describes.

    ``input_shape`` is the per-sample shape the data provides ((1, 28, 28), (30,), (T, F));
    ``num_outputs`` the head size the data needs (None: unchecked, e.g. autoencoders). The result
    maps (N, *input_shape) float32 to (N, num_outputs) logits, or to the input's shape for an
    autoencoder. ``device="meta"`` builds without allocating memory (parameter counting);
    otherwise the weights are initialised on the CPU and moved to ``device``.

    Every mistake raises ``SpecError`` naming the YAML path (``model.layers[4].Linear``).
    """
    if isinstance(spec, str):
        spec = {"zoo": spec.removeprefix("zoo:")}
    if not isinstance(spec, dict):
        raise SpecError(
            "the model section is a mapping",
            path=path,
            file=file,
            expected="{layers: [...]} or {zoo: NAME}",
            found=spec,
        )
    if num_outputs is not None and (isinstance(num_outputs, bool) or int(num_outputs) < 1):
        raise SpecError(
            "num_outputs must be a positive whole number", path=path, file=file, found=num_outputs
        )
    if "zoo" in spec:
        return _build_zoo(spec, input_shape, num_outputs, file=file, path=path, device=device)
    return build_network(spec, input_shape, num_outputs, file=file, path=path, device=device)


def _zoo_input(
    default: list[int], in_channels: Any, input_size: Any, path: str, file: str | None
) -> tuple[int, ...]:
    shape = list(default)
    if in_channels is not None:
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise SpecError(
                "in_channels must be a positive whole number",
                path=join_path(path, "in_channels"),
                file=file,
                found=in_channels,
            )
        shape[0 if len(shape) >= 3 else -1] = in_channels
    if input_size is not None:
        sizes = input_size if isinstance(input_size, list) else [input_size]
        if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes):
            raise SpecError(
                "input_size is a positive whole number or a list of them",
                path=join_path(path, "input_size"),
                file=file,
                found=input_size,
            )
        if len(shape) >= 3:
            spatial = len(shape) - 1
            sizes = sizes * spatial if len(sizes) == 1 else sizes
            if len(sizes) != spatial:
                raise SpecError(
                    f"input_size needs {spatial} sizes",
                    path=join_path(path, "input_size"),
                    file=file,
                    found=input_size,
                )
            shape[1:] = sizes
        elif len(shape) == 2:
            shape[0] = sizes[0]  # sequence length
        else:
            shape[0] = sizes[0]  # number of features
    return tuple(shape)


def _build_zoo(
    spec: dict[str, Any],
    input_shape: tuple[int, ...] | None,
    num_outputs: int | None,
    *,
    file: str | None,
    path: str,
    device: str | torch.device | None,
) -> nn.Module:
    name = spec["zoo"]
    zpath = join_path(path, "zoo")
    name = str(name).lower()
    zspec = zoo.load(name, path=zpath, file=file)
    declared = dict(zspec.get("args") or {})
    overrides = {k: v for k, v in spec.items() if k != "zoo"}
    head_key = next((k for k in ("num_classes", "num_outputs") if k in declared), None)
    given_head = {k: overrides.pop(k) for k in ("num_classes", "num_outputs") if k in overrides}
    new_args: dict[str, Any] = {}
    if given_head:
        key, value = next(iter(given_head.items()))
        if head_key is None:
            raise SpecError(
                f"zoo model '{name}' has no classification head to size",
                path=join_path(path, key),
                file=file,
                found=value,
            )
        if len(set(given_head.values())) > 1:
            raise SpecError(
                "num_classes and num_outputs disagree",
                path=join_path(path, key),
                file=file,
                found=given_head,
            )
        if num_outputs is not None and value != num_outputs:
            raise SpecError(
                f"{key} is {value} but the data needs {num_outputs} outputs",
                path=join_path(path, key),
                file=file,
                expected=str(num_outputs),
                found=value,
            )
        new_args[head_key] = value
    elif num_outputs is not None and head_key is not None:
        new_args[head_key] = int(num_outputs)
    in_channels = overrides.pop("in_channels", None)
    input_size = overrides.pop("input_size", None)
    explicit_input = "input" in overrides
    if explicit_input:
        from deeppipe.models.builder import _input_shape

        zspec["input"] = list(_input_shape(overrides.pop("input"), join_path(path, "input"), file))
    for short, long in (("width", "width_multiplier"), ("depth", "depth_multiplier")):
        if short in overrides and short not in declared:
            overrides[long] = overrides.pop(short)
    for key in ("activation", "init", "width_multiplier", "depth_multiplier"):
        if key in overrides:
            zspec[key] = overrides.pop(key)
    for key, value in overrides.items():
        if key not in declared:
            options = [*ZOO_OVERRIDES, *declared]
            raise SpecError(
                f"unknown override '{key}' for zoo model '{name}'",
                path=join_path(path, str(key)),
                file=file,
                expected=f"one of {', '.join(dict.fromkeys(options))}",
                found=key,
                suggestion=closest(str(key), options),
            )
        new_args[key] = value
    zspec["args"] = {**declared, **new_args}

    default_shape = _zoo_input(zspec.get("input") or [], in_channels, input_size, path, file)
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
        if (
            (in_channels is not None or input_size is not None or explicit_input)
            and len(shape) == len(default_shape)
            and shape != default_shape
        ):
            key = (
                "input"
                if explicit_input
                else "in_channels"
                if in_channels is not None
                else "input_size"
            )
            raise SpecError(
                f"the overrides ask for input {fmt(default_shape)} but the data's samples are {fmt(shape)}",
                path=join_path(path, key),
                file=file,
                expected=fmt(shape),
                found=list(default_shape),
            )
    else:
        shape = default_shape
    zspec["input"] = list(shape)
    zfile = zoo.zoo_file(name).name
    try:
        return build_network(zspec, shape, num_outputs, file=file, path="", device=device)
    except SpecError as e:
        where = f"{zfile}: {e.path}" if e.path else zfile
        raise SpecError(
            f"zoo model '{name}' cannot be built for input {fmt(shape)}: {e.reason} (at {where})",
            path=zpath,
            file=file,
            expected=e.expected,
            found=e.found,
            suggestion=e.suggestion,
        ) from None
