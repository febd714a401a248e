"""Hard parameter sharing: ``share: <layer name>`` runs one module at several places of a graph,
so there is one set of parameters, stored once, whose gradient sums every use."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from deeppipe.errors import SpecError
from deeppipe.models import build_model, summarize

# a siamese encoder: the same convolution on the image and on its transpose, the two codes added
SIAMESE = {"layers": [
    {"Conv2d": {"out_channels": 4, "kernel_size": 3, "padding": 1}, "name": "enc"},
    {"Transpose": {"dim0": 1, "dim1": 2}, "from": "input", "name": "flipped"},
    {"share": "enc", "from": "flipped", "name": "enc_t"},
    {"Add": {}, "from": ["enc", "enc_t"]},
    {"ReLU": {}},
    {"Flatten": {}},
    {"Linear": {"out_features": 10}, "name": "head"},
]}


def test_a_shared_layer_is_one_tensor_stored_once(digits):
    net = build_model(SIAMESE, (1, 8, 8), 10)
    assert list(net.state_dict()) == ["enc.weight", "enc.bias", "head.weight", "head.bias"]
    assert sum(p.numel() for p in net.parameters()) == 4 * 9 + 4 + 256 * 10 + 10
    assert net.node_module(2) is net.enc and net.infos[2].type == "Conv2d (shares enc)"
    x = torch.from_numpy(digits[0][:5])
    by_hand = net.head(F.relu(net.enc(x) + net.enc(x.transpose(2, 3))).flatten(1))
    assert torch.allclose(net(x), by_hand)
    rows = {r.name: r for r in summarize(net, (1, 8, 8)).rows}
    assert rows["enc_t"].params == 0 and rows["enc"].macs == 2 * 4 * 9 * 64  # counted once, run twice


def test_the_gradient_of_a_shared_layer_sums_both_uses(digits):
    x, y = (torch.from_numpy(a[:32]) for a in digits)
    torch.manual_seed(0)
    net = build_model(SIAMESE, (1, 8, 8), 10)
    F.cross_entropy(net(x), y).backward()
    # the same computation with two separate copies of the encoder: their gradients add up
    enc_a, enc_b, head = copy.deepcopy(net.enc), copy.deepcopy(net.enc), copy.deepcopy(net.head)
    for m in (enc_a, enc_b, head):
        m.zero_grad()
    F.cross_entropy(head(F.relu(enc_a(x) + enc_b(x.transpose(2, 3))).flatten(1)), y).backward()
    assert torch.allclose(net.enc.weight.grad, enc_a.weight.grad + enc_b.weight.grad, atol=1e-6)
    assert not torch.allclose(enc_a.weight.grad, enc_b.weight.grad)  # two different contributions


def test_one_trunk_two_heads_and_shared_weights_survive_training(digits):
    """A trunk feeding two heads is an ordinary graph; a shared node keeps training one tensor."""
    from deeppipe.data.batches import TensorBatches
    from deeppipe.data.task import Task
    from deeppipe.training import fit

    x, y = (torch.from_numpy(a) for a in digits)
    net = build_model(SIAMESE, (1, 8, 8), 10)
    before = net.enc.weight.detach().clone()
    fit(net, TensorBatches(x[:1000], y[:1000], 64), TensorBatches(x[1000:], y[1000:], 512, shuffle=False),
        {"epochs": 2, "progress": False, "optimizer": {"name": "adam", "lr": 0.01}}, Task("multiclass", 10))
    assert not torch.equal(before, net.enc.weight) and len(list(net.parameters())) == 4
    trunk = build_model({"layers": [{"Flatten": {}}, {"Linear": {"out_features": 16}, "name": "trunk"},
                                    {"Linear": {"out_features": 5}, "from": "trunk", "name": "a"},
                                    {"Linear": {"out_features": 5}, "from": "trunk", "name": "b"},
                                    {"Concat": {}, "from": ["a", "b"]}]}, (1, 8, 8), 10)
    assert trunk.output_shape == (10,)


@pytest.mark.parametrize(("entry", "path", "word"), [
    ({"share": "encc", "from": "flipped"}, "model.layers[2].share", "did you mean 'enc'"),
    ({"share": "enc", "from": "flipped", "repeat": 2}, "model.layers[2]", "takes only share, name, from"),
    ({"share": "enc", "Conv2d": {"out_channels": 4}}, "model.layers[2]", "own module"),
    ({"share": "head", "from": "flipped"}, "model.layers[2].share", "earlier layer"),
])
def test_share_mistakes_name_the_entry(entry: dict, path: str, word: str):
    spec = copy.deepcopy(SIAMESE)
    spec["layers"][2] = entry
    with pytest.raises(SpecError) as err:
        build_model(spec, (1, 8, 8), 10)
    assert err.value.path.startswith(path) and word in str(err.value), str(err.value)


def test_sharing_across_shapes_the_module_cannot_take_is_refused():
    spec = {"layers": [{"Flatten": {}, "name": "flat"}, {"Linear": {"out_features": 8}, "name": "enc"},
                       {"share": "enc"}, {"Linear": {"out_features": 10}}]}
    with pytest.raises(SpecError, match="cannot take the input") as err:
        build_model(spec, (1, 8, 8), 10)
    assert err.value.path == "model.layers[2].share"
