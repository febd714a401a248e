"""A `kedro run` killed with SIGKILL mid-training resumes from its checkpoint into the same MLflow run,
and ends with the weights an uninterrupted run gets (CPU, deterministic mode)."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import time
from pathlib import Path

import mlflow
import pytest
from safetensors.torch import load_file

from deeppipe.layout import artefact
from deeppipe.spec.loader import load_spec
from deeppipe.training import checkpoint_info
from deeppipe.training.resume import checkpoint_dir
from tests.integration.conftest import TINY_DIGITS, env, make_project, run

pytestmark = pytest.mark.slow
EPOCHS = 20


def _spec() -> dict:
    spec = copy.deepcopy(TINY_DIGITS)
    spec["train"].update(epochs=EPOCHS, deterministic=True, batch_size=32)
    return spec


def test_sigkill_then_rerun_continues_the_same_run(tmp_path: Path) -> None:
    project = make_project(tmp_path / "killed", {"digits_tiny": _spec()})
    spec_hash = load_spec(project / "pipelines/digits_tiny.yml").hash
    ckpt = checkpoint_dir(artefact("digits_tiny", "checkpoints", root=project), spec_hash)
    proc = subprocess.Popen(["kedro", "run", "--pipeline", "digits_tiny"], cwd=project, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        info = checkpoint_info(ckpt)
        if info and info.get("epoch", 0) >= 3:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    info = checkpoint_info(ckpt)
    assert info is not None and not info.get("finished"), "the run finished before it could be killed"
    killed_at = info["epoch"]
    assert killed_at < EPOCHS

    run(["kedro", "run", "--pipeline", "digits_tiny"], project)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("digits_tiny").experiment_id])
    assert len(runs) == 1, "the rerun must continue the killed MLflow run"
    steps = {m.step for m in client.get_metric_history(runs[0].info.run_id, "train/loss")}
    assert steps == set(range(1, EPOCHS + 1))  # epochs count from 1
    assert "test/accuracy" in runs[0].data.metrics

    clean = make_project(tmp_path / "clean", {"digits_tiny": _spec()})
    run(["kedro", "run", "--pipeline", "digits_tiny", "--tags", "ingest,split,train"], clean)
    a = load_file(str(project / "data/06_models/digits_tiny/model/model.safetensors"))
    b = load_file(str(clean / "data/06_models/digits_tiny/model/model.safetensors"))
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a), f"resumed weights differ (killed after epoch {killed_at})"
