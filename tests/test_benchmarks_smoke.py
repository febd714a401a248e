"""Every benchmark (benchmarks/[!_]*.py, found by glob: a new one is smoke-run without editing this
file) runs its tiny ``--quick`` path as `make bench` runs it, in a subprocess: it exits 0, prints
its figure last as ``<name>: ...`` and writes ``<name>.json`` with the suite's fields. Records go
to a temporary folder (``DEEPPIPE_BENCH_RESULTS``, honoured by benchmarks/_results.py), so the
committed benchmarks/results/*.json are never overwritten. No timing thresholds: a smoke run on
a shared machine only shows that the path works."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted((REPO / "benchmarks").glob("[!_]*.py"))
FIELDS = {"name", "value", "unit", "goal", "baseline", "ratio", "machine", "date"}
# quick paths that still cost > 20 s of CPU (each is a kedro run, a search or a fuzz campaign,
# measured on 2 cores): `make test` runs them, `make test-fast` (-m "not slow") leaves them out
SLOW = {"device_speedrun", "ensembles", "fashion_time_to_accuracy", "memory", "reliability_fuzz", "startup", "tuning"}


def _committed() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((REPO / "benchmarks" / "results").glob("*.json"))}


def test_every_benchmark_is_smoke_run():
    names = {p.stem for p in BENCHMARKS}
    assert {"trainer_overhead", "tracking_overhead", "fashion_time_to_accuracy", "startup"} <= names



def shard(k: int) -> list:
    """Every other benchmark, by their cost in the quick runs: `make test` distributes test files over
    its workers (--dist loadfile), so the smoke runs live in two files (this one and
    tests/test_benchmarks_smoke_b.py) and run on both workers instead of queueing on one."""
    return [pytest.param(p, marks=[pytest.mark.slow] if p.stem in SLOW else [], id=p.stem) for p in BENCHMARKS[k::2]]


@pytest.mark.parametrize("bench", shard(0))
def test_quick_run_prints_its_figure_last_and_writes_its_record(bench: Path, tmp_path: Path):
    quick_run(bench, tmp_path)


def quick_run(bench: Path, tmp_path: Path) -> None:
    before = _committed()
    env = {**os.environ, "DEEPPIPE_BENCH_RESULTS": str(tmp_path), "OMP_NUM_THREADS": "1",
           "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "MPLBACKEND": "Agg"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run([sys.executable, str(bench), "--quick"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, f"{bench.name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    lines = proc.stdout.strip().splitlines()
    assert lines, f"{bench.name} printed nothing"
    last = lines[-1]
    assert last.startswith(f"{bench.stem}: "), f"the last line is not the figure: {last!r}"
    assert _committed() == before, "a --quick run overwrote benchmarks/results/*.json"
    if last.startswith(f"{bench.stem}: skipped"):
        pytest.skip(last)
    record = json.loads((tmp_path / f"{bench.stem}.json").read_text())
    assert set(record) >= FIELDS, f"missing fields: {sorted(FIELDS - set(record))}"
    assert record["name"] == bench.stem
    assert isinstance(record["value"], (int, float)) and record["date"][:2] == "20"
    assert record.get("quick") is True  # the tiny path ran, not the full benchmark


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"{path.name}: {line!r} is not an exact pin"
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_benchmark_only_dependencies_are_pinned_apart_and_never_reach_src():
    bench, main = _pins(REPO / "benchmarks" / "requirements.lock"), _pins(REPO / "requirements.lock")
    assert "pytorch-lightning" in bench
    assert not set(bench) & set(main), "a benchmark pin duplicates (or moves) a project pin"
    rules: dict[str, str] = {}  # Makefile target -> its prerequisites and recipe
    target = None
    for line in (REPO / "Makefile").read_text().splitlines():
        if line and not line[0].isspace() and ":" in line and "=" not in line.split(":")[0]:
            target = line.split(":")[0]
            rules[target] = line
        elif line.startswith("\t") and target:
            rules[target] += "\n" + line
    assert "benchmarks/requirements.lock" in rules["bench"]
    assert [t for t, body in rules.items() if "benchmarks/requirements.lock" in body] == ["bench"]
    for f in (REPO / "src").rglob("*.py"):
        text = f.read_text()
        assert "import pytorch_lightning" not in text and "from lightning" not in text, f
