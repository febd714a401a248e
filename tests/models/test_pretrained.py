"""Transfer learning (issue 13): `model.pretrained` loads the selected weights of another model,
refuses shape mismatches at validation, keeps frozen layers bit-identical, and gains accuracy
over training from scratch on few labels."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from sklearn.datasets import load_digits

from deeppipe.artifact import save_artifact
from deeppipe.data.stage import ingest, split
from deeppipe.errors import SpecError
from deeppipe.spec.loader import load_spec
from deeppipe.training.stage import fit_experiment

CNN = [{"Conv2d": {"out_channels": 16, "kernel_size": 3, "padding": 1}, "name": "c1"}, "ReLU",
       {"MaxPool2d": {"kernel_size": 2}},
       {"Conv2d": {"out_channels": 32, "kernel_size": 3, "padding": 1}, "name": "c2"}, "ReLU", "Flatten",
       {"Linear": {"out_features": 64}, "name": "fc"}, "ReLU", {"Linear": {"out_features": "auto"}, "name": "head"}]


def _npz(folder: Path, classes: list[int], per_class: int | None, seed: int = 0) -> Path:
    d = load_digits()
    rng = np.random.default_rng(seed)
    keep = []
    for c in classes:
        rows = np.flatnonzero(d.target == c)
        keep.extend(rng.permutation(rows)[:per_class] if per_class else rows)
    keep = np.sort(np.asarray(keep))
    y = np.searchsorted(classes, d.target[keep])
    path = folder / f"digits_{'_'.join(map(str, classes))}_{per_class}.npz"
    np.savez(path, x=(d.images[keep] / 16.0).astype(np.float32)[:, None], y=y.astype(np.int64))
    return path


def _spec(folder: Path, name: str, data: Path, *, epochs: int, pretrained: dict | None = None,
          freeze: list[str] | None = None, split: dict | None = None) -> Path:
    model = {"layers": copy.deepcopy(CNN)}
    if pretrained:
        model["pretrained"] = pretrained
    raw = {"seed": 3, "data": {"source": {"type": "npz", "path": str(data)},
                               "split": split or {"val": 0.0, "test": 0.5}},
           "model": model, "train": {"epochs": epochs, "batch_size": 16, "progress": False,
                                     "optimizer": {"name": "adam", "lr": 0.003}, "freeze": freeze or []}}
    path = folder / f"{name}.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def source_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CNN trained on the digits 0-5 (six classes), saved as a deeppipe model folder."""
    folder = tmp_path_factory.mktemp("pretrain")
    rs = load_spec(_spec(folder, "source", _npz(folder, [0, 1, 2, 3, 4, 5], None), epochs=6,
                         split={"val": 0.1, "test": 0.1}))
    samples = ingest(rs.spec)
    trained = fit_experiment(rs, samples, split(rs.spec, samples))
    save_artifact(trained.artifact, folder / "model")
    return folder / "model"


def _fit(path: Path):
    rs = load_spec(path)
    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    trained = fit_experiment(rs, samples, parts)
    net = trained.artifact.build()
    x, y = samples.x[parts.test], samples.y[parts.test]
    with torch.no_grad():
        acc = float((net(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
    return trained, acc


def test_frozen_pretrained_layers_stay_bit_identical_and_the_new_head_trains(tmp_path: Path, source_model: Path) -> None:
    target = _npz(tmp_path, [6, 7, 8, 9], 20)
    spec = _spec(tmp_path, "frozen", target, epochs=3, freeze=["c1.*", "c2.*"],
                 pretrained={"from": str(source_model), "layers": ["c1.*", "c2.*", "fc.*"]})
    trained, _ = _fit(spec)
    before = load_file(str(source_model / "model.safetensors"))
    after = trained.artifact.state_dict
    for name in ("c1.weight", "c1.bias", "c2.weight", "c2.bias"):
        assert torch.equal(after[f"body.{name}"], before[f"body.{name}"]), name  # loaded and frozen
    assert not torch.equal(after["body.fc.weight"], before["body.fc.weight"])  # loaded, then fine-tuned
    assert after["body.head.weight"].shape == (4, 64) != before["body.head.weight"].shape  # a new head
    assert trained.artifact.meta["pretrained"] == {"from": str(source_model), "loaded": 6, "missing": 0}


def test_the_selected_weights_are_loaded_before_training(tmp_path: Path, source_model: Path) -> None:
    from deeppipe.artifact import assemble
    from deeppipe.models.pretrained import load_pretrained
    from deeppipe.training.stage import model_facts

    target = _npz(tmp_path, [6, 7, 8, 9], 20)
    rs = load_spec(_spec(tmp_path, "load", target, epochs=1,
                         pretrained={"from": str(source_model), "layers": ["c*.weight"]}))
    samples = ingest(rs.spec)
    net = assemble(rs.spec.model, model_facts(rs, samples, split(rs.spec, samples)))
    fresh = {k: v.clone() for k, v in net.body.state_dict().items()}
    moved = load_pretrained(net.body, rs.spec.model.pretrained)
    before = load_file(str(source_model / "model.safetensors"))
    assert moved.loaded == ["c1.weight", "c2.weight"] and not moved.missing
    assert torch.equal(net.body.c1.weight, before["body.c1.weight"])
    assert torch.equal(net.body.state_dict()["c1.bias"], fresh["c1.bias"])  # not selected: as initialised


def test_shape_mismatches_and_unsafe_files_are_refused_at_validation(tmp_path: Path, source_model: Path) -> None:
    target = _npz(tmp_path, [6, 7, 8, 9], 20)
    with pytest.raises(SpecError) as err:  # "*" takes the six-class head too
        load_spec(_spec(tmp_path, "all", target, epochs=1, pretrained={"from": str(source_model)}))
    text = str(err.value)
    assert "'head.weight'" in text and "[6, 64]" in text and "[4, 64]" in text and "all.yml" in text
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(type("X", (), {"__reduce__": lambda self: (print, ("ran",))})()))
    with pytest.raises(SpecError) as err:
        load_spec(_spec(tmp_path, "evil", target, epochs=1, pretrained={"from": str(evil), "layers": "c1.*"}))
    assert "not a weights file deeppipe can read safely" in str(err.value) and "weights_only" not in str(err.value)
    with pytest.raises(SpecError) as err:
        load_spec(_spec(tmp_path, "none", target, epochs=1, pretrained={"from": str(source_model), "layers": "x*"}))
    assert "no parameter of this network matches" in str(err.value)
