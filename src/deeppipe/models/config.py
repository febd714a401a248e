"""The ``model:`` section as pydantic models: its structure for ``deeppipe schema`` (editors) and
for early, path-aware validation, and the one list of keys the builder accepts.

A model is either a layer list (``LayersModel``) or a zoo name plus overrides (``ZooModel``);
``ModelConfig`` is the union, usable as a pydantic field type. The structure is checked here; what
depends on the layers themselves (their keyword arguments, shapes, names used in ``from:``) is
checked by the builder, which gets exactly what the user wrote (``model_dict``). Bodies are
templates: wherever a model or block argument can stand (``repeat: $n``), a ``$placeholder`` is
accepted too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    Tag,
    field_validator,
    model_validator,
)

from deeppipe.config import Component, Strict, parse_section
from deeppipe.models.transfer import AllButLast, FineTune

__all__ = [
    "BLOCK_KEYS",
    "ENTRY_KEYS",
    "INFO_KEYS",
    "MODEL_KEYS",
    "SHARE_KEYS",
    "ZOO_OVERRIDES",
    "BlockBody",
    "LayerEntry",
    "LayersModel",
    "ModelConfig",
    "ZooModel",
    "layer_key",
    "model_dict",
    "parse_model",
]

_PLACEHOLDER = re.compile(r"\$(?:\{[A-Za-z_]\w*\}|[A-Za-z_]\w*)")


def _placeholder(value: str) -> str:
    if not _PLACEHOLDER.fullmatch(value):
        raise ValueError("expected a $placeholder here (a model or block argument, e.g. $n)")
    return value


def _one_of(pick: Callable[[Any], str], **choices: Any) -> Any:
    """A union whose member is chosen by ``pick`` (so an error names one member's problem only).
    Tags are written in brackets, which the error translator leaves out of the key path."""
    members = tuple(Annotated[t, Tag(f"[{tag}]")] for tag, t in choices.items())
    return Annotated[Union[members], Discriminator(lambda v: f"[{pick(v)}]")]  # noqa: UP007


def _str_or(other: str) -> Callable[[Any], str]:
    return lambda v: "name" if isinstance(v, str) else other


Placeholder = Annotated[str, AfterValidator(_placeholder)]
# `relu` or {name: leaky_relu, negative_slope: 0.2}; the component checks its own arguments
Named = _one_of(_str_or("mapping"), name=str, mapping=Component)
Size = Union[StrictInt, Placeholder]  # noqa: UP007
# [1, 28, 28] (nested lists are flattened) or one number of features
Shape = Union[StrictInt, Placeholder, list[Union[Size, list[Size]]]]  # noqa: UP007
Number = Union[StrictInt, StrictFloat]  # noqa: UP007
Source = Union[StrictInt, str]  # noqa: UP007
LayerArgs = Union[dict[str, Any], str, None]  # noqa: UP007


class LayerEntry(BaseModel):
    """One entry of a layer list: ``- Conv2d: {out_channels: 32, kernel_size: 3}`` plus options.

    Exactly one key names the layer (a torch.nn module, a deeppipe layer or block, a registered
    layer or a block of this model); its value is the layer's keyword arguments (a mapping, null,
    or for ``Activation`` the activation's name). Input sizes are inferred, never written."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    __pydantic_extra__: dict[str, LayerArgs]  # the layer name -> its arguments

    repeat: Union[StrictInt, Placeholder] = Field(  # noqa: UP007
        None, description="N copies in a row, one node; 0 is an identity")
    name: str = Field(None, description="the node's name (parameter names, target of from:)")
    from_: Union[Source, list[Source]] = Field(  # noqa: UP007
        None, alias="from",
        description="inputs: layer names, 'input', or negative offsets (-1 = previous)")
    init: Named = Field(None, description="initialisation of this entry's weight layers")
    activation: Named = Field(None, description="an activation applied after the layer")
    trainable: Union[StrictBool, Placeholder] = Field(  # noqa: UP007
        None, description="false freezes this entry's parameters")
    share: str = Field(None, description="hard parameter sharing: run the module of this earlier layer "
                       "(by name) again here, on this entry's input; one set of parameters")

    @model_validator(mode="before")
    @classmethod
    def _one_layer(cls, data: Any) -> Any:
        if isinstance(data, dict):
            layer_key(data)
        return data


# A bare layer name (`- Flatten`) or an entry with arguments and options.
Entry = _one_of(_str_or("entry"), name=str, entry=LayerEntry)
Layers = _one_of(lambda v: "placeholder" if isinstance(v, str) else "list",
                 list=list[Entry], placeholder=Placeholder)
Args = Union[list[str], dict[str, Any], None]  # noqa: UP007


class BlockBody(Strict):
    """A reusable block: its arguments and a layer list in which ``$arg`` stands for them."""

    args: Args = Field(None, description="[a, b] (all required) or {a: null, b: 1} (with defaults)")
    layers: Layers = Field(description="the block's layers; 'input' in from: is the block's input")
    output: str | None = Field(None, description="the node whose output the block returns")
    description: str | None = None


Block = _one_of(lambda v: "layers" if isinstance(v, list) else "block", block=BlockBody,
                layers=list[Entry])


class Pretrained(Strict):
    """Weights to start from (transfer learning): ``deeppipe.models.pretrained``."""

    source: str = Field(alias="from", description="a deeppipe model folder (data/06_models/<experiment>/model), a "
                        "checkpoint (.pt, .safetensors), or an MLflow model URI (models:/<name>@<alias>, runs:/<id>/model)")
    layers: list[str] = Field(default_factory=lambda: ["*"], description="glob patterns of the parameter names "
                              "to load (e.g. ['0.*', 'code.*']); the others (a new head) start fresh")
    new_head: bool = Field(False, description="leave the last weight layer out: a fresh head sized for this data")
    freeze: Union[list[str], AllButLast, None] = Field(  # noqa: UP007
        None, description="patterns of parameters to keep fixed, or {all_but_last: N} weight layers")
    fine_tune: FineTune | None = Field(None, description="two phases: {head_epochs: E1, lr_factor: 0.1}")

    @field_validator("freeze", mode="before")
    @classmethod
    def _one_freeze(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("layers", mode="before")
    @classmethod
    def _one(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class LayersModel(Strict):
    """A network written as a layer list: a chain, or a graph whose entries name their inputs."""

    layers: Layers = Field(description="the layer entries, in order")
    input: Shape = Field(None, description="the per-sample input shape; checked against the data")
    blocks: dict[str, Block] | None = Field(None, description="reusable blocks, by name")
    args: Args = Field(None, description="arguments of the whole model, used as $name")
    activation: Named | None = Field(None, description="default activation of blocks and Activation layers")
    init: Named = Field(None, description="initialisation of every weight layer (default: auto)")
    pretrained: Pretrained | None = Field(None, description="weights to start from (transfer learning)")
    width_multiplier: Number = Field(None, description="scales the width of every layer but the head")
    depth_multiplier: Number = Field(None, description="scales every repeat: count")
    output: str | None = Field(None, description="the name of the output node (default: the last)")
    description: str | None = None
    # what zoo files carry for people and tools; the builder ignores them
    task: str | None = Field(None, description="multiclass, binary, regression or reconstruction")
    loss: Named = Field(None, description="the loss this model is meant for")
    small_input: Shape = Field(None, description="a small input the model also takes")
    reference: str | None = Field(None, description="where the architecture was published")
    published_params: StrictInt | None = Field(None, description="the published parameter count")


class ZooModel(BaseModel):
    """A model from the zoo (src/deeppipe/models/zoo/NAME.yml) plus overrides. Other keys are the
    zoo model's own arguments (dropout, hidden ...), checked against the ones its file declares."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    zoo: str = Field(description="the zoo model's name", examples=["resnet18", "mlp", "lstm_classifier"])
    num_classes: StrictInt = Field(None, description="head size (default: the data's)")
    num_outputs: StrictInt = Field(None, description="same as num_classes")
    in_channels: StrictInt = Field(None, description="input channels (or features)")
    input_size: Union[StrictInt, list[StrictInt]] = Field(  # noqa: UP007
        None, description="input size: one number or [H, W]")
    input: Shape = Field(None, description="the whole per-sample input shape")
    width: Number = Field(None, description="same as width_multiplier")
    width_multiplier: Number = Field(None, description="scales the width of every layer but the head")
    depth: Number = Field(None, description="same as depth_multiplier")
    depth_multiplier: Number = Field(None, description="scales every repeat: count")
    activation: Named | None = Field(None, description="the model's default activation")
    init: Named = Field(None, description="initialisation of every weight layer")
    pretrained: Pretrained | None = Field(None, description="weights to start from (transfer learning)")


# validation picks by the raw mapping, serialisation by the model instance (no "unexpected value")
ModelConfig = _one_of(lambda v: "zoo" if isinstance(v, ZooModel) or (isinstance(v, dict) and "zoo" in v) else "layers",
                      layers=LayersModel, zoo=ZooModel)

# The keys the builder accepts, read from the models above (one list for schema and builder).
ENTRY_KEYS: tuple[str, ...] = tuple(f.alias or n for n, f in LayerEntry.model_fields.items())
INFO_KEYS = ("task", "loss", "small_input", "reference", "published_params")
MODEL_KEYS: tuple[str, ...] = tuple(k for k in LayersModel.model_fields if k not in INFO_KEYS)
BLOCK_KEYS: tuple[str, ...] = tuple(BlockBody.model_fields)
ZOO_OVERRIDES: tuple[str, ...] = tuple(k for k in ZooModel.model_fields if k != "zoo")


# what an entry with ``share:`` may carry besides it: the shared module is the named layer's own
SHARE_KEYS = ("share", "name", "from")


def layer_key(raw: dict[Any, Any]) -> str | None:
    """The one key of a layer entry that names its layer (None for a ``share:`` entry, which
    reuses a named layer's module); ValueError saying what is wrong."""
    types = [k for k in raw if k not in ENTRY_KEYS]
    if "share" in raw:
        extra = [str(k) for k in raw if k not in SHARE_KEYS]
        if extra:
            raise ValueError(f"an entry with share: runs the named layer's own module, so it takes only "
                             f"{', '.join(SHARE_KEYS)}; found {', '.join(extra)}")
        return None
    if len(types) != 1:
        names = ", ".join(map(str, types)) or "none"
        raise ValueError(f"a layer entry names exactly one layer, found {names}; "
                         f"the other keys may only be {', '.join(ENTRY_KEYS)}")
    if not isinstance(types[0], str):
        raise ValueError("a layer name must be a string")
    return types[0]


def parse_model(raw: Any, *, path: str = "model", file: str | None = None) -> LayersModel | ZooModel:
    """Validate a ``model:`` section; the first mistake is a SpecError at its key path."""
    model = ZooModel if isinstance(raw, dict) and "zoo" in raw else LayersModel
    return parse_section(model, raw, path=path, file=file)


def model_dict(config: LayersModel | ZooModel) -> dict[str, Any]:
    """The section exactly as the user wrote it (what the builder reads)."""
    return config.model_dump(by_alias=True, exclude_unset=True)
