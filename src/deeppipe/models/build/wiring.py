"""Layer lists into graphs: each entry's inputs (``from:``), its copies (``repeat:``), its
options (``activation:``, ``init:``, ``trainable:``), blocks defined in the spec (built as nested
layer lists), and the check that every node's output is used."""

from __future__ import annotations

import torch
import torch.nn as nn

from deeppipe.errors import SpecError, closest, join_path, unknown
from deeppipe.models.activations import make_activation
from deeppipe.models.build.context import BlockDef, Built, Ctx, Flow, err
from deeppipe.models.build.entries import Entry, parse_entry
from deeppipe.models.build.layer import build_layer, feature_dim, symbolic
from deeppipe.models.build.probe import probe
from deeppipe.models.build.templates import bind_args, substitute
from deeppipe.models.initialisers import is_weight_layer
from deeppipe.models.layer_graph import LayerGraph, NodeInfo
from deeppipe.models.meta import layer_type, meta_of
from deeppipe.models.shapes import fmt

MAX_REPEAT = 10_000  # copies of one layer entry (repeat: x depth_multiplier)


def _resolve_sources(entry: Entry, i: int, names: dict[str, int], ctx: Ctx, path: str) -> list[int]:
    """The node indices an entry takes its inputs from (-1: the network's input)."""
    if entry.sources is None:
        return [i - 1]
    fpath = join_path(path, "from")
    out = []
    for s in entry.sources:
        if isinstance(s, int):
            j = i + s if s < 0 else s
            if (s >= 0 and s >= i) or j < -1:
                raise err(f"from: {s} does not point at an earlier layer (this is layer {i}; use a name, "
                          "'input' or -1 for the previous layer)", fpath, ctx, found=s)
            out.append(j)
        elif s == "input":
            out.append(-1)
        elif s in names:
            out.append(names[s])
        else:
            raise err(f"from: '{s}' is not the name of an earlier layer", fpath, ctx,
                      expected=f"one of input, {', '.join(names)}" if names
                      else "input (no earlier layer has a name)",
                      found=s, suggestion=closest(s, [*names, "input"]))
    return out


def build_sequence(layers: object, flow: Flow, ctx: Ctx, path: str, *, output: str | None = None,
                   block_type: str | None = None) -> LayerGraph:
    """A layer list (already substituted) at ``path`` into a LayerGraph, taking ``flow``."""
    if not isinstance(layers, list) or not layers:
        raise err("layers: is a non-empty list of layer entries", path, ctx, expected="- Conv2d: {...}",
                  found=layers)
    in_shape = flow.shapes[0]
    names: dict[str, int] = {}
    node_names: list[str] = []
    modules: list[nn.Module] = []
    inputs: list[tuple[int, ...]] = []
    infos: list[NodeInfo] = []
    shapes: dict[int, tuple[tuple[int, ...], bool]] = {-1: (in_shape, flow.maps[0])}
    describe = {-1: "the input"}
    shares: dict[int, int] = {}  # node -> the node whose module it runs (hard parameter sharing)
    for i, raw in enumerate(layers):
        epath = join_path(path, i)
        entry = parse_entry(raw, epath, ctx)
        srcs = _resolve_sources(entry, i, names, ctx, epath)
        if entry.share is not None:
            owner = _owner(entry.share, names, shares, ctx, join_path(epath, "share"))
            count, built = None, _shared(modules[owner], node_names[owner], srcs, shapes, describe, ctx, epath)
            shares[i] = owner
        else:
            count, built = _build_copies(entry, srcs, shapes, describe, ctx, epath)
        module = built.module
        _apply_entry_options(module, entry)
        key = entry.name or str(i)
        if key in names:
            raise err(f"the name '{key}' is used twice", join_path(epath, "name"), ctx, found=key)
        if entry.name:
            names[key] = i
        node_names.append(key)
        modules.append(module)
        inputs.append(tuple(srcs))
        shapes[i] = (built.shape, built.is_map)
        describe[i] = f"{join_path(epath, entry.type)} {fmt(built.shape)}"
        infos.append(NodeInfo(
            name=key,
            type=built.type if entry.share is not None else layer_type(module, built.type),
            path=join_path(epath, entry.type),
            inputs=tuple("input" if j == -1 else node_names[j] for j in srcs),
            shape=built.shape,
            is_map=built.is_map,
            repeat=count,
        ))
    out_index = len(node_names) - 1
    if output is not None:
        if output not in names:
            raise err(f"output: '{output}' is not the name of a layer",
                      join_path(path.rsplit(".", 1)[0], "output"), ctx, found=output,
                      suggestion=closest(output, names))
        out_index = names[output]
    _check_reachable(node_names, inputs, out_index, infos, ctx)
    return LayerGraph(node_names, modules, inputs, out_index, infos, in_shape, block_type, shares=shares)


def _owner(name: str, names: dict[str, int], shares: dict[int, int], ctx: Ctx, path: str) -> int:
    """The node whose module ``share: name`` runs (following a chain of shares to its root)."""
    if name not in names:
        known = unknown("layer", name, names, path=path, file=ctx.file)
        raise err(f"share: '{name}' is not the name of an earlier layer of this list", path, ctx,
                  expected=known.expected if names else "the name: of an earlier layer", found=name,
                  suggestion=known.suggestion)
    return shares.get(names[name], names[name])


