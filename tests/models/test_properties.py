"""Property-based tests of shape inference (hypothesis).

- Random valid chains and graphs build; the shapes the builder predicts equal the closed-form
  ones (floor((n + 2p - d(k-1) - 1)/s) + 1) and the shapes a real forward pass produces.
- Random chains with one injected mistake fail with a SpecError located at that entry.
- Random nonsense entries either build or fail with a SpecError: never a raw torch error.
"""

from __future__ import annotations

import math
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deeppipe.errors import SpecError
from deeppipe.models import build_model, conv_out

# DEEPPIPE_HYPOTHESIS_EXAMPLES=2000 for a long run; the default keeps `make test` fast
EXAMPLES = int(os.environ.get("DEEPPIPE_HYPOTHESIS_EXAMPLES", "60"))
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@given(data=st.data())
@SETTINGS
def test_random_valid_chains_predict_real_shapes(data):
    layers, expected, in_shape = data.draw(_chains())
    net = build_model({"layers": layers}, in_shape, None)
    assert [i.shape for i in net.infos] == expected
    x = torch.rand(2, *in_shape)
    net.eval()
    with torch.no_grad():
        outs = net.outputs(x, net.node_names)
        assert tuple(net(x).shape) == (2, *expected[-1])
    for name, info in zip(net.node_names, net.infos):
        assert tuple(outs[name].shape[1:]) == info.shape, name


