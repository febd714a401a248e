"""Stacking, bagging and SAMME on real digits: every model that is trained is recorded with the
rows it trained on, every prediction with the rows it predicted, so the tests prove what reaches
the meta-model, what each bag saw, and that the boosting weights follow the formula."""

from __future__ import annotations

import math

import numpy as np
import pytest

import deeppipe.ensemble.members as members_mod
import deeppipe.training.stage as training_stage
from deeppipe.ensemble.stage import fit_ensemble
from deeppipe.evaluation.predictor import predictor_for

from .conftest import MLP, spec_with


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """Every fit_experiment call's training rows, and every member prediction's (trained on, predicted)."""
    log: dict[str, list] = {"fits": [], "predictions": []}
    real_fit, real_predict = training_stage.fit_experiment, members_mod.predict_rows

    def fit(rs, samples, split, **kw):
        trained = real_fit(rs, samples, split, **kw)
        trained.artifact.meta["test_trained_rows"] = np.asarray(split.train).tolist()
        log["fits"].append(np.asarray(split.train))
        return trained

    def predict(rs, artifact, samples, rows):
        out = real_predict(rs, artifact, samples, rows)
        log["predictions"].append((np.asarray(artifact.meta.get("test_trained_rows", [])), np.asarray(rows), out))
        return out

    monkeypatch.setattr(training_stage, "fit_experiment", fit)
    monkeypatch.setattr(members_mod, "predict_rows", predict)
    return log


def test_stacking_meta_model_sees_only_out_of_fold_predictions(digits, tmp_path, recorded, monkeypatch) -> None:
    import deeppipe.ensemble.stacking as stacking

    samples, parts = digits
    seen = {}
    real_meta = stacking.fit_meta_model

    def meta(task, oof, y, **kw):
        seen["oof"], seen["y"] = [o.copy() for o in oof], y.copy()
        return real_meta(task, oof, y, **kw)

    monkeypatch.setattr(stacking, "fit_meta_model", meta)
    rs = spec_with(tmp_path, {"method": {"name": "stacking", "folds": 3},
                              "members": [{"seed": 1, **MLP}, {"seed": 2}]}, train={**_train(1)})
    trained = fit_ensemble(rs, samples, parts)
    # 2 members x (3 fold models + 1 on the whole training split)
    assert len(recorded["fits"]) == 8
    train = parts.train
    oof_calls = [c for c in recorded["predictions"] if len(c[1]) and np.isin(c[1], train).all()
                 and len(c[1]) < len(train)]
    assert len(oof_calls) == 6
    for trained_on, predicted, _ in oof_calls:  # no fold model predicts a row it trained on
        assert len(trained_on) and not np.intersect1d(trained_on, predicted).size
    for m, member_calls in enumerate((oof_calls[:3], oof_calls[3:])):
        covered = np.sort(np.concatenate([c[1] for c in member_calls]))
        assert np.array_equal(covered, np.sort(train))  # every training row predicted exactly once
        oof = np.zeros_like(seen["oof"][m])
        for _, predicted, out in member_calls:
            oof[np.searchsorted(train, predicted)] = out
        np.testing.assert_array_equal(seen["oof"][m], oof)  # exactly these reached the meta-model
    np.testing.assert_array_equal(seen["y"], samples.targets()[train])
    # the ensemble is the meta-model (a logistic regression) on the full members' probabilities
    combo = trained.artifact.ensemble["combination"]
    assert combo["kind"] == "stack" and combo["layers"] == [20, 10] and combo["info"]["meta_model"] == "LogisticRegression"
    probs = predictor_for(rs.spec, trained.artifact).predict(samples.x[parts.test])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs.argmax(axis=1) == samples.targets()[parts.test]).mean() > 0.7  # 1 epoch members


def _train(epochs: int) -> dict:
    return {"epochs": epochs, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.01}, "progress": False}


def test_bagging_members_see_different_bootstrap_samples_of_the_training_size(digits, tmp_path, recorded) -> None:
    samples, parts = digits
    rs = spec_with(tmp_path, {"method": "soft_voting", "members": {"bagging": {"n": 3}}}, model=MLP, train=_train(1))
    trained = fit_ensemble(rs, samples, parts)
    assert trained.artifact.member_names == ["bag_0", "bag_1", "bag_2"]
    fits = recorded["fits"]
    assert len(fits) == 3
    n = len(parts.train)
    for rows in fits:
        assert len(rows) == n  # the size of the training split
        assert np.isin(rows, parts.train).all()  # drawn from it only: never val or test
        unique = len(np.unique(rows))
        assert unique < n and abs(unique / n - (1 - 1 / math.e)) < 0.05  # with replacement: ~63.2% distinct
    assert not np.array_equal(fits[0], fits[1]) and not np.array_equal(fits[1], fits[2])


