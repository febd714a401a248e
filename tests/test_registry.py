"""One registry pattern: every extension point declared in deeppipe.registry, filled one way,
looked up one way, with the same did-you-mean error; metric directions from one record."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torch import nn

from deeppipe import registry as reg
from deeppipe.errors import SpecError, closest, unknown
from deeppipe.registry import (
    ACTIVATIONS,
    ENSEMBLES,
    INITIALISERS,
    LAYERS,
    LOSSES,
    METRICS,
    OPTIMIZERS,
    PRUNERS,
    SAMPLERS,
    SCHEDULES,
    SOURCES,
    TRANSFORMS,
    ZOO,
    Registry,
    metric_direction,
)

SRC = Path(__file__).resolve().parents[1] / "src" / "deeppipe"
ALL = {"layer": LAYERS, "activation": ACTIVATIONS, "initialisation": INITIALISERS, "zoo": ZOO, "loss": LOSSES,
       "optimizer": OPTIMIZERS, "schedule": SCHEDULES, "source": SOURCES, "metric": METRICS,
       "transform": TRANSFORMS, "sampler": SAMPLERS, "pruner": PRUNERS}


@pytest.mark.parametrize("kind", sorted(ALL))
def test_every_registry_fills_itself_on_first_lookup(kind: str) -> None:
    assert len(ALL[kind].entries()) >= 5, kind


def test_the_ensemble_registry_holds_every_method_of_issue_12() -> None:
    names = set(ENSEMBLES.names())
    assert {"hard_voting", "soft_voting", "averaging", "weighted_averaging", "stacking", "samme"} <= names
    assert ENSEMBLES.entry("boosting").sequential and ENSEMBLES.entry("stacking").needs == "oof"
    with pytest.raises(SpecError, match="unknown ensemble method") as info:
        ENSEMBLES.get("soft_votng", path="ensemble.method")
    assert info.value.suggestion == "soft_voting"


def test_registries_are_declared_in_one_file_only() -> None:
    """No module but deeppipe/registry.py constructs a Registry."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "registry.py" and path.parent == SRC:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Registry":
                offenders.append(str(path.relative_to(SRC)))
    assert offenders == []


def test_one_did_you_mean_implementation() -> None:
    """Suggestions come from errors.closest only (six hand-written copies existed before)."""
    users = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if "difflib" in p.read_text()]
    assert users == ["errors.py"]


@pytest.mark.parametrize(("registry", "typo", "meant"), [
    (LOSSES, "cross_entropi", "cross_entropy"), (OPTIMIZERS, "adamw_", "adamw"), (SCHEDULES, "onecylce", "onecycle"),
    (METRICS, "f1_marco", "f1_macro"), (SOURCES, "sklaern", "sklearn"), (LAYERS, "Conv2D", None),
    (ACTIVATIONS, "relu_", "relu"), (TRANSFORMS, "HorizontalFlipp", "HorizontalFlip"), (ZOO, "resnet81", "resnet18"),
])
def test_unknown_names_raise_the_same_error_with_a_suggestion(registry: Registry, typo: str, meant: str | None) -> None:
    if meant is None:  # names are case-insensitive: Conv2D is Conv2d
        assert registry.canonical(typo) == "Conv2d"
        return
    with pytest.raises(SpecError) as info:
        registry.get(typo, path="x.name", file="pipelines/p.yml")
    err = info.value
    assert err.path == "x.name" and err.file == "pipelines/p.yml" and err.found == typo
    assert err.suggestion == meant and err.reason.startswith(f"unknown {registry.kind}")


def test_build_checks_keywords_against_the_signature() -> None:
    loss = LOSSES.build("huber", {"delta": 2.0}, path="train.loss")
    assert float(loss(torch.tensor([[3.0]]), torch.tensor([[0.0]]))) == pytest.approx(2.0 * (3.0 - 1.0))
    with pytest.raises(SpecError) as info:
        LOSSES.build("huber", {"delat": 2.0}, path="train.loss")
    assert info.value.path == "train.loss.delat" and info.value.suggestion == "delta"
    with pytest.raises(SpecError) as info:  # the component's own refusal of a value, at the path
        OPTIMIZERS.build("sgd", {"lr": -1.0}, path="train.optimizer", fixed={"params": [nn.Parameter(torch.ones(1))]})
    assert info.value.path == "train.optimizer" and "learning rate" in info.value.reason.lower()