@st.composite
def _chains(draw):
    """Valid chains with their input: the strategy above, but starting from a drawn input."""
    c, h, w = draw(st.integers(1, 4)), draw(st.integers(4, 24)), draw(st.integers(4, 24))
    in_shape = (c, h, w)
    shape = in_shape
    layers: list = []
    expected: list[tuple[int, ...]] = []

    def add(entry, out):
        nonlocal shape
        layers.append(entry)
        expected.append(out)
        shape = out

    for _ in range(draw(st.integers(1, 6))):
        c, h, w = shape
        kind = draw(st.sampled_from(
            ["conv", "maxpool", "avgpool", "sumpool", "bn", "act", "dropout", "convbnact", "sep", "basic", "residual",
             "concat", "edges"]
        ))  # fmt: skip
        if kind == "conv":
            out, k = draw(st.integers(1, 8)), draw(st.integers(1, 5))
            s, d = draw(st.integers(1, 3)), draw(st.integers(1, 2))
            p = draw(st.integers(0, k // 2))
            oh, ow = conv_out(h, k, s, p, d), conv_out(w, k, s, p, d)
            if oh >= 1 and ow >= 1:
                add(
                    {
                        "Conv2d": {
                            "out_channels": out,
                            "kernel_size": k,
                            "stride": s,
                            "padding": p,
                            "dilation": d,
                        }
                    },
                    (out, oh, ow),
                )
        elif kind in ("maxpool", "avgpool", "sumpool"):
            k, s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
            if k <= h and k <= w:
                name = {"maxpool": "MaxPool2d", "avgpool": "AvgPool2d", "sumpool": "SumPool2d"}[
                    kind
                ]
                add(
                    {name: {"kernel_size": k, "stride": s}},
                    (c, conv_out(h, k, s), conv_out(w, k, s)),
                )
        elif kind == "bn":
            add({"BatchNorm2d": {}}, shape)
        elif kind == "act":
            add(
                {
                    "Activation": {
                        "name": draw(
                            st.sampled_from(["relu", "tanh", "gelu", "leaky_relu", "silu"])
                        )
                    }
                },
                shape,
            )
        elif kind == "dropout":
            add({"Dropout": {"p": 0.1}}, shape)
        elif kind == "convbnact":
            out, k, s = (
                draw(st.integers(1, 8)),
                draw(st.sampled_from([1, 3, 5])),
                draw(st.integers(1, 2)),
            )
            add(
                {"ConvBNAct": {"out_channels": out, "kernel_size": k, "stride": s}},
                (out, conv_out(h, k, s, k // 2), conv_out(w, k, s, k // 2)),
            )
        elif kind == "sep":
            out = draw(st.integers(1, 8))
            add({"SeparableConv2d": {"out_channels": out}}, (out, h, w))
        elif kind == "basic":
            out, s = draw(st.integers(1, 8)), draw(st.integers(1, 2))
            add(
                {"BasicBlock": {"out_channels": out, "stride": s}},
                (out, conv_out(h, 3, s, 1), conv_out(w, 3, s, 1)),
            )
        elif kind == "residual":
            add({"Conv2d": {"out_channels": c, "kernel_size": 3, "padding": 1}}, shape)
            add({"Add": {}, "from": [-2, -1]}, shape)
        elif kind == "concat":
            a, b = draw(st.integers(1, 4)), draw(st.integers(1, 4))
            add({"Conv2d": {"out_channels": a, "kernel_size": 1}}, (a, h, w))
            add(
                {"Conv2d": {"out_channels": b, "kernel_size": 3, "padding": 1}, "from": -2},
                (b, h, w),
            )
            add({"Concat": {}, "from": [-2, -1]}, (a + b, h, w))
        elif kind == "edges":
            add({"Sobel": {}}, (2 * c, h, w))
    if draw(st.booleans()):
        if draw(st.booleans()):
            add({"GlobalAvgPool": {}}, (shape[0],))
        else:
            add("Flatten", (math.prod(shape),))
        for _ in range(draw(st.integers(0, 2))):
            out = draw(st.integers(1, 12))
            add({"Linear": {"out_features": out}}, (out,))
            if draw(st.booleans()):
                add({"ReLU": {}}, shape)
    if not layers:
        add({"Identity": {}}, in_shape)
    return layers, expected, in_shape


MISTAKES = [
    "linear_on_map",
    "pool_too_big",
    "unknown_layer",
    "unknown_arg",
    "bad_from",
    "conv_on_flat",
    "concat_mismatch",
    "add_mismatch",
    "step",
]


@given(data=st.data(), mistake=st.sampled_from(MISTAKES))
@SETTINGS
def test_random_invalid_chains_fail_with_a_located_spec_error(data, mistake):
    layers, expected, in_shape = data.draw(_chains())
    maps = [
        i for i, s in enumerate([in_shape, *expected]) if len(s) == 3
    ]  # positions whose input is a map
    flats = [i for i, s in enumerate([in_shape, *expected]) if len(s) == 1]
    pos = data.draw(
        st.sampled_from(maps if mistake not in ("conv_on_flat",) or not flats else flats)
    )
    shape_in = ([in_shape, *expected])[pos]
    if mistake == "conv_on_flat" and not flats:
        layers = [*layers, "Flatten"]
        pos, shape_in = len(layers), (math.prod(expected[-1]),)
        mistake_entry = {"Conv2d": {"out_channels": 2, "kernel_size": 1}}
    elif mistake == "conv_on_flat":
        mistake_entry = {"Conv2d": {"out_channels": 2, "kernel_size": 1}}
    elif mistake == "linear_on_map":
        mistake_entry = {"Linear": {"out_features": 3}}
    elif mistake == "pool_too_big":
        mistake_entry = {
            "MaxPool2d": {"kernel_size": max(shape_in[1:]) + data.draw(st.integers(1, 3))}
        }
    elif mistake == "unknown_layer":
        mistake_entry = {
            data.draw(st.sampled_from(["Conv2dd", "Linaer", "MaxPool", "Relu6x", "BatchNorm"])): {}
        }
    elif mistake == "unknown_arg":
        mistake_entry = {"Conv2d": {"out_channels": 2, "kernel_size": 1, "kernal_size": 3}}
    elif mistake == "bad_from":
        mistake_entry = {"ReLU": {}, "from": "nowhere"}
    elif mistake == "concat_mismatch":
        if min(shape_in[1:]) < 2:
            return
        layers = [*layers[:pos], {"MaxPool2d": {"kernel_size": 2}, "from": -1}]
        pos = len(layers)
        mistake_entry = {"Concat": {}, "from": [-2, -1]}
    elif mistake == "add_mismatch":
        layers = [*layers[:pos], {"Conv2d": {"out_channels": shape_in[0] + 1, "kernel_size": 1}}]
        pos = len(layers)
        mistake_entry = {"Add": {}, "from": [-2, -1]}
    else:
        mistake_entry = {"Activation": {"name": "step"}}
    spec = {"layers": [*layers[:pos], mistake_entry, *layers[pos:]]}
    with pytest.raises(SpecError) as e:
        build_model(spec, in_shape, None)
    assert e.value.path.startswith(f"model.layers[{pos}]"), (e.value.path, str(e.value))


# ----------------------------------------------------------------------------- fuzzing
LAYER_NAMES = [
    "Conv2d",
    "Conv1d",
    "Linear",
    "MaxPool2d",
    "AvgPool1d",
    "BatchNorm2d",
    "BatchNorm1d",
    "Flatten",
    "LSTM",
    "GRU",
    "Embedding",
    "Add",
    "Concat",
    "Reshape",
    "Permute",
    "ConvBNAct",
    "BasicBlock",
    "Bottleneck",
    "Inception",
    "DenseBlock",
    "Transition",
    "Sobel",
    "Highway",
    "Maxout",
    "DropConnect",
    "Activation",
    "Dropout",
    "GlobalAvgPool",
    "Unflatten",
    "Upsample",
    "ConvTranspose2d",
    "LayerNorm",
    "GroupNorm",
    "SeparableConv2d",
    "SumPool2d",
    "PReLU",
    "Softmax",
    "Nope",
    "act",
    "Identity",
]
ARG_NAMES = [
    "out_channels",
    "out_features",
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "hidden_size",
    "num_layers",
    "output",
    "shape",
    "dims",
    "dim",
    "num_embeddings",
    "embedding_dim",
    "p",
    "b1",
    "b3",
    "growth_rate",
    "compression",
    "name",
    "groups",
    "bias",
    "bidirectional",
    "scale_factor",
    "num_groups",
    "unflattened_size",
    "pieces",
    "shortcut",
    "norm",
    "activation",
    "in_channels",
    "padding_mode",
]
VALUES = st.one_of(
    st.integers(-2, 12),
    st.sampled_from(
        [
            0.0,
            0.5,
            1.5,
            True,
            False,
            None,
            "same",
            "valid",
            "relu",
            "auto",
            "input",
            "last",
            "all",
            "x",
            "$x",
            "pad",
            "zeros",
        ]
    ),
    st.lists(st.integers(-1, 6), max_size=3),
)
ENTRY = st.builds(
    lambda name, args, extra: {name: args, **extra},
    st.sampled_from(LAYER_NAMES),
    st.one_of(
        st.none(),
        st.dictionaries(st.sampled_from(ARG_NAMES), VALUES, max_size=3),
        st.integers(),
        st.text(),
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "repeat": st.integers(-1, 3),
            "from": st.one_of(
                st.integers(-3, 3),
                st.sampled_from(["input", "a", "b"]),
                st.lists(st.sampled_from(["input", -1, -2, "a"]), max_size=3),
            ),
            "name": st.sampled_from(["a", "b", "1x", "input"]),
            "activation": st.sampled_from(["relu", "step", "bogus", "tanh"]),
            "trainable": st.sampled_from([True, False, "no"]),
        },
    ),
)
SHAPES = st.one_of(
    st.tuples(st.integers(1, 40)),
    st.tuples(st.integers(1, 12), st.integers(1, 12)),
    st.tuples(st.integers(1, 4), st.integers(1, 16), st.integers(1, 16)),
)


@given(
    layers=st.lists(ENTRY, min_size=1, max_size=5), shape=SHAPES, nout=st.sampled_from([None, 1, 3])
)
@settings(max_examples=5 * EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_nonsense_is_a_spec_error_never_a_raw_exception(layers, shape, nout):
    try:
        net = build_model({"layers": layers}, shape, nout)
    except SpecError:
        return
    # whatever built must run on the shape it was built for
    net.eval()
    with torch.no_grad():
        out = net(torch.rand(2, *shape))
    assert tuple(out.shape[1:]) == net.output_shape
