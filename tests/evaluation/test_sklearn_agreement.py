"""Every metric deeppipe reports equals scikit-learn's on deeppipe's own output: the predictions of
a model trained here on real data (digits: multiclass, breast cancer: binary, diabetes: regression),
scored through the metrics registry (``compute_metrics``, as the evaluate stage does) and by
calling scikit-learn directly."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from deeppipe.evaluation.metrics import MetricChoice, compute_metrics
from deeppipe.registry import METRICS
from deeppipe.spec.loader import ResolvedSpec, validate
from deeppipe.stages import run_experiment

TRAIN = {"epochs": 3, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.01}, "progress": False}
DATA = {
    "multiclass": {"source": {"type": "sklearn", "name": "digits"}, "split": {"val": 0.1, "test": 0.3}},
    "binary": {"source": {"type": "sklearn", "name": "breast_cancer"}, "split": {"val": 0.1, "test": 0.3}},
    "regression": {"source": {"type": "sklearn", "name": "diabetes"}, "split": {"val": 0.1, "test": 0.3}},
}
HEAD = {"multiclass": 10, "binary": 1, "regression": 1}


def _trained(kind: str) -> tuple[Any, np.ndarray, np.ndarray]:
    raw = {"seed": 3, "data": DATA[kind], "train": {**TRAIN, **({"loss": {"name": "mse"}} if kind == "regression" else {})},
           "model": {"layers": [{"Flatten": {}}, {"Linear": {"out_features": 16}}, {"ReLU": {}},
                                {"Linear": {"out_features": HEAD[kind]}}]}}
    rs = ResolvedSpec(kind, f"pipelines/{kind}.yml", validate(raw, check_model=False, check_data=False), raw)
    run = run_experiment(rs)
    from deeppipe.evaluation.predictor import predictor_for

    te = run.split.test
    pred = predictor_for(rs.spec, run.trained.artifact).predict(run.samples.x[te])
    return run.samples.task, run.samples.targets()[te], pred


@pytest.fixture(scope="module", params=["multiclass", "binary"])
def classified(request: pytest.FixtureRequest) -> tuple[Any, np.ndarray, np.ndarray]:
    return _trained(request.param)


def _ece(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> float:
    """The textbook loop (Guo et al. 2017), independent of deeppipe's implementation."""
    conf, correct = p.max(axis=1), (p.argmax(axis=1) == y)
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    return total


def test_every_classification_metric_matches_scikit_learn(classified) -> None:
    task, y, p = classified
    y = y.astype(int)
    labels = list(range(p.shape[1]))
    pred = p.argmax(axis=1)
    names = [e.name for e in METRICS.entries() if task.kind in e.tasks and e.needs == "probs"
             and task.num_classes >= e.min_classes]
    scalars, tables = compute_metrics(task, y, p, [MetricChoice(n) for n in names] +
                                      [MetricChoice("top_k_accuracy", {"k": 3})] * (task.num_classes > 3))
    expected = {"accuracy": skm.accuracy_score(y, pred), "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
                "log_loss": skm.log_loss(y, p, labels=labels)}
    for kind in ("precision", "recall", "f1"):
        for avg in ("micro", "macro", "weighted"):
            fn = getattr(skm, f"{kind}_score")
            expected[f"{kind}_{avg}"] = fn(y, pred, labels=labels, average=avg, zero_division=0)
    if task.kind == "binary":
        expected["roc_auc"] = skm.roc_auc_score(y, p[:, 1])
        expected["average_precision"] = skm.average_precision_score(y, p[:, 1])
    else:
        expected["roc_auc"] = skm.roc_auc_score(y, p, multi_class="ovr", average="macro", labels=labels)
        expected["average_precision"] = skm.average_precision_score(np.eye(10)[y], p, average="macro")
        expected["top5_accuracy"] = skm.top_k_accuracy_score(y, p, k=5, labels=labels)
        expected["top3_accuracy"] = skm.top_k_accuracy_score(y, p, k=3, labels=labels)
    expected["ece"] = _ece(y, p)
    assert set(expected) <= set(scalars), sorted(set(expected) - set(scalars))
    for key, value in expected.items():
        assert scalars[key] == pytest.approx(value, abs=1e-12), key
    assert 0 < scalars["ece"] < 1
    np.testing.assert_array_equal(tables["confusion_matrix"], skm.confusion_matrix(y, pred, labels=labels))
    np.testing.assert_allclose(tables["confusion_matrix_normalized"],
                               skm.confusion_matrix(y, pred, labels=labels, normalize="true"))
    np.testing.assert_allclose(tables["confusion_matrix_normalized"].sum(axis=1), 1.0)
    prec, rec, f1, support = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    per = list(tables["per_class"].values())
    assert [c["precision"] for c in per] == pytest.approx(list(prec))
    assert [c["recall"] for c in per] == pytest.approx(list(rec))
    assert [c["f1"] for c in per] == pytest.approx(list(f1)) and [c["support"] for c in per] == list(support)


def test_reliability_bins_are_scikit_learns_calibration_curve(classified) -> None:
    from deeppipe.evaluation.metrics import calibration_bins

    _, y, p = classified
    y = y.astype(int)
    bins = calibration_bins(y, p)
    acc, conf = calibration_curve((p.argmax(axis=1) == y).astype(int), p.max(axis=1), n_bins=15)
    np.testing.assert_allclose(bins["accuracy"], acc)
    np.testing.assert_allclose(bins["confidence"], conf)
    assert bins["count"].sum() == len(y)


def test_every_regression_metric_matches_scikit_learn() -> None:
    task, y, p = _trained("regression")
    scalars, _ = compute_metrics(task, y, p, ["mae", "mse", "rmse", "r2", "mape"])
    y, p = y.reshape(len(y), -1).astype(np.float64), p.reshape(len(p), -1).astype(np.float64)  # as deeppipe scores
    assert scalars["mae"] == pytest.approx(skm.mean_absolute_error(y, p), abs=1e-9)
    assert scalars["mse"] == pytest.approx(skm.mean_squared_error(y, p), abs=1e-9)
    assert scalars["rmse"] == pytest.approx(skm.root_mean_squared_error(y, p), abs=1e-9)
    assert scalars["r2"] == pytest.approx(skm.r2_score(y, p), abs=1e-12)
    assert scalars["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, p), abs=1e-12)


def test_dvc_curve_tables_are_scikit_learns_curves(classified) -> None:
    from deeppipe.evaluation.curves import curve_tables

    task, y, p = classified
    y = y.astype(int)
    tables = curve_tables(task, y, p)
    assert set(tables) == {"roc", "precision_recall", "calibration"}
    roc = tables["roc"]
    onehot = np.eye(p.shape[1])[y] if task.kind != "binary" else None
    expected = (skm.roc_auc_score(y, p[:, 1]) if onehot is None else skm.roc_auc_score(onehot, p, average="micro"))
    assert skm.auc(roc["fpr"], roc["tpr"]) == pytest.approx(expected, abs=2e-3)  # thinned to <= 1000 points
    assert roc["fpr"].is_monotonic_increasing and (roc.iloc[0].tolist(), roc.iloc[-1].tolist()) == ([0, 0], [1, 1])
    pr = tables["precision_recall"]
    assert pr["recall"].is_monotonic_increasing and pr["recall"].iloc[-1] == 1.0
    acc, conf = calibration_curve((p.argmax(axis=1) == y).astype(int), p.max(axis=1), n_bins=15)
    np.testing.assert_allclose(tables["calibration"]["accuracy"], acc)
    np.testing.assert_allclose(tables["calibration"]["confidence"], conf)
