"""Optimisers by name, their options' effects, parameter groups and frozen layers."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from deeppipe.errors import SpecError
from deeppipe.training import fit
from deeppipe.training.config import OptimizerConfig
from deeppipe.training.optim import build_optimizer

from .helpers import mlp, quiet


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)
    )


@pytest.mark.parametrize("name", ["sgd", "adagrad", "rmsprop", "adam", "adamw", "NAdam", "adamax"])
def test_each_optimizer_trains_digits(name, digits_sources, task):
    train, val = digits_sources
    opt = {"name": name, "lr": {"sgd": 0.1, "adagrad": 0.05}.get(name, 0.005)}
    if name == "sgd":
        opt["momentum"] = 0.9
    r = fit(mlp(), train, val, quiet(epochs=3, optimizer=opt), task)
    assert r.history[-1]["val/accuracy"] > 0.75, name


def test_unknown_optimizer_and_unknown_keys_name_the_path():
    with pytest.raises(SpecError) as err:
        build_optimizer(mlp(), OptimizerConfig(name="sgd", momentun=0.9))
    assert "train.optimizer.momentun" in str(err.value)
    assert "did you mean 'momentum'" in str(err.value)
    with pytest.raises(SpecError) as err:
        build_optimizer(mlp(), OptimizerConfig(name="adamm"))
    assert "train.optimizer.name" in str(err.value) and "did you mean 'adam'" in str(err.value)


def _one_step_update(opt_kwargs: dict, steps: int = 3) -> torch.Tensor:
    """Parameter after a few steps on f(w) = sum(w) (constant gradient 1)."""
    w = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(w.weight)
    opt = build_optimizer(w, OptimizerConfig(**opt_kwargs))
    for _ in range(steps):
        opt.zero_grad()
        w.weight.sum().backward()
        opt.step()
    return w.weight.detach().clone().squeeze()


def test_momentum_nesterov_dampening_effects():
    plain = _one_step_update({"name": "sgd", "lr": 0.1})
    mom = _one_step_update({"name": "sgd", "lr": 0.1, "momentum": 0.9})
    nest = _one_step_update({"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True})
    damp = _one_step_update({"name": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.5})
    assert plain == pytest.approx(-0.3)
    assert mom == pytest.approx(-0.1 * (1 + 1.9 + 2.71))  # v = mu v + g
    assert nest == pytest.approx(-0.1 * (1.9 + 2.71 + 3.439))  # g + mu v
    assert damp == pytest.approx(-0.1 * (1 + 1.4 + 1.76))  # v = mu v + (1 - d) g


def test_adagrad_step_keeps_shrinking():
    w = [_one_step_update({"name": "adagrad", "lr": 1.0}, steps=s) for s in range(1, 5)]
    steps = [float(w[0])] + [float(b - a) for a, b in itertools.pairwise(w)]
    assert steps == pytest.approx([-1 / (k**0.5) for k in range(1, 5)], rel=1e-4)


def test_weight_decay_skips_biases_and_norm_layers():
    model = _cnn()
    opt = build_optimizer(model, OptimizerConfig(name="sgd", lr=0.1, weight_decay=0.01))
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(model[0].weight), id(model[4].weight)}  # conv + linear weights only
    opt = build_optimizer(
        model, OptimizerConfig(name="sgd", weight_decay=0.01, decay_bias_and_norm=True)
    )
    assert all(g["weight_decay"] == 0.01 for g in opt.param_groups)


def test_adamw_decay_is_decoupled_from_the_gradient():
    """With a zero gradient Adam's L2 does nothing adaptive; AdamW shrinks w by lr * wd."""

    def shrink(name):
        lin = nn.Linear(1, 1, bias=False)
        nn.init.ones_(lin.weight)
        opt = build_optimizer(lin, OptimizerConfig(name=name, lr=0.1, weight_decay=0.5))
        lin.weight.grad = torch.zeros_like(lin.weight)
        opt.step()
        return float(lin.weight.detach())

    assert shrink("adamw") == pytest.approx(1 - 0.1 * 0.5)
    assert shrink("adam") == pytest.approx(1 - 0.1, abs=1e-3)  # L2 grad normalised by Adam


def test_param_groups_by_pattern(digits_sources, task):
    model = mlp()
    cfg = OptimizerConfig(
        name="sgd",
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
        param_groups=[
            {"match": "3.*", "lr": 0.01, "momentum": 0.5},
            {"match": ["1.bias"], "weight_decay": 0.0},
        ],
    )
    opt = build_optimizer(model, cfg)
    by_param = {id(p): g for g in opt.param_groups for p in g["params"]}
    assert by_param[id(model[3].weight)]["lr"] == 0.01
    assert by_param[id(model[3].weight)]["momentum"] == 0.5
    assert by_param[id(model[1].weight)]["lr"] == 0.1
    assert by_param[id(model[1].weight)]["weight_decay"] == 1e-4
    with pytest.raises(SpecError) as err:
        build_optimizer(model, OptimizerConfig(param_groups=[{"match": "head.*", "lr": 0.1}]))
    assert "train.optimizer.param_groups[0].match" in str(err.value)
    with pytest.raises(SpecError) as err:
        build_optimizer(
            model, OptimizerConfig(name="sgd", param_groups=[{"match": "3", "betas": 1}])
        )
    assert "train.optimizer.param_groups[0].betas" in str(err.value)


def test_frozen_layers_do_not_change(digits_sources, task):
    train, val = digits_sources
    model = mlp()
    before = model[1].weight.detach().clone(), model[3].weight.detach().clone()
    fit(model, train, val, quiet(epochs=1, freeze=["1"], optimizer={"lr": 0.01}), task)
    assert torch.equal(model[1].weight, before[0]) and not model[1].weight.requires_grad
    assert not torch.equal(model[3].weight, before[1])
    with pytest.raises(SpecError) as err:
        fit(mlp(), train, val, quiet(epochs=1, freeze=["encoder.*"]), task)
    assert "train.freeze[0]" in str(err.value)
    with pytest.raises(SpecError, match="every parameter is frozen"):
        fit(mlp(), train, val, quiet(epochs=1, freeze="*"), task)


def test_patterns_match_inside_a_wrapper():
    from deeppipe.training.params import matches

    assert matches("body.conv1.weight", "conv1") and matches("body.conv1.weight", "body.conv*")
    assert matches("body.layers.3.bias", "layers.3") and not matches("body.conv10.weight", "conv1")
    assert not matches("body.conv1.weight", "conv2")
