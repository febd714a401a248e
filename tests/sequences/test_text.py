"""The text source and its vocabulary: fitted on the training split only, kept with the model,
tokenising new text as in training; word vectors loaded into the embedding, mismatches refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from deeppipe.artifact import assemble
from deeppipe.data.sources.text import analyzer
from deeppipe.data.stage import ingest, split
from deeppipe.data.text_vocab import encode
from deeppipe.errors import SpecError
from deeppipe.spec.loader import load_spec
from deeppipe.training.stage import model_facts
from tests.sequences.data import text_csv


def _spec(tmp_path, source: dict, layers: list | None = None, name: str = "txt"):
    spec = {"seed": 0, "data": {"source": {"type": "text_csv", "text": "review", "label": "sentiment", **source},
                                "split": {"val": 0.2, "test": 0.2}},
            "model": {"layers": layers or [{"TokenEmbedding": {"num_embeddings": 40, "embedding_dim": 4}},
                                           {"PackedGRU": {"hidden_size": 8}}, {"Linear": {"out_features": "auto"}}]},
            "train": {"epochs": 1}}
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(spec))
    return load_spec(path)


@pytest.fixture
def reviews(tmp_path):
    """Generated reviews, each of the last 60 carrying a word of its own ("rareword<i>")."""
    path = text_csv(tmp_path / "reviews.csv", n=200)
    frame = pd.read_csv(path)
    frame.loc[140:, "review"] = [f"{t} rareword{i}" for i, t in enumerate(frame.loc[140:, "review"])]
    frame.to_csv(path, index=False)
    return path


def test_vocabulary_never_sees_validation_or_test_text(tmp_path, reviews) -> None:
    rs = _spec(tmp_path, {"path": str(reviews), "max_size": 38})
    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    vocab = model_facts(rs, samples, parts)["vocabulary"]
    tokenise = analyzer(samples.meta["text"])
    texts = pd.read_csv(reviews)["review"].tolist()
    seen = {tok for i in parts.train for tok in tokenise(texts[i])}
    held_out = {tok for i in np.concatenate([parts.val, parts.test]) for tok in tokenise(texts[i])} - seen
    assert vocab["tokens"][:2] == ["<pad>", "<unk>"]
    assert set(vocab["tokens"][2:]) <= seen and len(held_out) >= 15  # the rare words of val and test
    assert not held_out & set(vocab["tokens"])
    # the network's first module maps every held-out token to <unk> (1)
    net = assemble(rs.spec.model.model_dump(mode="json", exclude_none=True), {**model_facts(rs, samples, parts)})
    ids = [samples.meta["text"]["tokens"].index(t) for t in sorted(held_out)]
    assert net.normalizer(torch.tensor(ids, dtype=torch.float32)).tolist() == [1.0] * len(ids)
    # the same vocabulary from the training rows alone: nothing else counted
    again = model_facts(rs, samples.__class__(samples.x[parts.train], samples.y[parts.train], samples.task,
                                              meta=samples.meta), parts.__class__(np.arange(len(parts.train)),
                                                                                  parts.val[:0], parts.test[:0]))
    assert again["vocabulary"]["tokens"] == vocab["tokens"]


def test_min_freq_and_max_size(tmp_path, reviews) -> None:
    rs = _spec(tmp_path, {"path": str(reviews), "min_freq": 2, "max_size": 10})
    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    vocab = model_facts(rs, samples, parts)["vocabulary"]
    assert len(vocab["tokens"]) == 12
    assert not any(t.startswith("rareword") for t in vocab["tokens"])
    rs = _spec(tmp_path, {"path": str(reviews), "min_freq": 1000, "max_size": 38})
    assert model_facts(rs, ingest(rs.spec), parts)["vocabulary"]["tokens"] == ["<pad>", "<unk>"]


def test_saved_model_tokenises_new_text_as_in_training(tmp_path, reviews) -> None:
    rs = _spec(tmp_path, {"path": str(reviews), "max_size": 38})
    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    meta = model_facts(rs, samples, parts)
    torch.manual_seed(0)
    net = assemble(rs.spec.model.model_dump(mode="json", exclude_none=True), meta).eval()
    texts = pd.read_csv(reviews)["review"].tolist()
    raw = encode([texts[i] for i in parts.test], meta["vocabulary"])
    with torch.no_grad():
        torch.testing.assert_close(net(torch.as_tensor(raw)), net(torch.as_tensor(samples.x[parts.test])))
        assert net(torch.as_tensor(encode(["GREAT film, superb!"], meta["vocabulary"]))).shape == (1, 1)


def test_word_vectors_are_loaded_for_the_vocabulary_and_mismatches_refused(tmp_path, reviews) -> None:
    vectors = tmp_path / "glove.txt"
    vectors.write_text("great 1 2 3 4\nawful -1 -2 -3 -4\nunrelated 9 9 9 9\n")
    layers = [{"TokenEmbedding": {"num_embeddings": 40, "embedding_dim": 4, "vectors": str(vectors), "freeze": True}},
              {"PackedGRU": {"hidden_size": 8}}, {"Linear": {"out_features": "auto"}}]
    rs = _spec(tmp_path, {"path": str(reviews), "max_size": 38}, layers)
    samples = ingest(rs.spec)
    parts = split(rs.spec, samples)
    meta = model_facts(rs, samples, parts)
    model = rs.spec.model.model_dump(mode="json", exclude_none=True)
    net = assemble(model, meta, initial=True)
    emb = net.body.get_submodule(next(n for n, m in net.body.named_modules() if hasattr(m, "attach_vocabulary")))
    tokens = meta["vocabulary"]["tokens"]
    assert emb.weight[tokens.index("great")].tolist() == [1, 2, 3, 4]
    assert emb.weight[tokens.index("awful")].tolist() == [-1, -2, -3, -4]
    assert emb.found == 2 and not emb.weight.requires_grad
    # the trained model rebuilds (serving, evaluation) from its weights alone: the file may be gone
    from deeppipe.artifact import ModelArtifact

    trained = ModelArtifact(spec=rs.spec.to_dict(), meta=meta, state_dict=net.state_dict())
    vectors.unlink()
    rebuilt = trained.build().body.get_submodule(next(n for n, m in net.body.named_modules()
                                                      if hasattr(m, "attach_vocabulary")))
    assert rebuilt.weight[tokens.index("great")].tolist() == [1, 2, 3, 4]
    with pytest.raises(SpecError, match="does not exist"):  # but a run that would read it is refused
        _spec(tmp_path, {"path": str(reviews), "max_size": 38}, layers, name="gone")
    vectors.write_text("great 1 2 3 4\nawful -1 -2 -3 -4\nunrelated 9 9 9 9\n")
    bad = [{"TokenEmbedding": {"num_embeddings": 40, "embedding_dim": 5, "vectors": str(vectors)}}, *layers[1:]]
    with pytest.raises(SpecError, match="have 4 dimensions but embedding_dim is 5"):
        _spec(tmp_path, {"path": str(reviews)}, bad, name="bad")
    small = [{"TokenEmbedding": {"num_embeddings": 10, "embedding_dim": 4}}, *layers[1:]]
    with pytest.raises(SpecError, match="num_embeddings"):  # ids reach max_size + 1 = 39
        _spec(tmp_path, {"path": str(reviews), "max_size": 38}, small, name="small")
