"""The generated DVC tune stage: what reruns it, what it writes, and what depends on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from deeppipe.dvcgen import build_dvc_yaml

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_search_gets_a_tune_stage_the_train_stage_depends_on() -> None:
    stages = yaml.safe_load(build_dvc_yaml(REPO / "pipelines"))["stages"]
    names = list(stages)
    tune, train, evaluate = (stages[f"digits_tuned-{s}"] for s in ("tune", "train", "evaluate"))
    assert names.index("digits_tuned-split") < names.index("digits_tuned-tune") < names.index("digits_tuned-train")
    assert tune["cmd"] == "kedro run --pipelines digits_tuned --tags tune"
    best = "data/06_models/digits_tuned/best_params.yml"
    assert tune["outs"][0] == best  # DVC-tracked (cached)
    assert {"data/06_models/digits_tuned/tune": {"cache": False, "persist": True}} in tune["outs"]  # resumable
    assert best in train["deps"] and best in evaluate["deps"]
    (keys,) = tune["params"][0].values()
    # reruns when the search, anything a trial trains or the data change; not for evaluation settings
    assert {"tune.n_trials", "tune.space.train.optimizer.lr.float", "train.optimizer.lr", "model.layers", "seed"} <= set(keys)
    assert not any(k.startswith(("evaluate", "register")) for k in keys)
    assert "data/02_intermediate/digits_tuned/dataset.npz" in tune["deps"] and "src/deeppipe/tuning" in tune["deps"]
    # an experiment without tune: has no tune stage and trains from its own file only
    assert "digits_cnn-tune" not in stages
    assert not any("best_params" in d for d in stages["digits_cnn-train"]["deps"])


def test_no_tune_stage_once_the_section_is_removed(tmp_path: Path) -> None:
    shutil.copytree(REPO / "conf" / "base", tmp_path / "conf" / "base")
    (tmp_path / "pipelines").mkdir()
    spec = yaml.safe_load((REPO / "pipelines" / "digits_tuned.yml").read_text())
    spec.pop("tune")
    (tmp_path / "pipelines" / "plain.yml").write_text(yaml.safe_dump(spec))
    stages = yaml.safe_load(build_dvc_yaml(tmp_path / "pipelines"))["stages"]
    assert list(stages) == ["plain-ingest", "plain-split", "plain-train", "plain-evaluate"]
