"""Leave a finished ``kedro run`` / ``deeppipe`` command without CPython's interpreter teardown.

Once a command has succeeded, CPython still tears down everything torch, MLflow, scikit-learn,
pandas and Kedro loaded (every module's namespace, a last garbage collection, C++ static
destructors): 2.5-3.5 s of a digits run on a 2-core machine (benchmarks/startup.py), spent freeing
memory the operating system frees anyway. No library offers a "skip teardown" switch, so this
module does the one safe thing by hand: at exit, after every non-daemon thread has been joined
(CPython does that before the ``atexit`` handlers), it runs every other ``atexit`` handler itself
(MLflow's flush and run end, logging's shutdown, weakref finalizers such as temporary folders'
clean-up), flushes the standard streams and leaves with ``os._exit(0)``.

It arms only in the command-line process (``sys.argv[0]`` is the ``kedro`` or ``deeppipe``
script, never a test runner or a notebook that calls the CLI; ``kedro run`` arms once the run has
succeeded, the ``deeppipe`` group when a command starts), and it leaves the usual way unless the
exit status is known to be 0: an uncaught exception, a non-zero ``sys.exit`` or an exit that did
not go through ``sys.exit`` all keep CPython's own exit. ``DEEPPIPE_FULL_EXIT=1`` turns it off.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import Any

_SCRIPTS = ("kedro", "deeppipe")
_later: list[Any] = []  # atexit handlers registered after _leave: CPython has run them when _leave runs
_UNSET = object()  # no sys.exit seen: the status is not known
_state: dict[str, Any] = {"armed": False, "code": _UNSET, "failed": False, "leaving": False}


def _cli_process() -> bool:
    argv0 = (sys.argv[0] if sys.argv else "").replace("\\", "/")
    return os.path.basename(argv0) in _SCRIPTS or argv0.endswith("kedro/__main__.py")


def arm() -> bool:
    """Skip the teardown at this process's exit if it exits with status 0; True when armed."""
    if (_state["armed"] or os.environ.get("DEEPPIPE_FULL_EXIT") or not _cli_process()
            or threading.current_thread() is not threading.main_thread()):
        return _state["armed"]
    real_exit, real_hook = sys.exit, sys.excepthook

    def exit(status: Any = None) -> None:  # stands in for sys.exit, noting the status
        _state["code"] = status
        real_exit(status)

    def excepthook(*args: Any) -> None:  # an uncaught exception: CPython exits with 1
        _state["failed"] = True
        real_hook(*args)

    real_register = atexit.register

    def register(func: Any, *args: Any, **kwargs: Any) -> Any:  # registered after _leave: run before it
        _later.append(func)
        return real_register(func, *args, **kwargs)

    sys.exit, sys.excepthook = exit, excepthook
    real_register(_leave)  # registered last, so called first: it runs the others itself
    atexit.register = register
    _state["armed"] = True
    return True


def _leave() -> None:
    if _state["leaving"]:  # re-entered from _run_exitfuncs below
        return
    _state["leaving"] = True
    if _state["failed"] or _state["code"] is _UNSET or _state["code"] not in (0, None):
        return  # CPython's own exit, with its own status
    for func in _later:
        atexit.unregister(func)
    atexit._run_exitfuncs()  # every other handler, newest first, as CPython would run them
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # closed or replaced streams
            stream.flush()
    os._exit(0)
