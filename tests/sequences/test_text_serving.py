"""A text model served as it was logged: raw strings in (tokenised with the training vocabulary
stored in the model, by the same tokeniser as training), token ids still accepted, and every
request it cannot read refused with MLflow's INVALID_PARAMETER_VALUE (a 400 when served)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.exceptions import MlflowException

from deeppipe.data.text_vocab import encode
from deeppipe.data.tokenise import analyzer
from deeppipe.spec.loader import load_spec
from deeppipe.stages import run_experiment
from tests.sequences.data import text_csv


@pytest.mark.parametrize("settings", [
    {"lowercase": True, "token_pattern": r"(?u)\b\w\w+\b", "ngram_range": (1, 1)},
    {"lowercase": False, "token_pattern": r"(?u)\b\w+\b", "ngram_range": (1, 3)},
    {"lowercase": True, "token_pattern": r"(\w+)'?", "ngram_range": (2, 2)},
])
def test_the_tokeniser_is_scikit_learns(settings) -> None:
    from sklearn.feature_extraction.text import CountVectorizer

    texts = ["The film was GREAT, really great!", "", "naïve café Ünïcode — 3 stars", "a b c d e", "don't x y",
             "  spaced\tout\nlines  "]
    ref = CountVectorizer(**settings).build_analyzer()
    ours = analyzer(settings)
    assert [ours(t) for t in texts] == [ref(t) for t in texts]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A tiny text classifier trained, logged and registered, loaded back with mlflow.pyfunc."""
    tmp = tmp_path_factory.mktemp("textserve")
    data = text_csv(tmp / "reviews.csv", n=200)
    spec = {"seed": 0, "data": {"source": {"type": "text_csv", "path": str(data), "text": "review",
                                           "label": "sentiment", "max_size": 30},
                                "split": {"val": 0.2, "test": 0.2}},
            "model": {"layers": [{"TokenEmbedding": {"num_embeddings": 32, "embedding_dim": 8}},
                                 {"PackedGRU": {"hidden_size": 16}}, {"Linear": {"out_features": "auto"}}]},
            "train": {"epochs": 6, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.02}, "progress": False}}
    (tmp / "texts.yml").write_text(yaml.safe_dump(spec))
    rs = load_spec(tmp / "texts.yml")
    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
    mlflow.set_experiment("texts")
    with mlflow.start_run():
        run = run_experiment(rs, register_model=True)
    model = mlflow.pyfunc.load_model(run.registry["model_uri"])
    yield model, run, pd.read_csv(data)
    mlflow.set_tracking_uri(None)


def test_the_served_text_model_takes_raw_strings(served) -> None:
    model, run, frame = served
    texts = frame["review"].tolist()
    test = [texts[i] for i in run.split.test]
    vocab = run.trained.artifact.meta["vocabulary"]
    from deeppipe.tracking.serving import predict

    artifact = run.trained.artifact
    ids = encode(test, vocab)  # token ids of the training encoding: still accepted by deeppipe's serving code
    from_ids = predict(artifact, artifact.build(), ids)
    as_list = model.predict(test)
    with pytest.raises(MlflowException, match="string"):  # but the logged signature is a string column
        model.predict(ids)
    np.testing.assert_allclose(as_list, from_ids, atol=1e-6)
    np.testing.assert_allclose(model.predict(pd.DataFrame({"review": test})), from_ids, atol=1e-6)
    np.testing.assert_allclose(model.predict(np.asarray(test, dtype=object)), from_ids, atol=1e-6)
    # the same answers the evaluation stage scored: tokenised as in training
    truth = run.samples.y[run.split.test]
    assert (as_list.argmax(1) == truth).mean() == pytest.approx(run.evaluation.metrics["test"]["accuracy"])
    assert run.evaluation.metrics["test"]["accuracy"] >= 0.8
    good, bad = model.predict(["Superb, wonderful film", "Awful and boring plot"])
    positive = run.samples.task.class_names.index("pos")
    assert good[positive] > 0.5 > bad[positive]
    # words never seen in training are <unk>, not a refusal; case and punctuation as in training
    np.testing.assert_allclose(model.predict(["GREAT!!! Film..."]), model.predict(["great film"]), atol=1e-6)
    np.testing.assert_allclose(model.predict(["great zebra"]), model.predict(["great xylophone"]), atol=1e-6)
    labels = model.predict(test[:3], params={"output": "label"})
    assert labels.tolist() == as_list[:3].argmax(1).tolist()


