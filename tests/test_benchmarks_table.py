"""BENCHMARKS.md is the table of benchmarks/results/*.json (make bench rewrites it), and every
result file carries the fields the table and the guide promise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIELDS = {"name", "value", "unit", "goal", "baseline", "ratio", "machine", "date"}


def test_every_result_has_the_promised_fields_and_a_benchmark() -> None:
    results = sorted((REPO / "benchmarks/results").glob("*.json"))
    assert results
    for path in results:
        data = json.loads(path.read_text())
        assert set(data) >= FIELDS, (path.name, FIELDS - set(data))
        assert (REPO / "benchmarks" / f"{data['name']}.py").is_file(), path.name


def test_benchmarks_md_is_the_table_of_the_results() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks/_table.py"), "--check"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
