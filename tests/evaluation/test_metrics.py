"""Metrics agree with their definitions on hand-checked numbers."""

from __future__ import annotations

import numpy as np
import pytest

from deeppipe.data.task import Task
from deeppipe.evaluation import compute_metrics, probabilities
from deeppipe.evaluation.plots import confusion_matrix_figure
from deeppipe.plotting import figure_png

MULTI = Task("multiclass", 3, ("a", "b", "c"))


def test_multiclass_metrics_match_hand_computation() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    logits = np.log(np.array([[.8, .1, .1], [.2, .7, .1], [.1, .8, .1], [.1, .6, .3], [.1, .1, .8], [.3, .3, .4]]))
    s, extras = compute_metrics(MULTI, y, probabilities(MULTI, logits))
    assert s["accuracy"] == pytest.approx(5 / 6)
    # class a: TP1 FP0 FN1 -> p 1, r .5; b: TP2 FP1 -> p 2/3, r 1; c: p 1, r 1
    assert s["precision_macro"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert s["recall_macro"] == pytest.approx((0.5 + 1 + 1) / 3)
    f1 = [2 * 1 * .5 / 1.5, 2 * (2 / 3) / (5 / 3), 1.0]
    assert s["f1_macro"] == pytest.approx(np.mean(f1))
    assert min(1, 0.5) <= f1[0] <= max(1, 0.5)  # F1 lies between precision and recall
    expected_ll = -np.mean(np.log([.8, .2, .8, .6, .8, .4]))
    assert s["log_loss"] == pytest.approx(expected_ll, rel=1e-6)
    assert extras["confusion_matrix"].tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 2]]  # rows true, cols predicted
    assert extras["per_class"]["a"]["recall"] == pytest.approx(0.5)


def test_binary_uses_one_logit_and_sigmoid() -> None:
    task = Task("binary", 1, ("neg", "pos"))
    logits = np.array([[-2.0], [3.0], [0.5], [-0.1]])
    probs = probabilities(task, logits)
    assert probs.shape == (4, 2) and probs[1, 1] == pytest.approx(1 / (1 + np.exp(-3)))
    s, _ = compute_metrics(task, np.array([0, 1, 0, 1]), probs)
    assert s["accuracy"] == pytest.approx(0.5)
    assert s["roc_auc"] == pytest.approx(0.75)


def test_regression_metrics() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.5, 2.0, 2.0, 5.0])
    s, _ = compute_metrics(Task("regression", 1), y, p[:, None])
    assert s["mae"] == pytest.approx(2.5 / 4)
    assert s["rmse"] == pytest.approx(np.sqrt((0.25 + 0 + 1 + 1) / 4))
    assert s["r2"] == pytest.approx(1 - 2.25 / 5.0)


def test_roc_auc_absent_rather_than_wrong_with_one_class() -> None:
    s, _ = compute_metrics(MULTI, np.array([0, 0]), np.full((2, 3), 1 / 3))
    assert "roc_auc" not in s


def test_plots_render_to_png() -> None:
    png = figure_png(confusion_matrix_figure(np.array([[3, 1], [0, 4]]), ["x", "y"]))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
