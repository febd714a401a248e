"""The spec loader: overrides by dotted path, and errors a user can act on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from deeppipe.errors import SpecError
from deeppipe.spec.loader import apply_overrides, load_spec, validate
from deeppipe.spec.paths import flatten, format_path, get_path, parse_path, set_path

BASE = {
    "data": {"source": {"type": "sklearn", "name": "digits"}},
    "model": {"layers": [{"Flatten": {}}, {"Linear": {"out_features": 10}}]},
    "train": {"epochs": 2, "optimizer": {"name": "adam", "lr": 0.01}},
}


def _err(raw: dict) -> SpecError:
    with pytest.raises(SpecError) as info:
        validate(raw, file="pipelines/x.yml", check_model=False)
    return info.value


def test_unknown_top_level_key_suggests_the_closest_section() -> None:
    err = _err({**BASE, "trian": {"epochs": 3}})
    text = str(err)
    assert "pipelines/x.yml" in text and "trian" in text
    assert err.suggestion == "train"
    assert "did you mean 'train'?" in text


def test_unknown_nested_key_names_the_full_path() -> None:
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["train"]["early_stopping"] = {"patience": 3, "monitr": "val/loss"}
    err = _err(raw)
    assert err.path == "train.early_stopping.monitr"
    assert err.suggestion == "monitor"


def test_wrong_type_and_out_of_range_values() -> None:
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["train"]["epochs"] = "many"
    err = _err(raw)
    assert err.path == "train.epochs" and err.found == "many"
    raw["train"]["epochs"] = 0
    err = _err(raw)
    assert err.path == "train.epochs" and "greater than 0" in str(err)


def test_unknown_source_type_suggests_a_valid_one() -> None:
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["data"]["source"] = {"type": "sklern", "name": "digits"}
    err = _err(raw)
    assert err.path == "data.source.type"
    assert err.suggestion == "sklearn"


def test_bad_literal_suggests_the_closest_value() -> None:
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["data"]["source"]["name"] = "digit"
    err = _err(raw)
    assert err.path == "data.source.name" and err.suggestion == "digits"


def test_union_member_extra_key_is_located_without_pydantic_labels() -> None:
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["data"]["source"]["nam"] = "x"
    err = _err(raw)
    assert err.path == "data.source.nam"
    assert err.suggestion == "name"


def test_split_fractions_must_leave_training_data() -> None:
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["data"]["split"] = {"val": 0.5, "test": 0.5}
    err = _err(raw)
    assert err.path == "data.split" and "leave training data" in str(err)


def test_missing_data_path_fails_before_any_work(tmp_path: Path) -> None:
    f = tmp_path / "x.yml"
    f.write_text(yaml.safe_dump({**BASE, "data": {"source": {"type": "idx", "path": str(tmp_path / "nope")}}}))
    with pytest.raises(SpecError) as info:
        load_spec(f, check_model=False)
    assert info.value.path == "data.source.path" and str(f) in str(info.value)


def test_overrides_are_validated_like_the_file(tmp_path: Path) -> None:
    f = tmp_path / "x.yml"
    f.write_text(yaml.safe_dump(BASE))
    rs = load_spec(f, {"train": {"epochs": 7, "optimizer": {"lr": 0.5}}}, check_model=False)
    assert rs.spec.train.epochs == 7 and rs.spec.train.optimizer.lr == 0.5
    with pytest.raises(SpecError) as info:
        load_spec(f, {"train.epochs": -1}, check_model=False)
    assert info.value.path == "train.epochs"
    with pytest.raises(SpecError) as info:
        load_spec(f, {"trainn.epochs": 3}, check_model=False)
    assert info.value.suggestion == "train"


def test_override_inside_a_list_by_index() -> None:
    out = apply_overrides(BASE, {"model": {"layers": {"1": {"Linear": {"out_features": 5}}}}})
    assert out["model"]["layers"][1]["Linear"]["out_features"] == 5
    assert BASE["model"]["layers"][1]["Linear"]["out_features"] == 10  # the original is untouched
    with pytest.raises(SpecError) as info:
        apply_overrides(BASE, {"model.layers[9].Linear.out_features": 5})
    assert "out of range" in str(info.value)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yml"
    f.write_text("data:\n  source: {type: sklearn\nmodel: {}\n")
    with pytest.raises(SpecError) as info:
        load_spec(f)
    assert "line" in str(info.value) and str(f) in str(info.value)


def test_spec_hash_changes_with_any_value(tmp_path: Path) -> None:
    f = tmp_path / "x.yml"
    f.write_text(yaml.safe_dump(BASE))
    a = load_spec(f, check_model=False)
    b = load_spec(f, {"train.epochs": 3}, check_model=False)
    assert a.hash != b.hash and a.hash == load_spec(f, check_model=False).hash


keys = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)
paths = st.lists(st.one_of(keys, st.integers(0, 20)), min_size=1, max_size=6).filter(lambda p: isinstance(p[0], str))


@given(paths)
def test_path_format_and_parse_round_trip(parts: list) -> None:
    assert parse_path(format_path(parts)) == parts


nested = st.recursive(
    st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=5), st.booleans()),
    lambda children: st.dictionaries(keys, children, min_size=1, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(keys, nested, min_size=1, max_size=4))
def test_flatten_then_set_rebuilds_the_same_tree(tree: dict) -> None:
    rebuilt: dict = {}
    for path, value in flatten(tree).items():
        set_path(rebuilt, path, value)
    assert rebuilt == tree
    for path, value in flatten(tree).items():
        assert get_path(tree, path) == value


def test_train_component_arguments_are_checked_at_validation(tmp_path: Path) -> None:
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["train"]["optimizer"] = {"name": "sgd", "lr": 0.1, "momentun": 0.9}
    f = tmp_path / "x.yml"
    f.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError) as info:
        load_spec(f, check_model=False)
    assert info.value.path == "train.optimizer.momentun" and info.value.suggestion == "momentum"
    assert str(f) in str(info.value)
