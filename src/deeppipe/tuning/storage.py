"""Where a study lives, and what happens to the trials of a process that was killed.

- Embedded (no ``tune.storage``): Optuna's ``JournalStorage`` on a ``JournalFileBackend`` in the
  experiment's study folder, with its open-lock, so several local processes share it safely
  (SQLite is what Optuna's FAQ warns against for parallel work).
- ``tune.storage: postgresql://...`` (or any URL Optuna takes): ``RDBStorage`` with Optuna's
  heartbeat; a trial silent for two heartbeats is failed and run again by
  ``RetryHeartbeatStaleTrialCallback`` at the next trial any worker starts.

Optuna's journal storage has no heartbeat, so for it the liveness of a trial is hand-written
here: every worker holds an flock on its own file while it runs and stamps its trials with its
id; a RUNNING trial whose worker's lock can be taken belongs to a dead process (the kernel frees
the flock of a killed one at once) and is failed and retried by the same Optuna callback.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import uuid
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
from filelock import FileLock, Timeout
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

log = logging.getLogger(__name__)
JOURNAL = "study.journal"
WORKER_ATTR = "deeppipe.worker"
_GRACE = timedelta(seconds=60)  # a RUNNING trial not yet stamped by its worker is young, not dead


@dataclass
class Storage:
    """An opened storage, how to show it (never with a password), and its liveness folder."""

    storage: optuna.storages.BaseStorage
    shown: str
    workers: Path | None = None  # embedded: the folder of the workers' liveness locks

    @property
    def embedded(self) -> bool:
        return self.workers is not None


def open_storage(url: str | None, folder: Path, *, heartbeat: int, retries: int) -> Storage:
    """The study's storage: ``url`` if given (``tune.storage``), else the journal in ``folder``."""
    retry = _retry(retries)
    url = resolve_url(url)
    if url is None or url.startswith(("journal:", "file:")):
        path = Path(url.split(":", 1)[1]) if url else folder / JOURNAL
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(
            str(path), lock_obj=optuna.storages.journal.JournalFileOpenLock(str(path)))
        return Storage(optuna.storages.JournalStorage(backend), f"journal:{_relative(path)}", path.parent / "workers")
    if url.startswith("redis"):
        backend = optuna.storages.journal.JournalRedisBackend(url)
        return Storage(optuna.storages.JournalStorage(backend), shown_url(url), None)
    return Storage(_rdb(url, heartbeat, retry), shown_url(url))


def _rdb(url: str, heartbeat: int, retry: RetryHeartbeatStaleTrialCallback) -> optuna.storages.RDBStorage:
    """Optuna's RDBStorage; workers started together on an empty database race to create its
    tables (one of them gets a unique-violation): the loser waits and opens what the winner made."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(6):
        try:
            with warnings.catch_warnings():  # heartbeat_interval is "experimental" since Optuna 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, heartbeat_interval=heartbeat, grace_period=2 * heartbeat,
                    heartbeat_stale_trial_callback=retry,
                    engine_kwargs=_engine_kwargs(url))
        except (IntegrityError, ProgrammingError):
            if attempt == 5:
                raise
            time.sleep(0.3 * (attempt + 1) + random.random() * 0.3)
    raise AssertionError("unreachable")


def _engine_kwargs(url: str) -> dict[str, Any] | None:
    """SQLAlchemy engine options: connections checked before use (a database restarted during a
    long study), and on PostgreSQL asynchronous commit. A trial writes its records in about ten
    small transactions; with PostgreSQL's default each waits for the WAL to reach the disk
    (4 ms each on this project's machine: half of a trial's whole overhead). Asynchronous commit
    changes nothing for other workers (a commit is visible at once) or for a worker that dies; only
    a crash of the database server itself can lose its last ~0.6 s of commits (PostgreSQL's
    documentation: the database stays consistent), and a trial lost that way is failed by the
    heartbeat and run again. A URL that sets ``options`` itself (e.g.
    ``?options=-csynchronous_commit%3Don``) keeps its own."""
    if url.startswith("sqlite"):
        return None
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql") and "options=" not in url:
        kwargs["connect_args"] = {"options": "-c synchronous_commit=off"}
    return kwargs


def resolve_url(url: str | None) -> str | None:
    """``env:NAME`` reads the URL from the environment variable NAME: a database password then
    stays out of the spec, the run's MLflow params and dvc.yaml."""
    if url is None or not url.startswith("env:"):
        return url
    from deeppipe.errors import SpecError

    name = url[4:]
    value = os.environ.get(name)
    if not value:
        raise SpecError(f"the environment variable {name} is not set", path="tune.storage",
                        expected=f"{name}=postgresql://user:password@host:5432/optuna in the environment", found=url)
    return value


def _retry(retries: int) -> RetryHeartbeatStaleTrialCallback:
    with warnings.catch_warnings():  # "experimental" since Optuna 2.8, and the one way to retry
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryHeartbeatStaleTrialCallback(max_retry=retries)


def _relative(path: Path) -> str:
    """The journal's path as the project sees it (best_params.yml is the same on every checkout)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def shown_url(url: str) -> str:
    """A storage URL without its password (it is logged, tagged and written to best_params.yml)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a database URL (redis://...): drop any user:password@ part
        scheme, sep, rest = url.partition("://")
        return f"{scheme}{sep}{rest.rsplit('@', 1)[-1]}" if sep else url


class Liveness:
    """This process's flock (embedded storage): held while it searches, released by the kernel
    when it dies, so the others can tell its RUNNING trials were interrupted."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.lock = FileLock(str(folder / f"{self.id}.lock"))

    def __enter__(self) -> Liveness:
        self.lock.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.lock.release()
        Path(self.lock.lock_file).unlink(missing_ok=True)

    def stamp(self, study: optuna.Study, trial_id: int) -> None:
        study._storage.set_trial_system_attr(trial_id, WORKER_ATTR, self.id)

    def alive(self, worker: str) -> bool:
        if worker == self.id:
            return True
        path = self.folder / f"{worker}.lock"
        probe = FileLock(str(path), timeout=0)
        try:
            probe.acquire()
        except Timeout:
            return True
        probe.release()
        path.unlink(missing_ok=True)
        return False


def reap(study: optuna.Study, liveness: Liveness | None, retries: int) -> list[int]:
    """Fail (and queue again, up to ``retries`` times) the RUNNING trials of dead processes;
    return their numbers. Database storages do this through Optuna's heartbeat instead."""
    if liveness is None:
        return []
    retry = _retry(retries)
    now = datetime.now()
    reaped = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.system_attrs.get(WORKER_ATTR)
        dead = (not liveness.alive(worker)) if worker else (t.datetime_start or now) < now - _GRACE
        if not dead:
            continue
        try:
            study._storage.set_trial_system_attr(t._trial_id, "fail_reason", "its process was killed")
            if not study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker reaped it first
        retry(study, study._storage.get_trial(t._trial_id))
        reaped.append(t.number)
    if reaped:
        log.warning("trials %s were interrupted (their process died): marked failed and queued again", reaped)
    return reaped


def retried(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    """Numbers of failed trials that a later trial runs again (they do not use up the budget)."""
    out: set[int] = set()
    for t in trials:
        history = t.system_attrs.get("retry_history") or []
        out.update(int(n) for n in history)
    return out


def used(trials: list[optuna.trial.FrozenTrial]) -> int:
    """Trials that count against ``n_trials``: finished ones (complete, pruned, failed) that no
    retry replaces, plus the running ones (another worker's trial will finish)."""
    again = retried(trials)
    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
    return sum(1 for t in trials if t.state in done and t.number not in again)
