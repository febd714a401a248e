"""The train stage as a plain function: build the network the spec describes for this data, fit
it, and return the model artifact (spec + weights + metadata) with its history.

Kedro's train node calls ``fit_experiment``; tuning trials, k-fold members and tests call it
directly. Everything a run needs to record goes through the ``Tracker`` it is given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from deeppipe.artifact import ModelArtifact, assemble
from deeppipe.data.storage import rows, schema_view
from deeppipe.tracking.tracker import NullTracker, Tracker, log_bytes
from deeppipe.training.result import FitResult

if TYPE_CHECKING:
    from deeppipe.data.sources import Samples
    from deeppipe.data.stage import Split
    from deeppipe.spec.loader import ResolvedSpec

log = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    """What training produces: the artifact to save and register, the per-epoch history, the
    figures worth keeping (augmentation preview, network picture) and the engine's result."""

    artifact: ModelArtifact
    history: list[dict[str, float]]
    plots: dict[str, bytes] = field(default_factory=dict)
    result: FitResult | None = None


def model_facts(rs: ResolvedSpec, samples: Samples, split: Split) -> dict[str, Any]:
    """The metadata a model carries besides its weights: input shape (after augmentation), task,
    and the normalisation statistics of the training split (never of val or test)."""
    from deeppipe.augment.apply import augmented_shape
    from deeppipe.data.normalize import compute_stats
    from deeppipe.models import build_model

    spec, task = rs.spec, samples.task
    shape = tuple(samples.sample_shape)
    if spec.augment is not None and len(shape) == 3:
        shape = tuple(augmented_shape(spec.augment, shape))
    normalize = spec.data.normalize
    if normalize:
        outputs = task.num_outputs if task.kind != "reconstruction" else None  # an autoencoder: the input's shape
        probe = build_model(spec.model, shape, outputs, file=rs.file, device="meta")
        if any(isinstance(m, torch.nn.Embedding) for m in probe.modules()):
            log.info("inputs are token ids read by an Embedding: not standardised")
            normalize = False
    layout = samples.meta.get("layout")  # "sequence": (N, T, F) windows, scaled per feature
    meta: dict[str, Any] = {"experiment": rs.name, "spec_hash": rs.hash, "input_shape": list(shape),
                            "task": task.to_dict(), "normalize": normalize, "layout": layout}
    tr = split.train
    if samples.meta.get("text"):  # token ids: a vocabulary of the training split's texts only (data.text_vocab)
        from deeppipe.data.text_vocab import fit_vocabulary

        meta.update(normalize=False, vocabulary=fit_vocabulary(samples.x[tr], samples.meta["text"]))
        normalize = False
    window = samples.meta.get("window") or {}
    if window.get("relative"):  # the network sees (and is scaled for) changes from each window's last value
        meta["relative"] = {"target_index": window["target_index"], "horizon": window["horizon"]}
    if normalize:
        x, y = rows(samples.x, tr), samples.targets()[tr]  # uint8/streamed images: no float copy
        if window.get("relative"):
            from deeppipe.artifact import WindowRelative

            x, y = WindowRelative.of(x, y, window)
        mean, std = compute_stats(x, layout)
        meta.update(mean=mean.tolist(), std=std.tolist())
        if task.kind == "regression":
            t_mean, t_std = compute_stats(y.reshape(len(tr), -1))
            meta.update(target_mean=t_mean.tolist(), target_std=t_std.tolist())
    return meta