def _shared(module: nn.Module, owner: str, srcs: list[int], shapes: dict[int, tuple[tuple[int, ...], bool]],
            describe: dict[int, str], ctx: Ctx, epath: str) -> Built:
    """Layer ``owner``'s own module on this entry's inputs: one set of parameters used twice, so
    the gradient it receives is the sum over both places."""
    flow = Flow([shapes[j][0] for j in srcs], [shapes[j][1] for j in srcs],
                describe[srcs[0]] if len(srcs) == 1 else "")
    kind = f"{layer_type(module, type(module).__name__)} (shares {owner})"
    built = probe(module, None, kind, flow, ctx, join_path(epath, "share"))
    return Built(module, built.shape, built.is_map, kind)


def _build_copies(entry: Entry, srcs: list[int], shapes: dict[int, tuple[tuple[int, ...], bool]],
                  describe: dict[int, str], ctx: Ctx, epath: str) -> tuple[int | None, Built]:
    """The entry's module: one copy, ``repeat`` copies in a Sequential, or an Identity for 0."""
    flow = Flow([shapes[j][0] for j in srcs], [shapes[j][1] for j in srcs],
                describe[srcs[0]] if len(srcs) == 1 else "")
    count = entry.repeat
    if count is not None and ctx.depth != 1.0 and count > 0:
        count = max(1, round(count * ctx.depth))
    if count is not None and count > MAX_REPEAT:  # each copy is built: a typo of many digits would hang
        raise err(f"repeat asks for {count:,} copies of a layer", join_path(epath, "repeat"), ctx,
                  expected=f"at most {MAX_REPEAT:,} copies (after depth_multiplier)", found=entry.repeat)
    copies: list[Built] = []
    for _ in range(1 if count is None else count):
        b = build_node(entry, flow, ctx, epath, scale_width=epath != ctx.head_path)
        copies.append(b)
        flow = flow.then(b, f"{join_path(epath, entry.type)} (copy {len(copies)} of {count})")
    if count is None:
        return None, copies[0]
    if count == 0:
        if len(srcs) != 1:
            raise err("repeat: 0 needs a single input", join_path(epath, "repeat"), ctx, found=entry.sources)
        built = Built(nn.Identity(), *shapes[srcs[0]], entry.type)
    else:
        built = Built(nn.Sequential(*(c.module for c in copies)), copies[-1].shape, copies[-1].is_map,
                      copies[-1].type)
    meta_of(built.module).type = f"{copies[0].type if copies else entry.type} x{count}"
    return count, built


def _check_reachable(names: list[str], inputs: list[tuple[int, ...]], out: int, infos: list[NodeInfo],
                     ctx: Ctx) -> None:
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
        raise err(
            f"the output of layer '{names[k]}' is never used: no later layer takes it (from:) and it is not the "
            "model's output; remove it or name it in a from: list",
            infos[k].path, ctx, found=names[k],
        )


def _apply_entry_options(module: nn.Module, entry: Entry) -> None:
    if entry.init is not None:
        for m in module.modules():
            if (is_weight_layer(m) or isinstance(m, nn.RNNBase)) and meta_of(m).init is None:
                meta_of(m).init = entry.init
    if not entry.trainable:
        for p in module.parameters():
            p.requires_grad_(False)
        meta_of(module).frozen = True


def build_node(entry: Entry, flow: Flow, ctx: Ctx, path: str, *, scale_width: bool) -> Built:
    """One copy of an entry: a spec-defined block or a registered layer, plus its ``activation:``."""
    bdef = ctx.blocks.get(entry.type.lower())
    if bdef is not None:
        built = build_block(bdef, entry, flow, ctx, path)
    else:
        built = build_layer(entry, flow, ctx, path, scale_width=scale_width)
    if entry.activation is None:
        return built
    apath = join_path(path, "activation")
    with torch.device("meta"):
        act = make_activation(entry.activation, feature_dim=feature_dim(built.shape, built.is_map),
                              path=apath, file=ctx.file)
    name, kwargs = meta_of(act).activation
    if is_weight_layer(built.module) and meta_of(built.module).act is None:
        meta_of(built.module).act = (name, kwargs)
    seq = nn.Sequential(built.module, act)
    meta_of(seq).type = f"{built.type}+{name}"
    probed = probe(act, None, name, Flow([built.shape], [built.is_map], flow.src), ctx, apath)
    return Built(seq, probed.shape, probed.is_map, f"{built.type}+{name}")


def build_block(bdef: BlockDef, entry: Entry, flow: Flow, ctx: Ctx, path: str) -> Built:
    """A block defined under ``blocks:``: bind its arguments, substitute, build its layer list."""
    lpath = join_path(path, entry.type)
    if bdef.name in ctx.stack:
        raise err(f"block '{bdef.name}' uses itself ({' -> '.join((*ctx.stack, bdef.name))})", lpath, ctx)
    if len(flow.shapes) != 1:
        raise err(f"block '{bdef.name}' takes one input; merge them first with Add or Concat",
                  join_path(path, "from"), ctx, found=entry.sources)
    values = bind_args(bdef.args, entry.args, what=f"block '{bdef.name}'", path=lpath,
                       decl_path=join_path(bdef.path, "args"), file=ctx.file)
    values = {k: symbolic(k, v, ctx, join_path(lpath, k)) for k, v in values.items()}
    body_path = join_path(bdef.path, "layers")
    body = substitute(bdef.layers, values, path=body_path, file=ctx.file)
    try:
        net = build_sequence(body, Flow(flow.shapes, flow.maps), ctx.inside(bdef.name), body_path,
                             output=bdef.output, block_type=bdef.name)
    except SpecError as e:
        raise SpecError(
            f"{e.reason} (in block '{bdef.name}' used at {lpath}{flow.src_text}, input {fmt(flow.shapes[0])})",
            path=e.path, file=e.file, expected=e.expected, found=e.found, suggestion=e.suggestion,
        ) from None
    last = net.infos[net.output_index]
    return Built(net, net.output_shape, last.is_map, bdef.name)
