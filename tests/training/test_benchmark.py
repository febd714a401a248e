"""benchmarks/trainer_overhead.py runs (tiny --quick mode) and writes its result record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "trainer_overhead.py"


def test_trainer_overhead_quick(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("trainer_overhead: ") and "(goal >= 0.97)" in last
    record = json.loads((tmp_path / "trainer_overhead.json").read_text())
    assert {"name", "value", "unit", "goal", "baseline", "ratio", "machine", "date"} <= set(record)
    assert record["ratio"] > 0.3  # a smoke run on a shared machine: only catches a broken engine
    assert all(m["fit_to_first_step_s"] < 5 for m in record["models"])
