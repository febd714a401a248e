"""deeppipe.fast_exit: a finished CLI process leaves without CPython's teardown, yet every atexit
handler still runs exactly once and the exit status is never changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import atexit, os, sys, tempfile
sys.argv[0] = {argv0!r}
from deeppipe import fast_exit
log = open({log!r}, "a", buffering=1)
atexit.register(lambda: log.write("before\\n"))
keep = tempfile.TemporaryDirectory()  # cleaned up by a weakref finalizer at exit
print(keep.name)

class Torn:  # its __del__ runs only in CPython's teardown of this module
    def __del__(self, _write=os.write, _fd=os.open({log!r}, os.O_WRONLY | os.O_APPEND)):
        _write(_fd, b"teardown\\n")  # bound now: the teardown clears names and closes files

torn = Torn()
print("armed", fast_exit.arm())
atexit.register(lambda: log.write("after\\n"))
sys.stdout.write("unflushed output")  # must still reach the caller
mode = {mode!r}
if mode == "ok":
    sys.exit(0)
if mode == "fail":
    sys.exit(3)
if mode == "raise":
    raise RuntimeError("boom")
"""


def _run(tmp_path: Path, mode: str, argv0: str = "/venv/bin/kedro", **env: str) -> tuple[int, str, list[str]]:
    log = tmp_path / "log.txt"
    code = SCRIPT.format(argv0=argv0, log=str(log), mode=mode)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})
    lines = log.read_text().splitlines() if log.exists() else []
    folder = proc.stdout.splitlines()[0]
    assert not Path(folder).exists(), "the temporary folder's finalizer did not run"
    return proc.returncode, proc.stdout, lines


def test_a_successful_command_skips_the_teardown_but_runs_every_handler_once(tmp_path: Path) -> None:
    rc, out, log = _run(tmp_path, "ok")
    assert rc == 0 and "armed True" in out and out.endswith("unflushed output")
    assert log == ["after", "before"]  # newest first, each once, and no module teardown


@pytest.mark.parametrize(("mode", "status"), [("fail", 3), ("raise", 1), ("end", 0)])
def test_any_other_exit_is_cpythons_own(tmp_path: Path, mode: str, status: int) -> None:
    """A non-zero status, an uncaught exception, or an end that did not go through sys.exit (status
    unknown to deeppipe): the teardown runs, so the status is CPython's."""
    rc, _, log = _run(tmp_path, mode)
    assert rc == status
    assert log == ["after", "before", "teardown"]


@pytest.mark.parametrize(("argv0", "env"), [("/venv/bin/pytest", {}), ("/venv/bin/kedro", {"DEEPPIPE_FULL_EXIT": "1"})])
def test_it_arms_only_in_the_cli_process_unless_turned_off(tmp_path: Path, argv0: str, env: dict) -> None:
    rc, out, log = _run(tmp_path, "ok", argv0, **env)
    assert rc == 0 and "armed False" in out
    assert log == ["after", "before", "teardown"]
