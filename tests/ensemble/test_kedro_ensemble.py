"""An ensemble through the real CLIs: `deeppipe validate`, `kedro run` (one node per member, one
combining them), `kedro run --nodes` retraining one member, the report and the member table,
one registered MLflow model served over HTTP, `deeppipe export` and `deeppipe dvc`."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from tests.integration.conftest import BIN, TINY_DIGITS, make_project, run
from tests.integration.test_served_model import _digits, _post, serving

pytestmark = pytest.mark.slow  # real CLIs end to end, like tests/integration
NAME = "digits_ens"
SPEC = copy.deepcopy(TINY_DIGITS)
SPEC["train"]["epochs"] = 2
OTHER = {**copy.deepcopy(TINY_DIGITS),
         "model": {"layers": [{"Flatten": {}}, {"Linear": {"out_features": 32}}, {"ReLU": {}},
                              {"Linear": {"out_features": 10}}]}}
SPEC["ensemble"] = {"method": "soft_voting", "members": [{"seed": 1}, {"seed": 2}, {"experiment": "digits_mlp"}]}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_project(tmp_path_factory.mktemp("ens"), {NAME: SPEC, "digits_mlp": OTHER})
    run([str(BIN / "deeppipe"), "validate", NAME], root)
    run([str(BIN / "kedro"), "run", "--pipeline", NAME], root)
    return root


def test_a_run_trains_each_member_as_its_own_node_and_reports_them(project: Path) -> None:
    models = project / "data/06_models" / NAME
    assert sorted(p.name for p in (models / "members").iterdir()) == ["0", "1", "2"]
    meta = json.loads((models / "model/meta.json").read_text())
    members = meta["ensemble"]["members"]
    assert [m["name"] for m in members] == ["member_0", "member_1", "member_2"]
    assert members[2]["model"] == OTHER["model"]  # taken from pipelines/digits_mlp.yml
    reporting = project / "data/08_reporting" / NAME
    table = json.loads((reporting / "ensemble_members.json").read_text())
    rows = {r["model"]: r for r in table["rows"]}
    assert set(rows) == {"member_0", "member_1", "member_2", "ensemble"}
    assert rows["ensemble"]["accuracy"] >= np.mean([rows[f"member_{i}"]["accuracy"] for i in range(3)])
    metrics = json.loads((reporting / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] == pytest.approx(rows["ensemble"]["accuracy"])
    page = (reporting / "report.html").read_text()
    assert "Members and the ensemble" in page and "Pairwise disagreement" in page and "<h2>Per class" in page
    assert json.loads((reporting / "registry.json").read_text())["registered"]
    # `kedro run --nodes` retrains one member and leaves the others as they are
    before = {i: (models / "members" / str(i) / "fit.npz").stat().st_mtime_ns for i in range(3)}
    run([str(BIN / "kedro"), "run", "--pipeline", NAME, "--nodes", f"{NAME}.member_1"], project)
    after = {i: (models / "members" / str(i) / "fit.npz").stat().st_mtime_ns for i in range(3)}
    assert after[1] != before[1] and after[0] == before[0] and after[2] == before[2]


def test_the_registered_ensemble_is_one_model_served_over_http(project: Path, tmp_path: Path) -> None:
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    model = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}@champion", dst_path=str(tmp_path / "m")))
    meta = json.loads((model / "artifacts" / "model" / "meta.json").read_text())
    assert len(meta["ensemble"]["members"]) == 3  # the members travel inside the one model
    with serving(model) as port:
        x, y = _digits()
        status, body = _post(port, {"inputs": x[:20].tolist()})
        probs = np.asarray(body["predictions"])
        assert status == 200 and probs.shape == (20, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
        status, body = _post(port, {"inputs": x[:20].tolist(), "params": {"output": "label"}})
        assert status == 200 and (np.asarray(body["predictions"]) == y[:20]).mean() > 0.7
        status, body = _post(port, {"inputs": x[:20, :, :4, :4].tolist()})
        assert 400 <= status < 500 and "shape" in body.get("message", "")


def test_export_and_dvc_stages(project: Path) -> None:
    out = run([str(BIN / "deeppipe"), "export", NAME, "--format", "onnx"], project).stdout
    assert "matches PyTorch on 360 test samples" in out
    onnx_file = project / "data/06_models" / NAME / "model.onnx"
    assert onnx_file.is_file()
    meta = json.loads((project / "data/06_models" / NAME / "model/meta.json").read_text())
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    assert [a.path for a in client.list_artifacts(meta["mlflow_run_id"], "export")] == ["export/model.onnx"]
    run([str(BIN / "deeppipe"), "dvc"], project)
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert stages[f"{NAME}-member-2"]["outs"] == [f"data/06_models/{NAME}/members/2"]
    assert stages[f"{NAME}-train"]["cmd"].endswith(f"--nodes {NAME}.ensemble")
