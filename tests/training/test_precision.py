"""Mixed precision, channels_last and torch.compile run and still learn (on the CPU here)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deeppipe.errors import SpecError
from deeppipe.training import fit
from deeppipe.training.trainer import Trainer

from .helpers import mlp, quiet


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 10),
    )


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_autocast_precisions_learn(precision, digits_sources, task):
    train, val = digits_sources
    trainer = Trainer(_cnn(), train, val, TrainConfig_(precision=precision), task)
    assert (trainer.scaler is not None) == (precision == "fp16")  # GradScaler for fp16 only
    r = trainer.run()
    assert r.history[-1]["val/accuracy"] > 0.8
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # fp32 masters


def TrainConfig_(**kw):
    from deeppipe.training import TrainConfig

    return TrainConfig(**quiet(epochs=3, optimizer={"lr": 0.01}, **kw))


def test_channels_last(digits_sources, task):
    train, val = digits_sources
    model = _cnn()
    r = fit(model, train, val, quiet(epochs=2, channels_last=True, optimizer={"lr": 0.01}), task)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert r.history[-1]["val/accuracy"] > 0.8


def test_compile_on_request(digits_sources, task):
    """Dynamo + AOT autograd without C++ code generation (inductor's compile takes ~30 s
    on one CPU core; benchmarks/trainer_overhead.py --compile measures the real thing)."""
    train, val = digits_sources
    model = mlp()
    cfg = quiet(epochs=2, compile={"backend": "aot_eager"}, optimizer={"lr": 0.01})
    r = fit(model, train, val, cfg, task)
    assert r.history[-1]["val/accuracy"] > 0.8
    assert not any(k.startswith("_orig_mod") for k in model.state_dict())  # plain weights kept
    with pytest.raises(SpecError, match=r"train.compile.mdoe"):
        fit(mlp(), train, val, quiet(epochs=1, compile={"mdoe": "default"}), task)
