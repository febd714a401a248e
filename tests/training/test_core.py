"""The core API the Kedro train node calls: fit, predict, resolve_device, FitResult."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from deeppipe.data.batches import TensorBatches
from deeppipe.data.task import Task
from deeppipe.errors import SpecError
from deeppipe.tracking.tracker import MemoryTracker
from deeppipe.training import FitResult, TrainConfig, fit, predict, resolve_device

from .helpers import mlp, quiet


def test_fit_learns_digits_and_logs_once_per_epoch(digits_sources, task):
    train, val = digits_sources
    model, tracker = mlp(), MemoryTracker()
    cfg = TrainConfig(**quiet(epochs=4, optimizer={"name": "adam", "lr": 0.01}))
    result = fit(model, train, val, cfg, task, tracker=tracker)
    assert isinstance(result, FitResult)
    assert result.epochs_run == 4 and not result.stopped_early
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]  # as users read them
    keys = {
        "train/loss",
        "val/loss",
        "val/accuracy",
        "lr",
        "grad_norm",
        "weight_norm",
        "epoch_time_s",
        "samples_per_s",
    }
    assert keys <= set(result.history[-1])
    assert result.history[-1]["val/accuracy"] > 0.85  # a real model on real data
    assert result.history[-1]["train/loss"] < result.history[0]["train/loss"] / 3
    # one batched log_metrics call per epoch, step = epoch, no "epoch" key inside
    assert [step for step, _ in tracker.metrics] == [1, 2, 3, 4]
    assert all(keys <= set(m) and "epoch" not in m for _, m in tracker.metrics)
    assert result.best_epoch == int(np.argmin([h["val/loss"] for h in result.history])) + 1
    assert result.monitor == "val/loss"


def test_fit_accepts_a_plain_dict_and_reports_bad_keys(digits_sources, task):
    train, val = digits_sources
    result = fit(mlp(), train, None, {"epochs": 1, "progress": False}, task)
    assert result.epochs_run == 1 and "val/loss" not in result.history[0]
    with pytest.raises(SpecError) as err:
        fit(mlp(), train, val, {"epochs": 1, "optimiser": {}}, task)
    assert "train.optimiser" in str(err.value)


def test_predict_returns_logits_in_eval_mode_without_grad(digits):
    x, _ = digits
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Dropout(0.5), nn.Linear(16, 3))
    model.train()
    out1 = predict(model, x, batch_size=100)
    out2 = predict(model, torch.from_numpy(x), batch_size=7)
    assert out1.shape == (len(x), 3) and out1.dtype == np.float32
    np.testing.assert_allclose(out1, out2, rtol=1e-5, atol=1e-6)  # dropout off: deterministic
    with torch.no_grad():
        model.eval()
        expect = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out1, expect, rtol=1e-5, atol=1e-6)
    model.train()
    predict(model, x[:5])
    assert model.training  # mode restored
    assert predict(model, x[:0]).shape == (0, 3)


def test_resolve_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(SpecError) as err:
        resolve_device("cpuu")
    assert "train.device" in str(err.value) and "did you mean 'cpu'" in str(err.value)
    if not torch.cuda.is_available():
        with pytest.raises(SpecError, match="CUDA is not available"):
            resolve_device("cuda:0")
    else:
        with pytest.raises(SpecError, match="CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_binary_task_one_logit_and_flat_targets(digits_tensors):
    x, y = digits_tensors
    yb = (y >= 5).float()  # (N,) float 0/1 against (N, 1) logits: must not broadcast to (N, N)
    train = TensorBatches(x[:1500], yb[:1500], 64, seed=1)
    val = TensorBatches(x[1500:], yb[1500:], 512, shuffle=False)
    model = mlp(outputs=1)
    result = fit(
        model,
        train,
        val,
        quiet(epochs=4, optimizer={"lr": 0.01}),
        Task("binary", 1, ("low", "high")),
    )
    assert result.history[-1]["val/accuracy"] > 0.85
    assert result.history[-1]["val/loss"] < 0.4


def test_regression_and_reconstruction(digits_tensors):
    x, y = digits_tensors
    target = x.reshape(len(x), -1).mean(dim=1, keepdim=True) * 10  # a learnable real value
    train = TensorBatches(x[:1500], target[:1500].squeeze(1), 64, seed=0)
    r = fit(
        mlp(outputs=1), train, None, quiet(epochs=5, optimizer={"lr": 0.01}), Task("regression", 1)
    )
    assert r.history[-1]["train/loss"] < 0.1 * r.history[0]["train/loss"]

    torch.manual_seed(0)
    ae = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 64), nn.Unflatten(1, (1, 8, 8))
    )
    src = TensorBatches(x[:1500], y[:1500], 64, seed=0)  # labels ignored: the target is the input
    val = TensorBatches(x[1500:], y[1500:], 512, shuffle=False)
    r = fit(ae, src, val, quiet(epochs=5, optimizer={"lr": 0.01}), Task("reconstruction", 64))
    assert "val/accuracy" not in r.history[-1]
    assert r.history[-1]["val/loss"] < 0.6 * r.history[0]["val/loss"] < 0.06


def test_metrics_fn_values_are_logged_and_monitorable(digits_sources, task, scratch_registries):
    """A metric computed by the caller's metrics_fn is monitorable once registered: its record
    gives early stopping the direction (higher is better here)."""
    from deeppipe.registry import METRICS

    train, val = digits_sources
    if "top2" not in METRICS:
        METRICS.register("top2", direction="max", default=False)(lambda y_true, probs: 0.0)

    def metrics_fn(y_true, outputs):
        assert isinstance(y_true, np.ndarray) and outputs.shape == (len(y_true), 10)
        return {"top2": float(np.mean([t in np.argsort(o)[-2:] for t, o in zip(y_true, outputs)]))}

    r = fit(
        mlp(),
        train,
        val,
        quiet(
            epochs=3, optimizer={"lr": 0.01}, early_stopping={"monitor": "val/top2", "patience": 5}
        ),
        task,
        metrics_fn=metrics_fn,
    )
    assert all(0 < h["val/top2"] <= 1 for h in r.history)
    assert r.monitor == "val/top2" and r.history[r.best_epoch - 1]["val/top2"] == max(
        h["val/top2"] for h in r.history
    )


def test_deterministic_mode_repeats_and_restores_flags(digits_sources, task):
    train, val = digits_sources
    cfg = quiet(epochs=2, deterministic=True, optimizer={"lr": 0.01})
    a, b = mlp(), mlp()
    fit(a, train, val, cfg, task, seed=3)
    assert not torch.are_deterministic_algorithms_enabled()
    fit(b, train, val, cfg, task, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_progress_bar_runs(digits_sources, task, capsys):
    train, val = digits_sources
    fit(mlp(), train, val, {"epochs": 1, "progress": True, "log_every": 5}, task)
    out = capsys.readouterr().out  # on stdout, with the run's log lines, not apart on stderr
    assert "epoch 1/1" in out and "loss=" in out and "val/accuracy" in out


def test_validate_config_catches_mistakes_without_a_model():
    from deeppipe.training import validate_config

    ok = validate_config(
        {
            "optimizer": {"name": "sgd", "momentum": 0.9},
            "schedule": {"name": "cosine", "warmup_epochs": 1},
            "loss": {"name": "cross_entropy", "label_smoothing": 0.1},
        }
    )
    assert isinstance(ok, TrainConfig)
    cases = {
        "train.optimizer.momentun": {"optimizer": {"name": "sgd", "momentun": 0.9}},
        "train.optimizer.param_groups[0].betaz": {
            "optimizer": {"param_groups": [{"match": "x", "betaz": [0.9, 0.99]}]}
        },
        "train.schedule.gama": {"schedule": {"name": "step", "step_size": 2, "gama": 0.5}},
        "train.loss.name": {"loss": {"name": "hueber"}},
        "train.compile.mdoe": {"compile": {"mdoe": "max-autotune"}},
        "train.freeze": {"freeze": 3},
    }
    for path, section in cases.items():
        with pytest.raises(SpecError) as err:
            validate_config(section)
        assert path in str(err.value), (path, str(err.value))
