"""Issue 15, items 9-11: a full disk, an out-of-memory CPU and a tampered model folder each end in
one message naming the file (or the sizes) and the cause, with the previous artefacts intact."""

from __future__ import annotations

import errno
import os
import pickle
import subprocess
from pathlib import Path

import click
import pytest
import torch
from torch import nn

import deeppipe.files as files
from deeppipe.artifact import load_artifact, save_artifact
from deeppipe.files import ArtefactError, WriteError, atomic_dir, atomic_write
from deeppipe.io import JsonDataset, PngFolderDataset
from deeppipe.spec.loader import load_spec
from deeppipe.training import TrainingError, fit
from tests.test_artifact_io import _artifact
from tests.training.helpers import quiet

from .conftest import write_spec


def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 256 KiB tmpfs: a real full disk (needs mount rights; else a refused fsync stands in)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                        capture_output=True).returncode == 0
    yield mnt, ok
    if ok:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_a_full_disk_names_the_file_and_keeps_the_old_version(tiny_disk, monkeypatch) -> None:
    """Item 9: one message with the file and the cause; the previous version stays; no temporary."""
    mnt, real = tiny_disk
    target = atomic_write(mnt / "metrics.json", '{"old": true}')
    if not real:
        monkeypatch.setattr(files.os, "fsync", _enospc)
    with pytest.raises(WriteError) as err:
        atomic_write(target, b"x" * (1 << 20))
    assert isinstance(err.value, click.ClickException) and err.value.errno == errno.ENOSPC
    assert str(target) in str(err.value) and "no space left" in str(err.value).lower()
    assert target.read_text() == '{"old": true}' and [p.name for p in mnt.iterdir()] == ["metrics.json"]


def test_a_stage_writes_its_outputs_as_one_unit(tmp_path: Path, monkeypatch) -> None:
    """Item 9: the reports of a stage never mix two runs (new metrics.json beside old plots)."""
    metrics, plots = JsonDataset(str(tmp_path / "metrics.json")), PngFolderDataset(str(tmp_path / "plots"))
    metrics.save({"run": 1})
    plots.save({"roc": b"1", "confusion": b"1"})
    files.begin_batch()
    metrics.save({"run": 2})
    monkeypatch.setattr(files.os, "chmod", lambda *a, **k: _enospc())  # the plots folder fails
    with pytest.raises(WriteError) as err:  # a DatasetError too: Kedro hands it on unwrapped
        plots.save({"roc": b"2"})
    files.abort_batch()
    assert "plots" in str(err.value)
    assert metrics.load() == {"run": 1} and plots.load() == {"confusion": b"1", "roc": b"1"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "plots"]
    monkeypatch.undo()
    files.begin_batch()
    metrics.save({"run": 3})
    plots.save({"roc": b"3"})
    assert metrics.load() == {"run": 1}  # nothing visible before the commit
    files.commit_batch()
    assert metrics.load() == {"run": 3} and plots.load() == {"roc": b"3"}  # no stale figure kept


def test_leftovers_of_interrupted_writes_are_removed_and_a_cut_swap_undone(tmp_path: Path) -> None:
    """Item 12 (the files' part): what a kill inside a write leaves is recognised and cleared."""
    model = tmp_path / "model"
    with atomic_dir(model) as d:
        (d / "w").write_text("v1")
    (tmp_path / ".model.abc123.tmp").mkdir()  # killed while writing the next version
    (tmp_path / ".metrics.json.x1.tmp").write_text("half")
    os.replace(model, tmp_path / ".model.old")  # killed between the two renames of a swap
    removed = files.remove_leftovers(model) + files.remove_leftovers(tmp_path / "metrics.json")
    assert len(removed) == 2 and (model / "w").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_cpu_out_of_memory_building_the_network(tmp_path: Path) -> None:
    """Item 10: a network too large to allocate: the parameter count and the batch size, no raw
    DefaultCPUAllocator error."""
    from deeppipe.stages import run_experiment

    spec = {"data": {"source": {"type": "sklearn", "name": "iris"}},
            "model": {"layers": [{"Linear": {"out_features": 10**12}}, {"Linear": {"out_features": "auto"}}]},
            "train": {"epochs": 1, "batch_size": 16, "progress": False}}
    rs = load_spec(write_spec(tmp_path, spec), check_model=False)
    with pytest.raises(TrainingError) as err:
        run_experiment(rs)
    text = str(err.value)
    assert "out of memory on cpu" in text and "building the network" in text
    assert "8,000,000,000,003 parameters" in text  # 4 -> 10**12 -> 3 (weights and biases)
    assert "train.batch_size 16" in text


def test_cpu_out_of_memory_in_training(digits_sources, task) -> None:
    class Big(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(64, 10)

        def forward(self, x):
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate "
                               "memory: you tried to allocate 91268055040 bytes. Error code 12")

    train, val = digits_sources
    with pytest.raises(TrainingError) as err:
        fit(Big(), train, val, quiet(epochs=1, batch_size=64), task)
    text = str(err.value)
    assert "out of memory on cpu" in text and "650 parameters" in text and "train.batch_size 64" in text
    assert "DefaultCPUAllocator" not in text


@pytest.mark.parametrize(("file", "content", "word"), [
    ("model.safetensors", pickle.dumps({"w": [1.0]}), "not a safetensors file"),
    ("spec.yaml", b"model: !!python/object/apply:os.system ['touch PWNED']\n", "not plain YAML"),
    ("meta.json", b'{"task": {"kind": "multi', "not valid JSON"),
], ids=["pickle_as_safetensors", "python_tag_in_spec", "corrupt_meta"])
def test_a_tampered_model_folder_is_named_as_corrupt(tmp_path: Path, file: str, content: bytes, word: str) -> None:
    """Item 11: the file named, 'corrupt', nothing evaluated."""
    folder = tmp_path / "model"
    save_artifact(_artifact(), folder)
    (folder / file).write_bytes(content)
    with pytest.raises(ArtefactError) as err:  # a DatasetError too: `kedro run` prints it without a traceback
        load_artifact(folder)
    text = str(err.value)
    assert str(folder / file) in text and "corrupt" in text and word in text
    assert not Path("PWNED").exists()


def test_weights_of_another_network_are_named(tmp_path: Path) -> None:
    a = _artifact()
    save_artifact(a, tmp_path / "model")
    loaded = load_artifact(tmp_path / "model")
    loaded.state_dict = {k: torch.zeros(1) for k in loaded.state_dict}
    with pytest.raises(ArtefactError, match="do not fit the network"):
        loaded.build()
