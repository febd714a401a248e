"""The catalogue's model, loss and evaluation statements, shown on deeppipe's own runs (spec file ->
validation -> training -> evaluation) on real data: metrics agree with scikit-learn on deeppipe's
predictions, the perceptron predicts by sign, a zoo model's declared loss is the one trained,
token ids reach the Embedding unnormalised, and a regression head is linear."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from deeppipe.data.task import Task
from deeppipe.errors import SpecError
from deeppipe.evaluation.metrics import compute_metrics, parse_choice
from deeppipe.spec.loader import ResolvedSpec, load_spec


def _spec(tmp_path: Path, name: str, raw: dict[str, Any]) -> ResolvedSpec:
    f = tmp_path / f"{name}.yml"
    f.write_text(yaml.safe_dump(raw))
    return load_spec(f)


def _trained(rs: ResolvedSpec) -> tuple[Any, Any, Any]:
    """Train without the evaluate stage's plots: (samples, split, trained model)."""
    from deeppipe.stages import fit_experiment, ingest, split

    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    return samples, parts, fit_experiment(rs, samples, parts)


def _test_outputs(rs: ResolvedSpec, samples: Any, parts: Any, trained: Any) -> tuple[np.ndarray, np.ndarray]:
    from deeppipe.stages import predictor_for

    predictor = predictor_for(rs.spec, trained.artifact)
    return samples.targets()[parts.test], predictor.predict(samples.x[parts.test])


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A short real run on wine (3 classes), evaluated by deeppipe's evaluate stage."""
    from deeppipe.stages import run_experiment

    metrics = ["accuracy", "roc_auc", "f1_macro", "precision_macro", "recall_macro", {"top_k_accuracy": {"k": 2}}]
    rs = _spec(tmp_path_factory.mktemp("wine"), "wine", {
        "seed": 1, "data": {"source": {"type": "sklearn", "name": "wine"}, "split": {"val": 0.2, "test": 0.3}},
        "model": {"layers": [{"Linear": {"out_features": 4}}, {"Tanh": {}}, {"Linear": {"out_features": "auto"}}]},
        "train": {"epochs": 3, "batch_size": 16, "progress": False, "optimizer": {"name": "sgd", "lr": 0.01}},
        "evaluate": {"metrics": metrics}})
    run = run_experiment(rs)
    y, probs = _test_outputs(rs, run.samples, run.split, run.trained)
    return {"run": run, "y": y, "probs": probs}


def test_one_vs_rest_roc_auc_of_several_classes_is_scikit_learns(wine):
    from sklearn.metrics import roc_auc_score

    y, probs = wine["y"], wine["probs"]
    assert probs.shape[1] == 3 and len(np.unique(y)) == 3
    expected = roc_auc_score(y, probs, multi_class="ovr", average="macro")
    assert wine["run"].evaluation.scalars["roc_auc"] == pytest.approx(expected, abs=1e-12)
    assert 0.5 < expected < 1.0  # a real, imperfect model: the comparison can tell a wrong average apart


def test_the_roc_plot_draws_one_vs_rest_curves_whose_mean_auc_is_the_metric(wine):
    from sklearn.metrics import auc, roc_curve

    from deeppipe.evaluation.plots import roc_figure

    y, probs = wine["y"], wine["probs"]
    lines = roc_figure(y, probs, ["a", "b", "c"]).axes[0].get_lines()[:3]
    areas = []
    for c, line in enumerate(lines):
        fpr, tpr, _ = roc_curve(y == c, probs[:, c])
        assert np.allclose(line.get_xdata(), fpr) and np.allclose(line.get_ydata(), tpr)
        areas.append(auc(fpr, tpr))
    assert wine["run"].evaluation.scalars["roc_auc"] == pytest.approx(np.mean(areas))


def test_top_k_accuracy_with_k_from_the_spec_and_for_few_classes(wine):
    from sklearn.metrics import top_k_accuracy_score

    y, probs = wine["y"], wine["probs"]
    scalars = wine["run"].evaluation.scalars
    assert "top2_accuracy" in scalars  # k: 2 with 3 classes: present, not silently absent
    assert scalars["top2_accuracy"] == pytest.approx(top_k_accuracy_score(y, probs, k=2, labels=[0, 1, 2]))
    assert scalars["top2_accuracy"] > scalars["accuracy"]
    digits = Task("multiclass", 10, tuple("0123456789"))
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(10), size=200)
    t = rng.integers(0, 10, 200)
    for k in (1, 3, 7):
        got, _ = compute_metrics(digits, t, p, [parse_choice({"top_k_accuracy": {"k": k}}, path="evaluate.metrics")])
        assert got == {f"top{k}_accuracy": pytest.approx(top_k_accuracy_score(t, p, k=k))}


