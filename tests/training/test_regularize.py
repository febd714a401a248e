"""Penalties on weights only, their documented weighting, the proximal L1 step (exact zeros),
soft parameter sharing, and gradient clipping."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from deeppipe.data.batches import TensorBatches
from deeppipe.data.task import Task
from deeppipe.errors import SpecError
from deeppipe.training import fit
from deeppipe.training.config import ClipConfig, OptimizerConfig, RegularizationConfig
from deeppipe.training.optim import build_optimizer
from deeppipe.training.params import penalised_params
from deeppipe.training.regularize import (
    build_penalty,
    build_proximal,
    clip_gradients,
    coefficients,
    sharing_pairs,
)

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
    pen = build_penalty(model, RegularizationConfig(l1=0.01, l1_mode="subgradient"))
    assert float(pen().detach()) == pytest.approx(0.01 * l1, rel=1e-5)
    assert build_penalty(model, RegularizationConfig(l1=0.01)) is None  # proximal: not a loss term
    pen = build_penalty(model, RegularizationConfig(l2=0.1))
    assert float(pen().detach()) == pytest.approx(0.05 * l2, rel=1e-5)
    cfg = RegularizationConfig(elastic_net={"alpha": 0.2, "l1_ratio": 0.25})
    assert coefficients(cfg) == pytest.approx((0.05, 0.15))  # sklearn: l1_ratio weights L1
    sub = cfg.model_copy(update={"l1_mode": "subgradient"})
    assert float(build_penalty(model, sub)().detach()) == pytest.approx(0.05 * l1 + 0.075 * l2, rel=1e-5)
    assert float(build_penalty(model, cfg)().detach()) == pytest.approx(0.075 * l2, rel=1e-5)  # L2 part only
    assert build_penalty(model, RegularizationConfig()) is None


def test_penalty_never_touches_biases_or_norm_parameters():
    model = _bn_net()
    build_penalty(model, RegularizationConfig(l1=1.0, l2=1.0, l1_mode="subgradient"))().backward()
    assert model[1].weight.grad.abs().sum() > 0 and model[4].weight.grad.abs().sum() > 0
    for p in (model[1].bias, model[2].weight, model[2].bias, model[4].bias):
        assert p.grad is None


def test_proximal_l1_soft_thresholds_by_lr_times_lambda_in_each_group():
    model = _bn_net()
    opt = build_optimizer(model, OptimizerConfig(name="sgd", lr=0.1, param_groups=[{"match": "4", "lr": 0.5}]))
    prox = build_proximal(opt, model, RegularizationConfig(l1=0.02, elastic_net={"alpha": 0.04, "l1_ratio": 0.5}))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    prox()
    a1 = 0.02 + 0.04 * 0.5  # the elastic net's L1 part is proximal too
    for name, lr in (("1.weight", 0.1), ("4.weight", 0.5)):
        w, t = before[name], lr * a1
        assert torch.equal(dict(model.named_parameters())[name].detach(), torch.sign(w) * (w.abs() - t).clamp_min(0))
    for name in ("1.bias", "2.weight", "2.bias", "4.bias"):  # never biases or norm parameters
        assert torch.equal(dict(model.named_parameters())[name].detach(), before[name])
    assert build_proximal(opt, model, RegularizationConfig(l1=0.02, l1_mode="subgradient")) is None


def test_proximal_l1_with_plain_sgd_is_exactly_ista(digits_tensors, task):
    """Full-batch SGD + the proximal step = proximal gradient descent: w <- S(w - lr grad, lr l1)."""
    x, y = digits_tensors
    x, y, lr, lam = x[:512].flatten(1), y[:512], 0.5, 3e-3
    torch.manual_seed(0)
    model = nn.Linear(64, 10)
    ref = copy.deepcopy(model)
    fit(model, TensorBatches(x, y, 512, shuffle=False), None,
        quiet(epochs=20, optimizer={"name": "sgd", "lr": lr}, regularization={"l1": lam}), task)
    for _ in range(20):
        ref.zero_grad()
        nn.functional.cross_entropy(ref(x), y).backward()
        with torch.no_grad():
            ref.bias -= lr * ref.bias.grad
            w = ref.weight - lr * ref.weight.grad
            ref.weight.copy_(torch.sign(w) * (w.abs() - lr * lam).clamp_min(0))
    assert max_diff(model, ref) < 1e-5
    assert int((model.weight == 0).sum()) == int((ref.weight == 0).sum()) >= 50  # exact zeros, the same ones


def _noisy_breast_cancer() -> tuple[torch.Tensor, ...]:
    """breast_cancer's 30 real columns plus 10 columns of pure Gaussian noise, standardised with
    the training part's statistics; 455 training and 114 test rows."""
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(0)
    x = np.hstack([x, rng.normal(size=(len(x), 10))])
    order = rng.permutation(len(x))
    tr, te = order[:455], order[455:]
    x = (x - x[tr].mean(0)) / x[tr].std(0)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    return xt[tr], yt[tr], xt[te], yt[te]


