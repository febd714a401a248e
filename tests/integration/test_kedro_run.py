"""Real `kedro run` sessions on digits: metrics, MLflow records, the registry alias, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest

from tests.integration.conftest import run

pytestmark = pytest.mark.slow


def _client(project: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


def _count_runs(project: Path) -> int:
    if not (project / "mlflow.db").exists():
        return 0
    client = _client(project)
    return len(client.search_runs([e.experiment_id for e in client.search_experiments()]))


def test_full_run_tracks_registers_and_serves(project: Path) -> None:
    proc = run(["kedro", "run", "--pipeline", "digits_tiny", "--params", "train.epochs=3"], project)
    assert "test metrics" in proc.stdout  # the summary table
    metrics = json.loads((project / "data/08_reporting/digits_tiny/metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.9
    assert metrics["train"]["epochs_run"] == 3
    assert 0.0 < metrics["test"]["log_loss"] < 0.5
    for f in ("plots/confusion_matrix.png", "plots/loss_curves.png", "plots/roc.png", "history.json"):
        assert (project / "data/08_reporting/digits_tiny" / f).stat().st_size > 100
    assert (project / "data/06_models/digits_tiny/model/model.safetensors").exists()
    # normalisation statistics come from the training split only
    meta = json.loads((project / "data/06_models/digits_tiny/model/meta.json").read_text())
    with np.load(project / "data/02_intermediate/digits_tiny/dataset.npz") as d, \
            np.load(project / "data/05_model_input/digits_tiny/split.npz") as s:
        x, train, test = d["x"], s["train"], s["test"]
    assert meta["mean"][0] == pytest.approx(float(x[train].mean()), rel=1e-5)
    assert meta["mean"][0] != pytest.approx(float(x.mean()), rel=1e-6)
    assert not set(train) & set(test)

    client = _client(project)
    exp = client.get_experiment_by_name("digits_tiny")
    assert exp is not None
    (r,) = client.search_runs([exp.experiment_id])
    assert r.data.params["train.epochs"] == "3" and r.data.params["train.optimizer.name"] == "adam"
    assert [m.step for m in client.get_metric_history(r.info.run_id, "train/loss")] == [1, 2, 3]
    assert r.data.metrics["test/accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert len(r.data.tags["deeppipe.data_sha256"]) == 16 and r.data.tags["deeppipe.spec_hash"]
    files = {a.path for a in client.list_artifacts(r.info.run_id)}
    files |= {a.path for a in client.list_artifacts(r.info.run_id, "plots")}
    assert {"spec.yaml", "model_summary.txt", "plots/confusion_matrix.png", "plots/loss_curves.png"} <= files

    champion = client.get_model_version_by_alias("digits_tiny", "champion")
    assert str(champion.version) == "1"
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/digits_tiny@champion")
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    probs = model.predict(x[:200])
    assert probs.shape == (200, 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert (probs.argmax(1) == d.target[:200]).mean() > 0.9
    assert model.metadata.signature is not None

    # a worse model is registered as version 2 but does not take the alias
    run(["kedro", "run", "--pipeline", "digits_tiny", "--params", "train.epochs=1,train.optimizer.lr=0.00001"],
        project)
    assert len(client.search_model_versions("name='digits_tiny'")) == 2
    assert str(client.get_model_version_by_alias("digits_tiny", "champion").version) == "1"
    decision = json.loads((project / "data/08_reporting/digits_tiny/registry.json").read_text())
    assert decision["promoted"] is False and decision["previous_version"] == "1"


def test_bad_override_is_one_clear_message(project: Path) -> None:
    proc = run(["kedro", "run", "--pipeline", "digits_tiny", "--params", "trian.epochs=3"], project, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "did you mean 'train'?" in out and "Traceback" not in out
    proc = run(["kedro", "run", "--pipeline", "digits_tiny", "--params", "train.optimizer.lr=-1"], project,
               check=False)
    assert proc.returncode != 0 and "train.optimizer.lr" in proc.stdout + proc.stderr


def test_tags_select_stages(project: Path, tmp_path: Path) -> None:
    for f in ("data/02_intermediate/digits_tiny/dataset.npz", "data/05_model_input/digits_tiny/split.npz"):
        (project / f).unlink(missing_ok=True)
    runs_before = _count_runs(project)
    proc = run(["kedro", "run", "--pipeline", "digits_tiny", "--tags", "ingest,split"], project)
    assert "digits_tiny.train" not in proc.stdout + proc.stderr
    assert (project / "data/05_model_input/digits_tiny/split.npz").exists()
    assert _count_runs(project) == runs_before  # data preparation alone is not an MLflow run


def test_validate_command(project: Path) -> None:
    proc = run(["deeppipe", "validate", "pipelines/digits_tiny.yml"], project)
    assert "OK" in proc.stdout
    proc = run(["deeppipe", "validate", "pipelines/digits_tiny.yml", "--params", "model.layers[4].Linear.out_feature=3"],
               project, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "model.layers[4].Linear" in proc.stderr


def test_an_identical_rerun_trains_again(project: Path) -> None:
    """Finished checkpoints do not turn a rerun into a no-op (DVC is what skips unchanged work)."""
    args = ["kedro", "run", "--pipeline", "digits_tiny", "--params", "train.epochs=2", "--tags", "train"]
    run(args, project)
    run(args, project)
    client = _client(project)
    runs = client.search_runs([client.get_experiment_by_name("digits_tiny").experiment_id],
                              filter_string="params.`train.epochs` = '2'")
    assert len(runs) == 2
    assert all(len(client.get_metric_history(r.info.run_id, "train/loss")) == 2 for r in runs)


def test_evaluate_stage_starts_a_new_run_when_the_training_run_is_gone(project: Path) -> None:
    other = f"sqlite:///{project / 'other.db'}"  # a different tracking store than the one that trained
    run(["kedro", "run", "--pipeline", "digits_tiny", "--tags", "evaluate"], project, MLFLOW_TRACKING_URI=other)
    client = mlflow.MlflowClient(tracking_uri=other)
    (r,) = client.search_runs([client.get_experiment_by_name("digits_tiny").experiment_id])
    assert "test/accuracy" in r.data.metrics


def test_stage_functions_alone_give_the_metrics_of_kedro_run(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole experiment through deeppipe.stages without a Kedro session: same test metrics."""
    from deeppipe.spec.loader import load_spec
    from deeppipe.stages import run_experiment

    run(["kedro", "run", "--pipeline", "digits_tiny", "--params", "train.epochs=2,seed=11"], project)
    by_kedro = json.loads((project / "data/08_reporting/digits_tiny/metrics.json").read_text())["test"]
    monkeypatch.chdir(project)
    rs = load_spec(project / "pipelines/digits_tiny.yml", {"train.epochs": 2, "seed": 11})
    alone = run_experiment(rs).evaluation.scalars
    assert set(alone) == set(by_kedro)
    for name, value in by_kedro.items():
        assert alone[name] == pytest.approx(value, abs=1e-6), name


