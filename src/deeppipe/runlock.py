"""One run of an experiment at a time: a lock file per experiment, held for the whole run.

The lock itself is ``filelock.FileLock`` (an ``flock`` on Unix: the kernel releases it when the
holder dies, however it dies, so a killed run's lock is taken over by the next run at once).
Beside it, a small JSON record says who holds it (pid, host, start time, command) so that a
second run can name the first, and what that run was doing (its MLflow run), so that the next
holder can tell a run that ended from one that was killed and clean up after it.

``DEEPPIPE_LOCK`` chooses what a second run does: ``fail`` (the default: stop at once, naming the
first run), ``wait`` (queue behind it) or ``wait:<seconds>`` (queue, then give up).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from filelock import FileLock, Timeout

from deeppipe.files import atomic_write

log = logging.getLogger(__name__)

LOCK_ENV = "DEEPPIPE_LOCK"
LOCK_FILE = ".run.lock"
RECORD_FILE = ".run.lock.json"


class RunLocked(click.ClickException):
    """Another run of the same experiment holds the lock (exit status 3)."""

    exit_code = 3

    def __str__(self) -> str:
        return self.message


def lock_mode(value: str | None = None) -> float | None:
    """``DEEPPIPE_LOCK`` as a wait in seconds: 0 for fail, None for wait for ever."""
    text = (value if value is not None else os.environ.get(LOCK_ENV, "fail")).strip().lower()
    if text in ("", "fail", "no", "0"):
        return 0.0
    if text == "wait":
        return None
    if text.startswith("wait:"):
        try:
            return max(0.0, float(text[5:]))
        except ValueError:
            pass
    raise click.UsageError(f"{LOCK_ENV}={value or os.environ.get(LOCK_ENV)!r}: expected fail, wait or wait:<seconds>")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def describe(record: dict[str, Any] | None) -> str:
    if not record:
        return "a process that left no record"
    started = record.get("started", "?")
    try:
        age = time.time() - datetime.fromisoformat(started).timestamp()
        started = f"{started} ({age:.0f} s ago)"
    except (TypeError, ValueError):
        pass
    return (f"pid {record.get('pid')} on host {record.get('host')}, started {started}: "
            f"{record.get('command') or '?'}")


class RunLock:
    """The lock of one experiment; ``previous`` is the record of a holder that died holding it."""

    def __init__(self, folder: Path, experiment: str) -> None:
        self.folder, self.experiment = Path(folder), experiment
        self.path, self.record_path = self.folder / LOCK_FILE, self.folder / RECORD_FILE
        self._lock: FileLock | None = None
        self.previous: dict[str, Any] | None = None
        self.record: dict[str, Any] = {}

    def read_record(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def acquire(self, wait: float | None = 0.0) -> RunLock:
        """Take the lock, waiting ``wait`` seconds (None: for ever); RunLocked names the holder."""
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.path), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            holder = self.read_record()
            if wait == 0:
                raise RunLocked(self._busy(holder)) from None
            log.info("waiting for the other run of '%s' to finish (%s)", self.experiment, describe(holder))
            try:
                lock.acquire(timeout=-1 if wait is None else wait)
            except Timeout:
                raise RunLocked(self._busy(self.read_record(), waited=wait)) from None
        self._lock = lock
        before = self.read_record()
        if before and before.get("state") == "running":
            self.previous = before  # it held the lock and never released it: killed
            log.warning("the previous run of '%s' was killed (%s); cleaning up after it", self.experiment,
                        describe(before))
        self.record = {"pid": os.getpid(), "host": socket.gethostname(),
                       "started": datetime.now(UTC).isoformat(timespec="seconds"),
                       "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
                       "state": "running", "mlflow_run_id": None}
        self._write()
        return self

    def _busy(self, holder: dict[str, Any] | None, waited: float | None = 0.0) -> str:
        who = describe(holder)
        if holder and holder.get("host") == socket.gethostname() and not _alive(int(holder.get("pid", 0))):
            who += " (that process has ended; a process it started still holds the lock)"
        after = f" after waiting {waited:.0f} s" if waited else ""
        return (f"another run of experiment '{self.experiment}' is in progress{after}: {who}. "
                f"Two runs at once would share its data, split, checkpoints and model. Wait for it to "
                f"finish or stop it, or set {LOCK_ENV}=wait to queue behind it (lock: {self.path}).")

    def note(self, **fields: Any) -> None:
        """Add to the holder's record (the MLflow run this run writes to)."""
        if self._lock is not None and any(self.record.get(k) != v for k, v in fields.items()):
            self.record.update(fields)
            self._write()

    def _write(self) -> None:
        atomic_write(self.record_path, json.dumps(self.record, indent=1))

    def release(self, state: str = "done") -> None:
        if self._lock is None:
            return
        try:
            self.note(state=state)
        finally:
            self._lock.release()
            self._lock = None

    @property
    def held(self) -> bool:
        return self._lock is not None


STARTUP_WAIT_S = 60.0


def startup_lock(project: Path) -> FileLock | None:
    """A short project-wide lock over a run's start-up (until its catalog exists): two first runs
    at once would otherwise both create the MLflow store, and one fails in the store's migrations.
    Held for seconds; a holder stuck longer (an idle interactive session) is waited for at most
    STARTUP_WAIT_S, then passed."""
    path = Path(project) / "data" / ".startup.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), thread_local=False)
    try:
        lock.acquire(timeout=STARTUP_WAIT_S)
    except Timeout:
        log.warning("another deeppipe run has been starting up for %.0f s (%s); going on without waiting",
                    STARTUP_WAIT_S, path)
        return None
    return lock