def test_f1_macro_is_scikit_learns_mean_of_per_class_f1(wine):
    from sklearn.metrics import f1_score, precision_score, recall_score

    y, pred = wine["y"], wine["probs"].argmax(axis=1)
    scalars = wine["run"].evaluation.scalars
    for name, fn in (("f1_macro", f1_score), ("precision_macro", precision_score), ("recall_macro", recall_score)):
        assert scalars[name] == pytest.approx(fn(y, pred, average="macro", zero_division=0), abs=1e-12), name
    # scikit-learn's convention lets f1_macro lie outside the macro precision and recall: kept
    task = Task("multiclass", 3, ("a", "b", "c"))
    truth = np.array([2, 1, 0, 2, 2, 0, 1, 2, 2, 1, 2, 2])
    guess = np.eye(3)[[0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 2, 2]]
    s, _ = compute_metrics(task, truth, guess, ["f1_macro", "precision_macro", "recall_macro"])
    assert s["f1_macro"] == pytest.approx(f1_score(truth, guess.argmax(1), average="macro"))
    assert s["f1_macro"] < min(s["precision_macro"], s["recall_macro"]) - 0.1
    from deeppipe.registry import METRICS

    assert "outside" in METRICS.entry("f1_macro").doc  # the help says so


def test_the_perceptron_learns_separable_classes_and_predicts_by_sign(tmp_path):
    """iris setosa vs the rest is linearly separable: the perceptron criterion reaches exactly 0."""
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    np.savez(tmp_path / "setosa.npz", x=x.astype(np.float32), y=(y == 0).astype(np.int64))
    rs = _spec(tmp_path, "perceptron", {
        "seed": 0, "data": {"source": {"type": "npz", "path": str(tmp_path / "setosa.npz")},
                            "split": {"val": 0.2, "test": 0.2}},
        "model": {"zoo": "perceptron"},
        "train": {"epochs": 5, "batch_size": 1, "progress": False, "optimizer": {"name": "sgd", "lr": 1.0}}})
    samples, parts, trained = _trained(rs)
    assert trained.history[-1]["train/loss"] == 0.0  # no margin violated: only this criterion is exactly 0
    from deeppipe.stages import predictor_for

    predictor = predictor_for(rs.spec, trained.artifact)
    scores = predictor.outputs(samples.x[parts.test])[:, 0]
    classes = predictor.predict(samples.x[parts.test]).argmax(axis=1)
    assert np.array_equal(classes, (scores > 0).astype(int))  # the prediction is sign(f(x))
    assert np.array_equal(classes, samples.targets()[parts.test].astype(int))
    with pytest.raises(SpecError, match="step activation"):
        _spec(tmp_path, "step", {**rs.raw, "model": {"layers": [{"Linear": {"out_features": 1}}, {"Step": {}}]}})


def test_a_zoo_models_declared_loss_is_the_one_trained(tmp_path):
    """{zoo: linear_svm} without train.loss trains with its file's multi_margin, not cross-entropy."""
    from deeppipe.training.losses import with_model_loss

    base = {"seed": 0, "data": {"source": {"type": "sklearn", "name": "digits"}, "limit": 600},
            "model": {"zoo": "linear_svm"},
            "train": {"epochs": 2, "progress": False, "optimizer": {"name": "sgd", "lr": 0.1}}}
    runs = {}
    for name, loss in (("declared", None), ("hinge", {"name": "multi_margin"}), ("ce", {"name": "cross_entropy"})):
        raw = {**base, "train": {**base["train"], **({"loss": loss} if loss else {})}}
        rs = _spec(tmp_path, name, raw)
        runs[name] = [h["val/loss"] for h in _trained(rs)[2].history]
    assert with_model_loss(rs.spec.train, load_spec(tmp_path / "declared.yml").spec.model).loss is not None
    assert runs["declared"] == runs["hinge"] != runs["ce"]


def _tokens(tmp_path: Path, *, vocab: int = 50, shift: float = 0.0) -> Path:
    rng = np.random.default_rng(0)
    ids = rng.integers(1, vocab, size=(400, 12))
    y = (ids[:, :3].mean(1) > vocab / 2).astype(np.int64) + (ids[:, 3] > vocab / 2)
    path = tmp_path / f"tokens{vocab}_{shift}.npz"
    np.savez(path, x=ids + shift, y=y)
    return path


