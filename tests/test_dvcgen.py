"""dvc.yaml is generated from pipelines/ and the committed one is in sync."""

from __future__ import annotations

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
        for stage in ("ingest", "split", "train", "evaluate"):
            st = dvc["stages"][f"{name}-{stage}"]
            assert st["cmd"].startswith(f"kedro run --pipelines {name} --tags")
        train = dvc["stages"][f"{name}-train"]
        (file, keys), = train["params"][0].items()
        assert file == f"pipelines/{name}.yml" and "model" in keys and "train" in keys
        assert "evaluate" not in keys  # evaluation settings must not retrain
        assert dvc["stages"][f"{name}-evaluate"]["metrics"][0] == {
            f"data/08_reporting/{name}/metrics.json": {"cache": False}}


def test_params_missing_from_a_file_are_not_listed(tmp_path: Path) -> None:
    (tmp_path / "tiny.yml").write_text(yaml.safe_dump({"data": {"source": {"type": "sklearn", "name": "iris"}},
                                                       "model": {"layers": []}}))
    dvc = yaml.safe_load(build_dvc_yaml(tmp_path))
    assert "params" not in dvc["stages"]["tiny-split"]  # no seed, no data.split in the file
    assert dvc["stages"]["tiny-train"]["params"] == [{f"{tmp_path.name}/tiny.yml": ["model"]}]
