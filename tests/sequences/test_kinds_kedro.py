"""Each sequence task kind end to end through `kedro run`: many-to-one (sequences and text),
per-step tagging, one-to-many and CTC, on small real (scikit-learn digits) or generated data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.integration.conftest import make_project, run
from tests.sequences.data import series_csv, tagging_csv, text_csv

pytestmark = pytest.mark.slow


def _train(epochs: int, lr: float = 0.01) -> dict:
    return {"epochs": epochs, "batch_size": 32, "optimizer": {"name": "adam", "lr": lr}, "progress": False}


def experiments(data: Path) -> dict[str, dict]:
    return {
        "seq_digits": {"seed": 3, "data": {"source": {"type": "digit_sequences"}, "limit": 600},
                       "model": {"layers": [{"PackedLSTM": {"hidden_size": 32}}, {"Linear": {"out_features": "auto"}}]},
                       "train": _train(5)},
        "seq_tags": {"seed": 3, "data": {"source": {"type": "sequence_csv", "path": str(data / "tags.csv"), "id": "seq",
                                                    "order": "step", "label": "tag", "per": "step"}},
                     "model": {"layers": [{"PackedLSTM": {"hidden_size": 16, "output": "all"}},
                                          {"Linear": {"out_features": "auto"}}]},
                     "train": {**_train(12), "early_stopping": {"monitor": "val/step_accuracy", "patience": 20}}},
        "seq_text": {"seed": 3, "data": {"source": {"type": "text_csv", "path": str(data / "text.csv"), "text": "review",
                                                    "label": "sentiment", "max_size": 30}},
                     "model": {"layers": [{"TokenEmbedding": {"num_embeddings": 32, "embedding_dim": 8}},
                                          {"PackedGRU": {"hidden_size": 16}}, {"Linear": {"out_features": "auto"}}]},
                     "train": _train(8)},
        "seq_decoder": {"seed": 3, "data": {"source": {"type": "timeseries_csv", "path": str(data / "series.csv"),
                                                       "time": "t", "lookback": 12, "horizon": 4}},
                        "model": {"layers": [{"Flatten": {}}, {"Linear": {"out_features": 16}}, {"ReLU": {}},
                                             {"StepDecoder": {"steps": 4, "hidden_size": 16, "out_features": 1}},
                                             {"Flatten": {}}]},
                        "train": _train(8)},
        "seq_ctc": {"seed": 3, "data": {"source": {"type": "digit_sequences", "strings": True, "count": 600,
                                                   "max_digits": 2}},
                    "model": {"layers": [{"PackedGRU": {"hidden_size": 48, "output": "all", "bidirectional": True}},
                                         {"Linear": {"out_features": "auto"}}]},
                    "train": _train(15, lr=0.02)},
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("seqdata")
    tagging_csv(data / "tags.csv")
    text_csv(data / "text.csv")
    series_csv(data / "series.csv")
    specs = experiments(data)
    for name in ("seq_digits", "seq_tags", "seq_decoder", "seq_ctc"):  # the text model is registered (and served)
        specs[name]["register"] = {"enabled": False}
    root = make_project(tmp_path_factory.mktemp("seqproj"), specs)
    run(["kedro", "run", "--pipelines", ",".join(specs)], root)  # one session: Kedro and torch imported once
    return root


def _metrics(project: Path, name: str) -> dict:
    return json.loads((project / f"data/08_reporting/{name}/metrics.json").read_text())["test"]


def test_many_to_one_sequence_classification(project: Path) -> None:
    m = _metrics(project, "seq_digits")
    assert m["accuracy"] >= 0.85  # ten classes from trimmed digit columns of 3 to 8 steps


def test_tagging_reports_per_step_accuracy_over_real_steps(project: Path) -> None:
    m = _metrics(project, "seq_tags")
    assert set(m) == {"step_accuracy"}
    assert m["step_accuracy"] >= 0.8  # "up"/"down" against the step before: chance is about 0.5
    pred = pd.read_csv(project / "data/07_model_output/seq_tags/predictions.csv")
    assert (pred["actual"].str.split().str.len() == pred["predicted"].str.split().str.len()).all()
    assert pred["actual"].str.startswith("start").all()  # padding never shows up as a tag


def test_text_classification_with_a_training_vocabulary(project: Path) -> None:
    assert _metrics(project, "seq_text")["accuracy"] >= 0.85
    meta = json.loads((project / "data/06_models/seq_text/model/meta.json").read_text())
    vocab = meta["vocabulary"]
    assert vocab["tokens"][:2] == ["<pad>", "<unk>"] and len(vocab["tokens"]) <= 32


def test_one_to_many_decoder(project: Path) -> None:
    m = _metrics(project, "seq_decoder")
    assert m["r2"] >= 0.8 and m["rmse"] < 0.35  # a sine of amplitude 1 (std 0.71)


def test_ctc_learns_unaligned_digit_strings(project: Path) -> None:
    m = _metrics(project, "seq_ctc")
    assert m["edit_accuracy"] >= 0.5 and 0.0 <= m["sequence_accuracy"] <= 1.0
    history = json.loads((project / "data/08_reporting/seq_ctc/history.json").read_text())
    losses = [h["train/loss"] for h in (history if isinstance(history, list) else history["epochs"])]
    assert losses[-1] < 0.3 * losses[0]
    with np.load(project / "data/02_intermediate/seq_ctc/dataset.npz") as d:
        assert d["y"].min() == -1 and d["y"].max() == 10  # labels 1..10 after the blank, -1 after the end
