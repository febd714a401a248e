"""`deeppipe validate` refuses every spec a run would fail on, before any work, with the file and key
path; and what it accepts runs (a property-based test over generated specs on real data)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deeppipe.errors import SpecError
from deeppipe.spec.loader import load_spec, validate

FILE = "pipelines/probe.yml"
DIGITS = {
    "seed": 3,
    "data": {"source": {"type": "sklearn", "name": "digits"}, "split": {"val": 0.1, "test": 0.2}},
    "model": {"layers": [{"Conv2d": {"out_channels": 4, "kernel_size": 3, "padding": 1}}, {"ReLU": {}},
                         {"Flatten": {}}, {"Linear": {"out_features": 10}}]},
    "train": {"epochs": 1, "batch_size": 32, "progress": False},
}
TABLE = {
    "data": {"source": {"type": "sklearn", "name": "breast_cancer"}},
    "model": {"layers": [{"Linear": {"out_features": 8}}, {"ReLU": {}}, {"Linear": {"out_features": 1}}]},
    "train": {"epochs": 1, "progress": False},
}
REGRESSION = {
    "data": {"source": {"type": "sklearn", "name": "diabetes"}},
    "model": {"layers": [{"Linear": {"out_features": 8}}, {"ReLU": {}}, {"Linear": {"out_features": 1}}]},
    "train": {"epochs": 1, "progress": False},
}


def _with(base: dict, **sections: Any) -> dict:
    raw = copy.deepcopy(base)
    for key, value in sections.items():
        node = raw
        *parents, last = key.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return raw


def _refused(raw: dict) -> SpecError:
    with pytest.raises(SpecError) as info:
        validate(raw, file=FILE)
    err = info.value
    assert err.file == FILE, str(err)  # every refusal names the file
    assert "Traceback" not in str(err)
    return err


# (spec, key path the message must name, a word the message must contain)
REFUSED = [
    # evaluate: metric names, task fit, selection
    (_with(DIGITS, evaluate={"metrics": ["acuracy"]}), "evaluate.metrics[0]", "accuracy"),
    (_with(DIGITS, evaluate={"selection_metric": "f1_marco"}), "evaluate.selection_metric", "f1_macro"),
    (_with(DIGITS, evaluate={"metrics": ["rmse"]}), "evaluate.metrics[0]", "multiclass"),
    (_with(REGRESSION, evaluate={"metrics": ["accuracy"]}), "evaluate.metrics[0]", "regression"),
    (_with(REGRESSION, evaluate={"selection_metric": "accuracy"}), "evaluate.selection_metric", "regression"),
    (_with(_with(DIGITS, data__source={"type": "sklearn", "name": "iris"}),
           model={"layers": [{"Linear": {"out_features": 3}}]}, evaluate={"metrics": ["top5_accuracy"]}),
     "evaluate.metrics[0]", "6 classes"),
    (_with(DIGITS, evaluate={"metrics": [{"top_k_accuracy": {"k": 10}}]}), "evaluate.metrics[0].top_k_accuracy.k",
     "below"),
    (_with(DIGITS, evaluate={"metrics": [{"top_k_accuracy": {"kk": 3}}]}), "evaluate.metrics[0].top_k_accuracy.kk",
     "argument"),
    (_with(DIGITS, evaluate={"metrics": ["loss"]}), "evaluate.metrics[0]", "training engine"),
    # monitors: validation quantities only, logged for this task
    (_with(DIGITS, train__early_stopping={"monitor": "test/accuracy"}), "train.early_stopping.monitor", "never the test"),
    (_with(DIGITS, train__early_stopping={"monitor": "lr"}), "train.early_stopping.monitor", "val/"),
    (_with(DIGITS, train__early_stopping={"monitor": "val/acc"}), "train.early_stopping.monitor", "val/accuracy"),
    (_with(DIGITS, train__early_stopping={"monitor": "val/rmse"}), "train.early_stopping.monitor", "multiclass"),
    (_with(_with(DIGITS, data__split={"val": 0.0, "test": 0.2}), train__early_stopping={"monitor": "val/loss"}),
     "train.early_stopping.monitor", "validation split"),
    (_with(DIGITS, train__schedule={"name": "plateau", "monitor": "val/f1"}), "train.schedule.monitor", "f1"),
    # augmentation: images only, and pipelines that can take the images
    (_with(TABLE, augment={"train": ["HorizontalFlip"]}), "augment.train", "not images"),
    (_with(DIGITS, augment={"train": [{"RandomCrop": {"height": 16, "width": 16}}]}), "augment.train", "8, 8"),
    (_with(DIGITS, augment={"train": [{"Normalize": {"mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2]}}]}),
     "augment.train", "augment.train"),
    (_with(DIGITS, augment={"train": ["ToTensorV2"]}), "augment.train", "augment"),
    # the network against the data's shape and task
    (_with(DIGITS, model={"zoo": "vgg11"}), "model.zoo", "cannot be built"),
    (_with(TABLE, model={"layers": [{"Conv2d": {"out_channels": 4, "kernel_size": 3}}]}), "model.layers[0]", ""),
    (_with(DIGITS, model={"zoo": "conv_autoencoder"}), "model", "autoencoder"),
    (_with(DIGITS, model={"layers": [{"Flatten": {}}, {"Embedding": {"num_embeddings": 10, "embedding_dim": 4}},
                                     {"Flatten": {}}, {"Linear": {"out_features": 10}}]}), "model", "Embedding"),
    # losses that do not fit the task
    (_with(REGRESSION, train__loss={"name": "cross_entropy"}), "train.loss.name", "regression"),
    (_with(DIGITS, train__loss={"name": "mse"}), "train.loss.name", "multiclass"),
    (_with(DIGITS, train__loss={"name": "bce"}), "train.loss.name", "multiclass"),
    (_with(TABLE, train__loss={"name": "cross_entropy"}), "train.loss.name", "binary"),
    (_with(DIGITS, train__loss={"name": "ctc"}), "train.loss.name", "per-step"),
    (_with(DIGITS, train__loss={"name": "cross_entropy", "class_weights": [1.0, 2.0]}), "train.loss.class_weights",
     "10"),
    # training options the engine cannot honour here
    (_with(TABLE, train__cutmix={"alpha": 1.0}), "train.cutmix", "images"),
    (_with(REGRESSION, train__mixup={"alpha": 1.0}), "train.mixup", "regression"),
    (_with(DIGITS, train__optimizer={"name": "lbfgs"}), "train.optimizer.name", "closure"),
    (_with(DIGITS, train__optimizer={"name": "SparseAdam"}), "train.optimizer.name", "sparse"),
    (_with(DIGITS, train__optimizer={"name": "adam", "betas": [0.9]}), "train.optimizer", "Adam"),
    (_with(DIGITS, train__optimizer={"name": "adam", "betas": {}}), "train.optimizer", "Adam"),
    (_with(DIGITS, train__schedule={"name": "LRScheduler"}), "train.schedule.name", "abstract"),
    (_with(DIGITS, train__compile={"mode": "bogus"}), "train.compile", "bogus"),
    (_with(DIGITS, train__device="cuda"), "train.device", "CUDA"),
    (_with(DIGITS, train__distributed={"nproc_per_node": 2, "backend": "nccl"}), "train.distributed.backend", "CUDA"),
    (_with(DIGITS, train__freeze=["nothing_here"]), "train.freeze", "matches no parameter"),
    # the split against the data
    (_with(DIGITS, data__split={"test": "official"}), "data.split.test", "official"),
    (_with(DIGITS, data__split={"val": 0.0, "test": 0.0}), "data.split", "evaluate"),
    (_with(DIGITS, data__limit=2), "data.limit", "split"),
    (_with(DIGITS, data__split={"val": 0.1, "test": 0.2, "folds": 500}), "data.split.folds", "folds"),
    # values MLflow or torch would refuse later
    (_with(DIGITS, seed=2**32), "seed", ""),
    (_with(DIGITS, seed=-1), "seed", ""),
    (_with(DIGITS, register={"alias": "v1"}), "register.alias", "reserved"),
    (_with(DIGITS, register={"name": "a/b"}), "register.name", "MLflow"),
    (_with(DIGITS, imports=[".foo"]), "imports[0]", "module"),
]


@pytest.mark.parametrize(("raw", "path", "word"), REFUSED, ids=[r[1] + ":" + r[2] for r in REFUSED])
def test_validate_refuses_what_a_run_would_fail_on(raw: dict, path: str, word: str) -> None:
    err = _refused(raw)
    assert err.path.startswith(path), str(err)
    assert word.lower() in str(err).lower(), str(err)


def test_validate_accepts_the_fixtures() -> None:
    for raw in (DIGITS, TABLE, REGRESSION):
        validate(copy.deepcopy(raw), file=FILE)


@pytest.mark.parametrize(("text", "word"), [
    ("data: {source: {type: sklearn, name: digits}}\ntrain: {epochs: 1}\ntrain: {epochs: 2}\nmodel: {}\n", "twice"),
    ("a: &a [1, 2]\n" + "".join(f"b{i}: &b{i} [*{'a' if i == 0 else f'b{i-1}'}, *{'a' if i == 0 else f'b{i-1}'}]\n"
                                for i in range(120)), "aliases"),
    ("x: " + "[" * 200 + "]" * 200 + "\n", "nested"),
    ("seed: " + "9" * 5000 + "\n", "not valid YAML"),
    ("x: !!python/object/apply:os.system ['echo hi']\n", "not valid YAML"),
])
def test_hostile_files_are_refused_with_their_name(tmp_path: Path, text: str, word: str) -> None:
    f = tmp_path / "hostile.yml"
    f.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(f)
    assert str(f) in str(info.value) and word in str(info.value)


def test_binary_and_non_utf8_files_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "picture.yml"
    f.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(SpecError, match="UTF-8") as info:
        load_spec(f)
    assert str(f) in str(info.value)


# ------------------------------------------------------------------ property: accepted specs run
LAYER_CHOICES = [
    {"Linear": {"out_features": 8}}, {"ReLU": {}}, {"Tanh": {}}, {"Dropout": {"p": 0.2}}, {"BatchNorm1d": {}},
    {"Linear": {"out_features": 4}}, {"LayerNorm": {}}, {"Conv2d": {"out_channels": 4, "kernel_size": 3}},
    {"MaxPool2d": {"kernel_size": 2}}, {"Flatten": {}}, {"GELU": {}},
]
SOURCES = ["digits", "iris", "wine", "breast_cancer", "diabetes"]
OPTIMIZERS = ["sgd", "adam", "adamw", "rmsprop", "adagrad", "lbfgs", "NAdam", "adamx"]
LOSSES = [None, "cross_entropy", "bce", "mse", "mae", "huber", "hinge", "nll", "ctc", "reconstruction"]
MONITORS = [None, "val/loss", "val/accuracy", "val/f1_macro", "val/rmse", "train/loss", "test/loss", "val/r2"]
METRIC_SETS = [None, ["accuracy"], ["rmse", "r2"], ["f1_macro", "log_loss"], ["top5_accuracy"], ["mae"],
               [{"top_k_accuracy": {"k": 2}}], ["confusion_matrix", "per_class"]]
AUGMENTS = [None, {"train": ["HorizontalFlip"]}, {"train": [{"RandomCrop": {"height": 6, "width": 6}}]},
            {"train": [{"Affine": {"translate_px": [-1, 1]}}], "tta": ["HorizontalFlip"]},
            {"train": [{"RandomCrop": {"height": 12, "width": 12}}]}]


@st.composite
def specs(draw: st.DrawFn) -> dict:
    raw: dict[str, Any] = {
        "seed": draw(st.integers(0, 5)),
        "data": {"source": {"type": "sklearn", "name": draw(st.sampled_from(SOURCES))},
                 "split": {"val": draw(st.sampled_from([0.0, 0.1, 0.2])), "test": draw(st.sampled_from([0.0, 0.2]))},
                 "limit": draw(st.sampled_from([None, 3, 40, 120]))},
        "model": {"layers": [*draw(st.lists(st.sampled_from(LAYER_CHOICES), max_size=4)),
                             draw(st.sampled_from([{"Flatten": {}}, {"ReLU": {}}])),
                             {"Linear": {"out_features": "auto"}}]},
        "train": {"epochs": 1, "batch_size": draw(st.sampled_from([1, 16, 64])), "progress": False,
                  "optimizer": {"name": draw(st.sampled_from(OPTIMIZERS)), "lr": draw(st.sampled_from([1e-3, 0.05]))}},
    }
    if (loss := draw(st.sampled_from(LOSSES))) is not None:
        raw["train"]["loss"] = {"name": loss}
    if (monitor := draw(st.sampled_from(MONITORS))) is not None:
        raw["train"]["early_stopping"] = {"monitor": monitor, "patience": 1}
    if (metrics := draw(st.sampled_from(METRIC_SETS))) is not None:
        raw["evaluate"] = {"metrics": metrics}
    if (aug := draw(st.sampled_from(AUGMENTS))) is not None:
        raw["augment"] = aug
    if draw(st.booleans()):
        raw["train"]["mixup"] = {"alpha": 0.4}
    if draw(st.booleans()):
        raw["train"]["clip"] = {"norm": 1.0}
    return raw


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(specs())
def test_every_spec_validate_accepts_trains_a_step_and_evaluates(tmp_path_factory: pytest.TempPathFactory,
                                                                raw: dict) -> None:
    from deeppipe.spec.loader import ResolvedSpec
    from deeppipe.stages import run_experiment

    folder = tmp_path_factory.mktemp("spec")
    f = folder / "generated.yml"
    f.write_text(yaml.safe_dump(raw))
    try:
        rs = load_spec(f)
    except SpecError as err:  # refused: fine, as long as it is a clean refusal naming the file
        assert str(f) in str(err) or err.file == str(f), str(err)
        return
    assert isinstance(rs, ResolvedSpec)
    run = run_experiment(rs)  # must not raise: validation said it would run
    assert run.trained.history and run.evaluation.scalars