def test_l1_zeroes_the_noise_columns_and_keeps_the_informative_ones():
    """CATALOGUE: L1 drives weights to exactly zero and acts as feature selection. On breast_cancer
    with 10 added noise columns (the zoo's logistic regression, batch gradient descent), every
    weight on a noise column ends exactly at 0, informative columns keep theirs, and the test
    accuracy stays within a point of the unregularised model's. The subgradient form of the same
    penalty reaches no zero at all."""
    from deeppipe.models import build_model

    x, y, x_test, y_test = _noisy_breast_cancer()
    task = Task("binary", 1, ("malignant", "benign"))
    results = {}
    for name, reg in (("plain", None), ("l1", {"l1": 0.02}), ("subgradient", {"l1": 0.02, "l1_mode": "subgradient"})):
        torch.manual_seed(0)
        net = build_model({"zoo": "logistic_regression"}, (40,), 1)
        fit(net, TensorBatches(x, y, 455, seed=0), None,
            quiet(epochs=300, optimizer={"name": "sgd", "lr": 0.2}, **({"regularization": reg} if reg else {})), task)
        with torch.no_grad():
            accuracy = float(((net(x_test)[:, 0] > 0).float() == y_test).float().mean())
        results[name] = (accuracy, net.linear.weight.detach()[0])
    (acc_plain, w_plain), (acc_l1, w_l1), (_, w_sub) = results["plain"], results["l1"], results["subgradient"]
    assert int((w_plain == 0).sum()) == 0
    assert torch.equal(w_l1[30:], torch.zeros(10))  # every noise column: exactly zero
    assert int((w_l1[:30] != 0).sum()) >= 12  # informative columns survive (correlated ones share the work)
    assert acc_l1 >= acc_plain - 0.01 and acc_plain > 0.95
    assert int((w_sub == 0).sum()) == 0


def test_prelu_slopes_get_no_weight_decay_and_no_penalty():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.PReLU(3), nn.Linear(3, 2))
    slope = model[1].weight
    assert all(p is not slope for p in penalised_params(model))
    opt = build_optimizer(model, OptimizerConfig(name="sgd", lr=0.1, weight_decay=0.5))
    assert next(g for g in opt.param_groups if any(p is slope for p in g["params"]))["weight_decay"] == 0
    build_penalty(model, RegularizationConfig(l2=1.0, l1=1.0, l1_mode="subgradient"))().backward()
    assert slope.grad is None and model[0].weight.grad is not None
    before = slope.detach().clone()
    build_proximal(opt, model, RegularizationConfig(l1=10.0))()
    assert torch.equal(slope.detach(), before) and torch.equal(model[0].weight, torch.zeros(3, 4))


def test_l2_makes_small_dense_weights(digits_sources, task):
    train, val = digits_sources
    cfg = quiet(epochs=4, optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9})
    plain, l2 = mlp(), mlp()
    fit(plain, train, val, cfg, task)
    fit(l2, train, val, {**cfg, "regularization": {"l2": 1e-2}}, task)
    assert l2[1].weight.norm() < 0.9 * plain[1].weight.norm()
    assert int((l2[1].weight == 0).sum()) == 0  # small, not sparse


def _two_branches() -> dict:
    return {"layers": [{"Flatten": {}, "name": "flat"},
                       {"Linear": {"out_features": 16}, "name": "branch1", "from": "flat"},
                       {"Linear": {"out_features": 16}, "name": "branch2", "from": "flat"},
                       {"Add": {}, "from": ["branch1", "branch2"]}, {"ReLU": {}},
                       {"Linear": {"out_features": 10}}]}


def test_soft_sharing_penalty_value_and_it_pulls_two_branches_together(digits_sources, task):
    from deeppipe.models import build_model

    cfg = RegularizationConfig(soft_sharing=[{"a": "branch1", "b": "branch2", "weight": 0.5}])
    net = build_model(_two_branches(), (1, 8, 8), 10)
    gap = sum(float(((p - q) ** 2).sum().detach()) for p, q in zip(net.branch1.parameters(), net.branch2.parameters()))
    assert float(build_penalty(net, cfg)().detach()) == pytest.approx(0.5 * gap, rel=1e-5)

    def distance(soft: list) -> float:
        torch.manual_seed(1)
        model = build_model(_two_branches(), (1, 8, 8), 10)
        train, val = digits_sources
        fit(model, train, val, quiet(epochs=3, optimizer={"name": "sgd", "lr": 0.05},
                                     regularization={"soft_sharing": soft}), task)
        return float(torch.cat([(p - q).detach().flatten() for p, q in zip(model.branch1.parameters(),
                                                                 model.branch2.parameters())]).norm())

    assert distance([{"a": "branch1", "b": "branch2", "weight": 1.0}]) < 0.25 * distance([])


def test_soft_sharing_names_two_sub_networks_of_one_shape():
    from deeppipe.models import build_model

    net = build_model({"layers": [*_two_branches()["layers"][:2], {"Linear": {"out_features": 8}, "name": "other",
                                                                   "from": "flat"},
                                  {"Concat": {}, "from": ["branch1", "other"]}, {"Linear": {"out_features": 10}}]},
                      (1, 8, 8), 10)
    with pytest.raises(SpecError, match="differ in shape") as err:
        sharing_pairs(net, RegularizationConfig(soft_sharing=[{"a": "branch1", "b": "other", "weight": 1}]))
    assert err.value.path == "train.regularization.soft_sharing[0]"
    with pytest.raises(SpecError, match="did you mean 'branch1'") as err:
        sharing_pairs(net, RegularizationConfig(soft_sharing=[{"a": "brnch1", "b": "other", "weight": 1}]))
    assert err.value.path == "train.regularization.soft_sharing[0].a"


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
