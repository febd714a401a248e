"""Denoising autoencoders (issue 13): ``train.denoise`` corrupts the training inputs only; the
targets the loss sees are the clean inputs, validation is clean, and the trained network undoes
the noise better than the same autoencoder trained without it."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import deeppipe.training.trainer as trainer_module
from deeppipe.data.stage import ingest, split
from deeppipe.errors import SpecError
from deeppipe.spec.loader import load_spec
from deeppipe.training.denoise import DenoiseConfig, Denoising, corrupt
from deeppipe.training.stage import fit_experiment

SPEC = {"seed": 0, "data": {"source": {"type": "sklearn", "name": "digits"}, "task": "reconstruction",
                            "split": {"val": 0.1, "test": 0.2}},
        "model": {"zoo": "mlp_autoencoder", "code": 16, "hidden": 128},
        "train": {"epochs": 12, "batch_size": 32, "progress": False, "optimizer": {"name": "adam", "lr": 0.003}}}


def _write(tmp_path: Path, raw: dict, name: str = "dae") -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_loss_sees_corrupted_inputs_against_clean_targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    real = trainer_module.build_loss

    def recording(cfg, task):
        loss = real(cfg, task)

        def fn(out, y):
            seen.append((out.detach().clone(), y.detach().clone()))
            return loss(out, y)
        return fn

    monkeypatch.setattr(trainer_module, "build_loss", recording)
    raw = copy.deepcopy(SPEC)
    raw["train"].update(epochs=1, denoise={"gaussian": 0.5})
    rs = load_spec(_write(tmp_path, raw))
    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    inputs: list[torch.Tensor] = []
    real_fit = trainer_module.Trainer.train_epoch

    def spying(self, epoch):  # the batches the network is fed
        original = self.net.forward
        self.net.forward = lambda x: (inputs.append(x.detach().clone()), original(x))[1]
        try:
            return real_fit(self, epoch)
        finally:
            self.net.forward = original

    monkeypatch.setattr(trainer_module.Trainer, "train_epoch", spying)
    fit_experiment(rs, samples, parts)
    n_train = len(parts.train)
    targets = torch.cat([y for _, y in seen[: len(inputs)]]).reshape(n_train, -1).numpy()
    clean = samples.x[parts.train].reshape(n_train, -1)
    # every target is a clean training input, each exactly once; the inputs fed are not
    assert np.array_equal(np.sort(targets, axis=0), np.sort(clean, axis=0))
    fed = torch.cat(inputs).reshape(n_train, -1).numpy()
    assert np.abs(fed - targets).mean() == pytest.approx(0.5 * np.sqrt(2 / np.pi), rel=0.05)  # E|N(0, 0.5^2)|


def test_corruptions_are_seeded_and_leave_the_batch_itself_unchanged() -> None:
    x = torch.rand(64, 1, 8, 8)
    keep = x.clone()
    cfg = DenoiseConfig(masking=0.3, salt_pepper=0.1)
    a = corrupt(x, cfg, torch.Generator().manual_seed(1))
    b = corrupt(x, cfg, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and torch.equal(x, keep)
    zero = (a == 0) & (x != 0)
    assert 0.25 < float(zero.float().mean()) < 0.40  # masking 0.3 plus the pepper half of 0.1
    assert 0.03 < float(((a == x.max()) & (x != x.max())).float().mean()) < 0.07  # the salt half

    class Source:
        batch_size, num_samples = 64, 64

        def __len__(self):
            return 1

        def epoch(self, epoch):
            yield x, torch.zeros(64)

    one, two = list(Denoising(Source(), cfg, seed=3).epoch(0)), list(Denoising(Source(), cfg, seed=3).epoch(1))
    assert torch.equal(one[0][1], x) and not torch.equal(one[0][0], two[0][0])  # clean targets; new noise per epoch


def _noisy_error(rs, samples, parts, trained, std: float = 0.3) -> float:
    net = trained.artifact.build().eval()
    x = samples.x[parts.test]
    noisy = x + np.random.default_rng(0).normal(0, std, x.shape).astype(np.float32)
    with torch.no_grad():
        recon = net(torch.from_numpy(noisy)).numpy()
    return float(((recon - x) ** 2).mean())


def test_a_denoising_autoencoder_undoes_noise_better_than_a_plain_one(tmp_path: Path) -> None:
    errors = {}
    for name, denoise in (("plain", None), ("denoising", {"gaussian": 0.3})):
        raw = copy.deepcopy(SPEC)
        if denoise:
            raw["train"]["denoise"] = denoise
        rs = load_spec(_write(tmp_path, raw, name))
        samples = ingest(rs.spec)
        parts = split(rs.spec, samples)
        errors[name] = _noisy_error(rs, samples, parts, fit_experiment(rs, samples, parts))
    assert errors["denoising"] < 0.8 * errors["plain"], errors  # measured: 0.038 vs 0.064


def test_denoising_needs_an_autoencoder(tmp_path: Path) -> None:
    raw = copy.deepcopy(SPEC)
    raw["data"].pop("task")
    raw["model"] = {"zoo": "mlp"}
    raw["train"]["denoise"] = {"masking": 0.2}
    with pytest.raises(SpecError) as err:
        load_spec(_write(tmp_path, raw))
    assert "train.denoise" in str(err.value) and "data.task: reconstruction" in str(err.value)
    raw["data"]["task"], raw["model"] = "reconstruction", SPEC["model"]
    raw["train"]["denoise"] = {}
    with pytest.raises(SpecError) as err:
        load_spec(_write(tmp_path, raw))
    assert "train.denoise" in str(err.value) and "at least one of gaussian, masking, salt_pepper" in str(err.value)
