"""The shipped CIFAR-10 speed-run recipe (pipelines/cifar10_speedrun.yml) runs on a CPU, on a small
generated folder of CIFAR-10's layout (train/<class>/*.png, test/<class>/*.png; the real set is
brought by the user): device-side batch augmentation, test-time flips, a model that learns."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from deeppipe.evaluation.predictor import TTAPredictor, predictor_for
from deeppipe.spec.loader import load_spec

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _cifar_like(root: Path, train: int = 16, test: int = 6) -> Path:
    """Class c: noise around a colour of its own (learnable in an epoch or two), saved as PNGs."""
    from PIL import Image

    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (len(CLASSES), 3))
    for part, n in (("train", train), ("test", test)):
        for c, name in enumerate(CLASSES):
            folder = root / part / name
            folder.mkdir(parents=True)
            for i in range(n):
                img = np.clip(colours[c] + rng.normal(0, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(folder / f"{i}.png")
    return root


def test_the_cifar10_speedrun_recipe_runs_on_a_cpu(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from deeppipe.stages import run_experiment

    data = _cifar_like(tmp_path / "cifar10")
    rs = load_spec(REPO / "pipelines" / "cifar10_speedrun.yml",
                   {"data.source.path": str(data), "train.epochs": 3, "train.batch_size": 32, "train.progress": False,
                    "train.optimizer.lr": 0.05})
    with caplog.at_level(logging.INFO, logger="deeppipe"):
        run = run_experiment(rs)
    assert "device-side batch path" in caplog.text  # flip, pad and crop on whole batches
    assert isinstance(predictor_for(rs.spec, run.trained.artifact), TTAPredictor)  # test-time flips
    assert len(run.split.test) == 60 and run.trained.artifact.input_shape == (3, 32, 32)
    assert [h["epoch"] for h in run.trained.history] == [1, 2, 3]
    assert run.evaluation.scalars["accuracy"] >= 0.5, run.evaluation.scalars  # chance is 0.1
