"""Chains, graphs, blocks and the spec syntax: what build_model returns and how it names things."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from deeppipe.errors import SpecError
from deeppipe.models import LayerGraph, build_model, conv_out

SMALL_CNN = {
    "input": [1, 28, 28],
    "layers": [
        {"Conv2d": {"out_channels": 32, "kernel_size": 3, "padding": 1}},
        {"ReLU": {}},
        {"MaxPool2d": {"kernel_size": 2}},
        {"Conv2d": {"out_channels": 64, "kernel_size": 3, "padding": 1}},
        {"ReLU": {}},
        {"MaxPool2d": {"kernel_size": 2}},
        "Flatten",
        {"Linear": {"out_features": 10}},
    ],
}


def params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_small_cnn_parameter_counts_per_layer():
    net = build_model(SMALL_CNN, (1, 28, 28), 10)
    assert isinstance(net, LayerGraph)
    assert params(net.get_submodule("0")) == 320
    assert params(net.get_submodule("3")) == 18_496
    assert params(net.get_submodule("7")) == 31_370
    assert params(net) == 320 + 18_496 + 31_370
    assert net(torch.rand(5, 1, 28, 28)).shape == (5, 10)


def test_shapes_follow_the_convolution_formula():
    spec = {
        "layers": [
            {"Conv2d": {"out_channels": 4, "kernel_size": 5, "stride": 2, "padding": 1}},
            {"MaxPool2d": {"kernel_size": 3, "stride": 2}},
            {"Conv2d": {"out_channels": 3, "kernel_size": 3, "dilation": 2}},
        ]
    }
    net = build_model(spec, (3, 41, 37), None)
    h1, w1 = conv_out(41, 5, 2, 1), conv_out(37, 5, 2, 1)
    h2, w2 = conv_out(h1, 3, 2), conv_out(w1, 3, 2)
    h3, w3 = conv_out(h2, 3, 1, 0, 2), conv_out(w2, 3, 1, 0, 2)
    assert [i.shape for i in net.infos] == [(4, h1, w1), (4, h2, w2), (3, h3, w3)]
    assert net(torch.rand(2, 3, 41, 37)).shape == (2, 3, h3, w3)


def test_input_sizes_are_inferred_for_any_torch_layer():
    spec = {
        "layers": [
            {"Conv1d": {"out_channels": 6, "kernel_size": 3}},
            {"BatchNorm1d": {}},
            {"GroupNorm": {"num_groups": 2}},
            {"Permute": {"dims": [1, 0]}},
            {"LayerNorm": {}},
            {"GRU": {"hidden_size": 5, "output": "all"}},
            {"Linear": {"out_features": 7}},
            {"GlobalAvgPool": {}},
            {"Linear": {"out_features": "auto"}},
        ]
    }
    net = build_model(spec, (2, 20), 3)
    assert net.get_submodule("0").in_channels == 2
    assert net.get_submodule("1").num_features == 6
    assert net.get_submodule("2").num_channels == 6
    assert list(net.get_submodule("4").normalized_shape) == [6]
    assert net.get_submodule("5").input_size == 6
    assert net.get_submodule("6").in_features == 5
    assert [i.shape for i in net.infos][-4:] == [(18, 5), (18, 7), (7,), (3,)]
    assert net(torch.rand(4, 2, 20)).shape == (4, 3)


def test_auto_head_follows_the_data():
    spec = {
        "layers": [
            "Flatten",
            {"Linear": {"out_features": 16}},
            {"ReLU": {}},
            {"Linear": {"out_features": "auto"}},
        ]
    }
    assert build_model(spec, (30,), 1)(torch.rand(2, 30)).shape == (2, 1)
    assert build_model(spec, (30,), 7)(torch.rand(2, 30)).shape == (2, 7)
    with pytest.raises(SpecError, match="auto"):
        build_model(spec, (30,), None)


def test_spec_input_is_used_without_data_and_checked_with_it():
    assert build_model(SMALL_CNN, None, None).input_shape == (1, 28, 28)
    with pytest.raises(SpecError) as e:
        build_model(SMALL_CNN, (3, 28, 28), 10)
    assert e.value.path == "model.input" and "(3, 28, 28)" in str(e.value)
    with pytest.raises(SpecError, match="input shape is unknown"):
        build_model({"layers": ["Flatten"]}, None, None)


def test_wrong_head_size_names_the_last_layer():
    with pytest.raises(SpecError) as e:
        build_model(SMALL_CNN, (1, 28, 28), 3)
    assert e.value.path == "model.layers[7].Linear"
    assert "(10,)" in str(e.value) and "3" in str(e.value)


def test_file_and_path_prefix_appear_in_errors():
    with pytest.raises(SpecError) as e:
        build_model({"layers": [{"Linearr": {}}]}, (4,), None, file="pipelines/x.yml", path="model")
    assert str(e.value).startswith("pipelines/x.yml: model.layers[0].Linearr")


def test_string_entries_none_args_and_case_insensitive_names():
    spec = {"layers": ["flatten", {"linear": {"out_features": 3}}, {"RELU": None}]}
    net = build_model(spec, (2, 2), None)
    assert isinstance(net.get_submodule("1"), nn.Linear)
    assert net(torch.rand(1, 2, 2)).shape == (1, 3)


# ----------------------------------------------------------------------------- graphs
def test_residual_graph_with_names_and_from():
    spec = {
        "layers": [
            {"Conv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1}, "name": "stem"},
            {"Conv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1}},
            {"ReLU": {}},
            {"Conv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1}, "name": "branch"},
            {"Add": {}, "from": ["stem", "branch"], "name": "sum"},
            {"ReLU": {}},
            {"GlobalAvgPool": {}},
            {"Linear": {"out_features": 4}},
        ]
    }
    net = build_model(spec, (3, 16, 16), 4)
    assert net.node_inputs[4] == (0, 3)
    assert net.infos[4].inputs == ("stem", "branch")
    x = torch.rand(2, 3, 16, 16)
    stem = net.stem(x)
    branch = net.branch(net.get_submodule("2")(net.get_submodule("1")(stem)))
    expected = net.get_submodule("7")(net.get_submodule("6")(torch.relu(stem + branch)))
    torch.testing.assert_close(net(x), expected)
    assert set(net.outputs(x, ["stem", "sum"])) == {"stem", "sum"}


def test_inception_style_branches_concat():
    spec = {
        "layers": [
            {"Conv2d": {"out_channels": 4, "kernel_size": 1}, "from": "input", "name": "b1"},
            {
                "Conv2d": {"out_channels": 6, "kernel_size": 3, "padding": 1},
                "from": "input",
                "name": "b3",
            },
            {"MaxPool2d": {"kernel_size": 3, "stride": 1, "padding": 1}, "from": "input"},
            {"Conv2d": {"out_channels": 2, "kernel_size": 1}, "name": "bp"},
            {"Concat": {}, "from": ["b1", "b3", "bp"]},
        ]
    }
    net = build_model(spec, (3, 9, 9), None)
    assert net.output_shape == (12, 9, 9)
    assert net(torch.rand(2, 3, 9, 9)).shape == (2, 12, 9, 9)


def test_from_accepts_negative_offsets_and_input():
    spec = {
        "layers": [
            {"Linear": {"out_features": 5}},
            {"Linear": {"out_features": 5}, "from": "input"},
            {"Add": {}, "from": [-2, -1]},
        ]
    }
    net = build_model(spec, (5,), None)
    assert net.node_inputs == [(-1,), (-1,), (0, 1)]


def test_concat_along_the_last_axis_of_sequences():
    spec = {
        "layers": [
            {"LSTM": {"hidden_size": 3, "output": "all"}, "name": "a"},
            {"GRU": {"hidden_size": 2, "output": "all"}, "from": "input", "name": "b"},
            {"Concat": {"dim": -1}, "from": ["a", "b"]},
        ]
    }
    net = build_model(spec, (7, 4), None)
    assert net.output_shape == (7, 5)


def test_output_key_selects_a_named_node():
    spec = {
        "output": "code",
        "layers": [
            {"Linear": {"out_features": 3}, "name": "code"},
            {"Linear": {"out_features": 2}},
        ],
    }
    with pytest.raises(SpecError, match="never used"):
        build_model(spec, (4,), None)
    spec["layers"] = spec["layers"][:1]
    assert build_model(spec, (4,), None).output_shape == (3,)


# ----------------------------------------------------------------------------- blocks and repeat
def test_blocks_with_args_defaults_and_repeat():
    spec = {
        "input": [1, 28, 28],
        "blocks": {
            "conv_bn_relu": {
                "args": ["out"],
                "layers": [
                    {"Conv2d": {"out_channels": "$out", "kernel_size": 3, "padding": 1}},
                    {"BatchNorm2d": {}},
                    {"ReLU": {}},
                ],
            },
            "down": {"args": {"k": 2}, "layers": [{"MaxPool2d": {"kernel_size": "${k}"}}]},
        },
        "layers": [
            {"conv_bn_relu": {"out": 32}},
            {"down": {}},
            {"conv_bn_relu": {"out": 64}, "repeat": 2, "name": "stage"},
            {"down": {"k": 7}},
            {"Flatten": {}},
            {"Linear": {"out_features": 10}},
        ],
    }
    net = build_model(spec, (1, 28, 28), 10)
    assert net.output_shape == (10,)
    assert [i.shape for i in net.infos] == [
        (32, 28, 28),
        (32, 14, 14),
        (64, 14, 14),
        (64, 2, 2),
        (256,),
        (10,),
    ]
    keys = list(net.state_dict())
    assert "0.0.weight" in keys and "stage.1.0.weight" in keys and "stage.0.1.running_mean" in keys
    assert net.infos[0].type == "conv_bn_relu" and net.infos[2].type == "conv_bn_relu x2"


def test_nested_blocks_and_graphs_inside_blocks():
    spec = {
        "blocks": {
            "unit": {
                "args": ["c"],
                "layers": [{"Conv2d": {"out_channels": "$c", "kernel_size": 3, "padding": 1}}],
            },
            "res": {
                "args": ["c"],
                "layers": [
                    {"unit": {"c": "$c"}},
                    {"ReLU": {}},
                    {"unit": {"c": "$c"}},
                    {"Add": {}, "from": ["input", -1]},
                ],
            },
        },
        "layers": [{"unit": {"c": 6}}, {"res": {"c": 6}, "repeat": 3}],
    }
    net = build_model(spec, (3, 8, 8), None)
    assert net.output_shape == (6, 8, 8)
    assert net(torch.rand(1, 3, 8, 8)).shape == (1, 6, 8, 8)


def test_repeat_zero_is_identity_and_a_block_cannot_use_itself():
    net = build_model(
        {"layers": [{"Linear": {"out_features": 4}}, {"ReLU": {}, "repeat": 0}]}, (4,), None
    )
    assert isinstance(net.get_submodule("1"), nn.Identity)
    spec = {"blocks": {"loop": {"layers": [{"loop": {}}]}}, "layers": [{"loop": {}}]}
    with pytest.raises(SpecError, match="uses itself"):
        build_model(spec, (4,), None)


def test_model_args_are_placeholders_never_evaluated():
    spec = {
        "args": {"width": 5, "act": "tanh", "expr": "1+1"},
        "layers": [
            {"Linear": {"out_features": "$width"}, "name": "fc_$width"},
            {"Activation": {"name": "$act"}},
            {"Linear": {"out_features": 2}},
        ],
    }
    net = build_model(spec, (3,), 2)
    assert net.fc_5.out_features == 5
    assert isinstance(net.get_submodule("1"), nn.Tanh)
    spec["layers"][0]["Linear"]["out_features"] = "$expr"
    with pytest.raises(SpecError):  # "1+1" stays a string: never evaluated
        build_model(spec, (3,), 2)


def test_block_placeholders_may_name_a_layer_type():
    spec = {
        "blocks": {
            "norm_act": {"args": {"norm": "BatchNorm1d"}, "layers": [{"$norm": {}}, {"ReLU": {}}]}
        },
        "layers": [{"Linear": {"out_features": 4}}, {"norm_act": {"norm": "LayerNorm"}}],
    }
    net = build_model(spec, (3,), None)
    assert isinstance(net.get_submodule("1").get_submodule("0"), nn.LayerNorm)


def test_width_and_depth_multipliers_leave_the_head_alone():
    spec = {
        "width_multiplier": 0.5,
        "depth_multiplier": 2,
        "layers": [
            {"Conv2d": {"out_channels": 16, "kernel_size": 3}},
            {"ConvBNAct": {"out_channels": 8}, "repeat": 2},
            {"GlobalAvgPool": {}},
            {"Linear": {"out_features": 10}},
        ],
    }
    net = build_model(spec, (3, 12, 12), 10)
    assert net.get_submodule("0").out_channels == 8
    assert len(net.get_submodule("1")) == 4 and net.get_submodule("1")[0].conv.out_channels == 4
    assert net.get_submodule("3").out_features == 10


def test_sibling_activation_trainable_and_init():
    spec = {
        "layers": [
            {
                "Linear": {"out_features": 6},
                "activation": "tanh",
                "init": {"name": "constant", "val": 0.5},
            },
            {"Linear": {"out_features": 2}, "trainable": False},
        ]
    }
    net = build_model(spec, (3,), 2)
    first = net.get_submodule("0")
    assert isinstance(first[1], nn.Tanh)
    assert torch.all(first[0].weight == 0.5) and torch.all(first[0].bias == 0)
    assert not any(p.requires_grad for p in net.get_submodule("1").parameters())


# ----------------------------------------------------------------------------- state dicts
def test_state_dict_round_trips_through_safetensors(tmp_path):
    spec = {
        "layers": [
            {"ConvBNAct": {"out_channels": 8}, "name": "stem"},
            {"BasicBlock": {"out_channels": 16, "stride": 2}, "repeat": 2},
            {"Sobel": {}},
            {"GlobalAvgPool": {}},
            {"Linear": {"out_features": "auto"}},
        ]
    }
    torch.manual_seed(1)
    a = build_model(spec, (3, 16, 16), 5)
    save_file({k: v.contiguous() for k, v in a.state_dict().items()}, tmp_path / "m.safetensors")
    torch.manual_seed(2)
    b = build_model(spec, (3, 16, 16), 5)
    assert list(a.state_dict()) == list(b.state_dict())
    b.load_state_dict(load_file(tmp_path / "m.safetensors"))
    a.eval(), b.eval()
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(a(x), b(x))


def test_same_seed_same_weights():
    torch.manual_seed(0)
    a = build_model({"zoo": "resnet20"}, (3, 32, 32), 10).state_dict()
    torch.manual_seed(0)
    b = build_model({"zoo": "resnet20"}, (3, 32, 32), 10).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_meta_build_allocates_nothing_and_device_argument():
    net = build_model(SMALL_CNN, None, None, device="meta")
    assert all(p.is_meta for p in net.parameters())
    assert params(net) == 50_186
    net = build_model(SMALL_CNN, None, None, device="cpu")
    assert all(p.device.type == "cpu" for p in net.parameters())


def test_every_tensor_is_initialised_after_materialising(monkeypatch):
    """to_empty leaves garbage: poison it with NaN and check every tensor was refilled."""
    real_to_empty = nn.Module.to_empty

    def poisoned(self, *, device, recurse=True):
        out = real_to_empty(self, device=device, recurse=recurse)
        with torch.no_grad():
            for t in [*self.parameters(), *self.buffers()]:
                if t.is_floating_point():
                    t.fill_(float("nan"))
                else:
                    t.fill_(-12345)
        return out

    monkeypatch.setattr(nn.Module, "to_empty", poisoned)
    spec = {
        "layers": [
            {"Kirsch": {}},
            {"ConvBNAct": {"out_channels": 8, "norm": "group"}},
            {"DenseBlock": {"num_layers": 2, "growth_rate": 4}},
            {"Transition": {}},
            {
                "Inception": {
                    "b1": 2,
                    "b3_reduce": 2,
                    "b3": 2,
                    "b5_reduce": 2,
                    "b5": 2,
                    "pool_proj": 2,
                }
            },
            {"InstanceNorm2d": {"affine": True, "track_running_stats": True}},
            {"PReLU": {}},
            {"Flatten": {}},
            {"Highway": {}},
            {"Maxout": {"out_features": 4}},
            {"DropConnect": {"out_features": 4}},
            {"Reshape": {"shape": [4, 1]}},
            {"LSTM": {"hidden_size": 3, "bidirectional": True}},
            {"LayerNorm": {}},
            {"Linear": {"out_features": 2}},
        ]
    }
    net = build_model(spec, (1, 8, 8), 2)
    for name, t in [*net.named_parameters(), *net.named_buffers()]:
        if t.is_floating_point():
            assert torch.isfinite(t).all(), name
        else:
            assert (t != -12345).all(), name
    for zoo_name in ("googlenet", "text_cnn", "bilstm_classifier"):
        net = build_model({"zoo": zoo_name}, None, None)
        for name, t in [*net.named_parameters(), *net.named_buffers()]:
            assert not t.is_floating_point() or torch.isfinite(t).all(), (zoo_name, name)
