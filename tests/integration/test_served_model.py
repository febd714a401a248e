"""The registered model as MLflow users meet it: self-contained (it loads in a fresh environment
built from its own requirements, without deeppipe), linked to the metrics of the epoch whose
weights it holds, with lineage on its registry version, and served with 4xx answers to requests
it cannot answer."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest

from tests.integration.conftest import BIN, TINY_DIGITS, make_project, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = {**TINY_DIGITS, "train": {**TINY_DIGITS["train"], "epochs": 4,
                                     "early_stopping": {"monitor": "val/accuracy", "patience": 1}}}
    project = make_project(tmp_path_factory.mktemp("served"), {"digits_served": spec})
    run(["kedro", "run", "--pipeline", "digits_served"], project)
    return project


def _client(project: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


def _download(project: Path, dst: Path) -> Path:
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    return Path(mlflow.artifacts.download_artifacts("models:/digits_served@champion", dst_path=str(dst)))


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32)[:, None], d.target


def test_the_model_loads_in_a_fresh_environment_from_its_own_requirements(trained: Path, tmp_path: Path) -> None:
    model = _download(trained, tmp_path / "model")
    reqs = (model / "requirements.txt").read_text().split()
    assert any(r.startswith("mlflow-skinny==") for r in reqs) and not any(r.startswith("deeppipe") for r in reqs)
    assert (model / "code" / "deeppipe" / "artifact.py").is_file()  # deeppipe's code travels with the model
    assert not list((model / "code").rglob("__pycache__"))
    env_dir = tmp_path / "fresh"
    uv = str(BIN / "uv")
    subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(env_dir)], check=True, timeout=120)
    subprocess.run([uv, "pip", "install", "-q", "--find-links", "/opt/wheels", "-r", str(model / "requirements.txt")],
                   check=True, timeout=600, env={**os.environ, "VIRTUAL_ENV": str(env_dir)})
    x, _ = _digits()
    np.save(tmp_path / "x.npy", x[:50])
    script = (
        "import sys, json, numpy as np, mlflow\n"
        "try:\n    import deeppipe\n    sys.exit('deeppipe must not be importable here')\n"
        "except ImportError:\n    pass\n"
        f"m = mlflow.pyfunc.load_model({str(model)!r})\n"
        f"p = m.predict(np.load({str(tmp_path / 'x.npy')!r}))\n"
        f"np.save({str(tmp_path / 'p.npy')!r}, p)\n"
    )
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([str(env_dir / "bin" / "python"), "-c", script], check=True, timeout=300, cwd=tmp_path,
                   env=clean_env)
    here = mlflow.pyfunc.load_model(str(model)).predict(x[:50])
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), here, atol=1e-6)


def test_the_model_links_the_metrics_of_the_epoch_it_holds(trained: Path) -> None:
    client = _client(trained)
    version = client.get_model_version_by_alias("digits_served", "champion")
    model_id = version.model_id or version.source.removeprefix("models:/")
    logged = client.get_logged_model(model_id)
    meta = json.loads((trained / "data/06_models/digits_served/model/meta.json").read_text())
    epoch = meta["weights_epoch"]
    run_id = version.run_id
    history = {m.step: m.value for m in client.get_metric_history(run_id, "val/accuracy")}
    linked = {m.key: m for m in logged.metrics}
    assert linked["val/accuracy"].step == epoch and linked["val/accuracy"].value == pytest.approx(history[epoch])
    assert "test/accuracy" in linked  # the test metrics of those weights too


def test_the_registry_version_says_where_it_came_from(trained: Path) -> None:
    client = _client(trained)
    version = client.get_model_version_by_alias("digits_served", "champion")
    assert "tiny digits CNN for tests" in version.description and "spec hash" in version.description
    tags = version.tags
    assert len(tags["deeppipe.data_sha256"]) == 16 and tags["deeppipe.spec_hash"]
    assert tags["deeppipe.selection_metric"] == "accuracy" and tags["deeppipe.run_id"] == version.run_id
    inputs = client.get_run(version.run_id).inputs.dataset_inputs
    assert inputs and inputs[0].dataset.name == "digits_served" and inputs[0].dataset.digest == tags["deeppipe.data_sha256"]
    assert json.loads(inputs[0].dataset.schema)  # the Dataset column is filled with a schema


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(model: Path):
    """A real `mlflow models serve` of ``model`` on a free loopback port (yielded), once it answers /ping."""
    port = _free_port()
    server = subprocess.Popen([str(BIN / "mlflow"), "models", "serve", "-m", str(model), "--env-manager", "local",
                               "-h", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"})
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def _post(port: int, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_serving_answers_what_it_can_and_refuses_the_rest_with_4xx(trained: Path, tmp_path: Path) -> None:
    model = _download(trained, tmp_path / "model")
    with serving(model) as port:
        x, y = _digits()
        rows = x[:20].tolist()
        status, body = _post(port, {"inputs": rows})
        probs = np.asarray(body["predictions"])
        assert status == 200 and probs.shape == (20, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
        status, body = _post(port, {"inputs": rows, "params": {"output": "label"}})
        assert status == 200 and (np.asarray(body["predictions"]) == y[:20]).mean() > 0.7
        status, body = _post(port, {"inputs": rows, "params": {"output": "logits"}})
        logits = np.asarray(body["predictions"])
        assert status == 200 and not np.allclose(logits.sum(1), 1)  # raw outputs, not probabilities
        np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), probs, atol=1e-4)
        with_nan = x[:20].copy()
        with_nan[3, 0, 2, 2] = np.nan
        for request, word in (({"inputs": rows, "params": {"output": "probs"}}, "unknown output"),
                              ({"inputs": (x[:20] * 16).tolist()}, "[0, 1]"),
                              ({"inputs": with_nan.tolist()}, "NaN"),
                              ({"inputs": x[:20, :, :4, :4].tolist()}, "shape")):
            status, body = _post(port, request)
            assert 400 <= status < 500, (status, body)
            assert word in body.get("message", ""), body
            # MLflow prefixes repr(request): deeppipe keeps it to a few values, never the whole request
            assert len(body["message"]) < 600 and len(body["message"]) < len(json.dumps(request["inputs"]))
    shutil.rmtree(tmp_path / "model", ignore_errors=True)
