"""What the builder carries while it walks a model: the request, the model-wide context, the
tensors flowing into an entry, and what building one gave back."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn as nn

from deeppipe.errors import SpecError

# The sizes a layer's output is set by: the entry setting one last is the head, which
# width_multiplier leaves alone (also a layer record's default `width_args`).
WIDTH_KEYS = ("out_channels", "out_features", "hidden_size")


@dataclass(frozen=True)
class BuildRequest:
    """What ``build_model`` was asked for: the data's sample shape and head size, where the
    section sits (file, key path) and the device to build on."""

    input_shape: tuple[int, ...] | None
    num_outputs: int | None
    file: str | None = None
    path: str = "model"
    device: str | torch.device | None = None


@dataclass
class BlockDef:
    """A block defined under ``blocks:``: its declared arguments and its (template) layers."""

    name: str
    args: Any
    layers: list[Any]
    output: str | None
    path: str


@dataclass
class Ctx:
    """Model-wide facts every entry may need, and the probe cache of the whole build."""

    file: str | None
    num_outputs: int | None
    model_input: tuple[int, ...]
    blocks: dict[str, BlockDef]
    activation: Any = None
    width: float = 1.0
    depth: float = 1.0
    stack: tuple[str, ...] = ()  # the blocks being built, outermost first (to refuse recursion)
    head_path: str | None = None  # the entry exempt from width_multiplier (the output head)
    shapes: dict = field(default_factory=dict)  # (layer, arguments, input) -> probed output

    def inside(self, block: str) -> Ctx:
        """The context for the body of ``block`` (no head there; the probe cache is shared)."""
        return replace(self, stack=(*self.stack, block), head_path=None)


@dataclass(frozen=True)
class Flow:
    """The tensors flowing into an entry: per-sample shapes, whether each is a feature map, and
    where a single one comes from (for messages: "from model.layers[2].Conv2d (8, 14, 14)")."""

    shapes: list[tuple[int, ...]]
    maps: list[bool]
    src: str = ""

    @property
    def src_text(self) -> str:
        return f" from {self.src}" if self.src else ""

    def then(self, built: Built, src: str) -> Flow:
        """What flows into the next copy of a repeated entry."""
        return Flow([built.shape], [built.is_map], src)


@dataclass
class Built:
    """A built node: the module, its per-sample output shape, whether that is a feature map, and
    the type name shown for it."""

    module: nn.Module
    shape: tuple[int, ...]
    is_map: bool
    type: str


def err(msg: str, path: str, ctx: Ctx | None, **kw: Any) -> SpecError:
    """A SpecError at ``path`` in the file being built."""
    return SpecError(msg, path=path, file=ctx.file if ctx else None, **kw)


def clean(exc: BaseException) -> str:
    """The first line of an exception's message (torch's are long)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
