"""A hand-written ``model:`` section (a layer list) into a LayerGraph: check the model-level keys,
substitute the model's arguments, settle the input shape, build the layers on the meta device,
check the head against the data, then tag activations and materialise."""

from __future__ import annotations

from typing import Any

import torch

from deeppipe.errors import SpecError, join_path, unknown
from deeppipe.models.activations import parse_activation
from deeppipe.models.build.context import WIDTH_KEYS, BlockDef, BuildRequest, Ctx, Flow
from deeppipe.models.build.entries import NAME
from deeppipe.models.build.materialize import materialize
from deeppipe.models.build.tagging import tag_activations
from deeppipe.models.build.templates import bind_args, declared_args, substitute
from deeppipe.models.build.wiring import build_sequence
from deeppipe.models.config import BLOCK_KEYS, ENTRY_KEYS, INFO_KEYS, MODEL_KEYS
from deeppipe.models.initialisers import parse_init
from deeppipe.models.layer_graph import LayerGraph
from deeppipe.models.shapes import fmt
from deeppipe.registry import LAYERS


def _head_path(layers: Any, lpath: str) -> str | None:
    """The last top-level entry that sets a width: the head, which width_multiplier leaves alone."""
    if not isinstance(layers, list):
        return None
    for i in range(len(layers) - 1, -1, -1):
        raw = layers[i]
        if not isinstance(raw, dict):
            continue
        for key, args in raw.items():
            if key not in ENTRY_KEYS and isinstance(args, dict) and any(k in args for k in WIDTH_KEYS):
                return join_path(lpath, i)
    return None


def input_shape(value: Any, path: str, file: str | None) -> tuple[int, ...]:
    """``input:`` as a shape: a list of positive whole numbers (nested lists are flattened)."""
    flat: list[Any] = []
    for v in value if isinstance(value, (list, tuple)) else [value]:
        flat.extend(v if isinstance(v, (list, tuple)) else [v])
    if not flat or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in flat):
        raise SpecError("input: is the per-sample shape, a list of positive whole numbers", path=path,
                        file=file, expected="e.g. [1, 28, 28] for images or [30] for 30 features",
                        found=value)
    return tuple(int(v) for v in flat)


def _multiplier(spec: dict, key: str, path: str, file: str | None) -> float:
    v = spec.get(key, 1.0)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
        raise SpecError(f"{key} must be a positive number", path=join_path(path, key), file=file,
                        expected="e.g. 0.5 or 2", found=v)
    return float(v)


def _parse_blocks(raw: Any, path: str, file: str | None) -> dict[str, BlockDef]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SpecError("blocks: maps block names to {args: [...], layers: [...]}", path=path, file=file,
                        found=raw)
    out = {}
    for name, body in raw.items():
        bpath = join_path(path, str(name))
        if not isinstance(name, str) or not NAME.match(name):
            raise SpecError("a block name is an identifier", path=bpath, file=file, found=name)
        if name in LAYERS:
            raise SpecError(
                f"the block name '{name}' is already a layer ({LAYERS.canonical(name)}); choose another name",
                path=bpath, file=file, found=name,
            )
        if isinstance(body, list):
            body = {"layers": body}
        if not isinstance(body, dict) or "layers" not in body:
            raise SpecError("a block is {args: [...], layers: [...]}", path=bpath, file=file,
                            expected="{args: [out], layers: [- Conv2d: {out_channels: $out, ...}]}",
                            found=body)
        for key in body:
            if key not in BLOCK_KEYS:
                raise unknown("block key", key, BLOCK_KEYS, path=join_path(bpath, str(key)), file=file)
        declared_args(body.get("args"), join_path(bpath, "args"), file)
        out[name.lower()] = BlockDef(name, body.get("args"), body["layers"], body.get("output"), bpath)
    return out