def test_samme_member_weights_follow_the_formula(digits, tmp_path, recorded) -> None:
    samples, parts = digits
    rs = spec_with(tmp_path, {"method": {"name": "samme", "rounds": 3}, "members": [{"seed": 1}]}, model=MLP,
                   train={**_train(1), "optimizer": {"name": "adam", "lr": 0.003}})
    trained = fit_ensemble(rs, samples, parts)
    combo = trained.artifact.ensemble["combination"]
    rounds = combo["info"]["rounds"]
    k, train = 10, parts.train
    y = samples.targets()[train]
    w = np.full(len(train), 1 / len(train))
    on_train = [c for c in recorded["predictions"] if np.array_equal(c[1], train)]
    assert len(on_train) == len(combo["weights"]) >= 2
    for r, (_, _, probs) in enumerate(on_train):
        miss = probs.argmax(axis=1) != y
        err = np.sum(w * miss) / np.sum(w)
        alpha = math.log((1 - err) / err) + math.log(k - 1)
        assert rounds[r]["error"] == pytest.approx(err, rel=1e-9)
        assert combo["weights"][r] == pytest.approx(alpha, rel=1e-9)
        w = w * np.exp(alpha * miss)
        w /= w.sum()
    # scikit-learn's AdaBoostClassifier, replaying the same members' training-set predictions,
    # computes the same errors and member weights
    replayed = _sklearn_samme([c[2].argmax(axis=1) for c in on_train], y)
    np.testing.assert_allclose(replayed.estimator_errors_[: len(rounds)], [r["error"] for r in rounds], rtol=1e-9)
    np.testing.assert_allclose(replayed.estimator_weights_[: len(combo["weights"])], combo["weights"], rtol=1e-9)
    # later rounds resample by those weights: drawn from the training rows, with repeats
    assert all(len(rows) == len(train) and np.isin(rows, train).all() for rows in recorded["fits"])
    # the ensemble predicts scikit-learn's SAMME rule: argmax of the alpha-weighted votes
    test_votes = np.zeros((len(parts.test), k))
    for i in range(len(combo["weights"])):
        labels = predictor_for(rs.spec, trained.artifact.member(i)).predict(samples.x[parts.test]).argmax(axis=1)
        test_votes[np.arange(len(labels)), labels] += combo["weights"][i]
    probs = predictor_for(rs.spec, trained.artifact).predict(samples.x[parts.test])
    assert np.array_equal(probs.argmax(axis=1), test_votes.argmax(axis=1))
    decision = test_votes / sum(combo["weights"]) / (k - 1)
    expected = np.exp(decision) / np.exp(decision).sum(axis=1, keepdims=True)  # sklearn's predict_proba
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def _sklearn_samme(predictions: list[np.ndarray], y: np.ndarray) -> object:
    """AdaBoostClassifier (SAMME) over 'learners' that replay the given training-set predictions."""
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.ensemble import AdaBoostClassifier

    queue = list(predictions)

    class Replay(ClassifierMixin, BaseEstimator):
        def fit(self, x, y_, sample_weight=None):
            self.classes_ = np.arange(10)
            self.pred_ = queue.pop(0)
            return self

        def predict(self, x):
            return self.pred_[x[:, 0].astype(int)]

    rows = np.arange(len(y))[:, None]
    return AdaBoostClassifier(Replay(), n_estimators=len(predictions)).fit(rows, y)


def test_samme_stops_when_a_member_is_no_better_than_chance(digits, tmp_path, monkeypatch) -> None:
    import deeppipe.ensemble.boosting as boosting

    samples, parts = digits
    real = boosting.predict_rows
    calls = {"n": 0}

    def chance_after_first(rs, artifact, samples_, rows):
        out = real(rs, artifact, samples_, rows)
        calls["n"] += 1
        if calls["n"] > 1:  # from round 2 on, a member that always says class 0
            out = np.zeros_like(out)
            out[:, 0] = 1.0
        return out

    monkeypatch.setattr(boosting, "predict_rows", chance_after_first)
    rs = spec_with(tmp_path, {"method": {"name": "samme", "rounds": 4}, "members": [{"seed": 1}]}, model=MLP,
                   train=_train(1))
    trained = fit_ensemble(rs, samples, parts)
    rounds = trained.artifact.ensemble["combination"]["info"]["rounds"]
    assert [r["kept"] for r in rounds] == [1.0, 0.0]
    assert rounds[1]["error"] >= 1 - 1 / 10
    assert trained.artifact.member_names == ["round_0"]


