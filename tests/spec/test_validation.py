"""`deeppipe validate` refuses every spec a run would fail on, before any work, with the file and key
path; and what it accepts runs (a property-based test over generated specs on real data)."""

from __future__ import annotations

import contextlib
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
    # a network whose weights alone exceed this machine's memory (found by benchmarks/reliability_fuzz.py:
    # it validated, then stopped building with an out-of-memory error)
    (_with(REGRESSION, model={"layers": [{"Linear": {"out_features": 10**12}}, "ReLU", {"Linear": {"out_features": 1}}]}),
     "model", "more than this machine's memory"),
    (_with(REGRESSION, model={"layers": [{"Linear": {"out_features": 8}}, "ReLU", {"Linear": {"out_features": 1}}],
                              "width_multiplier": 2**31}), "model", "parameters"),
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
    # the output function against the task and the loss (issue 9)
    (_with(REGRESSION, model={"layers": [{"Linear": {"out_features": 8}}, {"ReLU": {}}, {"Linear": {"out_features": 1}},
                                         {"ReLU": {}}]}), "model.layers[3].ReLU", "identity"),
    (_with(REGRESSION, model={"layers": [{"Linear": {"out_features": 1}, "activation": "sigmoid"},
                                         {"Dropout": {"p": 0.1}}]}), "model.layers[0]", "sigmoid"),
    (_with(DIGITS, model={"layers": [{"Flatten": {}}, {"Linear": {"out_features": 10}}, {"Softmax": {}}]}),
     "model.layers[2].Softmax", "applies softmax itself"),
    (_with(TABLE, model={"layers": [{"Linear": {"out_features": 1}}, {"Sigmoid": {}}]}), "model.layers[1].Sigmoid",
     "applies sigmoid itself"),
    (_with(DIGITS, model={"layers": [{"Flatten": {}}, {"Linear": {"out_features": 10}}, {"LogSoftmax": {}}]},
           train__loss={"name": "cross_entropy"}), "model.layers[2].LogSoftmax", "nll"),
    (_with(TABLE, model={"zoo": "linear_svm"}), "model.zoo", "declares the loss 'multi_margin'"),
    (_with(DIGITS, model={"layers": [{"Flatten": {}}, {"share": "nothing"}, {"Linear": {"out_features": 10}}]}),
     "model.layers[1].share", "earlier layer"),
    (_with(DIGITS, model={"layers": [{"Flatten": {}, "name": "flat"}, {"Linear": {"out_features": 8}, "name": "a"},
                                     {"Linear": {"out_features": 6}, "name": "b", "from": "flat"},
                                     {"Concat": {}, "from": ["a", "b"]}, {"Linear": {"out_features": 10}}]},
           train__regularization={"soft_sharing": [{"a": "a", "b": "b", "weight": 0.1}]}),
     "train.regularization.soft_sharing[0]", "differ in shape"),
    (_with(DIGITS, train__regularization={"soft_sharing": [{"a": "branch", "b": "0", "weight": 0.1}]}),
     "train.regularization.soft_sharing[0].a", "sub-network"),
    (_with(TABLE, model={"layers": [{"Linear": {"out_features": 8}}, {"BatchNorm1d": {}}, {"ReLU": {}},
                                    {"Linear": {"out_features": 1}}]}, train__batch_size=1), "train.batch_size",
     "batch norm"),
    (_with(TABLE, data={"source": {"type": "sklearn", "name": "breast_cancer"}, "limit": 100,
                        "split": {"val": 0.1, "test": 0.2}},
           model={"layers": [{"Linear": {"out_features": 8}}, {"BatchNorm1d": {}}, {"Linear": {"out_features": 1}}]},
           train__batch_size=23), "train.batch_size", "70 training samples leave a last batch of one"),
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
    # ensembles (issue 12): the method, its arguments and members, each member as an experiment
    (_with(DIGITS, ensemble={"method": "soft_votng", "members": [{"seed": 1}, {"seed": 2}]}),
     "ensemble.method", "soft_voting"),
    (_with(DIGITS, ensemble={"method": {"name": "stacking", "fold": 3}, "members": [{"seed": 1}, {"seed": 2}]}),
     "ensemble.method.fold", "folds"),
    (_with(DIGITS, ensemble={"method": {"name": "stacking", "folds": 1}, "members": [{"seed": 1}, {"seed": 2}]}),
     "ensemble.method", "at least 2"),
    (_with(DIGITS, ensemble={"members": [{"seed": 1}]}), "ensemble.members", "at least two"),
    (_with(DIGITS, ensemble={"members": [{"seeds": 1}, {"seed": 2}]}), "ensemble.members[0].seeds", "seed"),
    (_with(DIGITS, ensemble={"members": [{"from_trials": "best5"}]}), "ensemble.members[0].from_trials", "topK"),
    (_with(DIGITS, ensemble={"method": {"name": "soft_voting", "weights": [1, 2, 3]},
                             "members": [{"seed": 1}, {"seed": 2}]}), "ensemble.method.weights", "2 weights"),
    (_with(REGRESSION, ensemble={"method": "hard_voting", "members": [{"seed": 1}, {"seed": 2}]}),
     "ensemble.method.name", "regression"),
    (_with(DIGITS, ensemble={"method": "averaging", "members": [{"seed": 1}, {"seed": 2}]}),
     "ensemble.method.name", "multiclass"),
    (_with(_with(DIGITS, data__split={"val": 0.0, "test": 0.2}),
           ensemble={"method": "weighted_averaging", "members": [{"seed": 1}, {"seed": 2}]}),
     "data.split.val", "never the test"),
    (_with(DIGITS, ensemble={"method": "stacking", "members": [{"seed": 1}, {"bagging": {"n": 3}}]}),
     "ensemble.members[1]", "out-of-fold"),
    (_with(DIGITS, ensemble={"method": "samme", "members": [{"bagging": {"n": 3}}]}), "ensemble.members",
     "round by round"),
    (_with(DIGITS, ensemble={"members": [{"seed": 1}, {"layers": [{"Flatten": {}}, {"Linear": {"out_feature": 10}}]}]}),
     "ensemble.members[1].model.layers[1].Linear.out_feature", "out_features"),
    (_with(DIGITS, ensemble={"members": [{"seed": 1}, {"zoo": "vgg11"}]}), "ensemble.members[1].model.zoo",
     "cannot be built"),
    (_with(DIGITS, ensemble={"members": [{"seed": 1}, {"params": {"train.optimizer.name": "lbfgs"}}]}),
     "ensemble.members[1].train.optimizer.name", "closure"),
    (_with(DIGITS, ensemble={"members": [{"seed": 1}, {"params": {"data.limit": 10}}]}),
     "ensemble.members[1].params.data.limit", "shares the experiment's data"),
    (_with(DIGITS, ensemble={"members": [{"seed": 1}, {"params": {"augment": {
        "train": [{"RandomCrop": {"height": 6, "width": 6}}], "val": [{"CenterCrop": {"height": 6, "width": 6}}],
        "test": [{"CenterCrop": {"height": 6, "width": 6}}]}}}]}), "ensemble.members[1]", "one shape"),
    (_with(DIGITS, ensemble={"members": [{"seed": 1}, {"from_trials": "top2", "seed": 3}]}), "ensemble.members[1]",
     "no model, params or seed"),
    (_with(DIGITS, ensemble={"members": [{"seed": 1}, {"experiment": "nope"}]}), "ensemble.members[1].experiment",
     "unknown experiment"),
    (_with(DIGITS, ensemble={"members": [{"seed": 1}, {"name": "a"}, {"name": "a"}]}), "ensemble.members",
     "same name"),
    (_with(DIGITS, ensemble={"members": {"from_trials": "top3"}}), "ensemble.members[0].from_trials", "keep_top"),
    (_with(DIGITS, evaluate={"cv": {"folds": 1}}), "evaluate.cv.folds", "2"),
    (_with(_with(DIGITS, data__limit=30), evaluate={"cv": {"folds": 20}}), "evaluate.cv.folds", "too few"),
    (_with(DIGITS, train__epochs=4, ensemble={"members": {"snapshots": 3}}), "ensemble.members[0].snapshots",
     "divisor"),
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
# Each choice is mostly one that fits the drawn data (so most specs validate and really run) and
# sometimes a mistake (so refusals are exercised too): about half the examples train and evaluate.
TASKS = {"digits": "multiclass", "iris": "multiclass", "wine": "multiclass", "breast_cancer": "binary",
         "diabetes": "regression"}