def test_the_input_contract_describes_strings(served) -> None:
    model, run, _ = served
    contract = model.metadata.metadata["deeppipe"]["input"]
    assert contract["dtype"] == "string" and contract["shape"] == ["N"]
    assert contract["tokeniser"]["lowercase"] is True and contract["max_length"] == run.samples.x.shape[1]
    assert "raw texts" in contract["description"]
    local = Path(mlflow.artifacts.download_artifacts(run.registry["model_uri"]))
    example = json.loads((local / "serving_input_example.json").read_text())
    assert "inputs" in example or "dataframe_split" in example


@pytest.mark.parametrize("request_, why, through_mlflow", [
    ([], "no text", True),
    (["a fine film", None], "NoneType", True),
    (np.asarray([["a", "b"], ["c", "d"]], dtype=object), "one text per row", False),
    ([{"text": "x"}], "dict", False),  # MLflow's schema turns these into the string column itself
    (pd.DataFrame({"a": ["x"], "b": ["y"]}), "one text per row", False),
])
def test_unreadable_text_requests_are_refused_as_400(served, request_, why, through_mlflow) -> None:
    from deeppipe.tracking.serving import RequestError, prepare

    model, run, _ = served
    with pytest.raises(RequestError, match=why):
        prepare(run.trained.artifact, request_)
    if through_mlflow:
        with pytest.raises(MlflowException) as err:
            model.predict(request_)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_a_text_ensemble_serves_raw_strings(tmp_path) -> None:
    """Bagged members fit their own vocabularies; the ensemble's request vocabulary holds them all."""
    from deeppipe.ensemble.stage import fit_ensemble
    from deeppipe.tracking.serving import input_contract, predict

    data = text_csv(tmp_path / "reviews.csv", n=120)
    frame = pd.read_csv(data)
    frame["review"] = [f"{t} rare{i}" for i, t in enumerate(frame["review"])]  # a word of its own per review
    frame.to_csv(data, index=False)
    spec = {"seed": 0, "data": {"source": {"type": "text_csv", "path": str(data), "text": "review",
                                           "label": "sentiment", "max_size": 200}, "split": {"val": 0.2, "test": 0.2}},
            "model": {"layers": [{"TokenEmbedding": {"num_embeddings": 202, "embedding_dim": 4}},
                                 {"PackedGRU": {"hidden_size": 8}}, {"Linear": {"out_features": "auto"}}]},
            "train": {"epochs": 1, "batch_size": 16, "progress": False},
            "ensemble": {"method": "soft_voting", "members": {"bagging": {"n": 2}}}}
    (tmp_path / "ens.yml").write_text(yaml.safe_dump(spec))
    rs = load_spec(tmp_path / "ens.yml")
    from deeppipe.data.stage import ingest, split

    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    artifact = fit_ensemble(rs, samples, parts).artifact
    vocabs = [set(m["meta"]["vocabulary"]["tokens"]) for m in artifact.ensemble["members"]]
    assert vocabs[0] != vocabs[1]  # each member saw its own bootstrap rows' rare words
    assert set(artifact.meta["vocabulary"]["tokens"]) == vocabs[0] | vocabs[1]
    texts = pd.read_csv(data)["review"].tolist()
    test = [texts[i] for i in parts.test]
    net = artifact.build()
    np.testing.assert_allclose(predict(artifact, net, test), predict(artifact, net, samples.x[parts.test]), atol=1e-6)
    assert input_contract(artifact)["dtype"] == "string"


def test_text_is_served_without_scikit_learn(served, tmp_path) -> None:
    """The served environment has no scikit-learn (the model's requirements): tokenising must not need it."""
    import subprocess
    import sys

    model, run, _ = served
    local = Path(mlflow.artifacts.download_artifacts(run.registry["model_uri"], dst_path=str(tmp_path)))
    script = (
        "import builtins, sys\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name.split('.')[0] in ('sklearn', 'scipy'):\n"
        "        raise ImportError('blocked: ' + name)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "import json, mlflow\n"
        f"p = mlflow.pyfunc.load_model({str(local)!r}).predict(['A superb film', 'Awful plot'])\n"
        "print(json.dumps(p.tolist()))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = np.asarray(json.loads(out.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(got, model.predict(["A superb film", "Awful plot"]), atol=1e-6)