def fit_experiment(rs: ResolvedSpec, samples: Samples, split: Split, *, tracker: Tracker | None = None,
                   checkpoints: Path | None = None, offline: Samples | None = None,
                   init: dict[str, torch.Tensor] | None = None, watch: tuple[str, ...] = (),
                   picture: bool = True) -> TrainedModel:
    """Train the experiment's network on ``split.train`` (or the offline-augmented set), validating
    on ``split.val``. With ``checkpoints`` (a folder) a killed run resumes where it stopped; ``init``
    (a state dict of the same network) is where training starts (a snapshot ensemble's next cycle).
    ``watch``: more ``val/<metric>`` names to compute every epoch (a tuning trial's objective, which
    its pruner reads); ``picture=False`` skips drawing the network (~60 ms, the same for every trial)."""
    import deeppipe.training.resume as resume
    from deeppipe.augment.apply import build_train_source, eval_view
    from deeppipe.augment.offline import offline_set
    from deeppipe.data.batches import TensorBatches
    from deeppipe.evaluation.metrics import validation_metrics
    from deeppipe.tracking.provenance import data_fingerprint
    from deeppipe.training.denoise import wrap as denoising
    from deeppipe.training.device import resolve_device
    from deeppipe.training.errors import oom_building
    from deeppipe.training.losses import with_model_loss
    from deeppipe.training.phases import fit_model

    tracker = tracker or NullTracker()
    spec, task = rs.spec, samples.task
    y = samples.targets()
    x_train, y_train = rows(samples.x, split.train), y[split.train]  # lazy images stay uint8 / in files
    if offline is None and spec.augment is not None and spec.augment.offline is not None:
        log.info("augment.offline given outside the pipeline's augment stage: materialised in memory")
        offline = offline_set(spec, samples, split)
    if offline is not None:
        x_train, y_train = offline.x, offline.targets()
    torch.manual_seed(spec.seed)
    meta = model_facts(rs, samples, split)
    meta["data_sha256"] = data_fingerprint(samples, split)
    tracker.set_tags({"deeppipe.data_sha256": meta["data_sha256"]})
    tracker.log_dataset(rs.name, schema_view(x_train), y_train, source=str(samples.meta.get("source", spec.data.source.type)),
                        digest=meta["data_sha256"])
    try:
        net = assemble(spec.model, meta, file=rs.file, initial=True)
    except (RuntimeError, MemoryError) as exc:  # the CPU allocator refusing a network too large
        raise oom_building(exc, spec, meta) from exc
    if spec.model.pretrained is not None:  # transfer learning: the selected weights of another model
        from deeppipe.models.pretrained import load_pretrained

        moved = load_pretrained(net.body, spec.model.pretrained, file=rs.file)
        meta["pretrained"] = {"from": spec.model.pretrained.source, "loaded": len(moved.loaded),
                              "missing": len(moved.missing)}
        from deeppipe.spec.source_size import resized_automatically

        if (size := resized_automatically(rs)) is not None:  # spec.source_size.with_source_size
            meta["pretrained"]["resized_to"] = size
        tracker.set_tags({"deeppipe.pretrained": spec.model.pretrained.source})
    if init is not None:
        net.load_state_dict(init, strict=True)
    plots = describe_model(rs, net, meta, tracker, picture=picture)

    device = resolve_device(spec.train.device)
    if spec.augment is not None and spec.augment.train and samples.x.ndim == 4:
        from deeppipe.augment.preview import preview_png

        plots["augmentation_preview"] = preview_png(spec.augment, rows(samples.x, split.train), n=16,
                                                     seed=spec.seed)
        log_bytes(tracker, "augmentation_preview.png", plots["augmentation_preview"], "plots")
    train_source = build_train_source(spec.augment, x_train, y_train, batch_size=spec.train.batch_size,
                                      device=device, seed=spec.seed, log=log.info)
    va = split.val
    val_source = (TensorBatches(eval_view(spec.augment, rows(samples.x, va), "val"), y[va], spec.train.eval_batch_size,
                                shuffle=False, device=device) if len(va) else None)
    folder, key = None, rs.hash
    if checkpoints is not None:  # resumed only if written for this spec on this data and split
        folder, key, tracker = resume.prepare(checkpoints, rs, meta["data_sha256"], tracker)
    train_cfg = with_model_loss(spec.train, spec.model)  # a zoo model's declared loss, as validated
    train_source = denoising(train_source, spec.train.denoise, spec.seed)  # corrupted inputs, clean targets
    result = fit_model(net, train_source, val_source, train_cfg, task, pretrained=spec.model.pretrained,
                       tracker=tracker, checkpoint_dir=folder, seed=spec.seed, spec_hash=key,
                       metrics_fn=validation_metrics(task, _monitored(spec, watch)), file=rs.file)
    net.cpu()
    meta.update(best_epoch=result.best_epoch, epochs_run=result.epochs_run,
                weights_epoch=result.best_epoch if result.restored_best else result.epochs_run,
                mlflow_run_id=getattr(tracker, "run_id", None), device=str(device))
    artifact = ModelArtifact(spec=spec.to_dict(), meta=meta,
                             state_dict={k: v.detach().cpu() for k, v in net.state_dict().items()})
    return TrainedModel(artifact, list(result.history), plots, result)


def _monitored(spec: Any, watch: tuple[str, ...] = ()) -> list[str]:
    """The validation metrics the run watches (early stopping, reduce-on-plateau, ``watch``)."""
    names = list(watch)
    if spec.train.early_stopping is not None:
        names.append(spec.train.early_stopping.monitor)
    if spec.train.schedule is not None:
        names.append(spec.train.schedule.monitor)
    return list(dict.fromkeys(n.split("/", 1)[1] for n in names if n.startswith("val/")))


def describe_model(rs: ResolvedSpec, net: Any, meta: dict[str, Any], tracker: Tracker, *,
                   picture: bool = True) -> dict[str, bytes]:
    """Log the resolved spec, the layer table and (``picture``) the network picture; return the picture."""
    from deeppipe.models import draw_graph, summarize

    log_bytes(tracker, "spec.yaml", rs.resolved_yaml())
    shape = tuple(meta["input_shape"])
    plots: dict[str, bytes] = {}
    try:
        summary = summarize(net.body, shape)
        log_bytes(tracker, "model_summary.txt", summary.table())
        tracker.log_params({"model.total_params": summary.total_params})
        log.info("model: %s parameters (%s trainable)", f"{summary.total_params:,}", f"{summary.trainable_params:,}")
    except Exception as exc:  # the summary is a convenience: never fail training over it
        log.warning("model summary unavailable: %s", exc)
    if not picture:
        return plots
    try:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = draw_graph(net.body, shape, Path(tmp) / "model_graph.png")
            plots["model_graph"] = Path(path).read_bytes()
        log_bytes(tracker, "model_graph.png", plots["model_graph"])
    except Exception as exc:
        log.warning("model graph picture unavailable: %s", exc)
    return plots
