"""YAML augmentation lists <-> albumentations' own serialisation format.

Users write one transform per list item, named by its albumentations class name::

    - HorizontalFlip: {p: 0.5}
    - OneOf:
        p: 0.8
        transforms:
          - Affine: {rotate: [-15, 15]}
          - Sobel: {}
    - GaussNoise            # a bare name: all defaults

Each item becomes ``{"__class_fullname__": ..., "p": ..., **args}`` and the whole list a
``Compose``; ``A.from_dict`` then builds it, so every transform and argument albumentations has is
reachable and its own pydantic validation applies. Nothing here evaluates user text: names are
looked up in albumentations' serialisation registry, values are passed as data.

Before building, each item is checked here so a mistake is reported as a SpecError at its YAML
path (``augment.train[2].Affine.rotat``) with the closest valid name, instead of albumentations'
default of warning about unknown arguments and carrying on.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import albumentations as A
from albumentations.core.serialization import SERIALIZABLE_REGISTRY
from pydantic import ValidationError

import deeppipe.augment.filters  # noqa: F401  (registers the edge filters with albumentations)
from deeppipe.errors import SpecError, join_path
from deeppipe.registry import TRANSFORMS, check_kwargs

# Registered by albumentations but not usable as a step in a list.
_NOT_STEPS = {
    "BasicTransform",
    "DualTransform",
    "ImageOnlyTransform",
    "Transform3D",
    "BaseCompose",
    "ReplayCompose",
    "BboxParams",
    "KeypointParams",
}
CONTAINERS = {"Compose", "OneOf", "SomeOf", "Sequential", "RandomOrder", "SelectiveChannelTransform"}
ITEM_FORM = "a transform name, or a one-key mapping `Name: {arg: value, ...}`"


def _harvest() -> None:
    """Fill TRANSFORMS from albumentations' own serialisation registry (deeppipe's filters are in it
    too), so every transform albumentations can rebuild from a dict is a name a spec can use."""
    from albumentations.core.serialization import Serializable

    short = {full.rsplit(".", 1)[-1]: cls for full, cls in SERIALIZABLE_REGISTRY.items()}
    for name in sorted(CONTAINERS & set(short)):
        TRANSFORMS.register(name, container=True)(short[name])
    TRANSFORMS.harvest(short, base=Serializable, skip=lambda name, cls: name in _NOT_STEPS or name == "OneOrOther")


_harvest()


def _lookup(name: str, path: str, file: str | None) -> tuple[str, type]:
    entry = TRANSFORMS.entry(name, path=path, file=file)
    return entry.name, entry.obj


def _param_names(cls: type) -> list[str]:
    params = inspect.signature(cls.__init__).parameters
    return [n for n, p in params.items() if n not in ("self", "strict") and p.kind is not p.VAR_KEYWORD]


def _default_p(cls: type) -> float:
    p = inspect.signature(cls.__init__).parameters.get("p")
    return float(p.default) if p is not None and p.default is not inspect.Parameter.empty else 1.0


def _split_item(item: Any, path: str, file: str | None) -> tuple[str, dict[str, Any]]:
    """Accept `Name`, `{Name: {args}}`, `{Name: null}` or albumentations' own `{__class_fullname__: ...}`."""
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict) and "__class_fullname__" in item:
        args = {k: v for k, v in item.items() if k != "__class_fullname__"}
        return str(item["__class_fullname__"]).rsplit(".", 1)[-1], args
    if isinstance(item, dict) and len(item) == 1:
        name, args = next(iter(item.items()))
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise SpecError(
                "transform arguments must be a mapping",
                path=join_path(path, str(name)),
                file=file,
                expected="`{arg: value, ...}` (or `{}` for defaults)",
                found=args,
            )
        return str(name), dict(args)
    raise SpecError(
        "each augmentation step must name one transform",
        path=path,
        file=file,
        expected=ITEM_FORM,
        found=item,
    )


def _check_values(cls: type, name: str, args: dict[str, Any], path: str, file: str | None) -> None:
    """Run albumentations' own validation on one leaf transform; report at the argument's path."""
    schema = getattr(cls, "InitSchema", None)
    if schema is not None:
        params = inspect.signature(cls.__init__).parameters
        full = {n: q.default for n, q in params.items() if q.default is not inspect.Parameter.empty}
        full.update(args)
        fields = schema.model_fields
        try:
            schema(**{k: v for k, v in full.items() if k in fields and k != "strict"}, strict=True)
        except ValidationError as err:
            first = err.errors()[0]
            loc = [str(x) for x in first.get("loc", ()) if isinstance(x, str)]
            arg = loc[0] if loc and loc[0] in args else None
            raise SpecError(
                f"invalid value for {name}: {first.get('msg', err)}",
                path=join_path(path, name, arg) if arg else join_path(path, name),
                file=file,
                expected=_schema_type(schema, arg) if arg else None,
                found=args[arg] if arg else args,
            ) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls(**args)
    except (ValueError, TypeError) as err:
        raise SpecError(
            f"invalid arguments for {name}: {str(err).splitlines()[0]}",
            path=join_path(path, name),
            file=file,
            found=args,
        ) from None