IMAGE_LAYERS = [{"Conv2d": {"out_channels": 4, "kernel_size": 3}}, {"ReLU": {}}, {"MaxPool2d": {"kernel_size": 2}},
                {"BatchNorm2d": {}}, {"Dropout": {"p": 0.2}}]
TABLE_LAYERS = [{"Linear": {"out_features": 8}}, {"ReLU": {}}, {"Tanh": {}}, {"Dropout": {"p": 0.2}},
                {"BatchNorm1d": {}}, {"Linear": {"out_features": 4}}, {"LayerNorm": {}}, {"GELU": {}}]
OPTIMIZERS = (["sgd", "adam", "adamw", "rmsprop", "adagrad", "NAdam"], ["lbfgs", "adamx"])
LOSSES = {"multiclass": ([None, None, "cross_entropy", "hinge", "squared_hinge"], ["bce", "mse", "ctc"]),
          "binary": ([None, None, "bce", "perceptron"], ["cross_entropy", "reconstruction"]),
          "regression": ([None, None, "mse", "mae", "huber"], ["cross_entropy", "perceptron"])}
MONITORS = {"multiclass": ([None, "val/loss", "val/accuracy", "val/f1_macro", "train/loss"], ["test/loss", "val/r2"]),
            "binary": ([None, "val/loss", "val/roc_auc", "train/loss"], ["test/accuracy", "val/rmse"]),
            "regression": ([None, "val/loss", "val/rmse", "val/r2"], ["val/accuracy", "test/rmse"])}
