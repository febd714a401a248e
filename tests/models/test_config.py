"""The model: section as pydantic models (ModelConfig): what the builder sees is what was written,
the JSON schema describes both forms, and mistakes are SpecErrors at the YAML path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from deeppipe.errors import SpecError
from deeppipe.models import LayersModel, ModelConfig, ZooModel, build_model, parse_model, zoo
from deeppipe.models.config import (
    BLOCK_KEYS,
    ENTRY_KEYS,
    MODEL_KEYS,
    ZOO_OVERRIDES,
    LayerEntry,
    model_dict,
)
from tests.models.test_properties import EXAMPLES
from tests.models.test_properties import _chains as chains

ADAPTER = TypeAdapter(ModelConfig)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"

# ----------------------------------------------------------------------------- generated sections
IDENT = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
PLACEHOLDER = IDENT.map(lambda n: f"${n}") | IDENT.map(lambda n: f"${{{n}}}")
SCALAR = st.one_of(st.integers(-3, 64), st.floats(0.01, 4.0), st.booleans(), st.none(), IDENT, PLACEHOLDER)
VALUE = st.one_of(SCALAR, st.lists(st.integers(0, 8), max_size=3))
LAYER_NAME = st.sampled_from(["Conv2d", "Linear", "ReLU", "BatchNorm2d", "Flatten", "GlobalAvgPool",
                              "ConvBNAct", "my_block"]) | PLACEHOLDER
ARGS = st.one_of(st.none(), st.dictionaries(IDENT, VALUE, max_size=3), PLACEHOLDER)
NAMED = st.one_of(IDENT, st.builds(lambda n, kw: {"name": n, **kw}, IDENT,
                                   st.dictionaries(IDENT.filter(lambda k: k != "name"), VALUE, max_size=2)))
SIBLINGS = st.fixed_dictionaries({}, optional={
    "repeat": st.integers(0, 4) | PLACEHOLDER,
    "name": IDENT,
    "from": st.one_of(st.integers(-3, -1), IDENT, st.lists(st.one_of(st.integers(-3, -1), IDENT), min_size=1,
                                                            max_size=3)),
    "init": NAMED,
    "activation": NAMED,
    "trainable": st.booleans() | PLACEHOLDER,
})
ENTRY = st.one_of(
    LAYER_NAME,
    st.builds(lambda name, args, extra: {name: args, **extra}, LAYER_NAME, ARGS, SIBLINGS),
    st.builds(lambda act, extra: {"Activation": act, **extra}, IDENT, SIBLINGS),
)
LAYERS_LIST = st.lists(ENTRY, min_size=1, max_size=6)
BLOCK = st.one_of(
    LAYERS_LIST,
    st.fixed_dictionaries({"layers": LAYERS_LIST}, optional={
        "args": st.lists(IDENT, max_size=3) | st.dictionaries(IDENT, SCALAR, max_size=3),
        "output": IDENT,
        "description": st.text(max_size=20),
    }),
)
SHAPE = st.lists(st.integers(1, 64), min_size=1, max_size=3)
LAYERS_SECTION = st.fixed_dictionaries({"layers": LAYERS_LIST}, optional={
    "input": SHAPE | PLACEHOLDER,
    "blocks": st.dictionaries(IDENT, BLOCK, max_size=2),
    "args": st.dictionaries(IDENT, VALUE, max_size=3),
    "activation": NAMED | st.none(),
    "init": NAMED,
    "width_multiplier": st.sampled_from([0.5, 1, 2, 0.25]),
    "depth_multiplier": st.sampled_from([0.5, 1, 3]),
    "output": IDENT,
    "description": st.text(max_size=20),
    "task": st.sampled_from(["multiclass", "regression"]),
    "published_params": st.integers(1, 10**8),
})
ZOO_SECTION = st.builds(
    lambda name, over, own: {"zoo": name, **own, **over},
    st.sampled_from(zoo.names()),
    st.fixed_dictionaries({}, optional={
        "num_classes": st.integers(1, 100),
        "in_channels": st.integers(1, 4),
        "input_size": st.integers(8, 64) | st.lists(st.integers(8, 64), min_size=2, max_size=2),
        "input": SHAPE,
        "width": st.sampled_from([0.5, 1, 2]),
        "depth_multiplier": st.sampled_from([0.5, 2]),
        "activation": NAMED,
        "init": NAMED,
    }),
    st.dictionaries(st.sampled_from(["dropout", "hidden", "growth_rate", "code"]), VALUE, max_size=2),
)


@given(section=st.one_of(LAYERS_SECTION, ZOO_SECTION))
@SETTINGS
def test_valid_sections_round_trip_unchanged(section):
    """What the builder sees (model_dict) is exactly what was written."""
    config = ADAPTER.validate_python(section)
    assert isinstance(config, ZooModel if "zoo" in section else LayersModel)
    assert model_dict(config) == section
    assert model_dict(parse_model(section, file="exp.yml")) == section


@given(data=st.data())
@SETTINGS
def test_a_config_builds_the_same_network_as_its_dict(data):
    layers, expected, in_shape = data.draw(chains())
    raw = {"layers": layers}
    net = build_model(parse_model(raw), in_shape, None, device="meta")
    assert [i.shape for i in net.infos] == expected
    assert [i.type for i in net.infos] == [i.type for i in build_model(raw, in_shape, None, device="meta").infos]


def _zoo_sections() -> list[tuple[str, dict]]:
    return [(name, yaml.safe_load(zoo.zoo_file(name).read_text())) for name in zoo.names()]


@pytest.mark.parametrize(("name", "section"), _zoo_sections(), ids=zoo.names())
def test_every_zoo_file_is_a_valid_layers_model(name, section):
    config = parse_model(section, path=f"zoo/{name}.yml")
    assert isinstance(config, LayersModel) and model_dict(config) == section


def test_the_doc_examples_are_valid_configs():
    examples = [yaml.safe_load(b)["model"] for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
                if "model:" in b]
    assert examples
    for section in examples:
        assert model_dict(parse_model(section)) == section


# ----------------------------------------------------------------------------- the schema
def test_the_json_schema_describes_layers_and_zoo():
    schema = ADAPTER.json_schema()
    defs = schema["$defs"]
    assert {"LayersModel", "ZooModel", "LayerEntry", "BlockBody"} <= set(defs)
    layers = defs["LayersModel"]["properties"]
    assert set(MODEL_KEYS) <= set(layers) and layers["layers"]["description"]
    assert defs["LayersModel"]["required"] == ["layers"]
    zoo_model = defs["ZooModel"]
    assert zoo_model["required"] == ["zoo"] and zoo_model["properties"]["zoo"]["description"]
    assert set(ZOO_OVERRIDES) <= set(zoo_model["properties"])
    assert zoo_model["additionalProperties"] is True  # the zoo model's own arguments
    entry = defs["LayerEntry"]
    assert set(ENTRY_KEYS) == set(entry["properties"]) and "from" in entry["properties"]
    assert "additionalProperties" in entry  # the one layer-name key: its arguments
    assert set(defs["BlockBody"]["properties"]) == set(BLOCK_KEYS)


def test_the_keys_the_builder_accepts_are_the_schema_keys():
    assert ENTRY_KEYS == ("repeat", "name", "from", "init", "activation", "trainable", "share")
    assert MODEL_KEYS[:2] == ("layers", "input") and "zoo" not in MODEL_KEYS
    with pytest.raises(SpecError) as e:
        build_model({"layers": ["Flatten"], "outptu": "x"}, (3,), None)
    assert "did you mean 'output'" in str(e.value)
    assert LayerEntry.model_fields["from_"].alias == "from"


# ----------------------------------------------------------------------------- mistakes
@pytest.mark.parametrize(
    ("raw", "path", "phrase"),
    [
        ({"layers": [{"Linear": {}, "repeat": 1.5}]}, "model.layers[0].repeat", "integer"),
        ({"layers": [{"Linear": {}, "repeat": "3"}]}, "model.layers[0].repeat", "integer"),
        ({"layers": ["Flatten", {"Linear": {}, "Conv2d": {}}]}, "model.layers[1]", "exactly one layer"),
        ({"layer": []}, "model.layer", "did you mean 'layers'"),
        ({"layers": [{"Linear": [1, 2]}]}, "model.layers[0].Linear", "mapping"),
        ({"layers": [{"ReLU": {}, "activation": {"name": 3}}]}, "model.layers[0].activation.name", "string"),
        ({"layers": ["Flatten"], "width_multiplier": "wide"}, "model.width_multiplier", "integer"),
        ({"layers": [], "blocks": {"b": {"layers": [], "arg": [1]}}}, "model.blocks.b.arg", "unknown key"),
        ({"zoo": "resnet20", "in_channels": "one"}, "model.in_channels", "integer"),
        ({"layers": 5}, "model.layers", "list"),
        (None, "model.layers", "missing"),
    ],
)
def test_mistakes_are_spec_errors_at_the_yaml_path(raw, path, phrase):
    with pytest.raises(SpecError) as e:
        parse_model(raw, file="exp.yml")
    assert e.value.path == path, str(e.value)
    assert str(e.value).startswith(f"exp.yml: {path}") and phrase in str(e.value)


def test_config_and_builder_say_the_same_about_a_two_layer_entry():
    raw = {"layers": [{"Linear": {}, "Conv2d": {}}]}
    with pytest.raises(SpecError) as by_config:
        parse_model(raw)
    with pytest.raises(SpecError) as by_builder:
        build_model(raw, (4,), None)
    assert by_config.value.reason == by_builder.value.reason
    assert by_config.value.path == by_builder.value.path == "model.layers[0]"


def test_build_model_takes_a_config_and_builder_errors_keep_their_paths():
    config = parse_model({"layers": [{"Linear": {"out_features": 4}, "from": "input"},
                                     {"Linear": {"out_feature": 2}}]})
    with pytest.raises(SpecError) as e:
        build_model(config, (3,), None, file="exp.yml")
    assert e.value.path == "model.layers[1].Linear.out_feature" and "did you mean 'out_features'" in str(e.value)
    zoo_config = parse_model({"zoo": "resnet20", "num_classes": 5, "width": 0.5})
    assert build_model(zoo_config, None, None, device="meta").output_shape == (5,)
