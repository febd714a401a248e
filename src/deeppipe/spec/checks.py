"""The spec against its data: everything a run would otherwise discover only after work started.

``check_experiment`` reads the data's facts cheaply (sample shape, task, counts: ``peek``), runs
the augmentation pipelines on one probe image of that shape, builds the network on the meta
device for the augmented shape, and asks each stage whether its section fits: the split leaves
samples in every part, the loss and the metrics fit the task, monitors are logged, the network's
output is what the task needs. Each refusal is one SpecError naming the file and key path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from deeppipe.data.sources import SourceInfo, peek
from deeppipe.data.stream import check_streaming
from deeppipe.data.task import Task
from deeppipe.errors import SpecError, join_path, unknown
from deeppipe.registry import LOSSES
from deeppipe.spec.schema import ExperimentSpec
from deeppipe.training.config import TrainConfig
from deeppipe.training.losses import loss_name, with_model_loss

# the output functions a loss that applies softmax / log_softmax / sigmoid itself must not get
_APPLIED = {"softmax": ("softmax", "log_softmax"), "log_softmax": ("softmax", "log_softmax"),
            "sigmoid": ("sigmoid",)}


@dataclass(frozen=True)
class Facts:
    """What validation learnt about an experiment: the data, the augmented input, the network."""

    info: SourceInfo
    task: Task
    input_shape: tuple[int, ...]
    model: nn.Module
    num_train: int
    num_val: int
    num_test: int


def check_experiment(spec: ExperimentSpec, *, file: str | None = None, info: SourceInfo | None = None) -> Facts:
    """Raise SpecError at the first part of ``spec`` a run on this data would fail on. ``info``:
    the data's facts when already read (a search validates every trial's spec on the same data)."""
    from deeppipe.evaluation.config import check_against as check_evaluate
    from deeppipe.training.checks import check_against as check_train

    try:
        info = info if info is not None else peek(spec.data.source, on_error=spec.data.on_error)
    except SpecError as err:
        raise err.with_context(file=file) from None
    if spec.data.resize is not None:  # the shape the network reads (data.resize); idempotent
        from deeppipe.data.resize import resized_shape

        info = replace(info, sample_shape=resized_shape(info.sample_shape, spec.data.resize, file=file))
    task = info.task
    _check_classes(info, file)
    check_streaming(spec, info.num_samples, info.sample_shape, file)  # data.stream: what it cannot do
    if spec.data.task == "reconstruction":
        _check_anomalies(spec, info, file)
        task = Task("reconstruction", 0)
    from deeppipe.training.denoise import check_denoise

    check_denoise(spec.train.denoise, task.kind, file=file)
    if spec.model.pretrained is not None:
        from deeppipe.training.phases import check_phases

        check_phases(spec.model.pretrained, spec.train, file=file)
    n_train, n_val, n_test = _check_split(spec, info, file)
    shape = _check_augment(spec, info.sample_shape, file)
    model = _check_model(spec, task, shape, info, file)
    train = with_model_loss(spec.train, spec.model)  # what training will use: the same resolution
    _check_declared_loss(spec, train, task, file)
    _check_output(model, task, train, file)
    _check_sharing(model, train, file)
    if info.num_samples is not None:
        _check_batch_norm(spec, model, shape, n_train, file)
    check_train(train, task, has_val=n_val > 0, model=model, image_input=len(shape) == 3, file=file)
    check_evaluate(spec.evaluate, task, file=file, n_train=n_train)
    facts = Facts(info, task, shape, model, n_train, n_val, n_test)
    if spec.ensemble is not None:
        _check_ensemble(spec, facts, file)
    return facts


def _check_ensemble(spec: ExperimentSpec, facts: Facts, file: str | None) -> None:
    """Every member checked as an experiment on this data (at its entry's key path), members that
    read one input shape, and the method against the task, the split and the member count."""
    from deeppipe.ensemble.plan import parse_member, plan_members
    from deeppipe.ensemble.trials import check_trials

    check_trials(spec, file=file)
    plans = plan_members(spec, file=file)
    for plan in (p for p in plans if p.trial is None):
        try:
            member = check_experiment(parse_member(plan, file=file), file=file)
        except SpecError as err:
            raise err.with_context(file=file, prefix=plan.path if not err.path.startswith(plan.path) else "") from None
        if member.input_shape != facts.input_shape:
            raise SpecError("every member must read inputs of one shape", path=plan.path, file=file,
                            expected=f"inputs of shape {list(facts.input_shape)}", found=list(member.input_shape))
    spec.ensemble.build_method(file=file).check(facts.task, plans=plans, n_train=facts.num_train,
                                                n_val=facts.num_val, file=file)


def _check_anomalies(spec: ExperimentSpec, info: SourceInfo, file: str | None) -> None:
    """Held-out anomaly classes must be classes of the data, and leave normal ones to train on."""
    names = list(info.task.class_names)
    for i, a in enumerate(spec.data.anomalies):
        if not names:
            raise SpecError("anomalies are classes, but this data has no class labels", path="data.anomalies",
                            file=file, expected="a labelled source", found=spec.data.anomalies)
        if a not in names:
            raise unknown("class", a, names, path=f"data.anomalies[{i}]", file=file)
    if names and set(spec.data.anomalies) >= set(names):
        raise SpecError("every class is held out as an anomaly: nothing normal is left to train on",
                        path="data.anomalies", file=file, expected="some of the classes", found=spec.data.anomalies)


def _check_classes(info: SourceInfo, file: str | None) -> None:
    task = info.task
    if task.is_classification and task.num_classes < 2:
        raise SpecError("the data holds a single class: a classifier needs at least two", path="data.source",
                        file=file, expected="labels of two or more classes", found=list(task.class_names))


def _holdout(n: int, frac: float) -> int:
    """How many samples scikit-learn's train_test_split holds out for a fraction (it rounds up)."""
    return math.ceil(frac * n) if frac > 0 else 0


def _check_split(spec: ExperimentSpec, info: SourceInfo, file: str | None) -> tuple[int, int, int]:
    """The sizes the split will have; a part the spec asks for must not come out empty."""
    s = spec.data.split
    n = info.num_samples
    if n is None:
        return 1, int(s.val > 0), int(s.test != 0)
    limit = spec.data.limit
    if info.time_gap is not None:  # windows of a time series: cut by time (data.split.time_split)
        from deeppipe.data.split import time_split

        try:
            parts = time_split(min(n, limit or n), val=s.val, test=s.test, gap=info.time_gap, folds=s.folds)
        except SpecError as err:
            raise err.with_context(file=file) from None
        return len(parts["train"]), len(parts["val"]), len(parts["test"])
    official = info.n_official_test
    if limit is not None and limit < n:
        official = min(official, max(1, limit // 5)) if official else 0
        n = limit
    if s.test == "official":
        if official <= 0:
            raise SpecError("this source has no official test split", path="data.split.test", file=file,
                            expected="a fraction such as 0.2", found="official")
        n_test, rest, val_frac = official, n - official, s.val
    else:
        n_test = _holdout(n, float(s.test))
        rest = n - n_test
        val_frac = s.val / (1.0 - float(s.test))
    n_val = _holdout(rest, val_frac)
    n_train = rest - n_val
    if n_train < 1 or (s.val > 0 and n_val < 1) or (s.test not in (0, 0.0) and n_test < 1):
        where = "data.limit" if limit is not None else "data.split"
        raise SpecError(f"{n} samples cannot be split into {n_train} train / {n_val} val / {n_test} test",
                        path=where, file=file, expected="at least one sample in every part the split asks for",
                        found=limit if limit is not None else s.model_dump())
    if n_test == 0 and n_val == 0:
        raise SpecError("nothing to evaluate on: the split keeps every sample for training", path="data.split",
                        file=file, expected="data.split.test (or val) above 0", found=s.model_dump())
    if s.folds:
        counts = info.class_counts if (s.stratify and info.task.is_classification) else None
        smallest = min(c for c in counts if c) if counts else rest
        if limit is not None:
            smallest = min(smallest, rest)
        if s.folds > smallest:
            raise SpecError(f"{s.folds} folds need at least {s.folds} samples of every class in the training part",
                            path="data.split.folds", file=file, expected=f"at most {smallest}", found=s.folds)
    return n_train, n_val, n_test


def _check_augment(spec: ExperimentSpec, shape: tuple[int, ...], file: str | None) -> tuple[int, ...]:
    """Augmentation is for images: run every declared pipeline on a probe image of the data's
    shape, so a transform that cannot take it (a crop larger than the image, a Normalize with
    the wrong number of channels) stops here. Returns the shape the network receives."""
    aug = spec.augment
    if aug is None:
        return shape
    declared = [k for k in ("train", "val", "test", "tta") if getattr(aug, k)]
    if declared and len(shape) != 3:
        raise SpecError("image augmentation declared for data that is not images", path=join_path("augment", declared[0]),
                        file=file, expected="images (C, H, W), or no augment section",
                        found=f"samples of shape {shape}")
    if not declared:
        return shape
    from deeppipe.augment.apply import augmented_shape, check_sizes, probe_views

    split = "train"
    try:
        for split in ("train", "val", "test"):
            out = augmented_shape(aug, shape, split)
            if len(out) != 3 or out[0] != shape[0]:
                raise SpecError(f"augment.{split} turns {shape} images into {out}", path=join_path("augment", split),
                                file=file, expected=f"images with {shape[0]} channel(s), (C, H, W)", found=list(out))
        split = "tta"
        probe_views(aug, shape)
        check_sizes(aug, shape)
    except SpecError as err:
        raise err.with_context(file=file) from None
    except Exception as exc:  # albumentations / OpenCV refusing the probe image
        text = str(exc).strip().splitlines()
        raise SpecError(f"the augment.{split} pipeline cannot take {shape} images: {text[0] if text else exc}",
                        path=join_path("augment", split), file=file, found=getattr(aug, split)) from None
    return augmented_shape(aug, shape, "train")


def _check_model(spec: ExperimentSpec, task: Task, shape: tuple[int, ...], info: SourceInfo,
                 file: str | None) -> nn.Module:
    from deeppipe.models import build_model

    outputs = task.num_outputs if task.kind != "reconstruction" else None
    try:
        model = build_model(spec.model, shape, outputs, file=file, path="model", device="meta")
    except SpecError as err:
        raise err.with_context(file=file) from None
    from deeppipe.models.layers.packed import check_vectors

    if (why := check_vectors(model)) is not None:
        raise SpecError(why, path="model", file=file, expected="a word2vec/GloVe text file of embedding_dim values "
                        "per word (TokenEmbedding.vectors)")
    out_shape = tuple(getattr(model, "output_shape", ()) or ())
    if task.per_step or (len(out_shape) == 2 and out_shape[-1] == task.num_outputs and task.kind != "reconstruction"):
        from deeppipe.training.sequence_losses import check_step_outputs

        check_step_outputs(task, shape, out_shape, spec.train.loss, file)
    elif task.kind != "reconstruction" and out_shape and out_shape != (task.num_outputs,):
        what = "reconstructs its input (an autoencoder)" if out_shape == shape else f"outputs {out_shape} per sample"
        raise SpecError(f"the network {what}, but the data is labelled for {task.kind} "
                        f"({task.num_outputs} output(s) per sample)", path="model", file=file,
                        expected=f"a network ending in {task.num_outputs} output(s)"
                        + (" (or data.task: reconstruction, to train it as an autoencoder)" if out_shape == shape
                           else ""), found=list(out_shape))
    _check_embeddings(model, info, file)
    from deeppipe.models.layers.packed import check_padding

    if (why := check_padding(model, info.layout)) is not None:
        raise SpecError(why, path="model", file=file, expected="packed recurrent layers for padded sequences",
                        found=info.layout or "samples without a mask channel")
    _check_size(spec, model, file)
    if spec.model.pretrained is not None:  # readable, and every selected weight of the same shape
        from deeppipe.models.pretrained import check_pretrained

        check_pretrained(model, spec.model.pretrained, file=file, input_shape=shape,
                         resized=spec.data.resize is not None, upstream=_upstream)
    return model


def _upstream(source: str) -> tuple[dict[str, Any], list[int]] | None:
    """The network the experiment whose model folder is ``source`` will save (its state's shapes,
    on the meta device) and its input shape: a transfer pair validates before the first has run."""
    from pathlib import Path

    from deeppipe.config import parse_section
    from deeppipe.layout import artefact, experiment_files
    from deeppipe.spec.reading import read_yaml

    target = Path(source).resolve()
    for name, path in experiment_files().items():
        if artefact(name, "model").resolve() == target:
            facts = check_experiment(parse_section(ExperimentSpec, read_yaml(path), file=str(path)), file=str(path))
            return dict(facts.model.state_dict()), list(facts.input_shape)
    return None


def _check_embeddings(model: nn.Module, info: SourceInfo, file: str | None) -> None:
    """An Embedding looks rows up by index: its input must be whole numbers below its size."""
    tables = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Embedding)]
    if not tables:
        return
    name, table = tables[0]
    if not info.integer_inputs:
        raise SpecError(f"layer '{name}' is an Embedding, which needs integer token ids, but the inputs are not "
                        "whole numbers", path="model", file=file,
                        expected="token ids 0 .. num_embeddings - 1 (e.g. an npz of int arrays)",
                        found=f"inputs up to {info.max_input}")
    if info.max_input is not None and info.max_input >= table.num_embeddings:
        raise SpecError(f"the largest token id is {int(info.max_input)} but the Embedding '{name}' has "
                        f"{table.num_embeddings} rows", path="model", file=file,
                        expected=f"num_embeddings > {int(info.max_input)}", found=table.num_embeddings)


def _check_declared_loss(spec: ExperimentSpec, train: TrainConfig, task: Task, file: str | None) -> None:
    """A loss the model declares (a zoo file's ``loss:``) is the default; one that cannot train
    this task is refused where it comes from, with the way out (``train.loss``)."""
    if spec.train.loss is not None or train.loss is None:
        return
    entry = LOSSES.entry(train.loss.name, path="train.loss.name")
    if task.kind in entry.tasks:
        return
    zoo = getattr(spec.model, "zoo", None)
    where = f"zoo model '{zoo}'" if zoo is not None else "the model section"
    fitting = [e.name for e in LOSSES.entries() if task.kind in e.tasks]
    raise SpecError(f"{where} declares the loss '{train.loss.name}', which does not fit a {task.kind} task",
                    path="model.zoo" if zoo is not None else "model.loss", file=file,
                    expected=f"train.loss naming one of {', '.join(fitting)}", found=train.loss.name)


def _check_output(model: nn.Module, task: Task, train: TrainConfig, file: str | None) -> None:
    """The network's last function against the task and the loss: an identity output for
    regression, raw scores for a loss that applies softmax or sigmoid itself."""
    from deeppipe.models.layer_graph import LayerGraph
    from deeppipe.models.outputs import output_function

    if not isinstance(model, LayerGraph):
        return
    last = output_function(model)
    if last is None:
        return
    if task.kind == "regression":
        raise SpecError(f"a regression network must end in an identity (linear) output, but it ends in "
                        f"{last.layer} ('{last.name}'): regression targets are standardised and take any real "
                        f"value, which a '{last.name}' output cannot reach", path=last.path, file=file,
                        expected="a Linear layer last, no activation after it", found=last.layer)
    name = loss_name(train.loss, task)
    applies = LOSSES.entry(name).applies
    if applies in _APPLIED and last.name in _APPLIED[applies]:
        hint = " (a LogSoftmax output is what the nll loss takes)" if last.name == "log_softmax" else ""
        raise SpecError(f"the network ends in {last.layer}, but the loss '{name}' applies {applies} itself: the "
                        f"outputs would go through it twice{hint}", path=last.path, file=file,
                        expected=f"raw scores (end in the Linear layer; the loss and the predictions apply "
                        f"{applies})", found=last.layer)


def _check_sharing(model: nn.Module, train: TrainConfig, file: str | None) -> None:
    """Soft parameter sharing names two sub-networks of the same shape."""
    from deeppipe.training.regularize import sharing_pairs

    if train.regularization is None or not train.regularization.soft_sharing:
        return
    try:
        sharing_pairs(model, train.regularization)
    except SpecError as err:
        raise err.with_context(file=file) from None


def device_memory(device: str) -> tuple[str, int | None]:
    """(what, bytes) of the memory training would use: the GPU's for cuda, else this machine's RAM."""
    import os

    import torch

    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        if torch.cuda.is_available():
            index = int(device.partition(":")[2] or 0)
            return f"GPU {index}", int(torch.cuda.get_device_properties(index).total_memory)
        return "the GPU", None
    try:
        return "this machine's memory", int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # not a POSIX system: no figure to check against
        return "this machine's memory", None


def _check_size(spec: ExperimentSpec, model: nn.Module, file: str | None) -> None:
    """A network whose weights alone exceed the training device's memory cannot train anywhere
    here: refused before any work (the run would stop at build with an out-of-memory error)."""
    count = sum(p.numel() for p in model.parameters())
    what, total = device_memory(spec.train.device)
    need = count * 4  # fp32 weights alone; training needs about 4x (gradients, optimiser state)
    if total is not None and need > total:
        raise SpecError(f"the network has {count:,} parameters ({need / 2**30:,.1f} GiB in fp32 for the weights "
                        f"alone, about 4x that to train), more than {what} ({total / 2**30:,.1f} GiB)",
                        path="model", file=file, expected="a smaller network (fewer or narrower layers, a "
                        "smaller width_multiplier)", found=f"{count:,} parameters")


def _check_batch_norm(spec: ExperimentSpec, model: nn.Module, shape: tuple[int, ...], n_train: int,
                      file: str | None) -> None:
    """Batch norm on features (one value per channel per sample) cannot train on a batch of one
    sample: torch stops mid-epoch. Refused when batch_size is 1, or when the training part leaves
    a last batch of one (offline augmentation changes that count: not checked then)."""
    import torch

    sizes: dict[str, int] = {}
    hooks = [m.register_forward_pre_hook(lambda _m, inp, n=n: sizes.__setitem__(n, math.prod(inp[0].shape[2:])))
             for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not hooks:
        return
    try:
        with torch.no_grad():
            model(torch.zeros((2, *shape), device="meta"))
    except Exception:  # a network the meta run cannot take: its own checks spoke already
        return
    finally:
        for h in hooks:
            h.remove()
    flat = [n for n, size in sizes.items() if size == 1]
    batch = spec.train.batch_size
    offline = spec.augment is not None and spec.augment.offline is not None
    last = n_train % batch if not offline else 0
    if not flat or (batch > 1 and last != 1):
        return
    why = "train.batch_size is 1" if batch == 1 else \
        f"the {n_train} training samples leave a last batch of one sample at batch_size {batch}"
    near = next((b for b in (batch + d for d in (1, -1, 2, -2, 3, -3, 4)) if b >= 2 and n_train % b != 1), None)
    raise SpecError(f"batch norm layer '{flat[0]}' normalises each feature over the batch, and {why}: "
                    "torch cannot train it on a single sample", path="train.batch_size", file=file,
                    expected="a batch size of 2 or more" if batch == 1 else
                    f"a batch_size that leaves no single sample over (e.g. {near})" if near else
                    "more than one training sample", found=batch)


def describe(facts: Facts) -> dict[str, Any]:
    """A short summary for ``deeppipe validate``'s OK line."""
    task = facts.task
    params = sum(p.numel() for p in facts.model.parameters())
    return {"task": task.kind, "classes": task.num_classes, "input": facts.input_shape, "parameters": params,
            "split": (facts.num_train, facts.num_val, facts.num_test)}