def _text_spec(data: Path, rows: int) -> dict:
    return {"seed": 0, "data": {"source": {"type": "npz", "path": str(data)}, "split": {"val": 0.1, "test": 0.2}},
            "model": {"layers": [{"Embedding": {"num_embeddings": rows, "embedding_dim": 8}}, {"Flatten": {}},
                                 {"Linear": {"out_features": "auto"}}]},
            "train": {"epochs": 4, "progress": False, "optimizer": {"name": "adam", "lr": 0.01}}}


def test_token_ids_reach_the_embedding_unnormalised_and_train(tmp_path):
    rs = _spec(tmp_path, "text", _text_spec(_tokens(tmp_path), 50))  # data.normalize: true by default
    assert rs.spec.data.normalize
    samples, parts, trained = _trained(rs)
    assert trained.artifact.meta["normalize"] is False and "mean" not in trained.artifact.meta
    y, probs = _test_outputs(rs, samples, parts, trained)
    assert float((probs.argmax(1) == y).mean()) > 0.45  # three classes: better than chance


@pytest.mark.parametrize(("rows", "shift", "words"), [
    (20, 0.0, ("largest token id is 49", "20 rows")),
    (50, 0.5, ("integer token ids", "49.5")),
])
def test_embedding_inputs_that_are_not_ids_in_the_vocabulary_are_refused(tmp_path, rows, shift, words):
    with pytest.raises(SpecError) as err:
        _spec(tmp_path, "text", _text_spec(_tokens(tmp_path, shift=shift), rows))
    assert err.value.path == "model" and all(w in str(err.value) for w in words), str(err.value)


def test_a_linear_regression_head_predicts_below_the_mean(tmp_path):
    """The ReLU head validation refuses (tests/spec) predicted the training mean for 65% of the
    diabetes test set; the identity head it asks for predicts on both sides of it."""
    raw = {"seed": 0, "data": {"source": {"type": "sklearn", "name": "diabetes"}, "split": {"val": 0.1, "test": 0.2}},
           "model": {"layers": [{"Linear": {"out_features": 32}}, {"ReLU": {}}, {"Linear": {"out_features": 1}}]},
           "train": {"epochs": 30, "progress": False, "optimizer": {"name": "adam", "lr": 0.01}}}
    rs = _spec(tmp_path, "diabetes", raw)
    samples, parts, trained = _trained(rs)
    _, pred = _test_outputs(rs, samples, parts, trained)
    mean = trained.artifact.meta["target_mean"][0]
    assert float(np.isclose(pred[:, 0], mean, atol=1e-3).mean()) == 0.0
    assert float((pred[:, 0] < mean).mean()) > 0.3
    relu_head = {**raw, "model": {"layers": [*raw["model"]["layers"], {"ReLU": {}}]}}
    with pytest.raises(SpecError, match="identity"):
        _spec(tmp_path, "relu_head", relu_head)


def test_regression_trains_on_standardised_targets_so_plain_sgd_converges(tmp_path):
    """The loss sees standardised outputs and targets: in the target's units (diabetes: std 78) an
    SGD step would be std^2 = 6,000 times larger, and lr 0.01 diverged at the first epoch."""
    from sklearn.metrics import r2_score

    from deeppipe.stages import predictor_for

    rs = _spec(tmp_path, "sgd", {
        "seed": 0, "data": {"source": {"type": "sklearn", "name": "diabetes"}, "split": {"val": 0.2, "test": 0.2}},
        "model": {"layers": [{"Linear": {"out_features": 1}}]},
        "train": {"epochs": 20, "batch_size": 16, "progress": False, "optimizer": {"name": "sgd", "lr": 0.01}}})
    samples, parts, trained = _trained(rs)
    predictor = predictor_for(rs.spec, trained.artifact)
    y_test, pred = _test_outputs(rs, samples, parts, trained)
    assert r2_score(y_test, pred[:, 0]) > 0.3
    y_val, val_pred = samples.targets()[parts.val], predictor.predict(samples.x[parts.val])[:, 0]
    std = trained.artifact.meta["target_std"][0]
    assert trained.history[-1]["val/loss"] == pytest.approx(float((((val_pred - y_val) / std) ** 2).mean()), rel=1e-4)
