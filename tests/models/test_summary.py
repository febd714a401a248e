"""summarize(): the layer table, totals, MACs and receptive field; draw_graph(): the picture."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from deeppipe.models import ModelSummary, build_model, draw_graph, summarize
from tests.models.test_build import SMALL_CNN

PNG = b"\x89PNG\r\n\x1a\n"


def test_small_cnn_table_rows_and_totals():
    net = build_model(SMALL_CNN, (1, 28, 28), 10)
    s = summarize(net, (1, 28, 28))
    assert isinstance(s, ModelSummary)
    assert [(r.name, r.type, r.output_shape, r.params) for r in s.rows] == [
        ("0", "Conv2d", (32, 28, 28), 320),
        ("1", "ReLU", (32, 28, 28), 0),
        ("2", "MaxPool2d", (32, 14, 14), 0),
        ("3", "Conv2d", (64, 14, 14), 18_496),
        ("4", "ReLU", (64, 14, 14), 0),
        ("5", "MaxPool2d", (64, 7, 7), 0),
        ("6", "Flatten", (3136,), 0),
        ("7", "Linear", (10,), 31_370),
    ]
    name, kind, shape, params = s.rows[0]  # rows unpack as (name, type, output shape, params)
    assert (name, kind, shape, params) == ("0", "Conv2d", (32, 28, 28), 320)
    assert s.total_params == s.trainable_params == 50_186
    # MACs: output elements x (input channels x kernel area), plus the dense layer
    assert s.macs == 32 * 28 * 28 * 9 + 64 * 14 * 14 * 32 * 9 + 3136 * 10
    assert s.rows[0].macs == 32 * 28 * 28 * 9
    assert s.receptive_field == 10  # 3 -> pool -> 4 -> +2*2 -> 8 -> pool -> 10
    table = s.table()
    for text in (
        "Conv2d",
        "(32, 28, 28)",
        "18,496",
        "Total parameters:",
        "50,186",
        "MACs per sample:",
        "Receptive field (conv part): 10 x 10",
    ):
        assert text in table
    widths = {len(line) for line in table.splitlines()[2:10]}
    assert (
        len(widths) <= 2
    )  # fixed width columns (right-stripped lines may differ by the last cell)


def test_trainable_counts_frozen_layers_and_to_dict():
    spec = {
        "layers": [
            {"Linear": {"out_features": 4}, "trainable": False},
            {"Linear": {"out_features": 2}},
        ]
    }
    s = summarize(build_model(spec, (3,), 2), (3,))
    assert s.total_params == 16 + 10 and s.trainable_params == 10 and s.non_trainable_params == 16
    d = s.to_dict()
    assert (
        d["total_params"] == 26
        and d["rows"][0]["output_shape"] == [4]
        and d["receptive_field"] is None
    )


def test_nested_rows_with_depth_and_block_types():
    net = build_model({"zoo": "resnet20"}, None, None)
    top = summarize(net, (3, 32, 32))
    assert [r.name for r in top.rows] == ["stem", "layer1", "layer2", "layer3", "avgpool", "fc"]
    assert top.rows[1].type == "stage"
    deep = summarize(net, (3, 32, 32), depth=2)
    assert "stem.conv" in [r.name for r in deep.rows]
    assert deep.total_params == top.total_params == 269_722


def test_summary_of_any_module_and_real_fallback():
    class Odd(nn.Module):  # data-dependent: cannot run on the meta device
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            n = int((x > -1).sum().item()) // x.shape[0]
            return self.fc(x[:, :n])

    s = summarize(Odd(), (4,))
    assert s.rows[0].output_shape == (3,) and s.total_params == 15 and s.macs == 12
    assert any("real forward" in n for n in s.notes)
    seq = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten())
    assert summarize(seq, (1, 5, 5)).rows[2].output_shape == (18,)


def test_summary_of_a_meta_model_and_recurrent_macs():
    net = build_model({"zoo": "lstm_classifier"}, (30, 8), 2, device="meta")
    s = summarize(net, (30, 8))
    gates = 4 * 64 * (8 + 64)  # per step
    assert s.macs == 30 * gates + 64 * 2
    assert s.output_shape == (2,)


def test_draw_graph_writes_png_for_built_models(tmp_path):
    net = build_model({"zoo": "resnet20"}, None, None)
    out = draw_graph(net, (3, 32, 32), tmp_path / "graph.png")
    assert out.read_bytes()[:8] == PNG
    spec = {
        "layers": [
            {"Conv2d": {"out_channels": 4, "kernel_size": 1}, "from": "input", "name": "b1"},
            {
                "Conv2d": {"out_channels": 4, "kernel_size": 3, "padding": 1},
                "from": "input",
                "name": "b3",
            },
            {"Concat": {}, "from": ["b1", "b3"]},
            {"Add": {}, "from": [-1, -1]},
        ]
    }
    graph = build_model(spec, (3, 8, 8), None, device="meta")
    assert draw_graph(graph, None, tmp_path / "graph2.png").read_bytes()[:8] == PNG
    svg = draw_graph(nn.Sequential(nn.Linear(3, 2)), (3,), tmp_path / "seq.svg")
    assert svg.read_text().lstrip().startswith("<?xml")


def test_draw_graph_takes_a_built_model_not_a_spec(tmp_path):
    with pytest.raises(TypeError, match="built model"):
        draw_graph({"layers": ["Flatten"]}, (3,), tmp_path / "spec.png")


def test_summary_does_not_change_the_model():
    net = build_model({"zoo": "resnet20"}, None, None)
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    summarize(net, (3, 32, 32))
    assert net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