def _check_keys(spec: dict[str, Any], path: str, file: str | None) -> None:
    for key in spec:
        if key == "imports":
            raise SpecError("imports: belongs at the top level of the experiment file, not under model:",
                            path=join_path(path, "imports"), file=file, found=spec[key])
        if key not in MODEL_KEYS and key not in INFO_KEYS:
            raise unknown("model key", key, [*MODEL_KEYS, "zoo"], path=join_path(path, str(key)), file=file,
                          listed=[*MODEL_KEYS, "zoo"])
    if "layers" not in spec:
        raise SpecError("a model is a layer list or a zoo name", path=path, file=file,
                        expected="layers: [...] or zoo: resnet18", found=sorted(spec))


def _substituted(spec: dict[str, Any], path: str, file: str | None) -> dict[str, Any]:
    """The section with the model's ``args:`` substituted (block bodies keep their own)."""
    args = bind_args(spec.get("args"), {}, what="the model", path=join_path(path, "args"),
                     decl_path=join_path(path, "args"), file=file)
    spec = dict(spec)
    for key in ("layers", "input", "output"):
        if key in spec:
            spec[key] = substitute(spec[key], args, path=join_path(path, key), file=file)
    if isinstance(spec.get("blocks"), dict):
        spec["blocks"] = {n: _substituted_block(b, args, join_path(path, "blocks", str(n)), file)
                          for n, b in spec["blocks"].items()}
    return spec


def _substituted_block(body: Any, args: dict[str, Any], path: str, file: str | None) -> Any:
    """A block body with the model's arguments substituted; its own ``$args`` are left for later."""
    own = declared_args(body.get("args"), join_path(path, "args"), file) if isinstance(body, dict) else {}
    return substitute(body, args, path=path, file=file, skip=frozenset(own))


def _settle_input(spec: dict[str, Any], req: BuildRequest) -> tuple[int, ...]:
    """The input shape: the data's, checked against the spec's own."""
    path, file = req.path, req.file
    spec_input = input_shape(spec["input"], join_path(path, "input"), file) if "input" in spec else None
    if req.input_shape is not None:
        shape = tuple(int(s) for s in req.input_shape)
        if spec_input is not None and spec_input != shape:
            raise SpecError(f"model input {fmt(spec_input)} does not match the data's sample shape {fmt(shape)}",
                            path=join_path(path, "input"), file=file, expected=fmt(shape),
                            found=list(spec_input))
        return shape
    if spec_input is not None:
        return spec_input
    raise SpecError("the input shape is unknown: give model.input (e.g. [1, 28, 28]) or build with data",
                    path=join_path(path, "input"), file=file, expected="input: [C, H, W] or [features]")


def build_layer_graph(spec: dict[str, Any], req: BuildRequest) -> LayerGraph:
    """Build a hand-written (non-zoo) model section; see ``deeppipe.models.build_model``."""
    path, file, num_outputs = req.path, req.file, req.num_outputs
    _check_keys(spec, path, file)
    spec = _substituted(spec, path, file)
    shape = _settle_input(spec, req)
    default_act = spec.get("activation")
    if default_act is not None:
        parse_activation(default_act, path=join_path(path, "activation"), file=file)
    default_init = parse_init(spec["init"], path=join_path(path, "init"), file=file) if "init" in spec \
        else ("auto", {})
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
        raise SpecError("output: is the name of a layer", path=join_path(path, "output"), file=file,
                        found=output)
    net = build_sequence(layers, Flow([shape], [len(shape) >= 3]), ctx, lpath, output=output)
    if num_outputs is not None:
        out_shape = net.output_shape
        per_step = len(out_shape) == 2 and out_shape[-1] == int(num_outputs)  # (T, C): spec.checks judges it
        if out_shape != (int(num_outputs),) and out_shape != shape and not per_step:
            last = net.infos[net.output_index]
            raise SpecError(
                f"the network's output {fmt(out_shape)} does not match the {num_outputs} output(s) the data "
                f"needs; end with a layer of {num_outputs} units (out_features: auto follows the data)",
                path=last.path, file=file, expected=fmt((int(num_outputs),)), found=out_shape,
            )
    tag_activations(net, None)
    if req.device is not None and torch.device(req.device).type == "meta":
        return net
    materialize(net, default_init)
    if req.device is not None:
        net.to(device=req.device)
    return net
