"""Issue 15, items 12, 2, 9 and 11 through real `kedro run`s: one experiment killed at four moments
(inside the data set's write, mid-training, inside the final report's write after the last
checkpoint), then run to the end; then a full disk and a tampered model. Nothing is left RUNNING,
half-written or trained twice, and each failure is one message."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from deeppipe.layout import artefact, artefacts
from deeppipe.training import checkpoint_info

from . import conftest as rel
from .conftest import NAME, kedro, one_message, project, spawn, tiny, wait_for

pytestmark = pytest.mark.slow
EPOCHS = 60


def _snapshot(root: Path) -> dict[str, bytes]:
    out = {}
    for key in ("metrics", "predictions", "plots", "model"):
        path = artefact(NAME, key, root=root)
        for f in ([path] if path.is_file() else sorted(path.rglob("*"))):
            if f.is_file():
                out[str(f)] = f.read_bytes()
    return out


def test_killed_runs_leave_nothing_behind_and_the_next_run_finishes_the_work(tmp_path: Path) -> None:
    root = project(tmp_path / "p", tiny(epochs=EPOCHS, deterministic=True))
    ckpts = artefact(NAME, "checkpoints", root=root)

    # 1. killed inside the data set's atomic write, before any training (an orphan MLflow run)
    first = kedro(root, fault="kill:.dataset.npz.")
    assert first.returncode == -signal.SIGKILL
    assert rel.leftovers(root) and [r.info.status for r in rel.runs(root)] == ["RUNNING"]
    orphan = rel.runs(root)[0].info.run_id

    # 2. killed mid-training: the lock is taken over, the orphan closed, the leftover removed
    victim = spawn(root)
    wait_for(lambda: any((checkpoint_info(p) or {}).get("epoch", 0) >= 3 for p in ckpts.glob("*")
                         if p.is_dir()), timeout=240)
    os.killpg(victim.pid, signal.SIGKILL)
    out = victim.communicate()[0]
    assert "was killed" in out and "closed MLflow run" in out, out[-3000:]
    assert rel.client(root).get_run(orphan).info.status == "KILLED"
    training = next(r for r in rel.runs(root) if r.info.status == "RUNNING").info.run_id

    # 3. killed inside the metrics' write, after the last checkpoint: training resumes in the same
    #    MLflow run and ends; evaluation is cut
    third = kedro(root, fault="kill:.metrics.json.")
    assert third.returncode == -signal.SIGKILL and "resuming from" in third.stdout + third.stderr
    assert {r.info.run_id for r in rel.runs(root) if r.info.status == "RUNNING"} == {training}

    # 4. the rerun trains nothing again: it finishes the finished checkpoint's run
    last = kedro(root)
    assert last.returncode == 0, (last.stdout + last.stderr)[-3000:]
    assert f"resuming from {ckpts}" in last.stdout + last.stderr and f"at epoch {EPOCHS}" in last.stdout + last.stderr
    statuses = {r.info.run_id: r.info.status for r in rel.runs(root)}
    assert statuses == {orphan: "KILLED", training: "FINISHED"}
    assert rel.steps(root, training) == list(range(1, EPOCHS + 1))  # every epoch logged once: none twice, none lost
    assert "test/accuracy" in rel.client(root).get_run(training).data.metrics
    assert len(rel.client(root).search_model_versions(f"name='{NAME}'")) == 1
    assert not rel.leftovers(root) and not [p for p in ckpts.iterdir() if p.is_dir()]

    # item 9: a full disk while the reports are written: one message, the previous reports intact
    before = _snapshot(root)
    full = kedro(root, "--tags", "evaluate", "--params", "evaluate.metrics=[accuracy]", fault="enospc:.plots.")
    one_message(full, f"cannot write {artefact(NAME, 'plots', root=root)}", "no space left on device")
    assert _snapshot(root) == before and not rel.leftovers(root)

    # item 11: a pickle renamed model.safetensors: named as corrupt, nothing in it run
    weights = artefacts(NAME, root=root)["model"] / "model.safetensors"
    weights.write_bytes(b"\x80\x04\x95junk pickle")
    tampered = kedro(root, "--tags", "evaluate")
    one_message(tampered, str(weights), "corrupt")
