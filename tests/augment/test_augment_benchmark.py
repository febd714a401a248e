"""The loader benchmark runs end to end (tiny) and writes its JSON result with the agreed keys."""

from __future__ import annotations

import json
import subprocess
import sys


def test_loader_throughput_quick(repo_root, tmp_path):
    out = tmp_path / "loader_throughput.json"
    proc = subprocess.run(
        [sys.executable, str(repo_root / "benchmarks" / "loader_throughput.py"), "--quick",
         "--n", "128", "--repeats", "1", "--workers", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=True,
    )
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("loader_throughput: ") and last.endswith("(goal 0.9)")
    data = json.loads(out.read_text())
    for key in ("name", "value", "unit", "goal", "baseline", "ratio", "machine", "date"):
        assert key in data
    assert data["name"] == "loader_throughput" and data["goal"] == 0.9
    assert data["value"] > 0.2 and data["device_images_per_s_cpu"] > 0
