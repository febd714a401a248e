"""MLflow on PostgreSQL (the many-machines backend) through MLFLOW_TRACKING_URI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import TINY_DIGITS, fresh_databases, make_project, run

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def pg_database() -> str:
    yield from (urls[0] for urls in fresh_databases(1))


def test_kedro_run_tracks_into_postgres(tmp_path: Path, pg_database: str) -> None:
    project = make_project(tmp_path / "p", {"digits_tiny": {**TINY_DIGITS, "train": {**TINY_DIGITS["train"],
                                                                                      "epochs": 1}}})
    run(["kedro", "run", "--pipeline", "digits_tiny"], project, MLFLOW_TRACKING_URI=pg_database)
    assert not (project / "mlflow.db").exists()
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=pg_database)
    (r,) = client.search_runs([client.get_experiment_by_name("digits_tiny").experiment_id])
    assert "test/accuracy" in r.data.metrics
    assert str(client.get_model_version_by_alias("digits_tiny", "champion").version) == "1"
