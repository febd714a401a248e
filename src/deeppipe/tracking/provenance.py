"""Where a run's model came from: the code's git commit and a fingerprint of the exact data."""

from __future__ import annotations

import hashlib
import subprocess
from typing import Any


def git_commit() -> str | None:
    """The checked-out commit (with '-dirty' when tracked files differ), or None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def data_fingerprint(samples: Any, split: Any) -> str:
    """SHA-256 (16 hex digits) of the inputs, targets and split indices a model was trained and tested on."""
    from deeppipe.data.storage import content_bytes  # uint8 pixels as themselves: no float copy

    h = hashlib.sha256()
    for arr in (samples.x, samples.y, split.train, split.val, split.test):
        h.update(content_bytes(arr))
    return h.hexdigest()[:16]