def test_harvest_takes_torch_classes_without_overriding_deeppipes_own() -> None:
    assert LAYERS.get("Conv2d") is nn.Conv2d and LAYERS.get("BatchNorm1d") is nn.BatchNorm1d
    assert LAYERS.get("LSTM") is not nn.LSTM  # deeppipe's recurrent wrapper (output: last|all) wins
    assert issubclass(LAYERS.get("LSTM"), nn.Module)
    assert OPTIMIZERS.get("NAdam") is torch.optim.NAdam and OPTIMIZERS.get("sgd") is torch.optim.SGD
    assert "Module" not in LAYERS and "MSELoss" not in LAYERS  # bases and losses are not layers
    assert SCHEDULES.entry("LRScheduler").abstract and not SCHEDULES.entry("StepLR").abstract


def test_records_are_typed_per_registry() -> None:
    with pytest.raises(TypeError, match="no record field"):
        METRICS.register("bad_metric", colour="red")(lambda y, p: 0.0)
    assert "bad_metric" not in METRICS
    assert LOSSES.entry("cross_entropy").tasks == ("multiclass",) and LOSSES.entry("bce").applies == "sigmoid"
    assert OPTIMIZERS.entry("LBFGS").needs_closure and SOURCES.entry("csv").config.__name__ == "CsvSource"


def test_every_scalar_metric_has_tasks_and_a_direction() -> None:
    for e in METRICS.entries():
        assert e.direction in ("min", "max") and e.tasks, e.name
    assert metric_direction("val/loss") == "min" and metric_direction("train/loss") == "min"
    assert metric_direction("val/accuracy") == "max" and metric_direction("log_loss") == "min"
    assert metric_direction("rmse") == "min" and metric_direction("r2") == "max"
    assert metric_direction("val/accuracy", "min") == "min"


def test_early_stopping_reduce_on_plateau_and_the_champion_rule_agree_on_directions() -> None:
    """The three rules that disagreed before now read the same record."""
    from deeppipe.data.task import Task
    from deeppipe.evaluation.metrics import selection
    from deeppipe.training.config import ScheduleConfig
    from deeppipe.training.early_stopping import direction
    from deeppipe.training.schedules import Schedule

    clf, regr = Task("multiclass", 3, ("a", "b", "c")), Task("regression", 1)
    for e in METRICS.entries():
        if not e.scalar or e.needs == "engine":
            continue
        task = clf if "multiclass" in e.tasks else regr
        assert direction(f"val/{e.name}") == e.direction == selection(task, e.name)[1], e.name
        opt = torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=0.1)
        sched = Schedule(opt, ScheduleConfig(name="plateau", monitor=f"val/{e.name}"), epochs=3, steps_per_epoch=1)
        assert sched.main.mode == e.direction, e.name


def test_a_prefixed_monitor_gets_a_prefixed_suggestion() -> None:
    with pytest.raises(SpecError) as info:
        metric_direction("val/acc", path="train.early_stopping.monitor")
    assert info.value.suggestion == "val/accuracy" and info.value.found == "val/acc"


def test_closest_prefers_the_name_an_abbreviation_starts() -> None:
    assert closest("acc", ["auc", "accuracy"]) == "accuracy"
    assert closest("momentun", ["momentum", "nesterov"]) == "momentum"
    assert closest("zzz", ["accuracy"]) is None
    err = unknown("metric", "acc", ["auc", "accuracy"], path="evaluate.metrics[0]")
    assert str(err).startswith("evaluate.metrics[0]: unknown metric 'acc'") and err.suggestion == "accuracy"


def test_registry_module_imports_nothing_heavy() -> None:
    """Declaring the registries costs nothing: the fill modules load on first lookup."""
    tree = ast.parse(Path(reg.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "importlib", "inspect", "collections", "dataclasses", "typing", "deeppipe"}