def test_snapshot_members_are_cycles_of_one_run_each_restarting_from_the_last(digits, tmp_path, monkeypatch) -> None:
    samples, parts = digits
    inits, histories = [], []
    real_fit = training_stage.fit_experiment

    def fit(rs, samples_, split, **kw):
        inits.append(kw.get("init"))
        trained = real_fit(rs, samples_, split, **kw)
        histories.append(trained.history)
        return trained

    monkeypatch.setattr(training_stage, "fit_experiment", fit)
    rs = spec_with(tmp_path, {"method": "soft_voting", "members": {"snapshots": 3}}, model=MLP,
                   train={**_train(6), "early_stopping": {"monitor": "val/loss", "patience": 1}})
    trained = fit_ensemble(rs, samples, parts)
    names = trained.artifact.member_names
    assert names == ["snapshot_0", "snapshot_1", "snapshot_2"]
    assert inits[0] is None and len(inits) == 3
    for k in (1, 2):  # cycle k starts from exactly the weights cycle k - 1 ended with
        previous = trained.artifact.member(k - 1).state_dict
        assert all(np.array_equal(inits[k][key].numpy(), previous[key].numpy()) for key in previous)
    curves = trained.history  # the members' mean per epoch: each cycle runs 2 epochs, no early stop
    assert len(curves) == 2
    for k in range(3):
        member = trained.artifact.member(k)
        assert member.meta["epochs_run"] == 2
    lrs = [[h["lr"] for h in history] for history in histories]
    assert lrs[0][0] > lrs[0][-1] and lrs[1][0] > lrs[0][-1]  # cosine down, then the restart


@pytest.mark.parametrize(("data", "head", "loss"), [("breast_cancer", 1, "bce"), ("diabetes", 1, "mse")])
def test_stacked_network_equals_scikit_learns_meta_model(tmp_path, monkeypatch, data, head, loss) -> None:
    """Binary (logistic regression on the positive-class columns) and regression (ridge on the
    values): the torch ensemble's output is scikit-learn's meta-model applied to the members'."""
    from sklearn.linear_model import LogisticRegression, Ridge

    import deeppipe.ensemble.stacking as stacking
    from deeppipe.data.stage import ingest, split

    seen = {}
    real_meta = stacking.fit_meta_model

    def meta(task, oof, y, **kw):
        seen["oof"], seen["y"] = oof, y
        return real_meta(task, oof, y, **kw)

    monkeypatch.setattr(stacking, "fit_meta_model", meta)
    rs = spec_with(tmp_path, {"method": {"name": "stacking", "folds": 2}, "members": [{"seed": 1}, {"seed": 2}]},
                   data={"source": {"type": "sklearn", "name": data}, "split": {"val": 0.1, "test": 0.2}},
                   model={"layers": [{"Linear": {"out_features": 8}}, {"ReLU": {}}, {"Linear": {"out_features": head}}]},
                   train={**_train(3), "loss": {"name": loss}})
    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    trained = fit_ensemble(rs, samples, parts)
    x = samples.x[parts.test]
    members = [predictor_for(rs.spec, trained.artifact.member(i)).predict(x) for i in range(2)]
    got = predictor_for(rs.spec, trained.artifact).predict(x)
    features = stacking.features(samples.task, seen["oof"])
    test_features = stacking.features(samples.task, members)
    if samples.task.is_classification:
        ref = LogisticRegression(C=1.0, max_iter=2000).fit(features, seen["y"].astype(int))
        np.testing.assert_allclose(got, ref.predict_proba(test_features), atol=1e-4)
    else:
        ref = Ridge(alpha=1.0).fit(features, seen["y"].reshape(len(seen["y"]), -1))
        np.testing.assert_allclose(got.reshape(-1), ref.predict(test_features).reshape(-1), rtol=1e-4, atol=1e-3)
