"""Explaining (issue 13): saliency maps fall on the pixels a digit is drawn with, and feature
importance ranks informative features above pure-noise columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from deeppipe.evaluation.saliency import feature_importance, saliency
from deeppipe.spec.loader import load_spec


def _run(tmp_path: Path, raw: dict, monkeypatch):
    from deeppipe.stages import run_experiment

    path = tmp_path / "explain.yml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    return run_experiment(load_spec(path))


def test_saliency_of_digits_lies_where_digits_are_drawn(tmp_path: Path, monkeypatch) -> None:
    run = _run(tmp_path, {"seed": 0, "data": {"source": {"type": "sklearn", "name": "digits"}},
                          "model": {"layers": [{"Conv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1}}, "ReLU",
                                               "Flatten", {"Linear": {"out_features": "auto"}}]},
                          "train": {"epochs": 6, "progress": False, "optimizer": {"name": "adam", "lr": 0.01}}}, monkeypatch)
    assert "saliency" in run.evaluation.plots
    x = run.samples.x[run.split.test]
    g, _ = saliency(run.trained.artifact.build(), x)
    assert g.shape == x.shape
    ink = x.mean(axis=0)[0] > 0.1  # pixels some digits use; the left and right columns are almost never inked
    assert g.mean(axis=0)[0][ink].mean() > 1.5 * g.mean(axis=0)[0][~ink].mean()  # measured: 1.9x


def test_feature_importance_ranks_informative_features_above_noise(tmp_path: Path, monkeypatch) -> None:
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    rng = np.random.default_rng(0)
    x = np.hstack([d.data, rng.normal(size=(len(d.data), 10)) * d.data.std(0).mean()]).astype(np.float32)
    np.savez(tmp_path / "bc_noise.npz", x=x, y=d.target)
    run = _run(tmp_path, {"seed": 0, "data": {"source": {"type": "npz", "path": str(tmp_path / "bc_noise.npz")}},
                          "model": {"layers": [{"Linear": {"out_features": 32}}, "ReLU", {"Linear": {"out_features": "auto"}}]},
                          "train": {"epochs": 30, "progress": False, "optimizer": {"name": "adam", "lr": 0.003}}}, monkeypatch)
    assert "feature_importance" in run.evaluation.plots
    tr = run.split.train
    imp = feature_importance(run.trained.artifact.build(), run.samples.x[tr], run.samples.y[tr])
    real, noise = imp[:30], imp[30:]
    top = np.argsort(imp)[::-1][:10]
    assert (top < 30).all() and np.median(real) > 1.5 * np.median(noise), (real, noise)
