"""Models as spec + weights: round trip, strict loading, atomic saves that never lose the old model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from kedro.io import DatasetError

from deeppipe import artifact as art
from deeppipe.artifact import ModelArtifact, assemble, load_artifact, save_artifact, serve_outputs
from deeppipe.data.task import Task
from deeppipe.files import ArtefactError
from deeppipe.io import JsonDataset, NpzDataset

SPEC = {"layers": [{"Flatten": {}}, {"Linear": {"out_features": 16}}, {"ReLU": {}}, {"Linear": {"out_features": 3}}]}


def _artifact(seed: int = 0) -> ModelArtifact:
    torch.manual_seed(seed)
    meta = {"input_shape": [1, 4, 4], "task": Task("multiclass", 3, ("a", "b", "c")).to_dict(), "normalize": True,
            "mean": [0.5], "std": [0.25]}
    net = assemble(SPEC, meta)
    return ModelArtifact(spec={"model": SPEC}, meta=meta, state_dict=net.state_dict())


def test_round_trip_rebuilds_identical_predictions(tmp_path: Path) -> None:
    a = _artifact()
    save_artifact(a, tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["meta.json", "model.safetensors", "spec.yaml"]
    b = load_artifact(tmp_path / "model")
    x = np.random.default_rng(0).random((5, 1, 4, 4), dtype=np.float32)
    pa = serve_outputs(a, a.build(), x)
    pb = serve_outputs(b, b.build(), x)
    np.testing.assert_allclose(pa, pb, rtol=0, atol=0)
    assert pa.shape == (5, 3) and np.allclose(pa.sum(1), 1, atol=1e-6)
    assert serve_outputs(b, b.build(), x, "label").tolist() == pa.argmax(1).tolist()
    # the normaliser travels with the model
    assert torch.equal(b.state_dict["normalizer.mean"], torch.tensor([0.5]).reshape(1, 1, 1, 1))


def test_weights_that_do_not_match_the_spec_are_refused(tmp_path: Path) -> None:
    a = _artifact()
    state = dict(a.state_dict)
    state.pop("normalizer.std")
    with pytest.raises(ArtefactError, match="Missing key"):
        ModelArtifact(a.spec, a.meta, state).build()


def test_a_failed_save_keeps_the_previous_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "model"
    save_artifact(_artifact(0), target)
    before = (target / "model.safetensors").read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(art, "save_file", boom)
    with pytest.raises(OSError):
        save_artifact(_artifact(1), target)
    assert (target / "model.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary folder left behind


def test_regression_head_predicts_in_real_units() -> None:
    meta = {"input_shape": [2], "task": Task("regression", 1).to_dict(), "normalize": False,
            "target_mean": [100.0], "target_std": [10.0]}
    net = assemble({"layers": [{"Linear": {"out_features": 1}}]}, meta)
    with torch.no_grad():
        net.body.apply(lambda m: [torch.nn.init.zeros_(p) for p in m.parameters(recurse=False)])
        assert net(torch.zeros(3, 2)).flatten().tolist() == [100.0, 100.0, 100.0]


def test_npz_and_json_datasets_are_atomic_and_pickle_free(tmp_path: Path) -> None:
    ds = NpzDataset(str(tmp_path / "d" / "x.npz"))
    ds.save({"x": np.arange(6).reshape(2, 3), "name": np.asarray("digits")})
    loaded = ds.load()
    assert loaded["x"].tolist() == [[0, 1, 2], [3, 4, 5]] and str(loaded["name"]) == "digits"
    with pytest.raises(DatasetError, match="Object arrays cannot be saved"):
        NpzDataset(str(tmp_path / "o.npz")).save({"obj": np.asarray([{"a": 1}], dtype=object)})
    assert list((tmp_path).glob(".o.npz*")) == []
    js = JsonDataset(str(tmp_path / "m.json"))
    js.save({"acc": np.float32(0.5)})
    assert js.load() == {"acc": 0.5}
