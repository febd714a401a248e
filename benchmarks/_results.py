"""Where every benchmark's figure goes: ``benchmarks/results/<name>.json``, written atomically with
the user's umask (deeppipe's one atomic writer), and read back by ``benchmarks/_table.py``.

``DEEPPIPE_BENCH_RESULTS=<folder>`` sends every record there instead, whatever path or ``--out``
the benchmark was given: the smoke tests (tests/test_benchmarks_smoke.py) use it so that a
``--quick`` run never overwrites the committed figures."""

from __future__ import annotations

import json
import os
from pathlib import Path

from deeppipe.files import atomic_write

ENV = "DEEPPIPE_BENCH_RESULTS"


def write_json(path: Path, record: dict) -> Path:
    """``record`` (name, value, unit, goal, baseline, ratio, machine, date, ...) as the JSON file ``path``."""
    path = Path(path)
    if os.environ.get(ENV):
        path = Path(os.environ[ENV]) / path.name
    return atomic_write(path, json.dumps(record, indent=1) + "\n")


def write_result(record: dict, out_dir: Path) -> Path:
    """``record`` as ``<out_dir>/<name>.json``."""
    return write_json(Path(out_dir) / f"{record['name']}.json", record)
