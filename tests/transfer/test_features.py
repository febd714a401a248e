"""Feature extraction (issue 13): ``data.source: {type: features}`` turns a trained model's layer
into a data set (the ingest stage's dataset.npz, DVC-tracked) that a new head trains on, and that
scikit-learn reads as plain arrays; pipelines/digits_autoencoder_features.yml on the codes of
pipelines/digits_autoencoder_pretrain.yml."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from deeppipe.artifact import save_artifact
from deeppipe.data.stage import ingest, split
from deeppipe.errors import SpecError
from deeppipe.evaluation.reconstruction import codes
from deeppipe.spec.loader import load_spec
from deeppipe.training.stage import fit_experiment

REPO = Path(__file__).resolve().parents[2]


def test_an_autoencoders_codes_become_a_data_set_a_new_head_and_sklearn_train_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.linear_model import LogisticRegression

    monkeypatch.chdir(tmp_path)
    ae_rs = load_spec(REPO / "pipelines/digits_autoencoder_pretrain.yml", {"train.epochs": 20, "train.progress": False})
    ae_samples = ingest(ae_rs.spec)
    ae_parts = split(ae_rs.spec, ae_samples)
    ae = fit_experiment(ae_rs, ae_samples, ae_parts)
    save_artifact(ae.artifact, tmp_path / "data/06_models/digits_autoencoder_pretrain/model")

    rs = load_spec(REPO / "pipelines/digits_autoencoder_features.yml", {"train.progress": False})
    samples = ingest(rs.spec)
    expected = codes(ae.artifact.build(), ae_samples.x)
    assert samples.x.shape == (1797, 32) and np.allclose(samples.x, expected, atol=1e-5)  # the code layer, in order
    assert np.array_equal(samples.y, ae_samples.y) and samples.task.num_classes == 10  # the digits' labels
    parts = split(rs.spec, samples)
    assert np.array_equal(parts.test, ae_parts.test) and len(parts.train) == 53

    stored = tmp_path / "dataset.npz"
    np.savez(stored, **samples.to_arrays())  # what the ingest stage writes: sklearn reads it as arrays
    arrays = np.load(stored)
    sk = LogisticRegression(max_iter=2000).fit(arrays["x"][parts.train], arrays["y"][parts.train])
    sk_acc = sk.score(arrays["x"][parts.test], arrays["y"][parts.test])
    head = fit_experiment(rs, samples, parts).artifact.build().eval()
    with torch.no_grad():
        acc = float((head(torch.from_numpy(samples.x[parts.test])).argmax(1).numpy() == samples.y[parts.test]).mean())
    # measured: 0.733 and 0.709 (on the raw pixels, LogisticRegression: 0.704); chance is 0.1
    assert acc > 0.65 and sk_acc > 0.65, (acc, sk_acc)


def test_a_layer_the_model_lacks_is_refused_with_the_closest_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the model folder need not exist: its experiment's spec is read
    with pytest.raises(SpecError) as err:
        load_spec(REPO / "pipelines/digits_autoencoder_features.yml", {"data.source.layer": "cod"})
    assert "data.source.layer" in str(err.value) and "did you mean 'code'" in str(err.value)
    with pytest.raises(SpecError) as err:
        load_spec(REPO / "pipelines/digits_autoencoder_features.yml", {"data.source.model": str(tmp_path / "none")})
    assert "no experiment of this project writes it" in str(err.value)
