"""A throw-away copy of the Kedro project with tiny experiments, run through the real CLIs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

TINY_DIGITS = {
    "description": "tiny digits CNN for tests",
    "seed": 7,
    "data": {"source": {"type": "sklearn", "name": "digits"}, "split": {"val": 0.1, "test": 0.2}},
    "model": {"layers": [
        {"Conv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1}}, {"ReLU": {}},
        {"MaxPool2d": {"kernel_size": 2}}, {"Flatten": {}}, {"Linear": {"out_features": 10}}]},
    "train": {"epochs": 4, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.01}, "progress": False},
}


def make_project(root: Path, experiments: dict[str, dict]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copy(REPO / ".dvcignore", root / ".dvcignore")
    shutil.copytree(REPO / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    (root / "pipelines").mkdir()
    for name, spec in experiments.items():
        (root / "pipelines" / f"{name}.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    src = root / "src"
    src.mkdir()
    (src / "deeppipe").symlink_to(REPO / "src" / "deeppipe")  # DVC deps on code resolve here
    return root


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e.update({"KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "MPLBACKEND": "Agg",
              "PATH": f"{BIN}{os.pathsep}{e.get('PATH', '')}", "DEEPPIPE_DEFAULT_EXPERIMENT": "digits_tiny",
              "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "200"})
    e.pop("MLFLOW_TRACKING_URI", None)
    e.update(extra)
    return e


def run(args: list[str], cwd: Path, check: bool = True, **extra_env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=env(**extra_env), capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("proj"), {"digits_tiny": TINY_DIGITS})


PG = "postgresql://postgres@127.0.0.1:5432"  # this machine's PostgreSQL (see .library/env)


def fresh_databases(count: int, prefix: str = "deeppipe_test"):
    """A generator fixture body: ``count`` new, empty PostgreSQL databases (their URLs), dropped
    afterwards; the test is skipped when the server is not reachable."""
    import uuid

    psycopg2 = pytest.importorskip("psycopg2")
    try:
        conn = psycopg2.connect(f"{PG}/postgres", connect_timeout=3)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    conn.autocommit = True
    names = [f"{prefix}_{uuid.uuid4().hex[:8]}" for _ in range(count)]
    with conn.cursor() as cur:
        for name in names:
            cur.execute(f"CREATE DATABASE {name}")
    try:
        yield [f"{PG}/{name}" for name in names]
    finally:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.close()
