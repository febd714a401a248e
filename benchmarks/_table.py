"""The latest figure of every benchmark as one table: printed, and written to BENCHMARKS.md.

Not a benchmark itself (``make bench`` runs ``benchmarks/[!_]*.py``, then this): it reads the
``benchmarks/results/<name>.json`` each benchmark wrote (name, value, unit, goal, baseline,
ratio, machine, date) and keeps BENCHMARKS.md true to them.

    .venv/bin/python benchmarks/_table.py [--check]   # --check: fail when BENCHMARKS.md is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
OUT = REPO / "BENCHMARKS.md"
HEAD = """# Benchmarks

The latest figure of each benchmark in `benchmarks/` (`make bench` runs them all, then rewrites this
table from `benchmarks/results/*.json`). Each runs deeppipe and its baseline in the same process,
interleaved, and reports the ratio where one applies; the JSON files hold every detail, and a
benchmark that splits its figure into parts (``where`` in its record) has its table below.

"""


def _cell(value: object, limit: int = 90) -> str:
    text = "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rows() -> list[dict]:
    out = []
    for path in sorted(RESULTS.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            print(f"skipping {path.name}: {exc}", file=sys.stderr)
            continue
        if isinstance(data, dict) and "name" in data:
            out.append(data)
    return out


def table(records: list[dict]) -> str:
    lines = ["| benchmark | value | unit | goal | baseline | ratio | machine | date |", "|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append("| " + " | ".join(_cell(r.get(k)) for k in ("name", "value", "unit", "goal", "baseline", "ratio",
                                                                   "machine")) + f" | {_cell(r.get('date'))[:10]} |")
    return "\n".join(lines) + "\n"


def breakdowns(records: list[dict]) -> str:
    """Each record's ``where`` (title, columns, rows): where a benchmark's figure goes, below the table."""
    parts = []
    for r in records:
        w = r.get("where")
        if not isinstance(w, dict) or not w.get("rows"):
            continue
        cols = w.get("columns") or ["part", "value"]
        lines = [f"### {r['name']}: {w.get('title', '')}", "", "| " + " | ".join(cols) + " |",
                 "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_cell(c, 160) for c in row) + " |" for row in w["rows"]]
        parts.append("\n".join(lines) + "\n")
    return ("\n## Where the time goes\n\n" + "\n".join(parts)) if parts else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when BENCHMARKS.md differs from the results")
    args = ap.parse_args()
    records = rows()
    text = HEAD + table(records) + breakdowns(records)
    if args.check:
        current = OUT.read_text() if OUT.exists() else ""
        if current != text:
            print("BENCHMARKS.md is stale: run `.venv/bin/python benchmarks/_table.py`", file=sys.stderr)
            return 1
        return 0
    from deeppipe.files import atomic_write

    atomic_write(OUT, text)
    print(table(rows()), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
