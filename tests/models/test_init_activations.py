"""Activations by name and weight initialisation matched to them."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from deeppipe.errors import SpecError
from deeppipe.models import ACTIVATIONS, INITS, build_model

REQUIRED_ACTIVATIONS = [
    "identity",
    "sigmoid",
    "tanh",
    "hardtanh",
    "relu",
    "leaky_relu",
    "prelu",
    "elu",
    "silu",
    "swish",
    "mish",
    "gelu",
    "softmax",
    "maxout",
]


@pytest.mark.parametrize("name", REQUIRED_ACTIVATIONS)
def test_every_named_activation_builds_and_runs(name):
    net = build_model(
        {"layers": [{"Linear": {"out_features": 8}}, {"Activation": {"name": name}}]}, (4,), None
    )
    y = net(torch.randn(3, 4))
    assert y.shape == ((3, 4) if name == "maxout" else (3, 8))
    assert name in ACTIVATIONS


def test_activation_values():
    x = torch.linspace(-3, 3, 13).reshape(1, 13)

    def act(spec):
        return build_model({"layers": [{"Activation": spec}]}, (13,), None)(x)

    torch.testing.assert_close(
        act({"name": "leaky_relu", "negative_slope": 0.2}), torch.where(x > 0, x, 0.2 * x)
    )
    torch.testing.assert_close(act({"name": "tanh"}), 2 * torch.sigmoid(2 * x) - 1)
    torch.testing.assert_close(act({"name": "swish"}), x * torch.sigmoid(x))
    torch.testing.assert_close(act({"name": "softmax"}).sum(dim=1), torch.ones(1))
    torch.testing.assert_close(act({"name": "identity"}), x)


def test_model_default_activation_reaches_blocks_and_activation_layers():
    spec = {
        "activation": {"name": "leaky_relu", "negative_slope": 0.3},
        "layers": [
            {"ConvBNAct": {"out_channels": 4}},
            {"BasicBlock": {"out_channels": 4}},
            {"Activation": {}},
        ],
    }
    net = build_model(spec, (3, 8, 8), None)
    acts = [m for m in net.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 4 and all(a.negative_slope == 0.3 for a in acts)


@pytest.mark.parametrize("name", ["step", "heaviside", "sign", "binary_step"])
def test_step_activations_are_refused(name):
    with pytest.raises(SpecError, match="zero gradient"):
        build_model({"layers": [{"Activation": {"name": name}}]}, (4,), None)


def _std(t: torch.Tensor) -> float:
    return t.detach().float().std().item()


def test_auto_init_follows_the_activation_after_the_layer():
    torch.manual_seed(0)
    spec = {
        "layers": [
            {"Linear": {"out_features": 400}},
            {"BatchNorm1d": {}},
            {"ReLU": {}},
            {"Linear": {"out_features": 300}},
            {"Tanh": {}},
            {
                "Linear": {"out_features": 200},
                "activation": {"name": "leaky_relu", "negative_slope": 0.2},
            },
            {"Linear": {"out_features": 10}},
        ]
    }
    net = build_model(spec, (500,), 10)
    he = net.get_submodule("0").weight
    assert _std(he) == pytest.approx(
        math.sqrt(2 / 500), rel=0.05
    )  # He: 2/fan_in, through the BatchNorm
    glorot = net.get_submodule("3").weight
    assert _std(glorot) == pytest.approx(
        math.sqrt(2 / (400 + 300)), rel=0.05
    )  # Glorot: 2/(fan_in+fan_out)
    leaky = net.get_submodule("5")[0].weight
    assert _std(leaky) == pytest.approx(math.sqrt(2 / (1 + 0.2**2) / 300), rel=0.05)
    head = net.get_submodule("6").weight
    assert _std(head) == pytest.approx(math.sqrt(2 / (200 + 10)), rel=0.1)  # linear head: Glorot
    for m in net.modules():
        if isinstance(m, nn.Linear):
            assert torch.all(m.bias == 0)


def test_blocks_tag_their_convolutions():
    torch.manual_seed(0)
    net = build_model(
        {
            "layers": [
                {"ConvBNAct": {"out_channels": 64, "activation": "tanh"}},
                {"ConvBNAct": {"out_channels": 64}},
            ]
        },
        (64, 8, 8),
        None,
    )
    tanh_conv, relu_conv = net.get_submodule("0").conv.weight, net.get_submodule("1").conv.weight
    fan_in = 64 * 9
    assert _std(relu_conv) == pytest.approx(math.sqrt(2 / fan_in), rel=0.05)
    assert _std(tanh_conv) == pytest.approx(math.sqrt(2 / (fan_in + 64 * 9)), rel=0.05)


@pytest.mark.parametrize(
    ("init", "check"),
    [
        ("xavier_normal", lambda w: _std(w) == pytest.approx(math.sqrt(2 / (300 + 200)), rel=0.05)),
        (
            "glorot_uniform",
            lambda w: _std(w) == pytest.approx(math.sqrt(2 / (300 + 200)), rel=0.05),
        ),
        ("he_normal", lambda w: _std(w) == pytest.approx(math.sqrt(2 / 300), rel=0.05)),
        ("kaiming_uniform", lambda w: _std(w) == pytest.approx(math.sqrt(2 / 300), rel=0.05)),
        ("lecun_normal", lambda w: _std(w) == pytest.approx(math.sqrt(1 / 300), rel=0.05)),
        ("lecun_uniform", lambda w: _std(w) == pytest.approx(math.sqrt(1 / 300), rel=0.05)),
        ({"name": "normal", "std": 0.02}, lambda w: _std(w) == pytest.approx(0.02, rel=0.05)),
        ({"name": "uniform", "a": -0.1, "b": 0.1}, lambda w: float(w.abs().max()) <= 0.1),
        ({"name": "constant", "val": 0.3}, lambda w: bool(torch.all(w == 0.3))),
        ("zeros", lambda w: bool(torch.all(w == 0))),
        ("orthogonal", lambda w: torch.allclose(w @ w.T, torch.eye(200), atol=1e-4)),
    ],
)
def test_global_initialisation_by_name(init, check):
    torch.manual_seed(0)
    net = build_model(
        {"init": init, "layers": [{"Linear": {"out_features": 200}}, {"ReLU": {}}]}, (300,), None
    )
    w = net.get_submodule("0").weight.detach()
    assert check(w)
    assert torch.all(net.get_submodule("0").bias == 0)


def test_default_init_keeps_pytorch_and_per_layer_init_wins():
    torch.manual_seed(0)
    net = build_model(
        {
            "init": "default",
            "layers": [
                {"Linear": {"out_features": 200}},
                {"Linear": {"out_features": 10}, "init": "zeros"},
            ],
        },
        (300,),
        None,
    )
    w = net.get_submodule("0").weight.detach()
    assert float(w.abs().max()) <= 1 / math.sqrt(300) + 1e-6  # torch's kaiming_uniform(a=sqrt(5))
    assert torch.any(net.get_submodule("0").bias != 0)  # torch's own bias init, kept
    assert torch.all(net.get_submodule("1").weight == 0)


def test_recurrent_weights_orthogonal_biases_zero():
    net = build_model({"layers": [{"LSTM": {"hidden_size": 16}}]}, (5, 8), None)
    lstm = net.get_submodule("0")
    for gate in lstm.weight_hh_l0.detach().chunk(4):
        torch.testing.assert_close(gate @ gate.T, torch.eye(16), atol=1e-4, rtol=0)
    assert torch.all(lstm.bias_ih_l0 == 0) and torch.all(lstm.bias_hh_l0 == 0)


def test_init_registry_names():
    for name in (
        "xavier_uniform",
        "glorot_normal",
        "kaiming_normal",
        "he_uniform",
        "lecun_normal",
        "orthogonal",
        "normal",
        "uniform",
        "constant",
        "auto",
        "default",
    ):
        assert name in INITS
