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


def test_dvc_output_follows_the_task_and_stays_readable(tmp_path: Path) -> None:
    """Regression gets predicted-vs-true and residual plots (no confusion matrix); metrics.json
    holds the headline figures (per-class ones live in per_class.json); params are the scalar
    values a user compares, a layer list being one value."""
    from deeppipe.dvcgen import build_dvc_yaml

    regression = {"seed": 1, "data": {"source": {"type": "sklearn", "name": "diabetes"}},
                  "model": {"layers": [{"Linear": {"out_features": 8}}, {"ReLU": {}}, {"Linear": {"out_features": 1}}]},
                  "train": {"epochs": 2, "progress": False}}
    project = make_project(tmp_path / "p", {"digits_tiny": TINY_DIGITS, "diab": regression})
    dvc = yaml.safe_load(build_dvc_yaml(project / "pipelines"))
    plots = {next(iter(p)) for p in dvc["plots"]}
    assert {"diab: predicted vs true", "diab: residuals"} <= plots and "diab: confusion matrix" not in plots
    assert "digits_tiny: confusion matrix" in plots
    (params,) = dvc["stages"]["digits_tiny-train"]["params"]
    keys = params["pipelines/digits_tiny.yml"]
    assert "model.layers" in keys and "train.optimizer.lr" in keys and "train" not in keys
    run(["kedro", "run", "--pipeline", "digits_tiny"], project)
    metrics = json.loads((project / "data/08_reporting/digits_tiny/metrics.json").read_text())
    assert set(metrics) == {"test", "train", "evaluated_on"} and len(metrics["test"]) <= 10
    per_class = json.loads((project / "data/08_reporting/digits_tiny/per_class.json").read_text())
    assert set(per_class) == {str(i) for i in range(10)} and set(per_class["3"]) == {"precision", "recall", "f1", "support"}
