"""LayerMeta: the one typed record deeppipe keeps on a built module."""

from __future__ import annotations

import torch
import torch.nn as nn

from deeppipe.models import LayerMeta, build_model, meta_of, register_layer, summarize
from deeppipe.models.meta import existing_meta, layer_type


def test_one_record_per_module_and_no_loose_attributes():
    net = build_model({"zoo": "resnet20"}, None, None)
    for m in net.modules():
        assert not [k for k in vars(m) if k.startswith("_dp_")]
    conv = net.stem.conv
    assert isinstance(existing_meta(conv), LayerMeta)
    assert existing_meta(conv).act == ("relu", {})
    assert existing_meta(nn.Linear(2, 2)) is None  # created on first write only
    m = nn.Linear(2, 2)
    assert meta_of(m) is meta_of(m)


def test_types_activations_init_and_frozen_are_recorded():
    spec = {
        "layers": [
            {"Linear": {"out_features": 4}, "activation": "tanh", "init": "zeros"},
            {"Linear": {"out_features": 4}, "repeat": 2, "trainable": False},
            {"Highway": {}},
            {"Linear": {"out_features": 2}},
        ]
    }
    net = build_model(spec, (3,), 2)
    first = net.get_submodule("0")
    assert layer_type(first) == "Linear+tanh" and meta_of(first[0]).act == ("tanh", {})
    assert meta_of(first[0]).init == ("zeros", {}) and torch.all(first[0].weight == 0)
    assert meta_of(first[1]).activation == ("tanh", {})
    assert layer_type(net.get_submodule("1")) == "Linear x2" and meta_of(net.get_submodule("1")).frozen
    gate = net.get_submodule("2").gate
    assert meta_of(gate).bias == -2.0 and meta_of(gate).act == ("sigmoid", {})
    assert [r.type for r in summarize(net, (3,)).rows] == ["Linear+tanh", "Linear x2", "Highway", "Linear"]
    assert [i.type for i in net.infos] == ["Linear+tanh", "Linear x2", "Highway", "Linear"]


@register_layer("UserPlainTensor")
class PlainTensor(nn.Module):
    """A tensor in a plain attribute: cannot be refilled after to_empty, so it is rebuilt."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.offset = torch.ones(in_features)
        self.fc = nn.Linear(in_features, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + self.offset


def test_a_rebuilt_layer_keeps_its_record_but_not_the_recipe():
    net = build_model({"layers": [{"UserPlainTensor": {}, "trainable": False}]}, (3,), None)
    layer = net.get_submodule("0")
    assert layer.offset.device.type == "cpu"
    meta = existing_meta(layer)
    assert meta is not None and meta.frozen and meta.factory is None
    assert not any(p.requires_grad for p in layer.parameters())
    meta_net = build_model({"layers": [{"UserPlainTensor": {}}]}, (3,), None, device="meta")
    assert callable(existing_meta(meta_net.get_submodule("0")).factory)  # how to build it for real
