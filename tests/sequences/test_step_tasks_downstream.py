"""Tagging and CTC through the later stages: voting ensembles of taggers (per-step probabilities
averaged, or votes per step), an Optuna search on a tagging spec, and ONNX export of a tagging and
a CTC model, checked against PyTorch; what cannot work (any ensemble of CTC models, stacking and
boosting of taggers) is refused by validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from deeppipe.data.stage import ingest, split
from deeppipe.errors import SpecError
from deeppipe.evaluation.sequence_metrics import step_accuracy
from deeppipe.spec.loader import load_spec
from tests.sequences.data import tagging_csv

GRU = [{"PackedGRU": {"hidden_size": 16, "output": "all", "bidirectional": True}}, {"Linear": {"out_features": "auto"}}]


def _spec(tmp_path: Path, kind: str, name: str, epochs: int = 3, **extra) -> Path:
    if kind == "tagging":
        data = {"source": {"type": "sequence_csv", "path": str(tagging_csv(tmp_path / "tags.csv", n=160)), "id": "seq",
                           "order": "step", "label": "tag", "per": "step"}, "split": {"val": 0.2, "test": 0.2}}
    else:
        data = {"source": {"type": "digit_sequences", "strings": True, "count": 300, "max_digits": 2},
                "split": {"val": 0.2, "test": 0.2}}
    raw = {"seed": 3, "data": data, "model": {"layers": GRU},
           "train": {"epochs": epochs, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.02}, "progress": False},
           **extra}
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _ensemble(method: str) -> dict:
    return {"ensemble": {"method": method, "members": [{"seed": 1}, {"seed": 2}]}}


@pytest.mark.parametrize(("kind", "method"), [("tagging", "soft_voting"), ("tagging", "hard_voting")])
def test_voting_over_per_step_outputs(tmp_path: Path, kind: str, method: str) -> None:
    from deeppipe.ensemble.stage import fit_ensemble

    rs = load_spec(_spec(tmp_path, kind, "ens", **_ensemble(method)))
    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    trained = fit_ensemble(rs, samples, parts)
    artifact = trained.artifact
    net = artifact.build()
    x, y = torch.from_numpy(samples.x[parts.test]), samples.y[parts.test]
    with torch.no_grad():
        out = net(x)
        members = [artifact.member(i).build()(x) for i in range(2)]
    assert out.shape == members[0].shape  # (N, T, C): one row per step
    probs = torch.softmax(out, -1).numpy()
    if method == "soft_voting":  # the mean of the members' per-step probabilities, exactly
        mean = sum(torch.softmax(m, -1) for m in members) / 2
        np.testing.assert_allclose(probs, mean.numpy(), atol=1e-5)
    each = [step_accuracy(y, m.numpy()) for m in members]
    assert step_accuracy(y, out.numpy()) >= min(each) - 0.02


@pytest.mark.parametrize(("kind", "method", "words"), [
    ("tagging", "stacking", ["ensemble.method.name", "soft_voting"]),
    ("ctc", "soft_voting", ["ensemble", "alignment", "no ensemble"]),  # measured: 0.72 and 0.79 -> 0.49
    ("ctc", "hard_voting", ["ensemble", "alignment"]),
    ("tagging", "samme", ["ensemble.method.name"]),
    ("ctc", "weighted_averaging", ["ensemble", "alignment"]),
])
def test_ensembles_that_cannot_combine_steps_are_refused(tmp_path: Path, kind: str, method: str,
                                                         words: list[str]) -> None:
    members = ({"members": [{"seed": 1}]} if method == "samme" else {})
    ens = _ensemble(method)
    ens["ensemble"].update(members)
    with pytest.raises(SpecError) as err:
        load_spec(_spec(tmp_path, kind, "bad", **ens))
    assert all(w in str(err.value) for w in words), str(err.value)


def test_a_search_on_a_tagging_spec(tmp_path: Path) -> None:
    from deeppipe.tuning.stage import tune

    tune_section = {"tune": {"n_trials": 2, "objective": "val/step_accuracy",
                             "space": {"train.optimizer.lr": {"float": [0.005, 0.03], "log": True}}}}
    rs = load_spec(_spec(tmp_path, "tagging", "tuned", **tune_section))
    samples = ingest(rs.spec)
    result = tune(rs, samples, split(rs.spec, samples), folder=tmp_path / "study")
    assert result.best["trials"]["complete"] == 2
    assert 0.5 < result.best["values"]["val/step_accuracy"] <= 1.0  # step accuracy of the better trial (chance: about 0.5)


@pytest.mark.parametrize(("kind", "fmt"), [("tagging", "onnx"), ("ctc", "onnx"), ("ctc", "torchscript")])
def test_onnx_export_of_per_step_models_matches_pytorch(tmp_path: Path, kind: str, fmt: str) -> None:
    from deeppipe.export import export_model, run_exported
    from deeppipe.training.stage import fit_experiment

    rs = load_spec(_spec(tmp_path, kind, "exp"))
    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    artifact = fit_experiment(rs, samples, parts, picture=False).artifact
    x = samples.x[parts.test]
    done = export_model(artifact, fmt, tmp_path / "model", x)
    assert done.max_abs_diff <= 1e-4 and done.samples == len(x)
    got = run_exported(tmp_path / "model", fmt, x[:7])  # another batch size, other lengths
    with torch.no_grad():
        want = artifact.build()(torch.from_numpy(x[:7])).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
