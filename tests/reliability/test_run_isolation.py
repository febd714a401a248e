"""Issue 15, item 1: two runs of one experiment at once. A second run stops at once naming the
first (or, with DEEPPIPE_LOCK=wait, queues behind it), whether the first is a `kedro run` or a
`dvc repro` stage. Real processes, tiny data (test_belonging.py: a stage never reads what another run wrote)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from deeppipe.training import checkpoint_info
from tests.integration.conftest import env
from tests.integration.conftest import run as run_cli

from . import conftest as rel
from .conftest import NAME, kedro, one_message, project, tiny, wait_for

pytestmark = pytest.mark.slow
EPOCHS = 3000  # tiny digits: it trains until the test kills it, once the others have tried


def _training(root: Path):
    """The lock's record while the holder trains (its second checkpoint is written)."""
    record = root / "data/06_models" / NAME / "checkpoints/.run.lock.json"

    def check():
        try:
            held = json.loads(record.read_text())
        except (OSError, ValueError):
            return None
        folders = [p for p in record.parent.iterdir() if p.is_dir()]
        info = checkpoint_info(folders[0]) if folders else None
        return held if held.get("state") == "running" and info and info["epoch"] >= 2 else None

    return check


def test_a_second_run_stops_at_once_naming_the_first_or_waits_for_it(tmp_path: Path) -> None:
    root = project(tmp_path / "p", tiny(epochs=EPOCHS))
    run_cli(["dvc", "init", "--no-scm", "-q"], root)
    run_cli(["deeppipe", "dvc"], root)
    repro = subprocess.Popen(["dvc", "repro"], cwd=root, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    queued = None
    try:
        holder = wait_for(_training(root), timeout=300)
        assert "--tags train" in holder["command"]  # the DVC stage's own `kedro run` holds the lock
        t0 = time.monotonic()
        second = kedro(root)
        assert time.monotonic() - t0 < 60 and second.returncode == 3
        out = one_message(second, f"pid {holder['pid']}", socket.gethostname(), holder["command"], "DEEPPIPE_LOCK=wait")
        assert "ingested" not in out  # nothing done
        log = tmp_path / "queued.log"
        with log.open("w") as sink:
            queued = subprocess.Popen(["kedro", "run", "--pipeline", NAME, "--tags", "ingest,split"], cwd=root,
                                      env=env(DEEPPIPE_LOCK="wait"), stdout=sink, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        wait_for(lambda: "waiting for the other run" in log.read_text(), timeout=120)
        os.killpg(repro.pid, signal.SIGKILL)  # the holder dies: the queued run takes over at once
        queued.wait(timeout=300)
        queued_out = log.read_text()
    finally:
        for p in (repro, queued):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    assert queued.returncode == 0, queued_out[-3000:]
    assert "waiting for the other run" in queued_out and "was killed" in queued_out, queued_out[-3000:]
    (killed,) = rel.runs(root)  # the refused run opened no MLflow run; the killed one is closed
    assert killed.info.status == "KILLED"
    assert not rel.leftovers(root)

