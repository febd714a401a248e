"""YAML lists -> albumentations via its own serialisation; every mistake a SpecError at its path."""

from __future__ import annotations

import albumentations as A
import pytest
import yaml

from deeppipe.augment import AugmentConfig, validate_augment
from deeppipe.augment.filters import Laplacian, Sobel
from deeppipe.augment.pipeline import build_compose, compose_to_list, list_to_dict
from deeppipe.errors import SpecError

SPEC = """
augment:
  train:
    - HorizontalFlip: {p: 0.5}
    - Affine: {rotate: [-10, 10], translate_percent: [0, 0.1], scale: [0.9, 1.1]}
    - OneOf:
        p: 0.8
        transforms:
          - Sobel
          - Laplacian: {neighbours: 8}
          - GaussNoise: {std_range: [0.05, 0.1]}
    - SomeOf:
        n: 2
        transforms: [VerticalFlip, RandomBrightnessContrast, CoarseDropout]
    - Sequential:
        transforms: [{PadIfNeeded: {min_height: 32, min_width: 32}}, {RandomCrop: {height: 28, width: 28}}]
  tta:
    - HorizontalFlip
    - [{Affine: {scale: 1.1}}, VerticalFlip]
"""


def _raises(steps, path: str, suggestion: str | None = None) -> SpecError:
    with pytest.raises(SpecError) as info:
        AugmentConfig(train=steps)
    err = info.value
    assert err.path == path, str(err)
    if suggestion is not None:
        assert err.suggestion == suggestion, str(err)
    return err


def test_yaml_builds_containers_and_probabilities():
    cfg = AugmentConfig(**yaml.safe_load(SPEC)["augment"])
    compose = build_compose(cfg.train, "augment.train")
    kinds = [type(t).__name__ for t in compose.transforms]
    assert kinds == ["HorizontalFlip", "Affine", "OneOf", "SomeOf", "Sequential"]
    one_of = compose.transforms[2]
    assert one_of.p == 0.8
    assert [type(t) for t in one_of.transforms] == [Sobel, Laplacian, A.GaussNoise]
    assert one_of.transforms[1].neighbours == 8
    assert compose.transforms[3].n == 2
    assert compose.transforms[1].rotate == (-10.0, 10.0)


def test_default_p_is_the_transform_default_not_from_dicts_half():
    compose = build_compose(["HorizontalFlip", "Normalize", "PadIfNeeded", "Sobel"], "augment.train")
    assert [t.p for t in compose.transforms] == [0.5, 1.0, 1.0, 1.0]
    # inside a TTA view a step is meant to happen: p defaults to 1
    view = build_compose(["HorizontalFlip"], "augment.tta[0]", default_p=1.0)
    assert view.transforms[0].p == 1.0


@pytest.mark.filterwarnings("ignore:Argument\\(s\\) 'padding'")  # albumentations' own PadIfNeeded.to_dict
def test_roundtrip_through_albumentations_serialisation_including_edge_filters():
    steps = yaml.safe_load(SPEC)["augment"]["train"]
    compose = build_compose(steps, "augment.train")
    data = A.to_dict(compose)
    again = A.from_dict(data)
    assert A.to_dict(again) == data
    names = [t["__class_fullname__"] for t in data["transform"]["transforms"][2]["transforms"]]
    assert names == ["deeppipe.augment.filters.Sobel", "deeppipe.augment.filters.Laplacian",
                     "GaussNoise"]
    # and back to deeppipe's YAML form, which builds the same pipeline again
    assert A.to_dict(build_compose(compose_to_list(compose), "x")) == data


def test_list_to_dict_is_albumentations_format():
    d = list_to_dict([{"HorizontalFlip": {"p": 0.25}}], "augment.train")
    assert d["transform"]["__class_fullname__"] == "Compose"
    assert d["transform"]["transforms"] == [{"__class_fullname__": "HorizontalFlip", "p": 0.25}]


def test_native_albumentations_items_and_case_insensitive_names():
    compose = build_compose(
        [{"__class_fullname__": "VerticalFlip", "p": 0.3}, "horizontalflip", {"sobel": None}], "t"
    )
    assert [type(t).__name__ for t in compose.transforms] == ["VerticalFlip", "HorizontalFlip", "Sobel"]
    assert compose.transforms[0].p == 0.3


