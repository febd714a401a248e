"""Transfer learning (issue 13): a network pretrained on a Fashion-MNIST subset reused on
scikit-learn's digits resized to 28x28 (``data.resize``), with a new head (``new_head``), frozen
layers (``freeze``: patterns or ``all_but_last``) that stay bit-identical, normalisation statistics
included, and two-phase fine-tuning (``fine_tune``) in one run with one continuous history."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from deeppipe.artifact import save_artifact
from deeppipe.data.stage import ingest, read_as, split
from deeppipe.errors import SpecError
from deeppipe.spec.loader import load_spec
from deeppipe.tracking.tracker import MemoryTracker
from deeppipe.training.stage import fit_experiment

CNN = [{"Conv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1}, "name": "c1"},
       {"BatchNorm2d": {}, "name": "bn1"}, "ReLU", {"MaxPool2d": {"kernel_size": 2}},
       {"Conv2d": {"out_channels": 16, "kernel_size": 3, "padding": 1}, "name": "c2"}, "ReLU",
       {"MaxPool2d": {"kernel_size": 2}}, "Flatten",
       {"Linear": {"out_features": 32}, "name": "fc"}, "ReLU", {"Linear": {"out_features": "auto"}, "name": "head"}]
FROZEN = ("c1.weight", "c1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
          "c2.weight", "c2.bias", "fc.weight", "fc.bias")


def _write(folder: Path, name: str, raw: dict) -> Path:
    path = folder / f"{name}.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _digits(folder: Path, *, pretrained: dict | None, epochs: int = 3, resize: bool | list[int] = True) -> Path:
    model: dict = {"layers": copy.deepcopy(CNN)}
    if pretrained is not None:
        model["pretrained"] = pretrained
    data: dict = {"source": {"type": "sklearn", "name": "digits"}, "split": {"val": 0.05, "test": 0.85}}
    if resize:
        data["resize"] = [28, 28] if resize is True else resize
    return _write(folder, "digits", {"seed": 1, "data": data, "model": model,
                                     "train": {"epochs": epochs, "batch_size": 32, "progress": False,
                                               "optimizer": {"name": "adam", "lr": 0.003}}})


@pytest.fixture(scope="module")
def fashion_model(tmp_path_factory: pytest.TempPathFactory, fashion_slice) -> Path:
    """The CNN trained for one epoch on 2,000 Fashion-MNIST images (28x28), saved as a model folder."""
    folder = tmp_path_factory.mktemp("fashion")
    x, y = fashion_slice
    np.savez(folder / "fashion.npz", x=x, y=y)
    rs = load_spec(_write(folder, "fashion", {
        "seed": 0, "data": {"source": {"type": "npz", "path": str(folder / "fashion.npz")}, "split": {"val": 0.1, "test": 0.1}},
        "model": {"layers": CNN}, "train": {"epochs": 1, "batch_size": 64, "progress": False,
                                            "optimizer": {"name": "adam", "lr": 0.003}}}))
    samples = ingest(rs.spec)
    save_artifact(fit_experiment(rs, samples, split(rs.spec, samples)).artifact, folder / "model")
    return folder / "model"


def _train(path: Path, tracker=None):
    rs = load_spec(path)
    samples = ingest(rs.spec)
    return rs, samples, fit_experiment(rs, samples, split(rs.spec, samples), tracker=tracker)


def test_digits_are_resized_to_the_source_size_and_frozen_layers_stay_bit_identical(tmp_path: Path,
                                                                                    fashion_model: Path) -> None:
    spec = _digits(tmp_path, pretrained={"from": str(fashion_model), "new_head": True, "freeze": {"all_but_last": 1}})
    rs, samples, trained = _train(spec)
    assert samples.x.shape[1:] == (1, 28, 28) and trained.artifact.meta["input_shape"] == [1, 28, 28]
    assert samples.meta["read_as"] == read_as(rs.spec) and "resize28x28" in read_as(rs.spec)
    source, after = load_file(str(fashion_model / "model.safetensors")), trained.artifact.state_dict
    for name in FROZEN:  # frozen, normalisation statistics included (bn1 held in eval mode)
        assert torch.equal(after[f"body.{name}"], source[f"body.{name}"]), name
    assert not torch.equal(after["body.head.weight"], source["body.head.weight"])  # the new head trained
    assert trained.artifact.meta["pretrained"]["loaded"] == len(FROZEN) + 1  # + bn1.num_batches_tracked


def test_two_phases_train_the_head_then_every_layer_at_a_lower_rate_in_one_history(
        tmp_path: Path, fashion_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import deeppipe.training.phases as phases

    after_phase: list[dict[str, torch.Tensor]] = []
    real_fit = phases.fit

    def recording_fit(net, *args, **kwargs):
        result = real_fit(net, *args, **kwargs)
        after_phase.append({k: v.detach().clone() for k, v in net.body.state_dict().items()})
        return result

    monkeypatch.setattr(phases, "fit", recording_fit)
    tracker = MemoryTracker()
    spec = _digits(tmp_path, epochs=4, pretrained={"from": str(fashion_model), "new_head": True,
                                                   "fine_tune": {"head_epochs": 2, "lr_factor": 0.1}})
    _, _, trained = _train(spec, tracker)
    history = trained.history
    assert [h["epoch"] for h in history] == [1, 2, 3, 4] and [h["phase"] for h in history] == [1, 1, 2, 2]
    assert [h["lr"] for h in history] == pytest.approx([0.003, 0.003, 0.0003, 0.0003])
    assert tracker.series("phase") == [1.0, 1.0, 2.0, 2.0]  # one run: steps 1..4, no epoch logged twice
    assert [step for step, m in tracker.metrics if "train/loss" in m] == [1, 2, 3, 4]
    source = load_file(str(fashion_model / "model.safetensors"))
    first, second = after_phase
    for name in FROZEN:  # phase one: all but the head fixed; phase two: every layer moves
        assert torch.equal(first[name], source[f"body.{name}"]), name
    assert not torch.equal(first["head.weight"], second["head.weight"])
    assert not torch.equal(second["c1.weight"], source["body.c1.weight"])
    assert trained.result.epochs_run == 4


def test_freezing_by_pattern_keeps_only_the_named_layers_fixed(tmp_path: Path, fashion_model: Path) -> None:
    spec = _digits(tmp_path, epochs=2, pretrained={"from": str(fashion_model), "new_head": True,
                                                   "freeze": ["c1.*", "bn1.*"]})
    _, _, trained = _train(spec)
    source, after = load_file(str(fashion_model / "model.safetensors")), trained.artifact.state_dict
    assert all(torch.equal(after[f"body.{n}"], source[f"body.{n}"]) for n in FROZEN[:6])
    assert not torch.equal(after["body.c2.weight"], source["body.c2.weight"])


@pytest.mark.parametrize(("pretrained", "resize", "words"), [
    ({"new_head": True}, [20, 20], ["data.resize", "expected: data.resize: [28, 28]", "20x20 after data.resize"]),
    ({"new_head": True, "freeze": ["c3.*"]}, True, ["model.pretrained.freeze[0]", "did you mean"]),
    ({"new_head": True, "freeze": {"all_but_last": 5}}, True, ["all_but_last", "1 to 4"]),
    ({"new_head": True, "fine_tune": {"head_epochs": 3}}, True, ["head_epochs", "fewer than train.epochs (3)"]),
])
def test_validation_refuses_what_a_transfer_run_would_fail_on(tmp_path: Path, fashion_model: Path, pretrained: dict,
                                                             resize: bool | list[int], words: list[str]) -> None:
    spec = _digits(tmp_path, pretrained={"from": str(fashion_model), **pretrained}, resize=resize)
    with pytest.raises(SpecError) as err:
        load_spec(spec)
    text = str(err.value)
    assert "digits.yml" in text and all(w in text for w in words), text


def test_resize_is_refused_for_inputs_that_are_not_images(tmp_path: Path) -> None:
    spec = _write(tmp_path, "tab", {"data": {"source": {"type": "sklearn", "name": "breast_cancer"}, "resize": [4, 4]},
                                    "model": {"zoo": "mlp"}, "train": {"epochs": 1}})
    with pytest.raises(SpecError) as err:
        load_spec(spec)
    assert "data.resize" in str(err.value) and "not (channels, height, width)" in str(err.value)


def test_a_two_phase_run_killed_in_phase_two_resumes_there_without_training_phase_one_again(
        tmp_path: Path, fashion_model: Path) -> None:
    from tests.trackers import Crash

    spec = _digits(tmp_path, epochs=4, pretrained={"from": str(fashion_model), "new_head": True,
                                                   "fine_tune": {"head_epochs": 2, "lr_factor": 0.1}})
    rs = load_spec(spec)
    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    with pytest.raises(KeyboardInterrupt):  # killed after logging epoch 4, before checkpointing it
        fit_experiment(rs, samples, parts, tracker=Crash(at=4), checkpoints=tmp_path / "ckpt")
    again = MemoryTracker()
    trained = fit_experiment(rs, samples, parts, tracker=again, checkpoints=tmp_path / "ckpt")
    assert [step for step, m in again.metrics if "train/loss" in m] == [4]  # only the lost epoch is trained again
    assert [h["epoch"] for h in trained.history] == [1, 2, 3, 4] and [h["phase"] for h in trained.history] == [1, 1, 2, 2]
    assert trained.result.resumed_from == 3  # completed epochs found: phase one's two and phase two's first
    folder = tmp_path / "ckpt" / rs.hash
    assert (folder / "last.pt").is_file()  # the run's own checkpoint, which clean-up and resume look for
