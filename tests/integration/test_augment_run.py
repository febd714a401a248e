"""Augmentation inside a real run: offline copies as their own stage, preview, TTA, val/test untouched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from deeppipe.dvcgen import build_dvc_yaml
from deeppipe.errors import SpecError
from deeppipe.spec.loader import load_spec
from tests.integration.conftest import make_project, run

pytestmark = pytest.mark.slow

SPEC = {
    "description": "tiny digits with augmentation",
    "seed": 3,
    "data": {"source": {"type": "sklearn", "name": "digits"}, "split": {"val": 0.1, "test": 0.2}},
    "augment": {"train": [{"Affine": {"translate_px": [-1, 1], "p": 0.5}}], "tta": ["HorizontalFlip"],
                "offline": {"copies": 1}},
    "model": {"layers": [{"Conv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1}}, {"ReLU": {}},
                         {"Flatten": {}}, {"Linear": {"out_features": "auto"}}]},
    "train": {"epochs": 3, "batch_size": 32, "progress": False},
}


def test_offline_augmentation_preview_and_tta(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", {"digits_aug": SPEC})
    run(["kedro", "run", "--pipeline", "digits_aug"], project)
    with np.load(project / "data/04_feature/digits_aug/augmented.npz") as a, \
            np.load(project / "data/05_model_input/digits_aug/split.npz") as s:
        assert len(a["x"]) == 2 * len(s["train"])  # originals + one augmented copy
    assert (project / "data/08_reporting/digits_aug/train/augmentation_preview.png").stat().st_size > 1000
    metrics = json.loads((project / "data/08_reporting/digits_aug/metrics.json").read_text())["test"]
    assert metrics["accuracy"] > 0.8 and 0 < metrics["log_loss"] < 1.0

    stages = yaml.safe_load(build_dvc_yaml(project / "pipelines"))["stages"]
    (params,) = stages["digits_aug-augment"]["params"]
    keys = params["pipelines/digits_aug.yml"]
    assert keys[0] == "seed" and {"augment.train", "augment.offline.copies"} <= set(keys)
    assert "data/04_feature/digits_aug/augmented.npz" in stages["digits_aug-train"]["deps"]


def test_augment_mistake_names_file_and_path(tmp_path: Path) -> None:
    bad = {**SPEC, "augment": {"train": [{"Affine": {"rotat": 10}}]}}
    f = tmp_path / "bad.yml"
    f.write_text(yaml.safe_dump(bad))
    with pytest.raises(SpecError) as info:
        load_spec(f, check_model=False)
    assert str(f) in str(info.value) and "augment.train[0].Affine" in str(info.value)


def test_offline_asked_for_on_the_command_line_is_decided_like_the_file(tmp_path: Path) -> None:
    """--params augment.offline adds the augment stage exactly as the file would: the copies are
    written by their own node (to the catalog's augmented.npz) and the train node reads them."""
    spec = {**SPEC, "augment": {"train": SPEC["augment"]["train"]}}  # no offline section in the file
    project = make_project(tmp_path / "p", {"digits_aug": spec})
    proc = run(["kedro", "run", "--pipeline", "digits_aug", "--tags", "ingest,split,augment,train",
                "--params", "augment.offline.copies=2,train.epochs=1"], project)
    with np.load(project / "data/05_model_input/digits_aug/split.npz") as s, \
            np.load(project / "data/04_feature/digits_aug/augmented.npz") as a:
        n = len(s["train"])
        assert len(a["x"]) == 3 * n
    out = " ".join((proc.stdout + proc.stderr).split())
    assert f"augment.offline: {n} training samples -> {3 * n}" in out and "materialised in memory" not in out
