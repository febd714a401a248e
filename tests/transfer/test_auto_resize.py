"""Inputs are resized to the pretrained network's input size when they differ (issue 13): decided
when the spec is validated, so the stored data set, the model's spec and its input shape agree;
an explicit data.resize wins; another channel count is refused naming both shapes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from deeppipe.artifact import save_artifact
from deeppipe.data.stage import ingest, read_as, split
from deeppipe.errors import SpecError
from deeppipe.spec.loader import load_spec
from deeppipe.training.stage import fit_experiment
from tests.conftest import FASHION_DIR
from tests.integration.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def source_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fashion_mnist_pretrain.yml as shipped, on 600 Fashion-MNIST images for one epoch."""
    if not FASHION_DIR.exists():
        pytest.skip(f"Fashion-MNIST not found at {FASHION_DIR}")
    folder = tmp_path_factory.mktemp("pretrain")
    rs = load_spec(REPO / "pipelines" / "fashion_mnist_pretrain.yml",
                   {"data.source.path": str(FASHION_DIR), "data.limit": 600, "train.epochs": 1, "train.progress": False})
    samples = ingest(rs.spec)
    save_artifact(fit_experiment(rs, samples, split(rs.spec, samples), picture=False).artifact, folder / "model")
    return folder / "model"


def test_the_shipped_transfer_runs_without_resize_and_stores_28x28(source_model: Path, tmp_path: Path) -> None:
    shipped = yaml.safe_load((REPO / "pipelines" / "fashion_to_digits_transfer.yml").read_text())
    assert "resize" not in shipped["data"]
    rs = load_spec(REPO / "pipelines" / "fashion_to_digits_transfer.yml",
                   {"model.pretrained.from": str(source_model), "train.epochs": 1, "train.progress": False})
    assert rs.spec.data.resize == [28, 28]  # decided at validation: every stage reads the same spec
    samples = ingest(rs.spec)
    assert samples.x.shape[1:] == (1, 28, 28)
    assert samples.meta["read_as"] == read_as(rs.spec) and "resize28x28" in read_as(rs.spec)
    trained = fit_experiment(rs, samples, split(rs.spec, samples), picture=False)
    meta = trained.artifact.meta
    assert meta["input_shape"] == [1, 28, 28] and meta["pretrained"]["resized_to"] == [28, 28]
    assert trained.artifact.spec["data"]["resize"] == [28, 28]  # the stored model's spec says so too
    save_artifact(trained.artifact, tmp_path / "model")
    assert trained.artifact.build()(  # the stored model reads 28x28 images
        __import__("torch").zeros(2, 1, 28, 28)).shape == (2, 10)


def _digits(folder: Path, source: Path, resize: list[int] | None = None) -> Path:
    data: dict = {"source": {"type": "sklearn", "name": "digits"}, "split": {"val": 0.1, "test": 0.5}}
    if resize is not None:
        data["resize"] = resize
    shipped = yaml.safe_load((REPO / "pipelines" / "fashion_to_digits_transfer.yml").read_text())
    raw = {**shipped, "data": data, "model": {**shipped["model"], "pretrained": {"from": str(source), "new_head": True}}}
    path = folder / "digits.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_an_explicit_resize_wins_and_a_wrong_one_is_refused(source_model: Path, tmp_path: Path) -> None:
    rs = load_spec(_digits(tmp_path, source_model, [28, 28]))
    assert rs.spec.data.resize == [28, 28]
    with pytest.raises(SpecError) as err:
        load_spec(_digits(tmp_path, source_model, [20, 20]))
    assert "28x28" in str(err.value) and "20x20 after data.resize" in str(err.value)


def test_another_channel_count_is_refused_naming_both_shapes(source_model: Path, tmp_path: Path) -> None:
    rgb = tmp_path / "rgb"
    shutil.copytree(source_model, rgb)
    meta = json.loads((rgb / "meta.json").read_text())
    (rgb / "meta.json").write_text(json.dumps({**meta, "input_shape": [3, 28, 28]}))
    with pytest.raises(SpecError) as err:
        load_spec(_digits(tmp_path, rgb))
    text = str(err.value)
    assert "[3, 28, 28]" in text and "[1, 8, 8]" in text and "model.pretrained.from" in text, text
    assert np.all([w in text for w in ("digits.yml",)])


def test_validate_and_summary_say_the_images_are_resized(source_model: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from deeppipe.commands import main

    spec = str(_digits(tmp_path, source_model))
    for command in (["validate", spec], ["summary", spec]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 0, result.output
        assert "resized to 28x28 automatically" in result.output, result.output
    assert "automatically" not in CliRunner().invoke(main, ["validate", str(_digits(tmp_path, source_model,
                                                                                   [28, 28]))]).output


def test_an_image_folder_is_decoded_at_the_source_size(source_model: Path, tmp_path: Path) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits

    from deeppipe.spec.source_size import resized_automatically

    digits = load_digits()
    for i in range(40):
        folder = tmp_path / "images" / str(digits.target[i] % 2)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((digits.images[i] * 15).astype(np.uint8)).save(folder / f"{i}.png")
    shipped = yaml.safe_load((REPO / "pipelines" / "fashion_to_digits_transfer.yml").read_text())
    raw = {**shipped, "data": {"source": {"type": "image_folder", "path": str(tmp_path / "images"), "channels": 1},
                               "split": {"val": 0.2, "test": 0.2}},
           "model": {**shipped["model"], "pretrained": {"from": str(source_model), "new_head": True}}}
    (tmp_path / "folder.yml").write_text(yaml.safe_dump(raw))
    rs = load_spec(tmp_path / "folder.yml")
    assert tuple(rs.spec.data.source.size) == (28, 28) and rs.spec.data.resize is None
    assert resized_automatically(rs) == [28, 28]
    assert ingest(rs.spec).x.shape[1:] == (1, 28, 28)
    raw["data"]["source"]["size"] = [16, 16]  # a size of the user's own: kept, and refused naming the one to use
    (tmp_path / "folder.yml").write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError, match="28x28"):
        load_spec(tmp_path / "folder.yml")
