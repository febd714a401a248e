"""The four model registries of deeppipe.registry: filled where components are written, torch.nn
harvested after deeppipe's own layers, one did-you-mean error for every unknown name."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from deeppipe.errors import SpecError
from deeppipe.models import (
    ACTIVATIONS,
    INITIALISERS,
    INITS,
    LAYERS,
    build_model,
    make_activation,
    zoo,
)
from deeppipe.models.layers.sequence import LSTM, Embedding
from deeppipe.registry import ZOO


def test_deeppipe_layers_win_over_the_torch_harvest():
    assert LAYERS.get("LSTM") is LSTM and LAYERS.get("lstm") is LSTM and LSTM is not nn.LSTM
    assert LAYERS.get("Embedding") is Embedding and LAYERS.get("embed") is Embedding
    assert LAYERS.get("Conv2d") is nn.Conv2d and LAYERS.get("TransformerEncoderLayer") is nn.TransformerEncoderLayer
    for not_a_layer in ("Sequential", "ModuleList", "CrossEntropyLoss", "LazyLinear", "RNNBase"):
        assert not_a_layer not in LAYERS


def test_layer_records_replace_class_attributes():
    assert LAYERS.entry("Add").multi_input and LAYERS.entry("concat").multi_input
    assert not LAYERS.entry("Linear").multi_input
    assert LAYERS.entry("Conv2d").width_args == ("out_channels", "out_features", "hidden_size")
    assert LAYERS.entry("Embedding").width_args == ()
    assert LAYERS.entry("Bottleneck").width_args == ("out_channels", "mid_channels")
    assert LAYERS.entry("ConvBNAct").spatial_op and LAYERS.entry("Sobel").spatial_op
    assert LAYERS.entry("EdgeDetect").spatial_op and not LAYERS.entry("Linear").spatial_op
    assert not hasattr(LAYERS.get("Add"), "multi_input")  # the record, not the class, says it


def test_a_spatial_record_marks_a_user_layer_output_as_a_map():
    from deeppipe.models import register_layer

    @register_layer("UserMapOp", spatial_op=True)
    class MapOp(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(x.shape[0], 1, 2, -1)  # (F,) -> (1, 2, F/2): rank 3 anyway

    @register_layer("UserPair", spatial_op=True)
    class Pair(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(x.shape[0], 2, -1)  # (F,) -> (2, F/2): a map because the record says so

    with pytest.raises(SpecError, match="Flatten"):
        build_model({"layers": [{"UserPair": {}}, {"Linear": {"out_features": 2}}]}, (8,), None)
    net = build_model({"layers": [{"UserMapOp": {}}, "Flatten", {"Linear": {"out_features": 2}}]}, (8,), None)
    assert net.output_shape == (2,)


def test_zoo_registry_has_one_entry_per_file():
    assert zoo.names() == ZOO.names() == sorted(p.stem for p in zoo.zoo_file("mlp").parent.glob("*.yml"))
    assert ZOO.get("ResNet18").path.name == "resnet18.yml"
    with pytest.raises(SpecError) as e:
        zoo.load("resnet-18", path="model.zoo", file="exp.yml")
    assert e.value.path == "model.zoo" and "unknown zoo model 'resnet-18'" in str(e.value)
    assert e.value.suggestion == "resnet18"


def test_activation_records_and_checked_arguments():
    assert ACTIVATIONS.entry("softmax").needs_dim and ACTIVATIONS.entry("maxout").needs_dim
    assert not ACTIVATIONS.entry("relu").needs_dim
    assert make_activation("softmax", feature_dim=2).dim == 2
    assert make_activation({"name": "softmax", "dim": 1}, feature_dim=2).dim == 1
    with pytest.raises(SpecError) as e:
        build_model({"layers": [{"Activation": {"name": "leaky_relu", "negative_slop": 0.1}}]}, (4,), None)
    assert e.value.path == "model.layers[0].Activation.negative_slop"
    assert "did you mean 'negative_slope'" in str(e.value)


def test_initialiser_registry_and_its_old_name():
    assert INITS is INITIALISERS
    assert INITIALISERS.canonical("he") == "kaiming_normal" and INITIALISERS.canonical("torch") == "default"
    with pytest.raises(SpecError) as e:
        build_model({"init": {"name": "uniform", "low": 0}, "layers": ["Flatten"]}, (3,), None)
    assert e.value.path == "model.init.low" and "one of a, b" in str(e.value)
