"""The other half of the benchmarks' smoke runs (tests/test_benchmarks_smoke.py says why two files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_benchmarks_smoke import quick_run, shard


@pytest.mark.parametrize("bench", shard(1))
def test_quick_run_prints_its_figure_last_and_writes_its_record(bench: Path, tmp_path: Path):
    quick_run(bench, tmp_path)
