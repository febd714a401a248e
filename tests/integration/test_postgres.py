"""MLflow on PostgreSQL (the many-machines backend) through MLFLOW_TRACKING_URI."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import TINY_DIGITS, make_project, run

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
PG = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture
def pg_database() -> str:
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        conn = psycopg2.connect(f"{PG}/postgres", connect_timeout=3)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    conn.autocommit = True
    name = f"deeppipe_test_{uuid.uuid4().hex[:8]}"
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    yield f"{PG}/{name}"
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    conn.close()


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
