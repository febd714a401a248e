"""What deeppipe knows about a built module beyond what torch stores: one typed record per module.

The builder, the blocks, initialisation, the summary and the picture all read and write the same
``LayerMeta`` (one attribute on the module, created on first write), instead of loose attributes
that each reader has to know by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn as nn

# a component chosen by name with its arguments: an activation ("leaky_relu", {"negative_slope": 0.2})
# or an initialiser ("normal", {"std": 0.02})
Choice = tuple[str, dict[str, Any]]

_ATTR = "_deeppipe_meta"


@dataclass
class LayerMeta:
    """The record deeppipe keeps on a module.

    - ``type``: the name shown in summaries and pictures ("conv_bn_relu x2", "Linear+tanh");
      None shows the class name.
    - ``init``: the initialiser an entry's ``init:`` chose for this weight layer (name, arguments).
    - ``act``: the activation that follows this weight layer, so ``init: auto`` can match it;
      None until something tags it (then it is initialised by torch's own rule).
    - ``bias``: the constant its bias starts at (0; the highway gate starts closed, e.g. -2).
    - ``factory``: rebuilds the layer for real when it cannot be refilled after ``to_empty``.
    - ``frozen``: ``trainable: false`` (kept when the layer is rebuilt).
    - ``activation``: this module *is* that activation (set by ``make_activation``).
    """

    type: str | None = None
    init: Choice | None = None
    act: Choice | None = None
    bias: float = 0.0
    factory: Callable[[], nn.Module] | None = None
    frozen: bool = False
    activation: Choice | None = None


def meta_of(module: nn.Module) -> LayerMeta:
    """The module's record, created (empty) on first use: the way to write metadata."""
    meta = module.__dict__.get(_ATTR)
    if meta is None:
        meta = LayerMeta()
        module.__dict__[_ATTR] = meta
    return meta


def existing_meta(module: nn.Module) -> LayerMeta | None:
    """The module's record if anything wrote one: the way to read without adding records."""
    return module.__dict__.get(_ATTR)


def set_meta(module: nn.Module, meta: LayerMeta) -> None:
    """Give ``module`` this record (a layer rebuilt for real keeps what the meta copy knew)."""
    module.__dict__[_ATTR] = meta


def layer_type(module: nn.Module, default: str | None = None) -> str:
    """The type name to show for ``module``: deeppipe's own when it set one, else ``default``,
    else the class name."""
    meta = existing_meta(module)
    return (meta.type if meta is not None else None) or default or type(module).__name__


def tag_act(module: nn.Module, act: Choice) -> None:
    """Record the activation after a weight layer (blocks tag the convolutions they own)."""
    meta_of(module).act = (act[0], dict(act[1]))
