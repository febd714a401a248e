"""Penalties on weights only, their documented weighting, and gradient clipping."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deeppipe.training import fit
from deeppipe.training.config import ClipConfig, RegularizationConfig
from deeppipe.training.regularize import build_penalty, clip_gradients, coefficients

from .helpers import max_diff, mlp, quiet


def _bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 10)
    )


def test_penalty_values_and_elastic_net_convention():
    model = _bn_net()
    w1, w2 = model[1].weight, model[4].weight
    w1, w2 = w1.detach(), w2.detach()
    l1 = float(w1.abs().sum() + w2.abs().sum())
    l2 = float((w1**2).sum() + (w2**2).sum())
    pen = build_penalty(model, RegularizationConfig(l1=0.01))
    assert float(pen().detach()) == pytest.approx(0.01 * l1, rel=1e-5)
    pen = build_penalty(model, RegularizationConfig(l2=0.1))
    assert float(pen().detach()) == pytest.approx(0.05 * l2, rel=1e-5)
    cfg = RegularizationConfig(elastic_net={"alpha": 0.2, "l1_ratio": 0.25})
    assert coefficients(cfg) == pytest.approx((0.05, 0.15))  # sklearn: l1_ratio weights L1
    assert float(build_penalty(model, cfg)().detach()) == pytest.approx(
        0.05 * l1 + 0.075 * l2, rel=1e-5
    )
    assert build_penalty(model, RegularizationConfig()) is None


def test_penalty_never_touches_biases_or_norm_parameters():
    model = _bn_net()
    build_penalty(model, RegularizationConfig(l1=1.0, l2=1.0))().backward()
    assert model[1].weight.grad.abs().sum() > 0 and model[4].weight.grad.abs().sum() > 0
    for p in (model[1].bias, model[2].weight, model[2].bias, model[4].bias):
        assert p.grad is None


def test_l1_raises_the_share_of_near_zero_weights(digits_sources, task):
    train, val = digits_sources
    cfg = quiet(epochs=6, optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9})
    plain, sparse = mlp(), mlp()
    fit(plain, train, val, cfg, task)
    r = fit(sparse, train, val, {**cfg, "regularization": {"l1": 2e-3}}, task)

    def near_zero(m):
        w = torch.cat([m[1].weight.flatten(), m[3].weight.flatten()]).abs()
        return float((w < 1e-2).float().mean())

    assert near_zero(sparse) > near_zero(plain) + 0.3  # a large jump, not noise
    assert r.history[-1]["val/accuracy"] > 0.7  # still a useful model
    l2 = mlp()
    fit(l2, train, val, {**cfg, "regularization": {"l2": 1e-2}}, task)
    assert l2[1].weight.norm() < 0.9 * plain[1].weight.norm()  # L2: small dense weights


def test_l2_equals_plain_sgd_weight_decay(digits_sources, task):
    train, val = digits_sources
    a, b = mlp(), mlp()
    fit(
        a,
        train,
        val,
        quiet(epochs=2, optimizer={"name": "sgd", "lr": 0.1, "weight_decay": 0.01}),
        task,
    )
    fit(
        b,
        train,
        val,
        quiet(epochs=2, optimizer={"name": "sgd", "lr": 0.1}, regularization={"l2": 0.01}),
        task,
    )
    assert max_diff(a, b) < 1e-5


def _grads() -> list[nn.Parameter]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 30), nn.Tanh(), nn.Linear(30, 5))
    (model(torch.randn(64, 20)) * 100).pow(2).mean().backward()
    return list(model.parameters())


def test_clipping_by_value_norm_and_per_parameter():
    params = _grads()
    assert max(float(p.grad.abs().max()) for p in params) > 1.0
    clip_gradients(params, ClipConfig(value=0.5))
    assert max(float(p.grad.abs().max()) for p in params) == pytest.approx(0.5)

    params = _grads()
    before = torch.stack([p.grad.norm() for p in params]).norm()
    clip_gradients(params, ClipConfig(norm=1.0))
    after = [p.grad.clone() for p in params]
    assert float(torch.stack([g.norm() for g in after]).norm()) == pytest.approx(1.0, rel=1e-4)
    assert before > 10  # really clipped; direction kept:
    ref = _grads()
    cos = torch.nn.functional.cosine_similarity(
        torch.cat([g.flatten() for g in after]), torch.cat([p.grad.flatten() for p in ref]), dim=0
    )
    assert float(cos) == pytest.approx(1.0, abs=1e-5)

    params = _grads()
    clip_gradients(params, ClipConfig(norm=0.1, per_parameter=True))
    assert all(float(p.grad.norm()) <= 0.1 + 1e-6 for p in params)


def test_clipping_in_fit_bounds_the_update(digits_tensors, task):
    """One full-batch SGD step with lr 1 moves the weights by exactly the clipped norm."""
    from deeppipe.data.batches import TensorBatches

    x, y = digits_tensors
    one_batch = TensorBatches(x[:1500], y[:1500], 1500, seed=0)
    model = mlp()
    before = [p.detach().clone() for p in model.parameters()]
    r = fit(
        model,
        one_batch,
        None,
        quiet(epochs=1, optimizer={"name": "sgd", "lr": 1.0}, clip={"norm": 0.05}),
        task,
    )
    moved = torch.stack([(p.detach() - b).norm() for p, b in zip(model.parameters(), before)])
    assert r.history[0]["grad_norm"] > 0.2  # the logged norm is the one before clipping
    assert float(moved.norm()) == pytest.approx(0.05, rel=1e-4)
