"""Voting and averaging on real digits members: what each method promises, checked against the
members' own predictions (and scikit-learn's rules where it has the method)."""

from __future__ import annotations

import numpy as np
import pytest

from deeppipe.augment.apply import eval_view
from deeppipe.ensemble.members import predict_rows
from deeppipe.ensemble.stage import combine
from deeppipe.evaluation.metrics import compute_metrics
from deeppipe.evaluation.predictor import predictor_for
from deeppipe.evaluation.stage import evaluate

from .conftest import spec_with


def _member_probs(rs, members, samples, rows):
    return [predict_rows(rs, m.artifact, samples, rows) for m in members]


def test_soft_voting_of_three_seeded_cnns_is_at_least_their_mean_accuracy(voters, digits) -> None:
    rs, members = voters
    samples, parts = digits
    trained = combine(rs, members, samples, parts)
    result = evaluate(rs, predictor_for(rs.spec, trained.artifact), samples, parts, show=False)
    y = samples.targets()[parts.test]
    member_acc = [compute_metrics(samples.task, y, p, ["accuracy"])[0]["accuracy"]
                  for p in _member_probs(rs, members, samples, parts.test)]
    assert len(set(np.round(member_acc, 6))) > 1, "the seeds must give different members"
    assert result.scalars["accuracy"] >= np.mean(member_acc)
    # the ensemble's probabilities are exactly the mean of the members'
    mean = np.mean(_member_probs(rs, members, samples, parts.test), axis=0)
    got = predictor_for(rs.spec, trained.artifact).predict(samples.x[parts.test])
    np.testing.assert_allclose(got, mean, atol=1e-6)


def test_hard_voting_is_the_majority_label_with_scikit_learns_tie_rule(voters, digits, tmp_path) -> None:
    _base, members = voters
    samples, parts = digits
    rs = spec_with(tmp_path, {"method": "hard_voting", "members": [{"seed": 1}, {"seed": 2}, {"seed": 3}]})
    trained = combine(rs, members, samples, parts)
    probs = _member_probs(rs, members, samples, parts.test)
    labels = np.stack([p.argmax(axis=1) for p in probs], axis=1)
    # scikit-learn's VotingClassifier(voting="hard"): argmax of the bincount (ties: lowest class)
    majority = np.array([np.argmax(np.bincount(row, minlength=10)) for row in labels])
    share = np.stack([np.bincount(row, minlength=10) / 3 for row in labels])
    got = predictor_for(rs.spec, trained.artifact).predict(samples.x[parts.test])
    assert np.array_equal(got.argmax(axis=1), majority)
    np.testing.assert_allclose(got, share, atol=1e-6)


def test_weighted_averaging_is_fitted_on_val_and_never_reads_the_test_split(voters, digits, tmp_path,
                                                                           monkeypatch) -> None:
    import deeppipe.ensemble.stage as stage

    _, members = voters
    samples, parts = digits
    rs = spec_with(tmp_path, {"method": "weighted_averaging", "members": [{"seed": 1}, {"seed": 2}, {"seed": 3}]})
    trained = combine(rs, members, samples, parts)
    combo = trained.artifact.ensemble["combination"]
    w = np.array(combo["weights"])
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0)
    assert combo["info"]["val_loss"] <= combo["info"]["equal_weights_val_loss"] + 1e-12
    # scrambling the test labels changes nothing: the weights come from the validation split (the
    # members' check that they were trained on this very data is switched off for this one call)
    monkeypatch.setattr(stage, "check_member", lambda *a: None)
    scrambled = type(samples)(samples.x, samples.y.copy(), samples.task, samples.n_official_test, samples.meta)
    scrambled.y[parts.test] = np.random.default_rng(0).permutation(scrambled.y[parts.test])
    again = combine(rs, members, scrambled, parts).artifact.ensemble["combination"]["weights"]
    np.testing.assert_allclose(again, w)
    # the fitted mix is what the network computes
    probs = _member_probs(rs, members, samples, parts.val)
    expected = np.tensordot(w, np.stack(probs), axes=1)
    got = predictor_for(rs.spec, trained.artifact).predict(eval_view(None, samples.x[parts.val], "val"))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_member_table_and_disagreement(voters, digits) -> None:
    from deeppipe.ensemble.compare import compare_members

    rs, members = voters
    samples, parts = digits
    trained = combine(rs, members, samples, parts)
    table = compare_members(rs, trained.artifact, samples, parts)
    assert [r["model"] for r in table["rows"]] == ["member_0", "member_1", "member_2", "ensemble"]
    labels = [p.argmax(axis=1) for p in _member_probs(rs, members, samples, parts.test)]
    d = np.array(table["disagreement"]["matrix"])
    assert d[0, 1] == pytest.approx(np.mean(labels[0] != labels[1]), abs=1e-6)
    assert np.allclose(np.diag(d), 0) and np.allclose(d, d.T)


def test_averaging_for_regression_is_the_mean_of_the_members_values(tmp_path) -> None:
    from deeppipe.data.stage import ingest, split
    from deeppipe.ensemble.stage import fit_ensemble
    from deeppipe.evaluation.metrics import compute_metrics

    rs = spec_with(tmp_path, {"method": "averaging", "members": [{"seed": 1}, {"seed": 2}]},
                   data={"source": {"type": "sklearn", "name": "diabetes"}, "split": {"val": 0.1, "test": 0.2}},
                   model={"layers": [{"Linear": {"out_features": 16}}, {"ReLU": {}}, {"Linear": {"out_features": 1}}]},
                   train={"epochs": 5, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.01},
                          "loss": {"name": "mse"}, "progress": False})
    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    trained = fit_ensemble(rs, samples, parts)
    x, y = samples.x[parts.test], samples.targets()[parts.test]
    values = [predictor_for(rs.spec, trained.artifact.member(i)).predict(x) for i in range(2)]
    got = predictor_for(rs.spec, trained.artifact).predict(x)
    np.testing.assert_allclose(got, np.mean(values, axis=0), rtol=1e-5, atol=1e-4)  # real units (Rescale)
    member_mse = [compute_metrics(samples.task, y, v, ["mse"])[0]["mse"] for v in values]
    ensemble_mse = compute_metrics(samples.task, y, got, ["mse"])[0]["mse"]
    assert ensemble_mse <= np.mean(member_mse)  # squared error is convex: the mean never does worse on average


def test_members_trained_for_another_spec_or_other_data_are_refused(voters, digits, tmp_path) -> None:
    from deeppipe.files import ArtefactError

    _, members = voters
    samples, parts = digits
    other = spec_with(tmp_path, {"method": "soft_voting", "members": [{"seed": 1}, {"seed": 2}, {"seed": 9}]})
    with pytest.raises(ArtefactError, match=r"member_2 was trained for another spec.*--nodes digits_ens.member_2"):
        combine(other, members, samples, parts)
    rs = spec_with(tmp_path, {"method": "soft_voting", "members": [{"seed": 1}, {"seed": 2}, {"seed": 3}]})
    changed = type(samples)(samples.x.copy(), samples.y, samples.task, samples.n_official_test, samples.meta)
    changed.x[parts.val[0]] += 0.5
    with pytest.raises(ArtefactError, match="other data"):
        combine(rs, members, changed, parts)
