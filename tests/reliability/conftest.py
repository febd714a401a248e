"""Helpers for the reliability suite: real `kedro run`s in throw-away projects (with a fault
injected where asked), MLflow's view of them, and small hostile specs and data."""

from __future__ import annotations

import copy
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import mlflow
import yaml

from tests.integration.conftest import TINY_DIGITS, env, make_project
from tests.training.conftest import digits_sources, digits_tensors, task  # noqa: F401  (fixtures)

FAULTS = Path(__file__).with_name("faults")  # sitecustomize.py: DEEPPIPE_FAULT=kill:<part> / enospc:<part>
NAME = "digits_tiny"


def tiny(**train: Any) -> dict:
    spec = copy.deepcopy(TINY_DIGITS)
    spec["train"].update(train)
    return spec


def project(root: Path, spec: dict | None = None) -> Path:
    return make_project(root, {NAME: spec or tiny()})


def kedro(root: Path, *args: str, fault: str | None = None, timeout: float = 300,
          **extra_env: str) -> subprocess.CompletedProcess:
    """``kedro run --pipeline digits_tiny ARGS`` in ``root`` (never raises on failure)."""
    e = env(**extra_env)
    if fault:
        e["DEEPPIPE_FAULT"] = fault
        e["PYTHONPATH"] = os.pathsep.join([str(FAULTS), e.get("PYTHONPATH", "")])
    return subprocess.run(["kedro", "run", "--pipeline", NAME, *args], cwd=root, env=e, capture_output=True,
                          text=True, timeout=timeout)


def spawn(root: Path, *args: str, **extra_env: str) -> subprocess.Popen:
    return subprocess.Popen(["kedro", "run", "--pipeline", NAME, *args], cwd=root, env=env(**extra_env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait_for(check, timeout: float = 180, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {check}")


def one_message(proc: subprocess.CompletedProcess, *words: str) -> str:
    """A failed run that said what was wrong in deeppipe's words, without a traceback."""
    out = proc.stdout + proc.stderr
    assert proc.returncode not in (0, -9), out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    for w in words:
        assert w.lower() in out.lower(), f"{w!r} not in:\n{out[-3000:]}"
    return out


def client(root: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")


def runs(root: Path) -> list:
    c = client(root)
    exp = c.get_experiment_by_name(NAME)
    return [] if exp is None else c.search_runs([exp.experiment_id])


def steps(root: Path, run_id: str, key: str = "train/loss") -> list[int]:
    """Every logged step of ``key``, in order: a step twice is a run joined or logged twice."""
    return sorted(m.step for m in client(root).get_metric_history(run_id, key))


def leftovers(root: Path) -> list[Path]:
    """Temporaries of interrupted writes (deeppipe.files names them .<name>.*.tmp / .<name>.old)."""
    data = root / "data"
    return [p for p in data.rglob(".*") if p.name.endswith((".tmp", ".old"))] if data.is_dir() else []


def write_spec(folder: Path, raw: dict | str, name: str = "hostile.yml") -> Path:
    f = folder / name
    f.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw, sort_keys=False))
    return f
