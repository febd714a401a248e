"""The `deeppipe` command: validate, summary, schema, list, data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from deeppipe.commands import main

REPO = Path(__file__).resolve().parents[1]
FASHION = REPO.parent / "shared" / "data" / "fashion-mnist"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(REPO)
    return CliRunner()


def test_validate_every_shipped_experiment_that_has_its_data(cli: CliRunner) -> None:
    for spec in sorted((REPO / "pipelines").glob("*.yml")):
        path = (yaml.safe_load(spec.read_text())["data"]["source"] or {}).get("path")
        if path and not (REPO / path).exists():  # data the user brings (CIFAR-10)
            continue
        if "fashion" in spec.name and not (REPO / "data/01_raw/fashion-mnist").exists():  # make data (also the
            continue  # upstream of fashion_to_digits_transfer, whose pair is validated against it)
        result = cli.invoke(main, ["validate", str(spec.relative_to(REPO))])
        assert result.exit_code == 0, result.output
        assert "OK" in result.output


def test_validate_reports_shape_mistakes_with_the_layer_path(cli: CliRunner, tmp_path: Path) -> None:
    spec = yaml.safe_load((REPO / "pipelines/digits_cnn.yml").read_text())
    del spec["model"]["layers"][7]  # the Flatten before the Linear layers
    f = tmp_path / "bad.yml"
    f.write_text(yaml.safe_dump(spec))
    result = cli.invoke(main, ["validate", str(f)])
    assert result.exit_code != 0
    assert str(f) in result.output and "model.layers[" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_summary_of_an_experiment_and_of_a_zoo_model(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(main, ["summary", "digits_cnn"])
    assert result.exit_code == 0, result.output
    assert "151,498" in result.output  # parameters of the default experiment's network
    result = cli.invoke(main, ["summary", "zoo:resnet18", "--input", "3,224,224", "--num-classes", "1000"])
    assert result.exit_code == 0, result.output
    assert "11,689,512" in result.output
    result = cli.invoke(main, ["summary", "zoo:resnt18"])
    assert result.exit_code != 0 and "resnet18" in result.output


def test_schema_is_json_schema_of_every_section(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    result = cli.invoke(main, ["schema", "-o", str(out)])
    assert result.exit_code == 0, result.output
    schema = json.loads(out.read_text())
    assert {"data", "model", "train", "augment", "evaluate", "register"} <= set(schema["properties"])
    assert schema["required"] == ["data", "model"]


def test_list(cli: CliRunner) -> None:
    result = cli.invoke(main, ["list"])
    assert "digits_cnn" in result.output and "diabetes_mlp" in result.output


@pytest.mark.skipif(not FASHION.exists(), reason="shared Fashion-MNIST not present")
def test_data_copies_fashion_mnist(tmp_path: Path) -> None:
    dest = tmp_path / "raw" / "fashion-mnist"
    result = CliRunner().invoke(main, ["data", "fashion-mnist", "--from", str(FASHION), "--dest", str(dest),
                                       "--no-dvc"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in FASHION.glob("*.gz"))


def test_preview_writes_a_grid(tmp_path: Path) -> None:
    spec = yaml.safe_load((REPO / "pipelines/digits_cnn.yml").read_text())
    spec["augment"] = {"train": [{"Affine": {"rotate": [-20, 20], "p": 1.0}}, {"CoarseDropout": {"p": 0.5}}]}
    f = tmp_path / "aug.yml"
    f.write_text(yaml.safe_dump(spec))
    out = tmp_path / "preview.png"
    result = CliRunner().invoke(main, ["preview", str(f), "--n", "8", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"\x89PNG"
