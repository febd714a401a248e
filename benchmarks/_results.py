"""Where every benchmark's figure goes: ``benchmarks/results/<name>.json``, written atomically with
the user's umask (deeppipe's one atomic writer), and read back by ``benchmarks/_table.py``."""

from __future__ import annotations

import json
from pathlib import Path

from deeppipe.files import atomic_write


def write_json(path: Path, record: dict) -> Path:
    """``record`` (name, value, unit, goal, baseline, ratio, machine, date, ...) as the JSON file ``path``."""
    return atomic_write(Path(path), json.dumps(record, indent=1) + "\n")


def write_result(record: dict, out_dir: Path) -> Path:
    """``record`` as ``<out_dir>/<name>.json``."""
    return write_json(Path(out_dir) / f"{record['name']}.json", record)