def test_kedro_run_and_deeppipe_share_one_params_parser(project: Path) -> None:
    """List values with commas work in `kedro run --params` (Kedro's own parser splits them apart)."""
    proc = run(["kedro", "run", "--pipeline", "digits_tiny", "--params",
                "train.epochs=1,train.optimizer.betas=[0.8, 0.99],model.layers[4].Linear.out_features=auto"], project)
    assert "Traceback" not in proc.stderr
    client = _client(project)
    runs = client.search_runs([client.get_experiment_by_name("digits_tiny").experiment_id],
                              order_by=["attributes.start_time DESC"], max_results=1)
    params = runs[0].data.params
    assert (params["train.optimizer.betas.0"], params["train.optimizer.betas.1"]) == ("0.8", "0.99")
    for args in (["kedro", "run", "--pipeline", "digits_tiny", "--params", "train..epochs=3"],
                 ["deeppipe", "validate", "pipelines/digits_tiny.yml", "--params", "x=[3"]):
        proc = run(args, project, check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 2 and "Traceback" not in out and "--params" in out, out


def test_a_plain_run_reads_at_a_glance(project: Path) -> None:
    """The console of a run without a terminal: deeppipe's lines only, unwrapped, on one stream,
    the metrics table last; no warnings of our own making; --verbose brings Kedro's lines back."""
    proc = run(["kedro", "run", "--pipeline", "digits_tiny", "--params", "train.epochs=2,train.progress=true"],
               project)
    lines = proc.stdout.splitlines()
    assert proc.stderr.strip() == "", proc.stderr  # everything on stdout, in order
    text = proc.stdout
    for needle in ("ingested 1797 samples", "split: ", "model: ", "epoch 1/2", "epoch 2/2", "registered digits_tiny"):
        assert needle in text, needle
    assert "Loading data from" not in text and "WARNING" not in text and "Warning" not in text
    assert "Downloading artifacts" not in text and "Created version" not in text
    assert lines[-1].startswith("└") and "test metrics" in text  # the table closes the output
    assert text.index("registered digits_tiny") < text.index("test metrics")
    assert all(len(line) < 200 for line in lines) and len(lines) < 30, len(lines)
    verbose = run(["kedro", "run", "--pipeline", "digits_tiny", "--params", "train.epochs=1", "--verbose",
                   "--tags", "ingest,split"], project)
    assert "Loading data from" in verbose.stdout + verbose.stderr
