"""One atomic writer (with the user's umask), one --params parser, one place for the data layout."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deeppipe.errors import SpecError
from deeppipe.files import atomic_dir, atomic_write
from deeppipe.layout import artefact, artefacts, experiment_files, resolve_experiment
from deeppipe.spec.overrides import parse_params, split_items

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_files_get_the_users_umask_not_0600(tmp_path: Path, umask_027: None) -> None:
    f = atomic_write(tmp_path / "a" / "m.json", "{}")
    assert stat.S_IMODE(f.stat().st_mode) == 0o640  # 0666 & ~027; mkstemp alone gives 0600
    with atomic_dir(tmp_path / "model") as d:
        (d / "w.bin").write_bytes(b"x")
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "model" / "w.bin").stat().st_mode) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = atomic_write(tmp_path / "x.txt", "old")

    def half(f) -> None:
        f.write(b"new, half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, half)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "d") as d:
        (d / "f").write_text("x")
        raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


def test_only_one_module_writes_files_atomically() -> None:
    """mkstemp / os.replace live in deeppipe/files.py alone (six copies existed before)."""
    src = REPO / "src" / "deeppipe"
    users = sorted(str(p.relative_to(src)) for p in src.rglob("*.py")
                   if "mkstemp" in p.read_text() or "os.replace" in p.read_text())
    assert users == ["files.py"]


def test_params_split_only_at_top_level_commas() -> None:
    assert parse_params("x=[3,3]") == {"x": [3, 3]}
    got = parse_params("train.epochs=3,train.optimizer.betas=[0.9, 0.99],model.layers[7].Dropout.p=0.3,"
                       "augment.train=[{HorizontalFlip: {p: 0.5}}, Blur],train.device=cpu")
    assert got == {"train.epochs": 3, "train.optimizer.betas": [0.9, 0.99], "model.layers[7].Dropout.p": 0.3,
                   "augment.train": [{"HorizontalFlip": {"p": 0.5}}, "Blur"], "train.device": "cpu"}
    assert parse_params(["a=1", "b=null,c=true"]) == {"a": 1, "b": None, "c": True}
    assert parse_params('s="a,b"') == {"s": "a,b"}


@pytest.mark.parametrize("bad", ["x=[3", "epochs", "=3", "train..epochs=3", "x=!!python/object:os.system ls"])
def test_bad_params_are_one_clear_message(bad: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_params(bad)
    assert str(info.value).startswith("--params")


values = st.one_of(st.integers(-1000, 1000), st.booleans(), st.none(), st.lists(st.integers(0, 9), max_size=4),
                   st.text(alphabet="abcxyz_", min_size=1, max_size=6).filter(lambda s: s not in ("null", "y", "n")))
keys = st.lists(st.text(alphabet="abcdefgh_", min_size=1, max_size=5), min_size=1, max_size=3).map(".".join)


@given(st.dictionaries(keys, values, min_size=1, max_size=4))
def test_params_round_trip(pairs: dict) -> None:
    import yaml

    text = ",".join(f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
                    for k, v in pairs.items())
    assert parse_params(text) == pairs
    assert len(split_items(text)) == len(pairs)


def test_layout_comes_from_the_catalog() -> None:
    paths = artefacts("digits_cnn", root=REPO)
    assert paths["model"] == REPO / "data/06_models/digits_cnn/model"
    assert paths["metrics"] == REPO / "data/08_reporting/digits_cnn/metrics.json"
    assert artefact("x", "checkpoints", root=REPO) == REPO / "data/06_models/x/checkpoints"
    with pytest.raises(SpecError) as info:
        artefact("x", "modle", root=REPO)
    assert info.value.suggestion == "model"


def test_experiments_are_found_by_both_suffixes(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("{}")
    (tmp_path / "b.yaml").write_text("{}")
    (tmp_path / "notes.txt").write_text("")
    assert list(experiment_files(tmp_path)) == ["a", "b"]
    assert resolve_experiment("b", tmp_path) == tmp_path / "b.yaml"
    with pytest.raises(SpecError) as info:
        resolve_experiment("bb", tmp_path)
    assert info.value.suggestion == "b"
    (tmp_path / "a.yaml").write_text("{}")
    with pytest.raises(SpecError, match="two experiment files"):
        experiment_files(tmp_path)


def test_passwords_in_urls_never_reach_mlflow_params() -> None:
    from deeppipe.tracking.stage import _redacted

    assert _redacted("postgresql://bob:s3cret@db.example:5432/optuna") == "postgresql://bob:***@db.example:5432/optuna"
    assert _redacted("postgresql://bob@db/optuna") == "postgresql://bob@db/optuna"  # no password: as written
    assert _redacted("sqlite:///mlflow.db") == "sqlite:///mlflow.db" and _redacted(3) == 3
