"""Real `kedro run` sessions on digits, part two (a file of its own so that `make test`'s two workers
share the slow runs): parts of the pipeline selected, runs told apart, MLflow's experiments."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from tests.integration.conftest import run
from tests.integration.test_kedro_run import _client, _count_runs

pytestmark = pytest.mark.slow


def test_no_empty_placeholder_experiment_and_system_metrics_on_request(project: Path) -> None:
    run(["kedro", "run", "--pipeline", "digits_tiny", "--params", "train.epochs=3,seed=5"], project,
        MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING="true", MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL="1")
    client = _client(project)
    names = {e.name for e in client.search_experiments()}
    assert names == {"Default", "digits_tiny"}, names
    (latest,) = client.search_runs([client.get_experiment_by_name("digits_tiny").experiment_id],
                                   filter_string="params.seed = '5'")
    assert any(k.startswith("system/cpu") for k in latest.data.metrics), sorted(latest.data.metrics)


def _latest(project: Path) -> mlflow.entities.Run:
    client = _client(project)
    return client.search_runs([client.get_experiment_by_name("digits_tiny").experiment_id],
                              order_by=["attributes.start_time DESC"], max_results=1)[0]


def test_runs_are_told_apart_with_one_param_per_value_and_readable_tags(project: Path) -> None:
    run(["kedro", "run", "--pipeline", "digits_tiny", "--params", "train.epochs=2,train.optimizer.lr=0.02"], project)
    r = _latest(project)
    assert r.info.run_name == "epochs=2 lr=0.02"  # the overrides, not the experiment's name again
    assert r.data.params["train.epochs"] == "2"
    assert not [k for k in r.data.params if k.startswith(("parameters", "overrides"))]  # each value once
    tags = r.data.tags
    assert not {"runner", "run_id", "runtime_params", "project_path"} & set(tags), sorted(tags)
    assert tags["kedro_command"] == "kedro run --pipeline digits_tiny --params train.epochs=2,train.optimizer.lr=0.02"
    assert tags["kedro.session_id"]
    # a later stage run continues the training run: its name and command stay, the stage's is added
    run(["kedro", "run", "--pipeline", "digits_tiny", "--tags", "evaluate"], project)
    again = _client(project).get_run(r.info.run_id)
    assert again.info.run_name == "epochs=2 lr=0.02"
    assert again.data.tags["kedro_command"] == tags["kedro_command"]
    assert again.data.tags["kedro_command.evaluate"] == "kedro run --pipeline digits_tiny --tags evaluate"
    plain = run(["kedro", "run", "--pipeline", "digits_tiny", "--params", "train.epochs=1", "--tags", "train"],
                project)
    assert plain.returncode == 0 and _latest(project).info.run_name == "epochs=1"


def test_every_way_of_selecting_part_of_the_pipeline_works_or_says_why(project: Path) -> None:
    """--nodes, --from-nodes, --to-nodes, --from-inputs and --tags: each stage run evaluates the
    stored model into the run that trained it (one registry version per model), or, when an
    input was never written, stops with one sentence and no MLflow run."""
    run(["kedro", "run", "--pipeline", "digits_tiny", "--params", "train.epochs=3"], project)
    trained, client = _latest(project), _client(project)
    versions = len(client.search_model_versions("name='digits_tiny'"))
    runs = _count_runs(project)
    for how in (["--from-nodes", "digits_tiny.evaluate"], ["--nodes", "digits_tiny.evaluate"],
                ["--from-inputs", "digits_tiny.model"], ["--to-nodes", "digits_tiny.split"]):
        proc = run(["kedro", "run", "--pipeline", "digits_tiny", *how], project)
        assert "Traceback" not in proc.stdout + proc.stderr, how
    assert _count_runs(project) == runs  # every stage run continued the training run (or was untracked)
    assert len(client.search_model_versions("name='digits_tiny'")) == versions  # the same model, registered once
    again = client.get_run(trained.info.run_id)
    assert again.data.params["train.epochs"] == "3" and "test/accuracy" in again.data.metrics
    assert again.info.status == "FINISHED"

    (project / "data/02_intermediate/digits_tiny/dataset.npz").unlink()
    proc = run(["kedro", "run", "--pipeline", "digits_tiny", "--tags", "train"], project, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in out
    assert "digits_tiny.dataset" in out and "the ingest stage writes it" in out and "--tags ingest,split" in out
    assert _count_runs(project) == runs  # no empty FAILED run
    run(["kedro", "run", "--pipeline", "digits_tiny", "--tags", "ingest"], project)  # leave the data in place
