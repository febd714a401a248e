"""train.ema: the exponential moving average of the weights is what is validated, early-stopped
on and saved; batch-norm statistics travel with it; it survives a resume; and it helps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deeppipe.data.batches import TensorBatches
from deeppipe.errors import SpecError
from deeppipe.tracking.tracker import MemoryTracker
from deeppipe.training import fit
from deeppipe.training.api import _as_config

from .helpers import max_diff, quiet


class Crash(MemoryTracker):
    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def log_metrics(self, metrics, step=None) -> None:
        super().log_metrics(metrics, step)
        if step == self.at:
            raise KeyboardInterrupt


def bn_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(512, 10)
    )


# SGD with momentum at a constant, too-high step: the last iterate jumps around the minimum
NOISY = quiet(epochs=4, batch_size=32, optimizer={"name": "sgd", "lr": 0.3, "momentum": 0.9})


@pytest.fixture
def sources(digits_tensors):
    """1,500 training digits in batches of 32 (steps enough for an average), 297 to validate."""
    x, y = digits_tensors
    val = TensorBatches(x[1500:], y[1500:], 512, shuffle=False)
    return TensorBatches(x[:1500], y[:1500], 32, seed=0), val


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def test_the_averaged_weights_generalise_better_than_the_last_iterate(sources, task):
    train, val = sources
    x, y = val.x, val.y
    plain, averaged = bn_cnn(), bn_cnn()
    last = fit(plain, train, val, NOISY, task).history[-1]
    ema = fit(averaged, train, val, {**NOISY, "ema": {"decay": 0.98}}, task).history[-1]
    assert ema["val/loss"] < 0.75 * last["val/loss"], (ema["val/loss"], last["val/loss"])
    assert accuracy(averaged, x, y) > accuracy(plain, x, y) + 0.02
    # the training loss is the raw model's: averaging changes what is evaluated, not the steps
    assert ema["train/loss"] == pytest.approx(last["train/loss"], rel=1e-6)


def test_the_saved_model_is_the_evaluated_average_batch_norm_statistics_included(
    sources, task
):
    train, val = sources
    model = bn_cnn()
    hist = fit(model, train, val, {**NOISY, "epochs": 2, "ema": {"decay": 0.9}}, task).history
    raw = bn_cnn()
    fit(raw, train, val, {**NOISY, "epochs": 2}, task)
    bn, raw_bn = model[1], raw[1]
    # the averaged running mean is not the raw network's last one ...
    assert float((bn.running_mean - raw_bn.running_mean).abs().max()) > 1e-3
    assert int(bn.num_batches_tracked) == int(raw_bn.num_batches_tracked)  # copied, not averaged
    # ... and re-evaluating the returned model reproduces the logged (averaged) validation loss
    model.eval()
    with torch.no_grad():
        loss = float(nn.functional.cross_entropy(model(val.x), val.y))
    assert loss == pytest.approx(hist[-1]["val/loss"], rel=1e-4)


def test_early_stopping_restores_the_best_average_and_a_resume_continues_it(
    tmp_path, sources, task
):
    train, val = sources
    cfg = {**NOISY, "ema": {"decay": 0.95}}
    ref = bn_cnn()
    fit(ref, train, val, cfg, task, seed=3)
    with pytest.raises(KeyboardInterrupt):
        fit(bn_cnn(), train, val, cfg, task, tracker=Crash(at=3), checkpoint_dir=tmp_path,
            seed=3, spec_hash="h")
    resumed = bn_cnn(seed=7)
    result = fit(resumed, train, val, cfg, task, checkpoint_dir=tmp_path, seed=3, spec_hash="h")
    assert result.resumed_from == 2
    assert max_diff(ref, resumed) == 0.0  # the average came back from the checkpoint too
    best = bn_cnn()
    es = {**cfg, "epochs": 3, "early_stopping": {"monitor": "val/accuracy", "patience": 5}}
    r = fit(best, train, val, es, task)
    top = max(h["val/accuracy"] for h in r.history)
    assert accuracy(best, val.x, val.y) == pytest.approx(top, abs=1e-6)


@pytest.mark.parametrize("bad", [{"decay": 1.0}, {"decay": 0.99, "every": 0}, {"decy": 0.9}])
def test_a_bad_ema_section_is_refused_with_its_path(bad):
    with pytest.raises(SpecError, match=r"train\.ema"):
        _as_config({"ema": bad})
