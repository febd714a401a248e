"""Metrics of per-step outputs: per-step accuracy for tagging (padding left out), and for CTC the
greedy decoding (best class per step, repeats merged, blanks dropped) scored as exact sequences
and as one minus the normalised edit distance."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deeppipe.registry import METRICS

PAD_TAG, PAD_LABEL, BLANK = -100, -1, 0  # data.sources.sequences


@METRICS.register("step_accuracy", aliases=("per_step_accuracy", "token_accuracy"), tasks=("tagging",),
                  needs="values")
def step_accuracy(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Share of real steps (not padding) whose best-scoring class is the true one."""
    real = y_true != PAD_TAG
    return float((scores.argmax(axis=-1)[real] == y_true[real]).mean()) if real.any() else 0.0


def greedy_decode(scores: np.ndarray, blank: int = BLANK) -> list[list[int]]:
    """CTC best-path decoding of (N, T, C) scores: argmax per step, repeats merged, blanks dropped."""
    best = scores.argmax(axis=-1)
    out = []
    for row in best:
        keep = np.ones(len(row), dtype=bool)
        keep[1:] = row[1:] != row[:-1]
        out.append([int(v) for v in row[keep] if v != blank])
    return out


def _labels(y_true: np.ndarray) -> list[list[int]]:
    return [[int(v) for v in row if v != PAD_LABEL] for row in y_true]


def edit_distance(a: list[int], b: list[int]) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i]
        for j, cb in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@METRICS.register("sequence_accuracy", aliases=("exact_sequence_accuracy",), tasks=("ctc",), needs="values")
def sequence_accuracy(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Share of samples whose greedily decoded label sequence equals the true one exactly."""
    return float(np.mean([p == t for p, t in zip(greedy_decode(scores), _labels(y_true))]))


@METRICS.register("edit_accuracy", aliases=("label_accuracy",), tasks=("ctc",), needs="values")
def edit_accuracy(y_true: np.ndarray, scores: np.ndarray) -> float:
    """1 - (summed edit distances of the decoded sequences) / (summed true lengths): the label
    error rate's complement (can be below 0 when the decoding inserts many labels)."""
    truth = _labels(y_true)
    dist = sum(edit_distance(p, t) for p, t in zip(greedy_decode(scores), truth))
    return 1.0 - dist / max(1, sum(len(t) for t in truth))


def step_predictions(task: Any, y_true: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """predictions.csv of a per-step task: the true and predicted tags (real steps only) or the
    true and greedily decoded label sequences, space-separated, and whether they agree."""
    names = list(task.class_names)
    if task.kind == "ctc":
        truth, pred = _labels(y_true), greedy_decode(scores)
    else:
        real = y_true != PAD_TAG
        best = scores.argmax(axis=-1)
        truth = [list(row[m]) for row, m in zip(y_true, real)]
        pred = [list(row[m]) for row, m in zip(best, real)]

    def text(seq: list[int]) -> str:
        return " ".join(names[int(i)] if 0 <= int(i) < len(names) else str(int(i)) for i in seq)

    return pd.DataFrame({"actual": [text(t) for t in truth], "predicted": [text(p) for p in pred],
                         "correct": [list(map(int, t)) == list(map(int, p)) for t, p in zip(truth, pred)]})
