"""One entry of a layer list, read and checked: ``- Conv2d: {...}`` plus its sibling keys
(repeat, name, from, init, activation, trainable; the list is ``deeppipe.models.config``'s)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from deeppipe.errors import closest, join_path
from deeppipe.models.activations import parse_activation
from deeppipe.models.build.context import Ctx, err
from deeppipe.models.config import ENTRY_KEYS, layer_key
from deeppipe.models.initialisers import parse_init
from deeppipe.models.layer_graph import LayerGraph
from deeppipe.models.meta import Choice

# `- Activation: relu` may name the activation directly
ACTIVATION_LAYER = {"activation", "act"}
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# names a node cannot take: they are attributes of the network it becomes a child of
_RESERVED = ("infos", "node_names", "node_inputs", "node_modules", "output_index", "input_shape",
             "output_shape")


@dataclass
class Entry:
    """A layer entry after checking: the layer (or block) type, its arguments and its options."""

    type: str
    args: dict[str, Any]
    repeat: int | None = None
    name: str | None = None
    sources: list[Any] | None = None
    init: Choice | None = None
    activation: Any = None
    trainable: bool = True
    share: str | None = None  # hard parameter sharing: the earlier layer whose module this reuses


def parse_entry(raw: Any, path: str, ctx: Ctx) -> Entry:
    """Check one (substituted) entry of a layer list at ``path``."""
    if isinstance(raw, str):
        return Entry(type=raw, args={})
    if not isinstance(raw, dict) or not raw:
        raise err(
            "a layer entry is '- LayerName: {arguments}' (optionally with repeat:, name:, from:, init:, "
            "activation:, trainable:)",
            path, ctx, expected="e.g. - Conv2d: {out_channels: 32, kernel_size: 3}", found=raw,
        )
    try:
        tname = layer_key(raw)
    except ValueError as exc:
        if "share" in raw:
            raise err(str(exc), path, ctx, expected="share: <layer name>, with name: and from: only",
                      found=[str(k) for k in raw]) from None
        types = [k for k in raw if k not in ENTRY_KEYS]
        several = len(types) != 1
        raise err(str(exc), path, ctx, expected="one layer name" if several else None,
                  found=list(raw) if several else types[0],
                  suggestion=next((c for t in types if (c := closest(str(t), ENTRY_KEYS))), None)
                  if several else None) from None
    if tname is None:  # `share: enc`: the named layer's module again (its checks were made there)
        return Entry(type="share", args={}, name=_name(raw["name"], join_path(path, "name"), ctx)
                     if "name" in raw else None,
                     sources=_sources(raw["from"], join_path(path, "from"), ctx) if "from" in raw else None,
                     share=_name(raw["share"], join_path(path, "share"), ctx))
    e = Entry(type=tname, args=_arguments(tname, raw[tname], path, ctx))
    if "repeat" in raw:
        e.repeat = _repeat(raw["repeat"], join_path(path, "repeat"), ctx)
    if "name" in raw:
        e.name = _name(raw["name"], join_path(path, "name"), ctx)
    if "from" in raw:
        e.sources = _sources(raw["from"], join_path(path, "from"), ctx)
    if "init" in raw:
        e.init = parse_init(raw["init"], path=join_path(path, "init"), file=ctx.file)
    if "activation" in raw:
        parse_activation(raw["activation"], path=join_path(path, "activation"), file=ctx.file)
        e.activation = raw["activation"]
    if "trainable" in raw:
        if not isinstance(raw["trainable"], bool):
            raise err("trainable must be true or false", join_path(path, "trainable"), ctx,
                      found=raw["trainable"])
        e.trainable = raw["trainable"]
    return e


def _arguments(tname: str, args: Any, path: str, ctx: Ctx) -> dict[str, Any]:
    if args is None:
        return {}
    if isinstance(args, dict):
        return dict(args)
    if tname.lower() in ACTIVATION_LAYER and isinstance(args, str):
        return {"name": args}
    raise err(f"the arguments of {tname} must be a mapping", join_path(path, tname), ctx,
              expected=f"{tname}: {{argument: value, ...}} (or {tname}: {{}})", found=args)


def _repeat(r: Any, path: str, ctx: Ctx) -> int:
    if isinstance(r, bool) or not isinstance(r, int) or r < 0:
        raise err("repeat must be a whole number >= 0", path, ctx, expected="e.g. 3", found=r)
    return r


def _name(n: Any, path: str, ctx: Ctx) -> str:
    if not isinstance(n, str) or not NAME.match(n) or n.isdigit() or n == "input":
        raise err("a layer name is an identifier (letters, digits, _; not 'input')", path, ctx,
                  expected="e.g. conv1", found=n)
    if hasattr(LayerGraph, n) or n in _RESERVED:
        raise err(f"'{n}' is reserved (an attribute of the network); choose another name", path, ctx,
                  found=n)
    return n


def _sources(raw: Any, path: str, ctx: Ctx) -> list[Any]:
    src = raw if isinstance(raw, list) else [raw]
    if not src or not all(isinstance(s, (str, int)) and not isinstance(s, bool) for s in src):
        raise err("from: is a layer name, 'input', a negative offset (-1 = previous) or a list of them",
                  path, ctx, expected="e.g. from: [conv1, -1]", found=raw)
    return src