METRIC_SETS = {"multiclass": ([None, ["accuracy"], ["f1_macro", "log_loss"], [{"top_k_accuracy": {"k": 2}}],
                               ["confusion_matrix", "per_class"]], [["rmse", "r2"], ["top5_accuracy"]]),
               "binary": ([None, ["accuracy", "roc_auc"], ["f1_macro", "log_loss"]], [["mae"]]),
               "regression": ([None, ["rmse", "r2"], ["mae"]], [["accuracy"]])}
AUGMENTS = ([None, None, {"train": ["HorizontalFlip"]}, {"train": [{"RandomCrop": {"height": 6, "width": 6}}]},
             {"train": [{"Affine": {"translate_px": [-1, 1]}}], "tta": ["HorizontalFlip"]}],
            [{"train": [{"RandomCrop": {"height": 12, "width": 12}}]}])
HEADS = ([None], [{"ReLU": {}}, {"Softmax": {}}, {"Sigmoid": {}}])  # after the last Linear
ZOO = {"multiclass": ([None] * 6 + ["softmax_regression", "linear_svm"], ["perceptron", "logistic_regression"]),
       "binary": ([None] * 6 + ["logistic_regression", "perceptron"], ["linear_svm"]),
       "regression": ([None] * 6 + ["linear_regression"], ["softmax_regression"])}
REGULARIZATION = [None, None, {"l1": 1e-3}, {"l1": 1e-3, "l1_mode": "subgradient"},
                  {"elastic_net": {"alpha": 1e-3, "l1_ratio": 0.5}, "l2": 1e-4}]


def _pick(draw: st.DrawFn, choices: tuple[list, list]) -> Any:
    """A fitting choice, or one time in eight a mistake (hypothesis favours small integers, so the
    mistake is the largest one)."""
    good, bad = choices
    return draw(st.sampled_from(bad if bad and draw(st.integers(0, 7)) == 7 else good))


