"""Every extension point of deeppipe, declared in this one file (luxonis-train's idea).

A registry maps a case-insensitive name (and its aliases) to an object plus a typed record of
what the rest of deeppipe needs to know about it (a metric's direction, a layer's inputs ...).

One way in: the ``register`` decorator, used where the component is written::

    from deeppipe.registry import METRICS

    @METRICS.register("accuracy", tasks=("binary", "multiclass"), direction="max")
    def accuracy(y_true, probs, **_): ...

plus ``harvest`` for the classes a library already has (every ``torch.nn`` layer, every
``torch.optim`` optimiser), so they are not listed by hand.

One way out: ``get`` (the object), ``entry`` (object + record) and ``build`` (call it with
keyword arguments that are checked against its signature first). An unknown name or keyword is
a SpecError with the YAML path and the closest valid name.

Registries are filled by the modules named in ``fill``, imported on the first lookup, so
importing this file costs nothing and no stage has to import another stage to look a name up.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from deeppipe.errors import SpecError, join_path, unknown

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered component: its canonical name, the object, and what is known about it."""

    name: str
    obj: T
    aliases: tuple[str, ...] = ()
    doc: str = ""
    info: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:  # entry.direction reads info["direction"]
        if key.startswith("__") or key == "info":
            raise AttributeError(key)
        try:
            return self.info[key]
        except KeyError:
            raise AttributeError(key) from None


class Registry(Generic[T]):
    """Name -> Entry, case-insensitive, with aliases, filled lazily by the ``fill`` modules.

    ``defaults`` lists the record keys every entry of this registry carries (and their default
    values); registering with a key not listed there is a programming error, caught at import.
    """

    def __init__(self, kind: str, *, fill: tuple[str, ...] = (), defaults: Mapping[str, Any] | None = None
                 ) -> None:
        self.kind = kind
        self._fill = fill
        self._filled = not fill
        self._defaults = dict(defaults or {})
        self._entries: dict[str, Entry[T]] = {}  # lower-case name or alias -> entry

    # ------------------------------------------------------------------------------- in
    def register(self, name: str | None = None, *, aliases: tuple[str, ...] = (), doc: str | None = None,
                 **info: Any) -> Callable[[T], T]:
        """Decorator registering the function or class below it (or ``REG.register(n)(obj)``)."""

        def deco(obj: T) -> T:
            self._add(name or getattr(obj, "__name__", str(obj)), obj, aliases, doc, info)
            return obj

        return deco

    def harvest(self, namespace: Any, *, base: type, skip: Callable[[str, type], bool] | None = None,
                **info: Any) -> None:
        """Register every subclass of ``base`` found in a module (or mapping) under its own name,
        unless a name is already taken (deeppipe's own entries win) or ``skip(name, cls)``."""
        items = namespace.items() if isinstance(namespace, Mapping) else vars(namespace).items()
        for name, obj in list(items):
            if not (isinstance(obj, type) and issubclass(obj, base)) or name.startswith("_"):
                continue
            if name.lower() in self._entries or (skip is not None and skip(name, obj)):
                continue
            self._add(name, obj, (), None, info)

    def _add(self, name: str, obj: T, aliases: tuple[str, ...], doc: str | None, info: dict) -> None:
        bad = set(info) - set(self._defaults)
        if bad:
            raise TypeError(f"{self.kind} registry has no record field(s) {sorted(bad)}; "
                            f"known: {sorted(self._defaults)}")
        text = doc or (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]
        entry = Entry(name, obj, tuple(aliases), text, {**self._defaults, **info})
        for key in (name, *aliases):
            self._entries[key.lower()] = entry

    # ------------------------------------------------------------------------------ out
    def _ensure(self) -> None:
        if not self._filled:
            self._filled = True  # set first: a fill module may look names up while importing
            for module in self._fill:
                importlib.import_module(module)

    def entry(self, name: Any, *, path: str = "", file: str | None = None) -> Entry[T]:
        self._ensure()
        hit = self._entries.get(name.lower()) if isinstance(name, str) else None
        if hit is None:
            raise unknown(self.kind, name, self.names(include_aliases=True), path=path, file=file,
                          listed=self.names())
        return hit

    def get(self, name: Any, *, path: str = "", file: str | None = None) -> T:
        return self.entry(name, path=path, file=file).obj

    def build(self, name: Any, kwargs: Mapping[str, Any] | None = None, *, path: str = "",
              file: str | None = None, fixed: Mapping[str, Any] | None = None, skip: Iterable[str] = (),
              name_path: str | None = None) -> Any:
        """Call the component named ``name`` with the user's ``kwargs`` (checked) and ``fixed``
        arguments deeppipe supplies itself (not the user's to give, so not offered as options).

        ``path`` is where the arguments sit in the spec, ``name_path`` where the name sits
        (default: ``path``)."""
        obj = self.get(name, path=path if name_path is None else name_path, file=file)
        return call_checked(obj, dict(kwargs or {}), path=path, file=file, fixed=fixed,
                            skip=(*skip, *(fixed or {})))

    def __contains__(self, name: object) -> bool:
        self._ensure()
        return isinstance(name, str) and name.lower() in self._entries

    def canonical(self, name: str) -> str:
        self._ensure()
        hit = self._entries.get(name.lower())
        return hit.name if hit is not None else name

    def entries(self) -> list[Entry[T]]:
        """Every entry once, in the order registered (defaults and tables list them that way)."""
        self._ensure()
        return list({id(e): e for e in self._entries.values()}.values())

    def names(self, include_aliases: bool = False) -> list[str]:
        self._ensure()
        if include_aliases:
            keys = {e.name for e in self._entries.values()} | {a for e in self._entries.values() for a in e.aliases}
            return sorted(keys, key=str.lower)
        return sorted((e.name for e in self.entries()), key=str.lower)

    def docs(self) -> dict[str, str]:
        return {e.name: e.doc for e in self.entries()}

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self.entries())} entries)"


