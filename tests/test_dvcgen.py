"""dvc.yaml is generated from pipelines/ and the committed one is in sync."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from deeppipe.dvcgen import build_dvc_yaml, write_dvc_yaml

REPO = Path(__file__).resolve().parents[1]


def test_committed_dvc_yaml_is_up_to_date() -> None:
    assert write_dvc_yaml(REPO / "pipelines", REPO / "dvc.yaml", check=True), "run `deeppipe dvc`"


def test_every_experiment_has_four_stages_with_only_its_own_params() -> None:
    dvc = yaml.safe_load(build_dvc_yaml(REPO / "pipelines"))
    names = sorted(p.stem for p in (REPO / "pipelines").glob("*.yml"))
    for name in names:
        ensemble = f"{name}-member-0" in dvc["stages"]  # one stage per member, then one combining them
        for stage in ("ingest", "split", "train", "evaluate"):
            st = dvc["stages"][f"{name}-{stage}"]
            how = "--nodes" if ensemble and stage == "train" else "--tags"
            assert st["cmd"].startswith(f"kedro run --pipelines {name} {how}")
        train = dvc["stages"][f"{name}-member-0" if ensemble else f"{name}-train"]
        (file, keys), = train["params"][0].items()
        assert file == f"pipelines/{name}.yml"
        assert any(k.startswith("model.") for k in keys) and "train.epochs" in keys  # the values, not sections
        assert not any(k.startswith("evaluate") for k in keys)  # evaluation settings must not retrain
        assert dvc["stages"][f"{name}-evaluate"]["metrics"][0] == {
            f"data/08_reporting/{name}/metrics.json": {"cache": False}}


def _project(tmp_path: Path) -> Path:
    """A project folder: the catalog (which places every file) and an empty pipelines/."""
    shutil.copytree(REPO / "conf" / "base", tmp_path / "conf" / "base")
    (tmp_path / "pipelines").mkdir()
    return tmp_path / "pipelines"


def test_params_missing_from_a_file_are_not_listed(tmp_path: Path) -> None:
    pipelines = _project(tmp_path)
    (pipelines / "tiny.yml").write_text(yaml.safe_dump({"data": {"source": {"type": "sklearn", "name": "iris"}},
                                                        "model": {"layers": []}}))
    dvc = yaml.safe_load(build_dvc_yaml(pipelines))
    assert "params" not in dvc["stages"]["tiny-split"]  # no seed, no data.split in the file
    assert dvc["stages"]["tiny-train"]["params"] == [{"pipelines/tiny.yml": ["model.layers"]}]


def test_yaml_suffix_experiments_get_stages_too(tmp_path: Path) -> None:
    """Kedro and dvcgen find experiments the same way: a .yaml file is an experiment too."""
    pipelines = _project(tmp_path)
    (pipelines / "other.yaml").write_text(yaml.safe_dump({"data": {"source": {"type": "sklearn", "name": "iris"}},
                                                          "model": {"layers": []}}))
    dvc = yaml.safe_load(build_dvc_yaml(pipelines))
    assert {"other-ingest", "other-split", "other-train", "other-evaluate"} <= set(dvc["stages"])


def test_paths_come_from_the_catalog(tmp_path: Path) -> None:
    """dvc.yaml's outs follow conf/base/catalog.yml: move a file there and dvc.yaml moves with it."""
    pipelines = _project(tmp_path)
    (pipelines / "tiny.yml").write_text(yaml.safe_dump({"data": {"source": {"type": "sklearn", "name": "iris"}},
                                                        "model": {"layers": []}}))
    catalog = tmp_path / "conf" / "base" / "catalog.yml"
    catalog.write_text(catalog.read_text().replace("data/06_models/{experiment}/model", "models/{experiment}"))
    dvc = yaml.safe_load(build_dvc_yaml(pipelines))
    assert "models/tiny" in dvc["stages"]["tiny-train"]["outs"]
    assert "models/tiny" in dvc["stages"]["tiny-evaluate"]["deps"]
