"""The engine's `auto` settings: what each becomes on CUDA and on the CPU, and that a spec's own
value wins. CUDA is not on this machine: its resolution is checked on a torch.device("cuda")
with bf16 support passed in, the CPU path end to end."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deeppipe.data.batches import TensorBatches, _place, fits_on_device
from deeppipe.training import TrainConfig
from deeppipe.training.engine import resolve_engine
from deeppipe.training.optim import build_optimizer
from deeppipe.training.trainer import Trainer

from .helpers import mlp, quiet

CUDA = torch.device("cuda")
CPU = torch.device("cpu")


def _cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))


def _resolve(device, model, bf16=True, **kw):
    return resolve_engine(TrainConfig(**kw), device, model, bf16_supported=lambda: bf16)


def test_auto_on_cuda_turns_on_bf16_channels_last_compile_and_fused_kernels():
    eng = _resolve(CUDA, _cnn())
    assert (eng.precision, eng.channels_last, eng.compile, eng.fused, eng.fallback) == ("bf16", True, {}, True, True)
    assert eng.amp_dtype is torch.bfloat16
    assert eng.describe() == "bf16, channels_last, torch.compile, fused optimiser"
    # an MLP has no 2-D convolution: no channels_last; a GPU without bf16 stays in fp32
    eng = _resolve(CUDA, mlp(), bf16=False)
    assert (eng.precision, eng.channels_last, eng.compile) == ("fp32", False, {})
    # recurrent layers graph-break under dynamo: eager
    assert _resolve(CUDA, nn.Sequential(nn.LSTM(3, 4))).compile is None


def test_auto_on_the_cpu_is_plain_fp32_eager_training():
    eng = _resolve(CPU, _cnn())
    assert (eng.precision, eng.channels_last, eng.compile, eng.fused) == ("fp32", False, None, False)
    assert eng.amp_dtype is None and eng.describe() == "fp32"


@pytest.mark.parametrize("device", [CUDA, CPU])
def test_every_explicit_setting_wins_over_auto(device):
    eng = _resolve(device, _cnn(), precision="fp16", channels_last=False, compile={"mode": "max-autotune"},
                   optimizer={"name": "adam", "fused": False})
    assert (eng.precision, eng.channels_last, eng.compile, eng.fused, eng.fallback) == (
        "fp16", False, {"mode": "max-autotune"}, False, False)
    eng = _resolve(device, mlp(), precision="fp32", channels_last=True, compile=False)
    assert (eng.precision, eng.channels_last, eng.compile) == ("fp32", True, None)


def test_fused_kernels_are_asked_for_only_where_the_optimiser_has_them():
    model = mlp()
    adam = build_optimizer(model, TrainConfig(optimizer={"name": "adamw"}).optimizer, fused=True)
    assert adam.defaults["fused"] is True
    assert build_optimizer(model, TrainConfig().optimizer).defaults["fused"] is None  # torch's default
    rms = build_optimizer(model, TrainConfig(optimizer={"name": "adagrad"}).optimizer, fused=True)
    assert not rms.defaults.get("fused")  # Adagrad's fused kernel is CPU-only: not asked for
    own = build_optimizer(model, TrainConfig(optimizer={"name": "adam", "foreach": True}).optimizer, fused=True)
    assert own.defaults["foreach"] is True and not own.defaults["fused"]


def test_a_cpu_run_resolves_auto_to_what_it_trained_with_before(digits_sources, task):
    train, val = digits_sources
    trainer = Trainer(_cnn_digits(), train, val, TrainConfig(**quiet(epochs=1)), task)
    assert trainer.engine.describe() == "fp32" and trainer.scaler is None and trainer.net is trainer.model
    assert trainer.run().history[-1]["val/accuracy"] > 0.5


def _cnn_digits() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 10))


def test_data_larger_than_half_the_free_gpu_memory_stay_in_host_memory():
    x = torch.zeros(1000, 3, 32, 32, dtype=torch.uint8)  # 3 MB
    assert fits_on_device(x.numel(), CPU, free=0)  # the CPU holds what it holds
    assert fits_on_device(x.numel(), CUDA, free=2 * x.numel())
    assert not fits_on_device(x.numel(), CUDA, free=2 * x.numel() - 2)
    assert _place(x, CUDA, free=1000) is x  # left where it is: no copy, no CUDA call


def test_batches_sliced_from_host_memory_are_the_batches_of_resident_data():
    x, y = torch.arange(50.0).reshape(25, 2), torch.arange(25)
    src = TensorBatches(x, y, 4, seed=3, device=CPU)
    for xb, yb in src.epoch(2):
        assert torch.equal(xb[:, 0] / 2, yb.float())  # rows and targets gathered by one permutation