# ------------------------------------------------------------------------- keyword checking
def parameters(obj: Any, *, skip: Iterable[str] = ()) -> tuple[list[str], bool] | None:
    """(keyword names ``obj`` accepts, whether it takes ``**kwargs``), or None if unknowable."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    skipped = {"self", "cls", *skip}
    names = [n for n, p in sig.parameters.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in skipped and not n.startswith("_")]
    return names, any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


def check_kwargs(obj: Any, kwargs: Mapping[str, Any], *, path: str, file: str | None = None,
                 skip: Iterable[str] = (), what: str = "argument") -> None:
    """Refuse keywords ``obj`` does not take, naming the closest one it does."""
    found = parameters(obj, skip=skip)
    if found is None or found[1]:
        return
    valid = found[0]
    for key in kwargs:
        if key not in valid:
            raise unknown(what, key, valid, path=join_path(path, str(key)), file=file)
    _no_bool_as_number(obj, kwargs, path=path, file=file)


def _no_bool_as_number(obj: Any, kwargs: Mapping[str, Any], *, path: str, file: str | None) -> None:
    """``lr: true`` would be 1.0: a boolean given for an argument whose default is a number is refused."""
    sig = inspect.signature(obj)
    for key, value in kwargs.items():
        default = sig.parameters[key].default if key in sig.parameters else None
        if isinstance(value, bool) and isinstance(default, (int, float)) and not isinstance(default, bool):
            raise SpecError("expected a number, found a YAML boolean", path=join_path(path, str(key)), file=file,
                            expected=f"a number like its default, {default}", found=value)


def call_checked(obj: Callable[..., Any], kwargs: dict[str, Any], *, path: str, file: str | None = None,
                 fixed: Mapping[str, Any] | None = None, skip: Iterable[str] = ()) -> Any:
    """``obj(**kwargs, **fixed)`` with the keywords checked first; the component's own refusal of a
    value (TypeError / ValueError) becomes a SpecError at ``path``."""
    check_kwargs(obj, kwargs, path=path, file=file, skip=skip)
    try:
        return obj(**kwargs, **(fixed or {}))
    except (TypeError, ValueError, NotImplementedError) as exc:
        text = str(exc).strip().splitlines()
        raise SpecError(text[0] if text else type(exc).__name__, path=path, file=file,
                        found=dict(kwargs)) from None


# ============================================================================ the registries
# Model building (deeppipe.models): layer classes by name; `multi_input` layers take every tensor
# named in from:, `width_args` are scaled by width_multiplier, `spatial_op` layers output a
# feature map (so a Linear after them needs a Flatten).
LAYERS: Registry[Any] = Registry(
    "layer", fill=("deeppipe.models.layers",),
    defaults={"multi_input": False, "width_args": ("out_channels", "out_features", "hidden_size"),
              "spatial_op": False},
)
ACTIVATIONS: Registry[Any] = Registry("activation", fill=("deeppipe.models.activations",),
                                      defaults={"needs_dim": False})
INITIALISERS: Registry[Any] = Registry("initialisation", fill=("deeppipe.models.initialisers",))
ZOO: Registry[Any] = Registry("zoo model", fill=("deeppipe.models.zoo.catalog",))

# Training (deeppipe.training). A loss lists the task kinds it fits; `applies` names the output
# function it applies itself (a model must not apply it before: a double softmax).
LOSSES: Registry[Any] = Registry(
    "loss", fill=("deeppipe.training.losses", "deeppipe.training.sequence_losses"),
    defaults={"tasks": ("multiclass", "binary", "regression", "reconstruction"), "applies": None},
)
OPTIMIZERS: Registry[Any] = Registry("optimizer", fill=("deeppipe.training.optim",),
                                     defaults={"needs_closure": False, "sparse_only": False})
SCHEDULES: Registry[Any] = Registry("schedule", fill=("deeppipe.training.schedules",),
                                    defaults={"interval": "epoch", "needs_units": False, "abstract": False})

# Data (deeppipe.data): a source type's `config` is the pydantic model of its data.source section.
SOURCES: Registry[Any] = Registry("data source type", fill=("deeppipe.data.sources.images", "deeppipe.data.sources.tables",
                                                          "deeppipe.data.sources.series", "deeppipe.data.sources.sequences",
                                                          "deeppipe.data.sources.text", "deeppipe.data.sources.features"),
                                  defaults={"config": None})

# Evaluation (deeppipe.evaluation): every metric knows the tasks it fits and which way is better;
# early stopping, the registry's champion rule and tuning read `direction` from here.
METRICS: Registry[Any] = Registry(
    "metric", fill=("deeppipe.evaluation.metrics", "deeppipe.evaluation.sequence_metrics"),
    defaults={"tasks": ("multiclass", "binary"), "direction": "max", "scalar": True, "default": True,
              "min_classes": 2, "needs": "probs"},
)



def metric_direction(key: str, mode: str = "auto", *, path: str = "", file: str | None = None) -> str:
    """'min' or 'max' for a logged quantity ('val/accuracy', 'train/loss', 'f1_macro'): the
    metric's own record decides, unless ``mode`` says otherwise. The one rule early stopping,
    reduce-on-plateau, the champion alias and tuning share."""
    if mode in ("min", "max"):
        return mode
    prefix, _, name = str(key).rpartition("/")
    try:
        return METRICS.entry(name, path=path, file=file).direction
    except SpecError as err:
        if not prefix:
            raise
        hint = f"{prefix}/{err.suggestion}" if err.suggestion else None
        raise SpecError(err.reason, path=path, file=file, expected=err.expected, found=key, suggestion=hint) from None


# Augmentation (deeppipe.augment): albumentations' serialisable transforms plus deeppipe's filters.
TRANSFORMS: Registry[Any] = Registry("augmentation transform", fill=("deeppipe.augment.pipeline",),
                                     defaults={"container": False})

# Tuning (deeppipe.tuning): Optuna's samplers and pruners by the names a `tune:` section uses.
# A sampler's `multi_objective` says whether it searches several objectives at once; `grid` ones
# take their points from the space. A pruner's `resource` names its argument counted in epochs.
SAMPLERS: Registry[Any] = Registry("sampler", fill=("deeppipe.tuning.samplers",),
                                   defaults={"multi_objective": False, "grid": False})
PRUNERS: Registry[Any] = Registry("pruner", fill=("deeppipe.tuning.samplers",), defaults={"resource": None})

# Ensembling (deeppipe.ensemble): a method lists the task kinds it fits, whether its members are
# trained one after another (boosting) rather than independently, and what fitting its combination
# reads (`val`: validation predictions, `oof`: out-of-fold predictions).
ENSEMBLES: Registry[Any] = Registry("ensemble method", fill=("deeppipe.ensemble.methods",),
                                    defaults={"tasks": ("multiclass", "binary", "regression"),
                                              "sequential": False, "needs": None})
