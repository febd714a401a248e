"""The catalogue's statements about single layers and activations, checked on modules built from
YAML: inverted dropout, learned batch-norm scale and shift, layer norm, local response norm,
flatten and 1x1 convolutions, and the activations' values and derivatives."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from deeppipe.models import build_model


def _layer(entry: dict, shape: tuple[int, ...]) -> torch.nn.Module:
    return build_model({"layers": [entry]}, shape, None)


def test_dropout_is_inverted_and_off_in_eval_mode():
    drop = _layer({"Dropout": {"p": 0.25}}, (20_000,))
    x = torch.ones(1, 20_000)
    drop.train()
    out = drop(x)
    kept = out[out != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / 0.75))  # survivors scaled by 1 / (1 - p)
    assert float((out == 0).float().mean()) == pytest.approx(0.25, abs=0.02)
    assert float(out.mean()) == pytest.approx(1.0, abs=0.03)  # the expectation is kept
    drop.eval()
    assert torch.equal(drop(x), x)


def test_batch_norm_has_a_learnable_scale_and_shift_that_training_moves(digits):
    from deeppipe.data.batches import TensorBatches
    from deeppipe.data.task import Task
    from deeppipe.training import fit

    net = build_model({"layers": [{"Flatten": {}}, {"Linear": {"out_features": 16}}, {"BatchNorm1d": {}, "name": "bn"},
                                  {"ReLU": {}}, {"Linear": {"out_features": 10}}]}, (1, 8, 8), 10)
    bn = net.bn
    assert bn.weight.requires_grad and bn.bias.requires_grad
    x = torch.randn(256, 16) * 3 + 5
    with torch.no_grad():
        bn.weight.fill_(2.0)
        bn.bias.fill_(-1.0)
        y = bn.train()(x)
    assert torch.allclose(y.mean(0), torch.full((16,), -1.0), atol=1e-4)  # shift
    assert torch.allclose(y.std(0, unbiased=False), torch.full((16,), 2.0), atol=1e-2)  # scale
    with torch.no_grad():
        bn.weight.fill_(1.0)
        bn.bias.fill_(0.0)
    xs, ys = (torch.from_numpy(a) for a in digits)
    fit(net, TensorBatches(xs[:1000], ys[:1000], 64), None, {"epochs": 1, "progress": False}, Task("multiclass", 10))
    assert not torch.equal(bn.weight.detach(), torch.ones(16)) and not torch.equal(bn.bias.detach(), torch.zeros(16))


def test_layer_norm_normalises_each_sample_and_lrn_follows_its_formula():
    ln = _layer({"LayerNorm": {}}, (32,))
    y = ln(torch.randn(4, 32) * 5 + 3)
    assert torch.allclose(y.mean(1), torch.zeros(4), atol=1e-5)
    assert torch.allclose(y.std(1, unbiased=False), torch.ones(4), atol=1e-3)
    lrn = _layer({"LocalResponseNorm": {"size": 3, "alpha": 0.3, "beta": 0.75, "k": 2.0}}, (5, 2, 2))
    a = torch.rand(1, 5, 2, 2)
    c = 2  # channel 2 is normalised by the squares of channels 1..3: b = a / (k + alpha / n * sum a^2)^beta
    expect = a[0, c] / (2.0 + 0.3 / 3 * (a[0, 1:4] ** 2).sum(0)) ** 0.75
    assert torch.allclose(lrn(a)[0, c], expect, atol=1e-6)


def test_flatten_is_a_reshape_and_a_1x1_convolution_changes_the_channels_only():
    net = build_model({"layers": [{"Conv2d": {"out_channels": 5, "kernel_size": 1}, "name": "pointwise"},
                                  {"Flatten": {}, "name": "flat"}]}, (3, 7, 9), None)
    assert net.infos[0].shape == (5, 7, 9) and net.infos[1].shape == (5 * 7 * 9,)
    assert sum(p.numel() for p in net.flat.parameters()) == 0
    assert sum(p.numel() for p in net.parameters()) == 3 * 5 + 5  # a 1x1 conv: one weight per channel pair
    x = torch.rand(2, 3, 7, 9)
    assert torch.equal(net(x), net.pointwise(x).reshape(2, -1))


def _grad(name: str, x: torch.Tensor, **kw) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    y = build_model({"layers": [{"Activation": {"name": name, **kw}}]}, (x.shape[1],), None)(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), g


def test_activation_values_and_derivatives_match_their_definitions():
    x = torch.linspace(-4, 4, 81).reshape(1, 81)
    s, ds = _grad("sigmoid", x)
    assert torch.allclose(ds, s * (1 - s), atol=1e-6) and float(ds.max()) == pytest.approx(0.25)
    t, dt = _grad("tanh", x)
    assert torch.allclose(t, 2 * torch.sigmoid(2 * x) - 1, atol=1e-6) and torch.allclose(dt, 1 - t**2, atol=1e-6)
    assert abs(float(t.mean())) < 1e-6  # zero-centred
    h, _ = _grad("hardtanh", x)
    assert torch.equal(h, x.clamp(-1, 1))
    r, dr = _grad("relu", x)
    assert torch.equal(r, x.clamp_min(0)) and set(dr.unique().tolist()) <= {0.0, 1.0}
    lk, _ = _grad("leaky_relu", x, negative_slope=0.1)
    assert torch.allclose(lk, torch.maximum(0.1 * x, x))
    e, _ = _grad("elu", x)
    assert torch.allclose(e, torch.where(x > 0, x, torch.exp(x) - 1), atol=1e-6)
    for name, f in (("silu", x * torch.sigmoid(x)), ("mish", x * torch.tanh(F.softplus(x))),
                    ("gelu", 0.5 * x * (1 + torch.erf(x / math.sqrt(2))))):
        assert torch.allclose(_grad(name, x)[0], f, atol=1e-5), name
    p, _ = _grad("prelu", x, init=0.2)
    assert torch.allclose(p, torch.where(x > 0, x, 0.2 * x))


def test_prelu_learns_its_slope():
    net = build_model({"layers": [{"Linear": {"out_features": 1}, "name": "lin"}, {"Activation": {"name": "prelu"}}]},
                      (1,), None)
    prelu = next(m for m in net.modules() if isinstance(m, torch.nn.PReLU))
    with torch.no_grad():
        net.lin.weight.fill_(1.0)
        net.lin.bias.zero_()
    opt = torch.optim.SGD([prelu.weight], lr=0.1)
    x = torch.linspace(-2, -0.1, 32).reshape(-1, 1)
    for _ in range(200):  # target: a slope of 0.7 on negative inputs
        opt.zero_grad()
        F.mse_loss(net(x), 0.7 * x).backward()
        opt.step()
    assert float(prelu.weight.detach()) == pytest.approx(0.7, abs=1e-3)


def test_max_and_average_pooling_take_the_max_and_the_mean_of_each_window():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    mx = _layer({"MaxPool2d": {"kernel_size": 2}}, (1, 4, 4))(x)
    av = _layer({"AvgPool2d": {"kernel_size": 2}}, (1, 4, 4))(x)
    assert mx.flatten().tolist() == [5.0, 7.0, 13.0, 15.0]
    assert av.flatten().tolist() == [2.5, 4.5, 10.5, 12.5]
