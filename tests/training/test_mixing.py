"""Mixup / CutMix in the training step, and gradient accumulation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deeppipe.data.batches import TensorBatches
from deeppipe.training import fit
from deeppipe.training.config import MixConfig
from deeppipe.training.mixing import Mixer, cutmix

from .helpers import max_diff, mlp, quiet


def test_mixup_is_a_convex_combination():
    x = torch.rand(16, 1, 8, 8)
    mixer = Mixer(MixConfig(alpha=0.4), None, seed=0)
    mixer.start_epoch(0)
    mixed, perm, lam = mixer(x)
    assert 0 <= lam <= 1 and sorted(perm.tolist()) == list(range(16))
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[perm])
    mixer.start_epoch(0)
    _, perm2, lam2 = mixer(x)  # same (seed, epoch): same mixing (resume-safe)
    assert lam2 == lam and torch.equal(perm, perm2)


def test_cutmix_pastes_a_box_and_corrects_lambda():
    x = torch.zeros(4, 1, 10, 10)
    x[1] = 1.0
    perm = torch.tensor([1, 0, 3, 2])
    out, _, lam = cutmix(x, perm, 0.75, np.random.default_rng(3))
    pasted = float(out[0].mean())  # share of sample 0 that now comes from sample 1
    assert pasted > 0 and lam == pytest.approx(1 - pasted)  # lam matches the real box area


def test_mixup_and_cutmix_train_and_mix_the_loss(digits_sources, task):
    train, val = digits_sources
    base = fit(mlp(), train, val, quiet(epochs=4, optimizer={"lr": 0.01}), task)
    for key in ("mixup", "cutmix"):
        r = fit(
            mlp(),
            train,
            val,
            quiet(epochs=4, optimizer={"lr": 0.01}, **{key: {"alpha": 1.0}}),
            task,
        )
        # mixed targets are harder to fit: the training loss stays well above the clean run's,
        # while the model still generalises
        assert r.history[-1]["train/loss"] > base.history[-1]["train/loss"] + 0.2, key
        assert r.history[-1]["val/accuracy"] > 0.8, key
    both = fit(
        mlp(),
        train,
        val,
        quiet(epochs=1, mixup={"alpha": 0.2}, cutmix={"alpha": 1.0, "prob": 0.5}),
        task,
    )
    assert np.isfinite(both.history[0]["train/loss"])


def test_gradient_accumulation_equals_the_bigger_batch(digits_tensors, task):
    x, y = digits_tensors
    big = TensorBatches(x, y, 64, seed=2)  # 1797 samples: the last batch is short
    small = TensorBatches(x, y, 32, seed=2)  # same permutation, half-size batches
    a, b = mlp(), mlp()
    opt = {"name": "sgd", "lr": 0.1, "momentum": 0.9}
    fit(a, big, None, quiet(epochs=2, optimizer=opt), task)
    fit(b, small, None, quiet(epochs=2, optimizer=opt, grad_accumulation=2), task)
    assert max_diff(a, b) < 1e-5
    c = mlp()
    fit(c, small, None, quiet(epochs=2, optimizer=opt), task)
    assert max_diff(a, c) > 1e-2  # without accumulation the runs really differ
