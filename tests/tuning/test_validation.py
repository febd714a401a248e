"""``deeppipe validate`` refuses every search a run would fail on, with the usual message: the
file, the key path, what was expected, what was found and the closest valid name."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deeppipe.config import parse_section
from deeppipe.errors import SpecError
from deeppipe.spec.loader import load_spec
from deeppipe.tuning.config import Param, TuneConfig
from deeppipe.tuning.space import suggest
from tests.tuning.conftest import spec_with, write

LR = {"train.optimizer.lr": {"float": [1.0e-4, 0.1], "log": True}}


def refuse(tmp: Path, tune: dict[str, Any], *, deep: bool = False, **sections: Any) -> SpecError:
    path = write(tmp, spec_with(tune, **sections))
    with pytest.raises(SpecError) as info:
        load_spec(path, check_model=deep)
    err = info.value
    assert err.file == str(path)
    return err


@pytest.mark.parametrize(("tune", "where", "words", "hint"), [
    ({"space": {"model.layers[7].Dropout.p": {"float": [0.1, 0.5]}}}, "tune.space['model.layers[7].Dropout.p']",
     "list index out of range", None),
    ({"space": {"train.optimizer.lrr": {"float": [0.1, 0.5]}}}, "tune.space['train.optimizer.lrr']",
     "unknown argument 'lrr'", "lr"),
    ({"space": {"train.optimizer.lr": {"float": [0.5, 0.1]}}}, "tune.space.train.optimizer.lr", "low <= high", None),
    ({"space": {"train.optimizer.lr": {"float": [0.0, 0.1], "log": True}}}, "tune.space.train.optimizer.lr",
     "log range needs low > 0", None),
    ({"space": {"train.optimizer.lr": {"float": [0.1, 0.5], "choices": [1]}}}, "tune.space.train.optimizer.lr",
     "exactly one of", None),
    ({"space": LR, "sampler": "tpee"}, "tune.sampler.name", "unknown sampler 'tpee'", "tpe"),
    ({"space": LR, "pruner": "hyperbnd"}, "tune.pruner.name", "unknown pruner 'hyperbnd'", "hyperband"),
    ({"space": LR, "sampler": {"name": "tpe", "n_startup": 3}}, "tune.sampler.n_startup", "unknown argument",
     "n_startup_trials"),
    ({"space": LR, "pruner": "percentile"}, "tune.pruner", "percentile", None),
    ({"space": LR, "objective": "val/acuracy"}, "tune.objective[0]", "unknown metric 'acuracy'", "val/accuracy"),
    ({"space": LR, "objective": "test/accuracy"}, "tune.objective[0]", "test split", "val/accuracy"),
    ({"space": LR, "objective": ["val/accuracy", "params"], "sampler": "cmaes", "pruner": "none"}, "tune.sampler.name",
     "searches one objective", None),
    ({"space": LR, "objective": ["val/accuracy", "params"]}, "tune.pruner.name", "single-objective", "none"),
    ({"space": LR, "sampler": "grid"}, "tune.space['train.optimizer.lr']", "finitely many", None),
    ({"space": {"train.optimizer.lr": {"float": [0.0, 1.0e6], "step": 1.0e-3}}, "sampler": "grid"},
     "tune.space['train.optimizer.lr']", "more than 100,000 points", None),
    ({"space": {**LR, "train.optimizer.momentum": {"float": [0, 0.9], "when": {"train.optimizer.nme": "sgd"}}}},
     "tune.space['train.optimizer.momentum'].when['train.optimizer.nme']", "neither searched nor in the spec",
     "train.optimizer.name"),
    ({"space": {"train.optimizer.name": {"choices": ["adam", "sgd"]},
                "train.optimizer.momentum": {"float": [0, 0.9], "when": {"train.optimizer.name": "sdg"}}}},
     "tune.space['train.optimizer.momentum'].when['train.optimizer.name']", "can never hold", "sgd"),
    ({"space": {"train.optimizer.momentum": {"float": [0, 0.9], "when": {"train.optimizer.name": "adam"}}}},
     "tune.space['train.optimizer.momentum'].when['train.optimizer.name']", "never holds", None),
    ({"space": {"train.optimizer.momentum": {"float": [0, 0.9], "when": {"train.optimizer.name": "sgd"}},
                "train.optimizer.name": {"choices": ["adam", "sgd"]}}},
     "tune.space['train.optimizer.momentum'].when['train.optimizer.name']", "list the condition's key first", None),
    ({"space": {"data.split.val": {"float": [0.1, 0.3]}}}, "tune.space['data.split.val']", "read and split once", None),
    ({"space": {"modle.width": {"float": [0.5, 1]}}}, "tune.space['modle.width']", "unknown section", "model"),
    ({"space": LR, "objective": ["val/accuracy"], "pick": "val/accuracy"}, "tune.pick", "two or more", None),
    ({"space": LR, "storage": "postgress://db/optuna"}, "tune.storage", "not a storage URL", "postgresql"),
    ({"space": LR, "storage": "sqlite:///optuna.db", "workers": 2}, "tune.storage", "SQLite", None),
    ({"space": LR, "objective": ["val/accuracy", "params"], "pruner": "none", "pick": "val/loss"}, "tune",
     "pick.objective", None),
])
def test_validation_refuses(tmp_path: Path, tune: dict, where: str, words: str, hint: str | None) -> None:
    err = refuse(tmp_path, tune)
    assert err.path == where and words in str(err), str(err)
    if hint is not None:
        assert err.suggestion == hint, str(err)


def test_a_value_the_network_refuses_is_caught_against_the_data(tmp_path: Path) -> None:
    tune = {"space": {"model.layers[3].Dropout.p": {"float": [0.1, 1.5]}}}
    load_spec(write(tmp_path, spec_with(tune)), check_model=False)  # the schema alone cannot know
    err = refuse(tmp_path, tune, deep=True)
    assert err.path == "tune.space['model.layers[3].Dropout.p']" and "1.5" in str(err) and "between 0 and 1" in str(err)


def test_an_objective_for_another_task_is_refused(tmp_path: Path) -> None:
    err = refuse(tmp_path, {"space": LR, "objective": "val/r2", "pruner": "none"}, deep=True)
    assert err.path == "tune.objective[0]" and "does not apply to a multiclass task" in str(err)


def test_no_validation_split_without_cv(tmp_path: Path) -> None:
    data = {"source": {"type": "sklearn", "name": "digits"}, "split": {"val": 0.0, "test": 0.2}}
    err = refuse(tmp_path, {"space": LR}, data=data)
    assert err.path == "data.split.val"


def test_the_deeppipe_validate_command_refuses_a_search(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from deeppipe.commands import main

    path = write(tmp_path, spec_with({"space": {"model.layers[3].Dropout.p": {"float": [0.1, 1.5]}}}))
    out = CliRunner().invoke(main, ["validate", str(path)])
    assert out.exit_code == 2 and "tune.space['model.layers[3].Dropout.p']" in out.output
    ok = write(tmp_path, spec_with({"space": LR, "objective": "val/accuracy", "n_trials": 7}), name="fine")
    out = CliRunner().invoke(main, ["validate", str(ok)])
    assert out.exit_code == 0 and "search: 1 value(s), max val/accuracy; 7 trials of 3 epochs; tpe sampler" in out.output


# ------------------------------------------------------------------- the parser, by property
scalars = st.one_of(st.text(max_size=5), st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True),
                    st.booleans(), st.none())
entries = st.fixed_dictionaries({}, optional={
    "float": st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=0, max_size=3),
    "int": st.lists(st.integers(-20, 20), min_size=0, max_size=3),
    "choices": st.lists(scalars, max_size=4),
    "log": st.booleans(), "step": st.one_of(st.floats(-1, 5), st.integers(-1, 5)),
    "when": st.dictionaries(st.sampled_from(["train.optimizer.name"]), scalars, max_size=1)})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entry=entries, seed=st.integers(0, 1000))
def test_the_tune_parser_accepts_or_explains_and_samples_stay_in_range(entry: dict, seed: int) -> None:
    try:
        cfg = parse_section(TuneConfig, {"space": {"train.optimizer.lr": entry}}, path="tune", file="x.yml")
    except SpecError as err:  # never another exception, always at a key path of the section
        assert err.path.startswith("tune") and err.file == "x.yml"
        return
    p: Param = cfg.space["train.optimizer.lr"]
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask()
    value = suggest(trial, cfg.space, {"train": {"optimizer": {"name": "adam"}}}).get("train.optimizer.lr")
    if p.when:
        return
    if p.choices is not None:
        assert any(value is c or value == c or (isinstance(c, float) and math.isnan(c)) for c in p.choices)
        return
    low, high = p.bounds
    assert low <= value <= high and math.isfinite(value)
    if p.int_ is not None:
        assert isinstance(value, int)
    for v in p.extremes():
        assert low <= v <= high


def test_the_readme_example_is_the_shipped_search_and_validates() -> None:
    import re

    import yaml

    root = Path(__file__).resolve().parents[2]
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", (root / "README.md").read_text(), flags=re.S)
                 if b.startswith("tune:"))
    shipped = yaml.safe_load((root / "pipelines" / "digits_tuned.yml").read_text())
    readme = yaml.safe_load(block)["tune"]
    assert readme == {**shipped["tune"], "seed": 42}  # the README shows the default seed explicitly
    rs = load_spec(root / "pipelines" / "digits_tuned.yml")  # against the data, every sample's ends
    assert rs.spec.tune is not None and rs.spec.tune.keep_top == 3


def test_zoo_overrides_augmentation_values_and_schedule_names_are_searchable(tmp_path: Path) -> None:
    tune = {"space": {"model.width": {"float": [0.5, 2.0]},
                      "augment.train[0].HorizontalFlip.p": {"float": [0.0, 1.0]},
                      "train.schedule.name": {"choices": ["cosine", "onecycle"]}}}
    sections = {"model": {"zoo": "mlp"}, "augment": {"train": [{"HorizontalFlip": {"p": 0.5}}]},
                "train": {"epochs": 2, "progress": False, "schedule": {"name": "cosine"}}}
    rs = load_spec(write(tmp_path, spec_with(tune, **sections)), check_model=True)
    assert list(rs.spec.tune.space) == list(tune["space"])
    # a schedule that needs an argument the spec does not give is refused at its search entry
    bad = {"space": {"train.schedule.name": {"choices": ["cosine", "step"]}}}
    err = refuse(tmp_path, bad, deep=True, **sections)
    assert err.path == "tune.space['train.schedule.name']" and "'step'" in str(err) and "step_size" in str(err)
    err = refuse(tmp_path, {"space": {"model.widht": {"float": [0.5, 2.0]}}}, deep=True, **sections)
    assert err.suggestion == "width"


PATHS = ["train.optimizer.lr", "train.optimizer.lrr", "model.layers[3].Dropout.p", "model.layers[9].Dropout.p",
         "model.layers[1].Linear.out_features", "train.batch_size", "data.split.val", "seed", "train..epochs",
         "evaluate.metrics", "modle.layers[0]"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(paths=st.lists(st.sampled_from(PATHS), min_size=1, max_size=3, unique=True),
       sampler=st.sampled_from(["tpe", "random", "grid", "cmaes", "nsgaii", "tpee"]),
       pruner=st.sampled_from(["median", "hyperband", "none", "asha", "median_"]),
       objective=st.sampled_from(["val/loss", "val/accuracy", ["val/accuracy", "params"], "accuracy", "val/f1_macro"]),
       low=st.integers(0, 3), span=st.integers(0, 3))
def test_every_tune_section_is_accepted_or_refused_at_its_key_path(tmp_path: Path, paths: list[str], sampler: str,
                                                                     pruner: str, objective: Any, low: int,
                                                                     span: int) -> None:
    space = {p: ({"int": [low + 1, low + 1 + span]} if p.endswith(("out_features", "batch_size", "seed"))
                 else {"float": [low / 10, (low + span) / 10], "step": 0.1}) for p in paths}
    spec = spec_with({"space": space, "sampler": sampler, "pruner": pruner, "objective": objective})
    try:
        rs = load_spec(write(tmp_path, spec), check_model=False)
    except SpecError as err:
        assert err.path.startswith(("tune", "data.split")), str(err)
        return
    # accepted: every sample a search may draw is a valid spec (its ends tried against the schema)
    from deeppipe.tuning.checks import candidates

    for overrides, _, _ in candidates(rs.spec.tune):
        load_spec(write(tmp_path, spec, "sample"), overrides, check_model=False)
