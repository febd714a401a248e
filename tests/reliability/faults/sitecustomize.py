"""Fault injection for the reliability tests: a real ``kedro run`` with this folder on PYTHONPATH
is killed (SIGKILL) or sees a full disk exactly inside one atomic write.

``DEEPPIPE_FAULT=kill:<part>`` or ``enospc:<part>`` (``@N``: at the N-th such write): when
deeppipe.files has written a temporary whose name contains ``<part>`` (``.metrics.json.``,
``.model.``, ``.dataset.npz.``, ``.last.pt.``) and is about to rename it into place, the process is
killed, or the write fails with ENOSPC as a full disk would.
Test-only: nothing here is imported unless a test puts this folder on PYTHONPATH.
"""

import contextlib
import errno
import os
import signal

_FAULT = os.environ.get("DEEPPIPE_FAULT", "")
if ":" in _FAULT:
    _kind, _part = _FAULT.split(":", 1)
    _part, _, _nth = _part.partition("@")
    _left = [int(_nth or 1)]
    _fsync, _chmod = os.fsync, os.chmod

    def _hit(name: str) -> None:
        if _part in os.path.basename(str(name)) and str(name).endswith(".tmp"):
            _left[0] -= 1
            if _left[0] > 0:
                return
            if _kind == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fsync(fd: int) -> None:  # a file's content is written, the rename not yet done
        with contextlib.suppress(FileNotFoundError):
            _hit(os.readlink(f"/proc/self/fd/{fd}"))
        _fsync(fd)

    def chmod(path, mode, *args, **kwargs):  # a folder's content is written, the swap not yet done
        if os.path.isdir(path):
            _hit(path)
        return _chmod(path, mode, *args, **kwargs)

    os.fsync, os.chmod = fsync, chmod
