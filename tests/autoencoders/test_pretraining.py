"""Unsupervised pre-training (issue 13), as the shipped pairs run it: the autoencoder of
pipelines/digits_autoencoder_pretrain.yml learns the digits without labels, and
pipelines/digits_autoencoder_classifier.yml starts its encoder from it and trains on 53 labels,
beside the same classifier from scratch (pipelines/digits_few_labels_mlp.yml); the Fashion-MNIST
pair does the same with a denoising autoencoder on the 60,000 unlabelled training images
(pipelines/fashion_mnist_autoencoder_pretrain.yml) and 20 labels
(fashion_mnist_autoencoder_classifier.yml, baseline fashion_mnist_few_labels_mlp.yml). The
autoencoders never see the classifiers' test images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from deeppipe.artifact import save_artifact
from deeppipe.data.stage import ingest, split
from deeppipe.spec.loader import load_spec
from deeppipe.training.stage import fit_experiment

REPO = Path(__file__).resolve().parents[2]


def _run(name: str, overrides: dict | None = None):
    rs = load_spec(REPO / "pipelines" / f"{name}.yml", {"train.progress": False, **(overrides or {})})
    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    return rs, samples, parts, fit_experiment(rs, samples, parts)


def _accuracy(trained, samples, parts) -> float:
    net = trained.artifact.build().eval()
    with torch.no_grad():
        pred = net(torch.from_numpy(samples.x[parts.test])).argmax(1).numpy()
    return float((pred == samples.y[parts.test]).mean())


def test_an_autoencoders_encoder_starts_a_classifier_on_few_labels(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the classifier reads data/06_models/digits_autoencoder_pretrain/model here
    _, _, ae_parts, ae = _run("digits_autoencoder_pretrain", {"train.epochs": 30})
    folder = tmp_path / "data/06_models/digits_autoencoder_pretrain/model"
    save_artifact(ae.artifact, folder)
    _, samples, parts, pretrained = _run("digits_autoencoder_classifier")
    _, base_samples, base_parts, scratch = _run("digits_few_labels_mlp")
    assert len(parts.train) == 53 and np.array_equal(parts.test, ae_parts.test)  # the AE never saw the test images
    assert not set(parts.test) & set(ae_parts.train) and np.array_equal(parts.train, base_parts.train)
    assert pretrained.artifact.meta["pretrained"]["loaded"] == 4  # enc1 and code: weights and biases
    source = load_file(str(folder / "model.safetensors"))
    assert not torch.equal(pretrained.artifact.state_dict["body.enc1.0.weight"], source["body.enc1.0.weight"])
    acc_pre, acc_scratch = _accuracy(pretrained, samples, parts), _accuracy(scratch, base_samples, base_parts)
    # measured here (seed 0, a 30-epoch autoencoder): 0.752 from the encoder, 0.730 from scratch. The
    # shipped 60-epoch pair over seeds 0-4 gains +0.007, -0.032, 0.000, +0.056, -0.013 (README): no
    # reliable gain, so this guards the transfer (weights loaded into the right layers, a usable
    # encoder), not a gain
    assert acc_pre > 0.70 and acc_pre > acc_scratch - 0.03, (acc_pre, acc_scratch)


def test_an_encoder_pretrained_on_unlabelled_fashion_mnist_starts_a_classifier_on_20_labels(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped Fashion-MNIST pair at tiny sizes (a denoising autoencoder of one epoch on 4,320
    images, classifiers of 6 epochs): the same 20 labels (2 per class) and the same 2,400 official test
    images for both classifiers, none of them seen by the autoencoder, and the encoder loaded."""
    from tests.conftest import FASHION_DIR

    if not FASHION_DIR.exists():
        pytest.skip(f"Fashion-MNIST not found at {FASHION_DIR}")
    monkeypatch.chdir(tmp_path)  # the classifier reads data/06_models/fashion_mnist_autoencoder_pretrain/model
    data = {"data.source.path": str(FASHION_DIR)}
    _, ae_samples, ae_parts, ae = _run("fashion_mnist_autoencoder_pretrain", {**data, "data.limit": 6000,
                                                                              "train.epochs": 1})
    assert ae_parts.train.max() < len(ae_samples.x) - ae_samples.n_official_test  # training images only
    folder = tmp_path / "data/06_models/fashion_mnist_autoencoder_pretrain/model"
    save_artifact(ae.artifact, folder)
    _, samples, parts, pretrained = _run("fashion_mnist_autoencoder_classifier", {**data, "train.epochs": 6})
    _, base_samples, base_parts, scratch = _run("fashion_mnist_few_labels_mlp", {**data, "train.epochs": 6})
    assert np.bincount(samples.y[parts.train]).tolist() == [2] * 10
    assert np.array_equal(parts.train, base_parts.train) and np.array_equal(parts.test, base_parts.test)
    n = len(samples.x)
    assert samples.n_official_test == 2400 and np.array_equal(parts.test, np.arange(n - 2400, n))
    assert pretrained.artifact.meta["pretrained"]["loaded"] == 4  # enc1 and code: weights and biases
    source = load_file(str(folder / "model.safetensors"))
    assert not torch.equal(pretrained.artifact.state_dict["body.enc1.0.weight"], source["body.enc1.0.weight"])
    acc_pre, acc_scratch = _accuracy(pretrained, samples, parts), _accuracy(scratch, base_samples, base_parts)
    # a usable encoder after one epoch, not the gain: the shipped 5-epoch autoencoder and 60-epoch
    # classifiers measure it over five label draws (README, "Measured")
    assert acc_pre > 0.35 and acc_scratch > 0.3, (acc_pre, acc_scratch)
