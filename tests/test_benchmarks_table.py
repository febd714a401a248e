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


def _bench_module(name: str):
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import importlib

        return importlib.import_module(name)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def test_a_records_where_table_is_rendered_below_the_table() -> None:
    table = _bench_module("_table")
    record = {"name": "startup", "where": {"title": "the 9.00 s outside training", "columns": ["part", "s", "kind"],
                                           "rows": [["torch", 2.5, "import"], ["a|b", 1.0, "rest"]]}}
    text = table.breakdowns([{"name": "plain"}, record])
    assert text.startswith("\n## Where the time goes\n")
    assert "### startup: the 9.00 s outside training" in text
    assert "| torch | 2.5 | import |" in text and "| a\\|b | 1.0 | rest |" in text  # pipes escaped
    assert "plain" not in text  # a record without a breakdown adds nothing
    assert table.breakdowns([{"name": "plain"}]) == ""


def test_import_floor_is_read_from_cpythons_import_timer() -> None:
    """A real ``-X importtime`` run: every module's own time goes to its top-level package
    (email.mime.text's and email.charset's to email), and the packages add up to the whole."""
    startup = _bench_module("startup")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import email.mime.text, json, json.decoder"],
                          capture_output=True, text=True, timeout=60)
    per = startup.imports_by_package(proc.stderr)
    own = {}
    for line in proc.stderr.splitlines()[1:]:
        if line.startswith("import time:"):
            us, _, name = line[len("import time:"):].split("|", 2)
            own[name.strip()] = int(us) / 1e6
    assert {"email", "json", "base64"} <= set(per)
    assert abs(per["email"] - sum(v for k, v in own.items() if k.split(".")[0] == "email")) < 1e-9
    assert abs(sum(per.values()) - sum(own.values())) < 1e-9
    assert list(per.values()) == sorted(per.values(), reverse=True)
