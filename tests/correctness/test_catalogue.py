"""docs/catalogue.md cannot drift from the code: every YAML snippet in it validates on the data its
row names (or is refused, where the row says so), every test it names exists, and every zoo
model, loss and metric deeppipe registers has a row."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from deeppipe.errors import SpecError

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "catalogue.md"
SKLEARN = ("digits", "iris", "wine", "breast_cancer", "diabetes")
NPZ = ("tokens", "sequences", "rgb")
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
ISSUE = re.compile(r"\bissue (\d+)\b")


@dataclass(frozen=True)
class Row:
    section: str
    technique: str
    yaml_text: str | None
    checked_on: str
    shown_by: str

    @property
    def id(self) -> str:
        return f"{self.section}: {self.technique[:60]}"


def _cells(line: str) -> list[str]:
    """The cells of a table line; ``\\|`` is a pipe inside a cell."""
    parts = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [p.strip().replace("\\|", "|") for p in parts]


def _rows() -> list[Row]:
    rows, section = [], ""
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        if not line.startswith("|") or line.startswith("|---") or line.startswith("| Technique"):
            continue
        technique, yaml_cell, checked_on, shown_by = _cells(line)
        code = re.fullmatch(r"`([^`]+)`", yaml_cell)
        rows.append(Row(section, technique, code.group(1) if code else None, checked_on, shown_by))
    return rows


ROWS = _rows()


def test_the_table_covers_the_catalogue():
    assert len(ROWS) >= 150
    sections = {r.section for r in ROWS}
    assert sections >= {"Models", "Layers and blocks", "Activations", "Losses", "Optimisation", "Initialisation",
                        "Regularisation", "Augmentation", "Ensembling", "Validation and tuning", "Evaluation",
                        "Transfer learning", "Explaining"}
    assert len({r.technique for r in ROWS}) == len(ROWS)  # one row per technique


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_every_row_is_shown_by_a_test_that_exists_or_names_its_issue(row: Row):
    refs = TEST_REF.findall(row.shown_by)
    issues = ISSUE.findall(row.shown_by)
    assert refs or issues, f"{row.id}: no test and no issue"
    for path, name in refs:
        file = REPO / path
        assert file.is_file(), f"{row.id}: {path} does not exist"
        assert re.search(rf"^def {name}\(", file.read_text(encoding="utf-8"), re.M), f"{row.id}: no {path}::{name}"
    if row.yaml_text is None:
        assert row.checked_on in ("—", "-"), f"{row.id}: checked on {row.checked_on} but no YAML"
        assert refs or issues
    else:
        kind = row.checked_on.removesuffix(" (refused)")
        assert kind in (*SKLEARN, *NPZ, "build"), f"{row.id}: unknown data {row.checked_on!r}"


# ------------------------------------------------------------------ the snippets, on real data
@pytest.fixture(scope="module")
def npz_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Token ids (vocabulary 50), (30, 8) sequences and digits as 3-channel images."""
    from sklearn.datasets import load_digits

    folder = tmp_path_factory.mktemp("catalogue")
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 50, size=(300, 12))
    np.savez(folder / "tokens.npz", x=ids, y=(ids[:, 0] > 25).astype(np.int64) + (ids[:, 1] > 25))
    seq = rng.normal(size=(200, 30, 8)).astype(np.float32)
    np.savez(folder / "sequences.npz", x=seq, y=(seq[:, :, 0].mean(1) > 0).astype(np.int64))
    digits = load_digits()
    gray = (digits.images / 16.0).astype(np.float32)[:, None]
    np.savez(folder / "rgb.npz", x=np.repeat(gray, 3, axis=1), y=digits.target.astype(np.int64))
    return {k: folder / f"{k}.npz" for k in NPZ}


def _base(kind: str, npz: dict[str, Path]) -> dict[str, Any]:
    source = {"type": "sklearn", "name": kind} if kind in SKLEARN else {"type": "npz", "path": str(npz[kind])}
    head = [{"Flatten": {}}, {"Linear": {"out_features": "auto"}}]
    if kind == "tokens":
        head = [{"Embedding": {"num_embeddings": 50, "embedding_dim": 8}}, *head]
    return {"seed": 0, "data": {"source": source}, "model": {"layers": head},
            "train": {"epochs": 1, "progress": False}}


def _merge(base: dict[str, Any], snippet: dict[str, Any]) -> dict[str, Any]:
    """The snippet's sections on top of the base: ``model`` replaces, others merge key by key."""
    out = copy.deepcopy(base)

    def deep(into: dict[str, Any], new: dict[str, Any]) -> None:
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                deep(into[key], value)
            else:
                into[key] = copy.deepcopy(value)

    for key, value in snippet.items():
        if key == "model" or not isinstance(value, dict):
            out[key] = copy.deepcopy(value)
        else:
            deep(out.setdefault(key, {}), value)
    return out


YAML_ROWS = [r for r in ROWS if r.yaml_text is not None]


@pytest.mark.parametrize("row", YAML_ROWS, ids=[r.id for r in YAML_ROWS])
def test_every_yaml_snippet_validates_on_its_data(row: Row, npz_data: dict[str, Path]):
    from deeppipe.models import build_model
    from deeppipe.spec.loader import validate

    snippet = yaml.safe_load(row.yaml_text)
    assert isinstance(snippet, dict), f"{row.id}: a snippet is a mapping of sections"
    refused = row.checked_on.endswith("(refused)")
    kind = row.checked_on.removesuffix(" (refused)")
    if kind == "build":
        assert set(snippet) == {"model"}, f"{row.id}: a build row holds a model: section only"
        net = build_model(snippet["model"], None, None, device="meta")
        assert sum(p.numel() for p in net.parameters()) > 0
        return
    raw = _merge(_base(kind, npz_data), snippet)
    if refused:
        with pytest.raises(SpecError) as err:
            validate(raw, file="docs/catalogue.md")
        assert err.value.file == "docs/catalogue.md" and err.value.path, str(err.value)
    else:
        validate(raw, file="docs/catalogue.md")


# ------------------------------------------------------------------ what the registries hold
def _mentioned(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(name.lower())}(?![\w])", text) is not None


def test_every_zoo_model_loss_and_metric_has_a_row():
    from deeppipe.registry import LOSSES, METRICS, ZOO

    text = DOC.read_text(encoding="utf-8").lower()
    missing = [f"zoo {n}" for n in ZOO.names() if not _mentioned(n, text)]
    missing += [f"loss {e.name}" for e in LOSSES.entries() if not _mentioned(e.name, text)]
    missing += [f"metric {e.name}" for e in METRICS.entries() if e.needs != "engine" and not _mentioned(e.name, text)]
    assert not missing, f"add a row (or the name to a row) in docs/catalogue.md for: {', '.join(missing)}"