def test_unknown_argument_names_path_and_suggests():
    steps = ["HorizontalFlip", "VerticalFlip", {"Affine": {"rotat": [-5, 5]}}]
    err = _raises(steps, "augment.train[2].Affine.rotat", "rotate")
    assert "rotate" in err.expected and err.found == "rotat"


def test_unknown_transform_suggests_closest():
    _raises([{"HorizontalFlipp": {}}], "augment.train[0]", "HorizontalFlip")
    _raises([{"Sobell": {}}], "augment.train[0]", "Sobel")


def test_nested_errors_carry_the_full_path():
    steps = [{"OneOf": {"transforms": ["Blur", {"GaussNoise": {"std_rnage": [0.1, 0.2]}}]}}]
    _raises(steps, "augment.train[0].OneOf.transforms[1].GaussNoise.std_rnage", "std_range")


@pytest.mark.parametrize(
    ("steps", "path"),
    [
        ([{"Affine": {"rotate": "abc"}}], "augment.train[0].Affine.rotate"),
        ([{"HorizontalFlip": {"p": 3}}], "augment.train[0].HorizontalFlip.p"),
        ([{"CoarseDropout": {"num_holes_range": [3, 1]}}], "augment.train[0].CoarseDropout.num_holes_range"),
        ([{"Laplacian": {"neighbours": 6}}], "augment.train[0].Laplacian.neighbours"),
        ([{"Affine": [1, 2]}], "augment.train[0].Affine"),
        ([5], "augment.train[0]"),
        ([{"Blur": {}, "VerticalFlip": {}}], "augment.train[0]"),
        ([{"OneOf": {"transforms": []}}], "augment.train[0].OneOf.transforms"),
        ([{"SomeOf": {"n": 3, "transforms": ["Blur"]}}], "augment.train[0].SomeOf.n"),
    ],
)
def test_bad_values_are_spec_errors(steps, path):
    _raises(steps, path)


def test_validate_augment_on_raw_mapping_names_file_and_key():
    with pytest.raises(SpecError) as info:
        validate_augment({"trian": [{"HorizontalFlip": {}}]}, "pipelines/x.yml")
    assert info.value.file == "pipelines/x.yml"
    assert info.value.suggestion == "train"
    with pytest.raises(SpecError) as info:
        validate_augment({"val": [{"Affine": {"rotat": 1}}]}, "pipelines/x.yml")
    assert info.value.path == "augment.val[0].Affine.rotat"
    assert info.value.file == "pipelines/x.yml"
    assert "did you mean 'rotate'" in str(info.value)
    with pytest.raises(SpecError) as info:
        validate_augment({"tta": [{"HorizontalFlip": {"q": 1}}]})
    assert info.value.path == "augment.tta[0].HorizontalFlip.q"


def test_file_name_reaches_errors_through_pydantic_context_and_offline_keys_are_checked():
    with pytest.raises(SpecError) as info:
        AugmentConfig.model_validate({"train": [{"Blurr": {}}]}, context={"file": "p.yml"})
    assert info.value.file == "p.yml" and info.value.suggestion == "Blur"
    with pytest.raises(SpecError) as info:
        validate_augment({"offline": {"copis": 2}}, "p.yml")
    assert info.value.path == "augment.offline.copis" and info.value.suggestion == "copies"
    with pytest.raises(SpecError) as info:
        validate_augment({"offline": {"copies": 0}})
    assert info.value.path == "augment.offline.copies"


def test_backend_device_refuses_a_pipeline_without_batch_version():
    with pytest.raises(SpecError) as info:
        AugmentConfig(train=["ElasticTransform"], backend="device")
    assert info.value.path == "augment.backend"
    assert "ElasticTransform" in str(info.value)


def test_nothing_from_yaml_is_evaluated():
    # a dotted "class name" is looked up in the registry, never imported
    _raises([{"os.system": {}}], "augment.train[0]")
    _raises([{"__class_fullname__": "subprocess.Popen"}], "augment.train[0]")
