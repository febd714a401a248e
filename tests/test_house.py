"""The house: no module over ~500 lines, no import cycle between modules, node functions that only
wire. Measured by ../shared/tools/house.py when the shared folder is beside the checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HOUSE = REPO.parent / "shared" / "tools" / "house.py"


@pytest.mark.skipif(not HOUSE.exists(), reason="../shared/tools/house.py is not beside this checkout")
def test_module_sizes_import_cycles_and_thin_nodes() -> None:
    proc = subprocess.run([sys.executable, str(HOUSE), "src", "deeppipe", "--max-lines", "500",
                           "--thin", "deeppipe/pipelines/*.py", "--thin-max", "25"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_node_functions_call_one_stage_function_each() -> None:
    """Each node in pipelines/nodes.py imports from exactly one stage module (plus the tracker)."""
    import ast

    tree = ast.parse((REPO / "src/deeppipe/pipelines/nodes.py").read_text())
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        stages = {n.module for n in ast.walk(fn) if isinstance(n, ast.ImportFrom)
                  and n.module.endswith((".stage", ".offline", ".predictor"))}
        assert 1 <= len(stages) <= 2, (fn.name, stages)


def test_every_node_says_which_spec_sections_it_reads() -> None:
    """kedro-viz shows a node's docstring in its code panel: each says which spec sections it
    reads ("Reads: train, model" or "the whole ..."), and every dotted key it names is real."""
    import re

    from deeppipe.pipelines import nodes
    from deeppipe.spec.schema import ExperimentSpec

    sections = set(ExperimentSpec.model_fields)
    for name in dir(nodes):
        fn = getattr(nodes, name)
        if not callable(fn) or getattr(fn, "__module__", "") != nodes.__name__:
            continue
        doc = " ".join((fn.__doc__ or "").split())
        assert "Reads:" in doc, f"{name}: no 'Reads:' line"
        read = doc.split("Reads:", 1)[1]
        files = {"yml", "yaml", "json", "npz", "csv", "png", "pt", "html", "onnx"}  # file names, not keys
        dotted = {a for a, b in re.findall(r"\b([a-z_]+)\.([a-z_]+)", read) if b not in files}
        words = set(re.findall(r"\b[a-z_]+\b", read))
        assert dotted <= sections, (name, dotted - sections)
        assert words & sections or "whole" in words, (name, read)
