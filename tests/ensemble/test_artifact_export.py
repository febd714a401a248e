"""An ensemble is one model artifact: it survives the model folder round trip, loads in the MLflow
pyfunc through the same code as a single model, and exports to ONNX and TorchScript whose own
runtimes match PyTorch within 1e-4 on the test split."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from deeppipe.artifact import load_artifact, save_artifact
from deeppipe.ensemble.artifact import EnsembleArtifact, load_model
from deeppipe.ensemble.stage import combine
from deeppipe.export import TOLERANCE, export_model, run_exported

from .conftest import spec_with


@pytest.fixture(scope="module")
def weighted(voters, digits, tmp_path_factory):
    """The voters with weights fitted on the validation split: one ensemble artifact."""
    rs, members = voters
    samples, parts = digits
    rs = spec_with(tmp_path_factory.mktemp("stacked"), {"method": "weighted_averaging",
                                                         "members": [{"seed": 1}, {"seed": 2}, {"seed": 3}]})
    return rs, combine(rs, members, samples, parts).artifact


def test_round_trip_and_pyfunc_load_the_same_ensemble(weighted, digits, tmp_path) -> None:
    from deeppipe.tracking.pyfunc_model import DeeppipePyfunc

    _rs, artifact = weighted
    samples, parts = digits
    save_artifact(artifact, tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["meta.json", "model.safetensors", "spec.yaml"]
    assert not isinstance(load_artifact(tmp_path / "model"), EnsembleArtifact)
    loaded = load_model(tmp_path / "model")
    assert isinstance(loaded, EnsembleArtifact) and loaded.member_names == artifact.member_names
    x = samples.x[parts.test].astype(np.float32)
    import torch

    with torch.no_grad():
        before = artifact.build()(torch.from_numpy(x)).numpy()
        after = loaded.build()(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(before, after)
    served = DeeppipePyfunc()
    served.load_context(SimpleNamespace(artifacts={"model": str(tmp_path / "model")}))
    probs = served.predict(None, x)
    labels = served.predict(None, x, params={"output": "label"})
    np.testing.assert_allclose(probs, np.exp(before) / np.exp(before).sum(axis=1, keepdims=True), atol=1e-5)
    assert np.array_equal(labels, probs.argmax(axis=1))


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_pytorch_on_the_test_split(weighted, digits, tmp_path, fmt) -> None:
    _rs, artifact = weighted
    samples, parts = digits
    x = samples.x[parts.test].astype(np.float32)
    result = export_model(artifact, fmt, tmp_path / f"model.{fmt}", x)
    assert result.samples == len(x) and result.max_abs_diff <= TOLERANCE
    import torch

    with torch.no_grad():
        expected = artifact.build()(torch.from_numpy(x)).numpy()
    got = run_exported(result.path, fmt, x)  # onnxruntime's own session / torch.jit.load
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)


def test_a_single_model_exports_too(voters, digits, tmp_path) -> None:
    _, members = voters
    samples, parts = digits
    x = samples.x[parts.test].astype(np.float32)
    for fmt in ("onnx", "torchscript"):
        assert export_model(members[0].artifact, fmt, tmp_path / f"single.{fmt}", x).max_abs_diff <= TOLERANCE


def test_a_stacked_network_meta_model_exports_too(voters, digits, tmp_path) -> None:
    """stacking's meta-model (scikit-learn's MLP carried into torch layers) in the exported graph."""
    from deeppipe.ensemble.artifact import pack
    from deeppipe.ensemble.members import predict_rows
    from deeppipe.ensemble.methods import Combination
    from deeppipe.ensemble.stacking import fit_meta_model

    rs, members = voters
    samples, parts = digits
    val = [predict_rows(rs, m.artifact, samples, parts.val) for m in members]
    layers, state, info = fit_meta_model(samples.task, val, samples.targets()[parts.val], kind="mlp", C=1.0,
                                         hidden=[16], seed=0)
    artifact = pack(rs.spec.to_dict(), [(m.name, m.artifact) for m in members],
                    Combination("stack", [1.0] * 3, layers, state, info), {"method": "stacking"})
    x = samples.x[parts.test].astype(np.float32)
    assert export_model(artifact, "onnx", tmp_path / "m.onnx", x).max_abs_diff <= TOLERANCE


def test_members_from_trials_are_the_models_tuning_kept_best_first(voters, digits, tmp_path, monkeypatch) -> None:
    """The tuning stage's kept-models folder (tuning.keep: trials/<number>/ and top.json, best
    first) is what {from_trials: topK} loads; nothing is trained."""
    import json
    import shutil

    from deeppipe.ensemble.stage import fit_ensemble
    from deeppipe.files import write_json
    from deeppipe.tracking.tracker import MemoryTracker

    from .conftest import REPO_CONF

    _, members = voters
    samples, parts = digits
    shutil.copytree(REPO_CONF, tmp_path / "conf" / "base")
    monkeypatch.chdir(tmp_path)
    rs = spec_with(tmp_path, {"method": "soft_voting", "members": {"from_trials": "top2"}}, name="digits_tuned")
    kept = tmp_path / "data/06_models/digits_tuned/tune/trials"
    for number, member in ((7, members[2]), (3, members[0]), (11, members[1])):
        save_artifact(member.artifact, kept / f"{number:05d}")
    write_json(kept / "top.json", [{"trial": 7, "values": [0.1], "path": "00007"},
                                   {"trial": 3, "values": [0.2], "path": "00003"},
                                   {"trial": 11, "values": [0.3], "path": "00011"}])
    tracker = MemoryTracker()
    trained = fit_ensemble(rs, samples, parts, tracker=tracker)
    assert trained.artifact.member_names == ["trial_1", "trial_2"]
    assert [m["meta"].get("spec_hash") for m in trained.artifact.ensemble["members"]] == [
        members[2].artifact.meta["spec_hash"], members[0].artifact.meta["spec_hash"]]
    for i, source in enumerate((members[2], members[0])):
        state = trained.artifact.member(i).state_dict
        assert all(np.array_equal(state[k].numpy(), v.numpy()) for k, v in source.artifact.state_dict.items())
    assert not any(k.endswith("train/loss") for _, m in tracker.metrics for k in m)  # loaded, not trained
    assert json.loads((kept / "top.json").read_text())[0]["trial"] == 7
