"""Issue 15, item 1 (every artefact of a run belongs to that run) and the lock itself: a stage
refuses a data set, split or model another run wrote; the experiment lock refuses a second holder,
names it, waits when asked, and is taken over from a killed holder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deeppipe.continuity import check_inputs
from deeppipe.data.stage import ingest, split
from deeppipe.runlock import RunLock, RunLocked, lock_mode
from deeppipe.spec.loader import load_spec
from deeppipe.training import TrainingError
from tests.conftest import REPO

from .conftest import write_spec

SPEC = {"seed": 3, "data": {"source": {"type": "sklearn", "name": "digits"}, "split": {"val": 0.1, "test": 0.2}},
        "model": {"layers": [{"Flatten": {}}, {"Linear": {"out_features": 10}}]}, "train": {"epochs": 1}}


class _Model:
    def __init__(self, sha: str) -> None:
        self.meta = {"data_sha256": sha}


def _stored(tmp_path: Path, **data):
    raw = json.loads(json.dumps(SPEC))
    raw["data"].update(data)
    rs = load_spec(write_spec(tmp_path, raw, "digits_belong.yml"), check_model=False)
    samples = ingest(rs.spec)
    return rs, samples, split(rs.spec, samples)


def test_a_stage_refuses_artefacts_another_run_wrote(tmp_path: Path) -> None:
    from deeppipe.tracking.provenance import data_fingerprint

    rs, samples, parts = _stored(tmp_path)
    name = "digits_belong"
    ok = {f"{name}.dataset": samples, f"{name}.split": parts, f"{name}.model": _Model(data_fingerprint(samples, parts))}
    check_inputs(rs, name, ok, root=REPO)  # this run's own artefacts pass

    _, small, small_split = _stored(tmp_path, limit=300)  # another run: --params data.limit=300
    with pytest.raises(TrainingError, match=r"dataset.npz does not belong to this run.*ingest stage"):
        check_inputs(rs, name, {**ok, f"{name}.dataset": small, f"{name}.split": small_split}, root=REPO)
    raw = json.loads(json.dumps(SPEC))
    raw["seed"] = 4  # another run's split of the same data
    other = load_spec(write_spec(tmp_path, raw, "digits_belong.yml"), check_model=False)
    with pytest.raises(TrainingError, match=r"split.npz does not belong to this run.*split stage"):
        check_inputs(rs, name, {**ok, f"{name}.split": split(other.spec, samples)}, root=REPO)
    with pytest.raises(TrainingError, match=r"model does not belong to this run.*trained on data and split"):
        check_inputs(rs, name, {**ok, f"{name}.model": _Model("0" * 16)}, root=REPO)


HOLD = """
import sys, time
from pathlib import Path
from deeppipe.runlock import RunLock
lock = RunLock(Path(sys.argv[1]), "exp").acquire(0)
lock.note(mlflow_run_id="run-of-the-holder")
print("held", flush=True)
time.sleep(600)
"""


def test_the_lock_refuses_names_waits_and_is_taken_over_from_a_killed_holder(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked) as err:
            RunLock(tmp_path, "exp").acquire(0)
        assert f"pid {holder.pid}" in str(err.value) and "DEEPPIPE_LOCK=wait" in str(err.value)
        t0 = time.monotonic()
        with pytest.raises(RunLocked, match="after waiting 1 s"):
            RunLock(tmp_path, "exp").acquire(1.0)
        assert time.monotonic() - t0 >= 1.0
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    lock = RunLock(tmp_path, "exp").acquire(0)  # the kernel released the dead holder's lock
    assert lock.previous["pid"] == holder.pid and lock.previous["mlflow_run_id"] == "run-of-the-holder"
    lock.release()
    again = RunLock(tmp_path, "exp").acquire(0)
    assert again.previous is None  # a holder that released is not mistaken for a killed one
    again.release()


@pytest.mark.parametrize(("value", "wait"), [("fail", 0.0), ("wait", None), ("wait:30", 30.0), ("", 0.0)])
def test_lock_modes(value: str, wait: float | None) -> None:
    assert lock_mode(value) == wait
