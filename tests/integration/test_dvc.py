"""`dvc repro` runs every stage once, then nothing; editing one value reruns only what it affects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import TINY_DIGITS, make_project, run

pytestmark = pytest.mark.slow


def _ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}


def test_repro_reruns_only_affected_stages(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", {"digits_tiny": TINY_DIGITS})
    run(["dvc", "init", "--no-scm", "-q"], project)
    run(["dvc", "config", "core.analytics", "false"], project)
    run(["deeppipe", "dvc"], project)
    run(["deeppipe", "dvc", "--check"], project)

    first = run(["dvc", "repro"], project)
    assert _ran(first.stdout) == {f"digits_tiny-{s}" for s in ("ingest", "split", "train", "evaluate")}
    second = run(["dvc", "repro"], project)
    assert _ran(second.stdout) == set()

    metrics = run(["dvc", "metrics", "show", "--json"], project)
    shown = json.loads(metrics.stdout)
    assert "data/08_reporting/digits_tiny/metrics.json" in json.dumps(shown)

    plots = run(["dvc", "plots", "show", "--json"], project)
    shown = json.loads(plots.stdout)["data"]
    assert "digits_tiny: confusion matrix" in shown and "digits_tiny: loss curves" in shown
    assert any(k.endswith("confusion_matrix.png") for k in shown)

    spec_file = project / "pipelines/digits_tiny.yml"
    spec = yaml.safe_load(spec_file.read_text())
    spec["train"]["epochs"] = 2
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    third = run(["dvc", "repro"], project)
    assert _ran(third.stdout) == {"digits_tiny-train", "digits_tiny-evaluate"}
    assert json.loads((project / "data/08_reporting/digits_tiny/metrics.json").read_text())["train"]["epochs_run"] == 2

    # one MLflow run holds both the training and the evaluation of a `dvc repro`
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("digits_tiny").experiment_id])
    assert len(runs) == 2
    assert all("test/accuracy" in r.data.metrics and "train/loss" in r.data.metrics for r in runs)

    # the stale check fails when an experiment's structure changes
    spec["augment"] = None
    spec["evaluate"] = {"metrics": ["accuracy"]}
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert run(["deeppipe", "dvc", "--check"], project, check=False).returncode != 0
