"""Issue 15, items 2, 3 and 11 (checkpoints): a checkpoint is one atomic unit read from one place,
it is resumed only for the same spec on the same data and split, and a file that is not one of
deeppipe's checkpoints is refused with deeppipe's own message (nothing in it runs)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from deeppipe.data.sources import Samples
from deeppipe.data.stage import ingest, split
from deeppipe.spec.loader import load_spec
from deeppipe.tracking.tracker import MemoryTracker
from deeppipe.training import TrainingError, checkpoint_info, fit
from deeppipe.training.checkpoint import CHECKPOINT
from deeppipe.training.resume import checkpoint_dir, clear_finished, resume_key
from deeppipe.training.stage import fit_experiment
from tests.trackers import Crash
from tests.training.helpers import mlp, quiet

from .conftest import FAULTS, write_spec

SCRIPT = Path(__file__).parents[1] / "training" / "resume_script.py"
SPEC = {"seed": 2, "data": {"source": {"type": "sklearn", "name": "digits"}, "split": {"val": 0.1, "test": 0.2}},
        "model": {"layers": [{"Flatten": {}}, {"Linear": {"out_features": 16}}, {"ReLU": {}},
                             {"Linear": {"out_features": 10}}]},
        "train": {"epochs": 4, "batch_size": 64, "progress": False, "deterministic": True}}




def test_a_checkpoint_is_one_file_read_from_one_place(tmp_path: Path, digits_sources, task) -> None:
    """Item 2: no second file can disagree with the checkpoint (the old meta.json beside it did)."""
    train, val = digits_sources
    fit(mlp(), train, val, quiet(epochs=2), task, checkpoint_dir=tmp_path, spec_hash="h")
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT]
    # the state a kill between the old layout's two renames left: last.pt finished, meta.json not
    (tmp_path / "meta.json").write_text('{"epoch": 1, "spec_hash": "h", "finished": false}')
    assert checkpoint_info(tmp_path)["finished"] is True  # read from last.pt itself
    clear_finished(tmp_path.parent, keep=None)
    assert not tmp_path.exists(), "a finished checkpoint is cleared, not resumed for ever"


def _script(ckpt: Path, out: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    if fault:
        env.update(DEEPPIPE_FAULT=fault, PYTHONPATH=os.pathsep.join([str(FAULTS), env.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, str(SCRIPT), str(ckpt), str(out)], env=env, capture_output=True,
                          text=True, timeout=300)


def test_kills_inside_checkpoint_writes_then_reruns_give_identical_weights(tmp_path: Path) -> None:
    """Item 2: SIGKILL inside the final checkpoint's write (between the two renames of the old
    layout, the state that made every later run 'resume at epoch 3', train nothing and register
    again): the old checkpoint is whole, and the rerun trains the last epoch."""
    ckpt, out = tmp_path / "ckpt", tmp_path / "resumed.pt"
    killed = _script(ckpt, out, "kill:last.pt@8")  # 8 epochs: saves after epochs 0..6, then the final one
    assert killed.returncode == -9, killed.stderr[-2000:]
    info = checkpoint_info(ckpt)  # readable after the kill: the previous checkpoint, whole
    assert info["epoch"] == 7 and not info["finished"]
    assert not out.exists()
    done = _script(ckpt, out)
    assert done.returncode == 0, done.stderr[-2000:]
    full = _script(tmp_path / "full_ckpt", tmp_path / "full.pt")
    assert full.returncode == 0, full.stderr[-2000:]
    a, b = torch.load(tmp_path / "full.pt", weights_only=True), torch.load(out, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert checkpoint_info(ckpt)["finished"] is True


@pytest.fixture
def digits_run(tmp_path: Path):
    rs = load_spec(write_spec(tmp_path, SPEC, "digits_ckpt.yml"))
    samples = ingest(rs.spec)
    return rs, samples, split(rs.spec, samples)


def _reversed(samples: Samples) -> Samples:
    return Samples(samples.x, (9 - samples.y).astype(samples.y.dtype), samples.task, samples.n_official_test,
                   dict(samples.meta))


def test_a_checkpoint_of_other_data_is_never_resumed(tmp_path: Path, digits_run) -> None:
    """Item 3: after a kill, the data changed (labels reversed): the rerun stops, or starts fresh."""
    rs, samples, parts = digits_run
    root = tmp_path / "checkpoints"
    with pytest.raises(KeyboardInterrupt):
        fit_experiment(rs, samples, parts, tracker=Crash(at=2), checkpoints=root)
    info = checkpoint_info(checkpoint_dir(root, rs.hash))
    assert info["epoch"] >= 1 and not info["finished"]
    with pytest.raises(TrainingError) as err:
        fit_experiment(rs, _reversed(samples), parts, tracker=MemoryTracker(), checkpoints=root)
    assert "other data" in str(err.value) and "on_mismatch: restart" in str(err.value)

    raw = copy.deepcopy(SPEC)
    raw["train"]["checkpoint"] = {"on_mismatch": "restart"}
    rs2 = load_spec(write_spec(tmp_path, raw, "digits_ckpt.yml"))
    with pytest.raises(KeyboardInterrupt):
        fit_experiment(rs2, samples, parts, tracker=Crash(at=2), checkpoints=root)
    tracker = MemoryTracker()
    fresh = fit_experiment(rs2, _reversed(samples), parts, tracker=tracker, checkpoints=root)
    assert fresh.result.resumed_from is None  # trained from scratch on the new data
    assert [s for s, _ in tracker.metrics] == list(range(1, 5))  # one history, of the new data only
    assert np.isfinite(fresh.history[-1]["train/loss"])


def test_the_same_spec_and_data_resume(tmp_path: Path, digits_run) -> None:
    rs, samples, parts = digits_run
    root = tmp_path / "checkpoints"
    with pytest.raises(KeyboardInterrupt):
        fit_experiment(rs, samples, parts, tracker=Crash(at=2), checkpoints=root)
    again = fit_experiment(rs, samples, parts, tracker=MemoryTracker(), checkpoints=root)
    assert again.result.resumed_from == 1  # epoch 2 was logged, then killed before its checkpoint
    key = checkpoint_info(checkpoint_dir(root, rs.hash))["spec_hash"]
    assert key == resume_key(rs.hash, again.artifact.meta["data_sha256"])


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("kind", ["pickle", "truncated", "not_a_state"])
def test_a_tampered_checkpoint_is_refused_in_deeppipe_words(tmp_path: Path, digits_sources, task, kind) -> None:
    """Item 11: never PyTorch's advice to load with weights_only=False; the payload never runs."""
    train, val = digits_sources
    folder, marker = tmp_path / "ckpt", tmp_path / "pwned"
    fit(mlp(), train, val, quiet(epochs=2), task, checkpoint_dir=folder, spec_hash="h")
    path = folder / CHECKPOINT
    if kind == "pickle":
        torch.save({"model": _Evil(marker)}, path)
    elif kind == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(TrainingError) as err:
        fit(mlp(), train, val, quiet(epochs=3), task, checkpoint_dir=folder, spec_hash="h")
    text = str(err.value)
    assert "not a deeppipe checkpoint" in text and str(path) in text
    assert "weights_only" not in text and not marker.exists()