@st.composite
def specs(draw: st.DrawFn) -> dict:
    name = draw(st.sampled_from(list(TASKS)))
    task = TASKS[name]
    images = name == "digits" or draw(st.integers(0, 9)) == 9  # image layers on a table: a mistake
    val = draw(st.sampled_from([0.0, 0.1, 0.2]))
    test = 0.2 if val == 0.0 and draw(st.integers(0, 7)) != 7 else draw(st.sampled_from([0.2, 0.0]))
    layers = draw(st.lists(st.sampled_from(IMAGE_LAYERS if images else TABLE_LAYERS), max_size=3))
    raw: dict[str, Any] = {
        "seed": draw(st.integers(0, 5)),
        "data": {"source": {"type": "sklearn", "name": name}, "split": {"val": val, "test": test},
                 "limit": _pick(draw, ([None, 60, 120], [3]))},
        "model": {"layers": [*layers, {"Flatten": {}}, {"Linear": {"out_features": "auto"}}]},
        "train": {"epochs": 1, "batch_size": draw(st.sampled_from([1, 16, 64])), "progress": False,
                  "optimizer": {"name": _pick(draw, OPTIMIZERS), "lr": draw(st.sampled_from([1e-3, 0.05]))}},
    }
    if (head := _pick(draw, HEADS)) is not None:
        raw["model"]["layers"].append(head)
    if (zoo := _pick(draw, ZOO[task])) is not None:
        raw["model"] = {"zoo": zoo}
    if (reg := draw(st.sampled_from(REGULARIZATION))) is not None:
        raw["train"]["regularization"] = reg
    if (loss := _pick(draw, LOSSES[task])) is not None:
        raw["train"]["loss"] = {"name": loss}
    if (monitor := _pick(draw, MONITORS[task])) is not None:
        raw["train"]["early_stopping"] = {"monitor": monitor, "patience": 1}
    if (metrics := _pick(draw, METRIC_SETS[task])) is not None:
        raw["evaluate"] = {"metrics": metrics}
    if (aug := _pick(draw, AUGMENTS)) is not None and (name == "digits" or draw(st.integers(0, 7)) == 7):
        raw["augment"] = aug
    if (task != "regression" and draw(st.booleans())) or draw(st.integers(0, 15)) == 15:
        raw["train"]["mixup"] = {"alpha": 0.4}
    if draw(st.booleans()):
        raw["train"]["clip"] = {"norm": 1.0}
    return raw


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
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
    assert run.trained.history and len(run.evaluation.predictions) == len(run.split.evaluation)
    asked = raw.get("evaluate", {}).get("metrics")
    assert run.evaluation.scalars or asked == ["confusion_matrix", "per_class"]  # tables only


# ------------------------------------------------------------------ property: hostile values anywhere
# (issue 15) a value a hostile or careless user might write, put at any key path of a valid spec:
# validation refuses it with one SpecError naming the file (never a traceback) or accepts it, and
# always within seconds (sizes beyond sane bounds are refused, never built).
HOSTILE = [True, False, None, -1, 0, 2**63, 10**12, float("nan"), float("inf"), -0.5, "", "x" * 5000, "auto",
           [], {}, [[[]]], {"a": {"b": {}}}, [0.9], "../../etc/passwd", "!!python/object:os.system"]
HOSTILE_PATHS = ["train.epochs", "train.batch_size", "model.layers[0].repeat", "data.limit", "seed",
                 "train.optimizer.lr", "data.split.folds", "model.layers[0].Linear.out_features", "train.checkpoint.every"]
VALIDATE_SECONDS = 10


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict:
    from deeppipe.spec.paths import flatten, set_path

    raw = copy.deepcopy(draw(st.sampled_from([DIGITS, TABLE, REGRESSION])))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(sorted(flatten(raw)) + HOSTILE_PATHS))
        value = copy.deepcopy(draw(st.sampled_from(HOSTILE)))
        with contextlib.suppress(SpecError):  # a path through a value an earlier mutation replaced
            set_path(raw, path, value)
    return raw


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(mutated_specs())
def test_hostile_values_anywhere_are_refused_cleanly_and_fast(raw: dict) -> None:
    import time

    t0 = time.perf_counter()
    try:
        validate(raw, file=FILE)
    except SpecError as err:
        assert err.file and "Traceback" not in str(err), str(err)
    assert time.perf_counter() - t0 < VALIDATE_SECONDS
