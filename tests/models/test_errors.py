"""Every mistake is a SpecError at build time, naming the YAML path, the shapes and a close name."""

from __future__ import annotations

import pytest

from deeppipe.errors import SpecError
from deeppipe.models import build_model

IMG = (1, 16, 16)
CONV = {"Conv2d": {"out_channels": 8, "kernel_size": 3}}

CASES = [
    # (id, spec, path, phrases that must appear in the message)
    (
        "linear-after-conv",
        {"layers": [CONV, {"Linear": {"out_features": 10}}]},
        "model.layers[1].Linear",
        ["(8, 14, 14)", "Flatten", "model.layers[0].Conv2d"],
    ),
    (
        "pool-larger-than-map",
        {
            "layers": [{"MaxPool2d": {"kernel_size": 2}}] * 5
            + ["Flatten", {"Linear": {"out_features": 10}}]
        },
        "model.layers[4].MaxPool2d",
        ["2x2", "1x1", "(1, 1, 1)"],
    ),
    (
        "pool-larger-than-map-repeat",
        {"layers": [{"AvgPool2d": {"kernel_size": 2}, "repeat": 5}]},
        "model.layers[0].AvgPool2d",
        ["2x2", "1x1", "copy 4 of 5"],
    ),
    (
        "conv-kernel-larger-than-map",
        {"layers": [{"Conv2d": {"out_channels": 2, "kernel_size": 17}}]},
        "model.layers[0].Conv2d",
        ["17x17", "16x16"],
    ),
    (
        "concat-mismatch",
        {
            "layers": [
                {**CONV, "name": "a"},
                {
                    "Conv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1},
                    "from": "input",
                    "name": "b",
                },
                {"Concat": {}, "from": ["a", "b"]},
            ]
        },
        "model.layers[2].Concat",
        ["a (8, 14, 14)", "b (8, 16, 16)"],
    ),
    (
        "add-mismatch",
        {"layers": [{**CONV, "name": "a"}, {"Add": {}, "from": ["a", "input"]}]},
        "model.layers[1].Add",
        ["(8, 14, 14)", "(1, 16, 16)"],
    ),
    (
        "unknown-from",
        {"layers": [{**CONV, "name": "conv1"}, {"ReLU": {}, "from": "conv2"}]},
        "model.layers[1].from",
        ["conv2", "did you mean 'conv1'"],
    ),
    (
        "from-later-layer",
        {"layers": [{"ReLU": {}, "from": "later"}, {"ReLU": {}, "name": "later"}]},
        "model.layers[0].from",
        ["later"],
    ),
    ("unknown-layer", {"layers": [{"Conv2: ": {}}]}, "model.layers[0].Conv2: ", ["unknown layer"]),
    (
        "unknown-layer-suggests",
        {"layers": [{"Conv2": {}}]},
        "model.layers[0].Conv2",
        ["did you mean 'Conv2d'"],
    ),
    (
        "unknown-argument",
        {"layers": [{"Conv2d": {"out_channel": 8, "kernel_size": 3}}]},
        "model.layers[0].Conv2d.out_channel",
        ["did you mean 'out_channels'"],
    ),
    (
        "missing-argument",
        {"layers": [{"Conv2d": {"out_channels": 8}}]},
        "model.layers[0].Conv2d",
        ["kernel_size"],
    ),
    (
        "step-activation",
        {"layers": [CONV, {"Activation": {"name": "step"}}]},
        "model.layers[1].Activation",
        ["zero gradient"],
    ),
    ("step-layer", {"layers": [{"Heaviside": {}}]}, "model.layers[0].Heaviside", ["zero gradient"]),
    (
        "step-default",
        {"activation": "sign", "layers": ["Flatten"]},
        "model.activation",
        ["zero gradient"],
    ),
    (
        "step-sibling",
        {"layers": [{**CONV, "activation": "heaviside"}]},
        "model.layers[0].activation",
        ["zero gradient"],
    ),
    (
        "conv-on-flat",
        {"layers": ["Flatten", {"Conv2d": {"out_channels": 4, "kernel_size": 3}}]},
        "model.layers[1].Conv2d",
        ["(256,)", "(channels, height, width)"],
    ),
    (
        "rnn-on-image",
        {"layers": [{"LSTM": {"hidden_size": 4}}]},
        "model.layers[0].LSTM",
        ["(1, 16, 16)", "(T, F)"],
    ),
    (
        "in-channels-disagree",
        {"layers": [{"Conv2d": {"in_channels": 3, "out_channels": 4, "kernel_size": 3}}]},
        "model.layers[0].Conv2d.in_channels",
        ["3", "in_channels = 1"],
    ),
    (
        "unused-branch",
        {"layers": [{**CONV, "name": "a"}, CONV, {"ReLU": {}, "from": "a"}]},
        "model.layers[1].Conv2d",
        ["never used"],
    ),
    (
        "unknown-placeholder",
        {
            "args": {"width": 4},
            "layers": [{"Conv2d": {"out_channels": "$widht", "kernel_size": 3}}],
        },
        "model.layers[0].Conv2d.out_channels",
        ["$widht", "did you mean '$width'"],
    ),
    (
        "unknown-block-argument",
        {
            "blocks": {
                "cbr": {
                    "args": ["out"],
                    "layers": [{"Conv2d": {"out_channels": "$out", "kernel_size": 3}}],
                }
            },
            "layers": [{"cbr": {"ot": 3}}],
        },
        "model.layers[0].cbr.ot",
        ["did you mean 'out'"],
    ),
    (
        "missing-block-argument",
        {
            "blocks": {"cbr": {"args": ["out"], "layers": [{"Linear": {"out_features": "$out"}}]}},
            "layers": [{"cbr": {}}],
        },
        "model.layers[0].cbr",
        ["needs argument 'out'"],
    ),
    (
        "error-inside-block",
        {
            "blocks": {"head": {"layers": [{"Linear": {"out_features": 3}}]}},
            "layers": [CONV, {"head": {}}],
        },
        "model.blocks.head.layers[0].Linear",
        ["used at model.layers[1].head", "Flatten"],
    ),
    (
        "two-layer-names",
        {"layers": [{"Conv2d": {}, "Linear": {}}]},
        "model.layers[0]",
        ["exactly one layer"],
    ),
    (
        "misspelt-sibling",
        {"layers": [{**CONV, "repaet": 2}]},
        "model.layers[0]",
        ["did you mean 'repeat'"],
    ),
    (
        "bad-repeat",
        {"layers": [{**CONV, "repeat": -1}]},
        "model.layers[0].repeat",
        ["whole number"],
    ),
    (
        "bad-name",
        {"layers": [{**CONV, "name": "two words"}]},
        "model.layers[0].name",
        ["identifier"],
    ),
    (
        "reserved-name",
        {"layers": [{**CONV, "name": "forward"}]},
        "model.layers[0].name",
        ["reserved"],
    ),
    (
        "duplicate-name",
        {"layers": [{**CONV, "name": "a"}, {"ReLU": {}, "name": "a"}]},
        "model.layers[1].name",
        ["twice"],
    ),
    ("args-not-mapping", {"layers": [{"Conv2d": [8, 3]}]}, "model.layers[0].Conv2d", ["mapping"]),
    ("unknown-model-key", {"layer": []}, "model.layer", ["did you mean 'layers'"]),
    ("empty-layers", {"layers": []}, "model.layers", ["non-empty"]),
    (
        "bad-input",
        {"input": [1, "x"], "layers": ["Flatten"]},
        "model.input",
        ["positive whole numbers"],
    ),
    (
        "input-disagrees",
        {"input": [3, 16, 16], "layers": ["Flatten"]},
        "model.input",
        ["(3, 16, 16)", "(1, 16, 16)"],
    ),
    (
        "bad-width",
        {"width_multiplier": 0, "layers": ["Flatten"]},
        "model.width_multiplier",
        ["positive"],
    ),
    (
        "unknown-init",
        {"init": "kaiming_normall", "layers": ["Flatten"]},
        "model.init",
        ["did you mean"],
    ),
    (
        "unknown-init-argument",
        {"layers": [{"Linear": {"out_features": 2}, "init": {"name": "normal", "sd": 1}}]},
        "model.layers[0].init.sd",
        ["did you mean 'std'"],
    ),
    (
        "unknown-activation",
        {"layers": [{"Activation": {"name": "rleu"}}]},
        "model.layers[0].Activation",
        ["relu"],
    ),
    (
        "torch-rejects-arguments",
        {"layers": [{"Conv2d": {"out_channels": 6, "kernel_size": 3, "groups": 4}}]},
        "model.layers[0].Conv2d",
        ["cannot be built"],
    ),
    (
        "merge-needs-merge-layer",
        {"layers": [{**CONV, "name": "a"}, {"ReLU": {}, "from": ["a", "input"]}]},
        "model.layers[1].from",
        ["Add or Concat"],
    ),
    (
        "block-shadows-layer",
        {"blocks": {"Linear": {"layers": ["Flatten"]}}, "layers": ["Flatten"]},
        "model.blocks.Linear",
        ["already a layer"],
    ),
    (
        "tuple-output-layer",
        {
            "layers": [
                {"Permute": {"dims": [1, 2, 0]}},
                "Flatten",
                {"Unflatten": {"dim": 1, "unflattened_size": [16, 16]}},
                {"MultiheadAttention": {"num_heads": 1}},
            ]
        },
        "model.layers[3].MultiheadAttention",
        [],
    ),
]


@pytest.mark.parametrize(
    ("spec", "path", "phrases"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_mistakes_raise_spec_errors(spec, path, phrases):
    with pytest.raises(SpecError) as e:
        build_model(spec, IMG, None, file="exp.yml")
    assert e.value.path == path, str(e.value)
    text = str(e.value)
    assert text.startswith(f"exp.yml: {path}")
    for phrase in phrases:
        assert phrase in text, text


def test_head_mismatch_names_the_last_layer_and_both_sizes():
    spec = {
        "layers": [
            "Flatten",
            {"Linear": {"out_features": 16}},
            {"ReLU": {}},
            {"Linear": {"out_features": 5}},
        ]
    }
    with pytest.raises(SpecError) as e:
        build_model(spec, IMG, 10)
    assert e.value.path == "model.layers[3].Linear"
    assert "(5,)" in str(e.value) and "10" in str(e.value)


@pytest.mark.parametrize("bad", [None, [], "layers", 3, {"zoo": 5}])
def test_nonsense_sections_are_spec_errors(bad):
    with pytest.raises(SpecError):
        build_model(bad, IMG, None)