def _schema_type(schema: Any, arg: str) -> str | None:
    field = schema.model_fields.get(arg)
    if field is None or field.annotation is None:
        return None
    ann = field.annotation
    text = ann.__name__ if isinstance(ann, type) else str(ann).replace("typing.", "")
    return text if len(text) < 120 else text[:117] + "..."


def item_to_dict(
    item: Any, path: str, *, file: str | None = None, default_p: float | None = None
) -> dict[str, Any]:
    """One YAML step -> albumentations' dict for it (containers recursively), validated."""
    raw_name, args = _split_item(item, path, file)
    name, cls = _lookup(raw_name, path, file)
    check_kwargs(cls, args, path=join_path(path, name), file=file, skip=("strict",),
                 what=f"argument for {name}")
    args = dict(args)
    args.setdefault("p", default_p if default_p is not None else _default_p(cls))
    if TRANSFORMS.entry(name).container:
        children = args.get("transforms")
        if not isinstance(children, list) or not children:
            raise SpecError(
                f"{name} needs a non-empty list of transforms",
                path=join_path(path, name, "transforms"),
                file=file,
                expected="a list of steps, e.g. `transforms: [HorizontalFlip, Blur]`",
                found=children,
            )
        sub = join_path(path, name, "transforms")
        args["transforms"] = [
            item_to_dict(c, join_path(sub, i), file=file, default_p=default_p)
            for i, c in enumerate(children)
        ]
        n = args.get("n", 1)
        if name in ("SomeOf", "RandomOrder") and not args.get("replace") and isinstance(n, int) \
                and n > len(children):
            raise SpecError(
                f"{name} picks n={n} of {len(children)} transforms without replacement",
                path=join_path(path, name, "n"), file=file,
                expected=f"an integer <= {len(children)} (or `replace: true`)", found=n,
            )
    else:
        _check_values(cls, name, args, path, file)
    return {"__class_fullname__": cls.get_class_fullname(), **args}


def list_to_dict(
    items: list[Any] | None, path: str, *, file: str | None = None, default_p: float | None = None
) -> dict[str, Any]:
    """A YAML list -> the ``{"__version__", "transform": Compose}`` dict ``A.from_dict`` reads."""
    if items is not None and not isinstance(items, list):
        raise SpecError(
            "an augmentation pipeline is a list of steps", path=path, file=file,
            expected=f"a list whose items are {ITEM_FORM}", found=items,
        )
    steps = [item_to_dict(it, join_path(path, i), file=file, default_p=default_p)
             for i, it in enumerate(items or [])]
    compose = {"__class_fullname__": "Compose", "p": 1.0, "transforms": steps}
    return {"__version__": A.__version__, "transform": compose}


def build_compose(
    items: list[Any] | None, path: str, *, file: str | None = None, default_p: float | None = None
) -> A.Compose:
    """Validate a YAML list and build the albumentations Compose through ``A.from_dict``."""
    data = list_to_dict(items, path, file=file, default_p=default_p)
    return compose_from_steps(data["transform"]["transforms"], path, file=file, raw=items)


def compose_from_steps(
    steps: list[dict[str, Any]], path: str, *, file: str | None = None, raw: Any = ...
) -> A.Compose:
    """Already-translated step dicts -> Compose, via albumentations' own ``from_dict``."""
    data = {"__version__": A.__version__,
            "transform": {"__class_fullname__": "Compose", "p": 1.0, "transforms": steps}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return A.from_dict(data)
    except (ValueError, TypeError, KeyError) as err:  # container-level arguments (e.g. SomeOf.n)
        raise SpecError(
            f"albumentations rejected the pipeline: {str(err).splitlines()[0]}",
            path=path, file=file, found=raw,
        ) from None


def compose_to_list(compose: A.BaseCompose) -> list[dict[str, Any]]:
    """The inverse: a built pipeline back to deeppipe's YAML list form (for logs and round trips)."""
    def conv(d: dict[str, Any]) -> dict[str, Any]:
        d = dict(d)
        name = d.pop("__class_fullname__").rsplit(".", 1)[-1]
        # albumentations' to_dict can emit arguments its constructor does not take (PadIfNeeded
        # writes 'padding' in 2.0.8); keep only real constructor arguments.
        valid = set(_param_names(TRANSFORMS.get(name)))
        d = {k: v for k, v in d.items() if k in valid}
        if "transforms" in d:
            d["transforms"] = [conv(t) for t in d["transforms"]]
        return {name: d}

    top = A.to_dict(compose)["transform"]
    return [conv(t) for t in top["transforms"]]


def check_images(x: Any, path: str) -> None:
    """Image augmentation needs (N, C, H, W); tabular or sequence data is a spec mistake."""
    if getattr(x, "ndim", None) != 4:
        raise SpecError(
            "image augmentation declared for data that is not images",
            path=path,
            expected="images of shape (N, C, H, W), or remove this augment list",
            found=f"array of shape {tuple(getattr(x, 'shape', ()))}",
        )
