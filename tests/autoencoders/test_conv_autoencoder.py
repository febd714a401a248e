"""A convolutional denoising autoencoder end to end on a Fashion-MNIST subset (issue 13): the zoo's
``conv_autoencoder`` with ``train.denoise``, scored by ``run_experiment`` with every autoencoder
output: per-sample scores, per-pixel scores (and their heat map), the reconstructions grid and the
codes (32x7x7, shown as their principal components)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from deeppipe.spec.loader import load_spec


def test_a_convolutional_denoising_autoencoder_gives_every_output(tmp_path: Path, fashion_slice,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from deeppipe.stages import run_experiment

    x, y = fashion_slice
    np.savez(tmp_path / "fashion.npz", x=x[:1200], y=y[:1200])
    raw = {"seed": 0, "data": {"source": {"type": "npz", "path": str(tmp_path / "fashion.npz")},
                               "task": "reconstruction", "split": {"val": 0.1, "test": 0.2}},
           "model": {"zoo": "conv_autoencoder"},
           "train": {"epochs": 3, "batch_size": 32, "progress": False, "denoise": {"masking": 0.25},
                     "optimizer": {"name": "adam", "lr": 0.003}}}
    (tmp_path / "cae.yml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    run = run_experiment(load_spec(tmp_path / "cae.yml"))
    ev, test = run.evaluation, run.split.test
    mse = ev.metrics["test"]["reconstruction_mse"]
    assert mse < 0.5 * float(np.var(x[:1200])), mse  # well below predicting the mean image's level
    assert {"reconstructions", "codes", "feature_scores"} <= set(ev.plots)
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in ev.plots.values())
    assert len(ev.predictions) == len(test) and (ev.predictions["score"] > 0).all()
    column = np.asarray(ev.per_class["column_scores"])
    assert column.shape == (784,)
    # the per-sample scores and the per-pixel scores are two sums of the same squared errors
    assert column.sum() == pytest.approx(ev.predictions["score"].sum(), rel=1e-6)
