"""Writing files so that a killed run, or a full disk, never leaves half of one.

``atomic_write`` (a file) and ``atomic_dir`` (a folder) are the only writers deeppipe uses: write
to a temporary name beside the target (``.<name>.<random>.tmp``), flush to disk, then rename over
it. Files get the permissions the user's umask gives a new file (mkstemp's 0600 would lock out a
server or container running as another user).

- A write that fails (no space left, a read-only disk, a quota) raises ``WriteError``: one message
  naming the file and the cause, the previous version left in place.
- ``begin_batch`` / ``commit_batch`` make several writes one unit: each is written in full
  beside its target, and only when every one succeeded are they all renamed in (the Kedro hook
  batches the outputs of each node, so a stage's report folder never mixes two runs).
- ``remove_leftovers`` clears what an interrupted write left behind (its temporary names) and
  puts back a folder whose swap was cut between its two renames.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import click
import numpy as np

try:  # Kedro re-raises its own error type from a dataset's save unwrapped (any other it wraps)
    from kedro.io.core import DatasetError

    _BASES: tuple[type, ...] = (DatasetError, click.ClickException)
except ImportError:  # a served model's environment: deeppipe's artifact code without Kedro
    _BASES = (click.ClickException,)

_UMASK_LOCK = threading.Lock()
_BATCH_LOCK = threading.Lock()
_batch: list[tuple[Path, Path, bool]] | None = None  # (written temp, target, is a folder)
_FULL = ("no space left", "storagefull", "disk quota", "file write failed", "read-only file system")


class ArtefactError(*_BASES):
    """A file of a run that cannot be written or read (full disk, corrupt): one message naming it,
    which ``kedro run`` (through its dataset layer, unwrapped) and ``deeppipe`` print without a
    traceback, exit status 1."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        click.ClickException.__init__(self, message)

    def __str__(self) -> str:
        return self.message


class WriteError(ArtefactError, OSError):
    """A file deeppipe could not write: names it and the cause (an OSError too, as its cause was)."""

    def __init__(self, path: Path, cause: str, errno: int | None = None) -> None:
        self.path, self.cause = Path(path), cause
        super().__init__(f"cannot write {path}: {cause}. Nothing of it was written and the previous version "
                         "(with the other outputs of the same stage) is unchanged; free space or fix the "
                         "permissions, then run again.")
        self.errno = errno


def write_failure(exc: BaseException) -> str | None:
    """The cause when ``exc`` is a failed write (an OSError, or a library's wrapper of one), else None."""
    if isinstance(exc, WriteError):
        return exc.cause
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} [errno {exc.errno}]" if exc.errno else str(exc)
    text = str(exc).lower()
    if any(k in text for k in _FULL):  # torch's and safetensors' wrappers of an OSError
        return "no space left on device" if "quota" not in text and "read-only" not in text else str(exc)
    return None


def _umask() -> int:
    """The process umask (read from /proc where possible; os.umask can only be read by setting it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _defer(tmp: Path, target: Path, folder: bool) -> bool:
    """Queue a finished temporary for the batch's commit; False when no batch is open."""
    with _BATCH_LOCK:
        if _batch is None:
            return False
        _batch.append((tmp, target, folder))
        return True


def atomic_write(path: str | Path, data: bytes | str | Callable[[BinaryIO], Any]) -> Path:
    """Write bytes, text (UTF-8) or whatever ``data(file)`` writes to ``path`` atomically."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        if not _defer(Path(tmp), path, False):
            os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        cause = write_failure(exc)
        if cause is not None and not isinstance(exc, WriteError):
            raise WriteError(path, cause, getattr(exc, "errno", None)) from exc
        raise
    return path


def _swap_in(tmp: Path, target: Path) -> None:
    """Replace folder ``target`` by ``tmp``: the old one is moved aside first, then removed
    (a kill between the two renames is undone by ``remove_leftovers``)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; when the block succeeds it replaces
    ``target``, else it is removed."""
    target = Path(target)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        yield tmp
        mode = 0o777 & ~_umask()
        os.chmod(tmp, mode)
        for f in tmp.rglob("*"):
            os.chmod(f, mode if f.is_dir() else mode & 0o666)
        if not _defer(tmp, target, True):
            _swap_in(tmp, target)
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        cause = write_failure(exc)
        if cause is not None and not isinstance(exc, WriteError):
            raise WriteError(target, cause, getattr(exc, "errno", None)) from exc
        raise


# ------------------------------------------------------------------------------ batches
def begin_batch() -> None:
    """From now on, finished writes wait for ``commit_batch`` (or are dropped by ``abort_batch``)."""
    global _batch
    with _BATCH_LOCK:
        if _batch is None:
            _batch = []


def commit_batch() -> list[Path]:
    """Rename every write of the open batch into place (renames only: no space needed)."""
    global _batch
    with _BATCH_LOCK:
        pending, _batch = _batch or [], None
    for tmp, target, folder in pending:
        if folder:
            _swap_in(tmp, target)
        else:
            os.replace(tmp, target)
    return [target for _, target, _ in pending]


def abort_batch() -> None:
    """Drop the open batch's writes: every target keeps its previous version."""
    global _batch
    with _BATCH_LOCK:
        pending, _batch = _batch or [], None
    for tmp, _, folder in pending:
        if folder:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def remove_leftovers(path: str | Path) -> list[Path]:
    """Remove the temporaries interrupted writes of ``path`` left (``.<name>.*.tmp`` beside it and,
    for a folder, inside it) and restore a folder cut between its two renames. Call it only
    while no other process writes ``path`` (deeppipe holds the experiment's run lock)."""
    path = Path(path)
    found: list[Path] = []
    if path.parent.is_dir():
        found += [p for p in path.parent.glob(f".{path.name}.*.tmp")]
        old = path.with_name(f".{path.name}.old")
        if old.exists():
            if path.exists():
                found.append(old)
            else:
                os.replace(old, path)  # the swap was cut after moving the old version aside
    if path.is_dir():
        found += [p for p in path.rglob(".*.tmp")] + [p for p in path.rglob(".*.old")]
    for p in found:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return found


# ------------------------------------------------------------------------------ formats
def write_json(path: str | Path, data: Any) -> Path:
    return atomic_write(path, json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def save_npz(path: str | Path, arrays: dict[str, Any]) -> Path:
    """A dict of arrays as one .npz (no pickles)."""
    return atomic_write(path, lambda f: np.savez(f, allow_pickle=False, **{k: np.asarray(v) for k, v in arrays.items()}))


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
