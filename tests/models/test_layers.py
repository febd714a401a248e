"""The built-in layers and blocks compute what their names promise."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from deeppipe.models import LAYERS, build_model
from deeppipe.models.layers.edges import EDGE_KERNELS


def one(layer: dict, shape: tuple[int, ...]) -> nn.Module:
    """Build a one-layer network and return the layer."""
    return build_model({"layers": [layer]}, shape, None).get_submodule("0")


def test_sum_pooling_is_average_pooling_times_the_window_area():
    x = torch.rand(2, 3, 8, 8)
    pool = one({"SumPool2d": {"kernel_size": 2}}, (3, 8, 8))
    torch.testing.assert_close(pool(x), F.avg_pool2d(x, 2) * 4)
    x1 = torch.rand(2, 3, 9)
    pool1 = one({"SumPool1d": {"kernel_size": 3}}, (3, 9))
    torch.testing.assert_close(pool1(x1), F.avg_pool1d(x1, 3) * 3)


def test_global_pooling_over_maps_and_over_time():
    x = torch.rand(2, 5, 4, 3)
    torch.testing.assert_close(one({"GlobalAvgPool": {}}, (5, 4, 3))(x), x.mean(dim=(2, 3)))
    torch.testing.assert_close(one({"GlobalMaxPool": {}}, (5, 4, 3))(x), x.amax(dim=(2, 3)))
    seq = torch.rand(2, 7, 4)  # (T, F): pooled over time
    torch.testing.assert_close(one({"GlobalAvgPool": {}}, (7, 4))(seq), seq.mean(dim=1))


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Prewitt", "prewitt"),
        ("Sobel", "sobel"),
        ("Laplacian4", "laplacian4"),
        ("Laplacian8", "laplacian8"),
        ("Kirsch", "kirsch"),
        ("Robinson", "robinson"),
    ],
)
def test_edge_detectors_are_fixed_known_kernels(name, kind):
    layer = one({name: {}}, (2, 10, 10))
    k = len(EDGE_KERNELS[kind])
    assert sum(p.numel() for p in layer.parameters()) == 0  # not trainable: a buffer
    assert layer.weight.shape == (2 * k, 1, 3, 3)
    kern = torch.tensor(EDGE_KERNELS[kind], dtype=torch.float32)
    torch.testing.assert_close(layer.weight[:k, 0], kern)
    torch.testing.assert_close(layer.weight[k:, 0], kern)
    x = torch.rand(1, 2, 10, 10)
    expected = F.conv2d(x[:, :1], kern.unsqueeze(1), padding=1)
    torch.testing.assert_close(layer(x)[:, :k], expected)
    assert kern.sum().abs() < 1e-6  # edge masks ignore flat regions


def test_compass_masks_are_eight_rotations_and_magnitude_combines():
    kirsch = EDGE_KERNELS["kirsch"]
    assert len(kirsch) == 8 and len({str(k) for k in kirsch}) == 8
    assert kirsch[0] == [[5, 5, 5], [-3, 0, -3], [-3, -3, -3]]
    assert kirsch[2] == [[-3, -3, 5], [-3, 0, 5], [-3, -3, 5]]  # east after two 45-degree turns
    sobel = one({"Sobel": {"combine": "magnitude"}}, (1, 8, 8))
    x = torch.zeros(1, 1, 8, 8)
    x[..., 4:] = 1.0  # a vertical edge
    out = sobel(x)
    assert (
        out.shape == (1, 1, 8, 8)
        and out[0, 0, 4, 3] > 0
        and out[0, 0, 4, 1] == pytest.approx(0, abs=1e-5)
    )
    assert one({"EdgeDetect": {"kind": "robinson", "combine": "max"}}, (3, 8, 8))(
        torch.rand(1, 3, 8, 8)
    ).shape == (1, 3, 8, 8)


def test_fixed_kernels_never_change_in_training():
    net = build_model(
        {
            "layers": [
                {"Sobel": {}},
                {"Conv2d": {"out_channels": 2, "kernel_size": 3}},
                {"GlobalAvgPool": {}},
            ]
        },
        (1, 8, 8),
        2,
    )
    before = net.get_submodule("0").weight.clone()
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    net(torch.rand(4, 1, 8, 8)).pow(2).sum().backward()
    opt.step()
    torch.testing.assert_close(net.get_submodule("0").weight, before)


def test_dropconnect_drops_weights_in_training_only():
    torch.manual_seed(0)
    layer = one({"DropConnect": {"out_features": 64, "p": 0.5}}, (32,))
    x = torch.rand(1, 32)
    layer.eval()
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))
    layer.train()
    a, b = layer(x), layer(x)
    assert not torch.allclose(a, b)  # a fresh weight mask each call
    # inverted scaling: on average the training output equals the eval output
    mean = torch.stack([layer(x) for _ in range(400)]).mean(0)
    torch.testing.assert_close(mean, F.linear(x, layer.weight, layer.bias), atol=0.15, rtol=0.1)


def test_maxout_takes_the_max_of_affine_pieces():
    layer = one({"Maxout": {"out_features": 4, "pieces": 3}}, (5,))
    x = torch.rand(2, 5)
    pieces = layer.linear(x).reshape(2, 4, 3)
    torch.testing.assert_close(layer(x), pieces.amax(-1))
    act = one({"Activation": {"name": "maxout", "pieces": 2}}, (6, 3, 3))
    y = torch.rand(1, 6, 3, 3)
    torch.testing.assert_close(act(y), y.reshape(1, 3, 2, 3, 3).amax(2))


def test_highway_gate_starts_mostly_closed():
    layer = one({"Highway": {"gate_bias": -3.0}}, (8,))
    assert torch.all(layer.gate.bias == -3.0)
    x = torch.rand(4, 8)
    t = torch.sigmoid(layer.gate(x))
    torch.testing.assert_close(layer(x), torch.relu(layer.transform(x)) * t + x * (1 - t))


def test_recurrent_outputs_last_all_and_bidirectional():
    torch.manual_seed(0)
    x = torch.rand(3, 6, 4)
    for kind in ("RNN", "LSTM", "GRU"):
        all_steps = one({kind: {"hidden_size": 5, "output": "all"}}, (6, 4))
        last = one({kind: {"hidden_size": 5, "output": "last"}}, (6, 4))
        last.load_state_dict(all_steps.state_dict())
        seq = all_steps(x)
        assert seq.shape == (3, 6, 5)
        torch.testing.assert_close(last(x), seq[:, -1])
    bi = one(
        {"LSTM": {"hidden_size": 5, "bidirectional": True, "num_layers": 2, "output": "all"}},
        (6, 4),
    )
    bi_last = one({"LSTM": {"hidden_size": 5, "bidirectional": True, "num_layers": 2}}, (6, 4))
    bi_last.load_state_dict(bi.state_dict())
    seq = bi(x)
    expected = torch.cat([seq[:, -1, :5], seq[:, 0, 5:]], dim=1)  # forward at T-1, backward at t=0
    torch.testing.assert_close(bi_last(x), expected)
    assert one({"GRU": {"hidden_size": 5, "output": "mean"}}, (6, 4))(x).shape == (3, 5)


def test_embedding_takes_float_token_ids_and_pretrained_vectors(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("<pad>\nthe\ncat\n")
    vectors = tmp_path / "glove.txt"
    vectors.write_text("3 2\ncat 0.5 -1.0\nthe 1.0 2.0\ndog 9 9\n")
    emb = one(
        {
            "Embedding": {
                "num_embeddings": 3,
                "embedding_dim": 2,
                "vectors": str(vectors),
                "vocab": str(vocab),
                "freeze": True,
            }
        },
        (4,),
    )
    torch.testing.assert_close(emb.weight[1], torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(emb.weight[2], torch.tensor([0.5, -1.0]))
    assert not emb.weight.requires_grad
    out = emb(torch.tensor([[1.0, 2.0, 0.0, 1.0]]))
    assert out.shape == (1, 4, 2)


def test_residual_blocks_shortcuts_and_strides():
    basic = one({"BasicBlock": {"out_channels": 8}}, (8, 6, 6))
    assert isinstance(basic.shortcut, nn.Identity)
    proj = one({"BasicBlock": {"out_channels": 16, "stride": 2}}, (8, 6, 6))
    assert isinstance(proj.shortcut, nn.Sequential) and proj.shortcut[0].stride == (2, 2)
    pad = one({"BasicBlock": {"out_channels": 16, "stride": 2, "shortcut": "pad"}}, (8, 6, 6))
    assert sum(p.numel() for p in pad.shortcut.parameters()) == 0
    assert pad(torch.rand(1, 8, 6, 6)).shape == (1, 16, 3, 3)
    v15 = one({"Bottleneck": {"out_channels": 32, "stride": 2}}, (16, 8, 8))
    v1 = one({"Bottleneck": {"out_channels": 32, "stride": 2, "stride_on": "1x1"}}, (16, 8, 8))
    assert v15.conv2.stride == (2, 2) and v15.conv1.stride == (1, 1) and v15.conv2.out_channels == 8
    assert v1.conv1.stride == (2, 2) and v1.conv2.stride == (1, 1)
    with pytest.raises(Exception, match="identity shortcut"):
        build_model(
            {"layers": [{"BasicBlock": {"out_channels": 16, "shortcut": "identity"}}]},
            (8, 6, 6),
            None,
        )
    # the shortcut is added before the last activation
    x = torch.rand(2, 8, 6, 6)
    basic.eval()
    y = basic.bn2(basic.conv2(basic.act1(basic.bn1(basic.conv1(x)))))
    torch.testing.assert_close(basic(x), torch.relu(y + x))


def test_dense_block_concatenates_and_transition_compresses():
    block = one({"DenseBlock": {"num_layers": 3, "growth_rate": 4}}, (6, 8, 8))
    x = torch.rand(1, 6, 8, 8)
    out = block(x)
    assert out.shape == (1, 6 + 3 * 4, 8, 8)
    torch.testing.assert_close(out[:, :6], x)  # the block input is passed on unchanged
    trans = build_model({"layers": [{"Transition": {"compression": 0.5}}]}, (18, 8, 8), None)
    assert trans.output_shape == (9, 4, 4)


def test_inception_module_channels_and_branches():
    inc = one(
        {"Inception": {"b1": 4, "b3_reduce": 3, "b3": 5, "b5_reduce": 2, "b5": 6, "pool_proj": 7}},
        (8, 9, 9),
    )
    assert inc(torch.rand(1, 8, 9, 9)).shape == (1, 4 + 5 + 6 + 7, 9, 9)
    assert inc.branch5[1].conv.kernel_size == (5, 5)


def test_separable_convolutions_count_depthwise_plus_pointwise():
    sep = one({"SeparableConv2d": {"out_channels": 16}}, (8, 10, 10))
    assert sum(p.numel() for p in sep.parameters()) == 8 * 9 + 8 * 16
    mob = one({"DepthwiseSeparableConv": {"out_channels": 16, "stride": 2}}, (8, 10, 10))
    assert mob(torch.rand(1, 8, 10, 10)).shape == (1, 16, 5, 5)


def test_conv_bn_act_variants():
    cba = one({"ConvBNAct": {"out_channels": 4, "activation": "leaky_relu"}}, (3, 8, 8))
    assert (
        cba.conv.bias is None and isinstance(cba.act, nn.LeakyReLU) and cba.conv.padding == (1, 1)
    )
    plain = one(
        {"ConvBNAct": {"out_channels": 4, "norm": "none", "kernel_size": 5, "stride": 2}}, (3, 8, 8)
    )
    assert (
        plain.conv.bias is not None
        and plain.conv.padding == (2, 2)
        and isinstance(plain.norm, nn.Identity)
    )
    c1 = one({"ConvBNAct": {"out_channels": 4}}, (3, 20))
    assert isinstance(c1.conv, nn.Conv1d)
    pre = one({"ConvBNAct": {"out_channels": 4, "preact": True}}, (3, 8, 8))
    assert pre.norm.num_features == 3


def test_reshape_permute_transpose_and_merges():
    net = build_model(
        {
            "layers": [
                "Flatten",
                {"Reshape": {"shape": [4, 3]}},
                {"Transpose": {}},
                {"Permute": {"dims": [1, 0]}},
            ]
        },
        (12,),
        None,
    )
    assert [i.shape for i in net.infos] == [(12,), (4, 3), (3, 4), (4, 3)]
    net = build_model(
        {
            "layers": [
                {"Linear": {"out_features": 3}, "name": "a"},
                {"Multiply": {}, "from": ["a", "a"]},
            ]
        },
        (3,),
        None,
    )
    x = torch.rand(2, 3)
    a = net.a(x)
    torch.testing.assert_close(net(x), a * a)


def test_registry_lists_torch_layers_and_blocks():
    for name in (
        "Conv2d",
        "LSTM",
        "BasicBlock",
        "Bottleneck",
        "DenseBlock",
        "Transition",
        "Inception",
        "Highway",
        "Maxout",
        "SumPool2d",
        "GlobalAvgPool",
        "Add",
        "Concat",
        "DropConnect",
        "Sobel",
        "Prewitt",
        "Laplacian4",
        "Laplacian8",
        "Kirsch",
        "Robinson",
        "Embedding",
        "RNN",
        "GRU",
        "ConvBNAct",
        "SeparableConv2d",
    ):
        assert name in LAYERS, name
    assert "MSELoss" not in LAYERS and "Sequential" not in LAYERS


def test_gaussian_noise_only_in_training_and_autoencoder_codes():
    noise = one({"GaussianNoise": {"std": 0.5}}, (100,))
    x = torch.zeros(4, 100)
    assert noise(x).std() == pytest.approx(0.5, rel=0.2)
    noise.eval()
    assert torch.equal(noise(x), x)
    ae = build_model({"zoo": "mlp_autoencoder", "code": 2, "noise": 0.2}, (1, 28, 28), None)
    codes = ae.outputs(torch.rand(5, 1, 28, 28), ["code"])["code"]
    assert codes.shape == (5, 2)
