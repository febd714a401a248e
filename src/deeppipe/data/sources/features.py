"""Feature extraction as a data source (``type: features``): an intermediate layer's activations of a
trained deeppipe model, on the data that model was trained on, with that data's labels.

``model`` is a deeppipe model folder (``data/06_models/<experiment>/model``), ``layer`` a node name
of its network (``deeppipe summary`` lists them; an autoencoder's bottleneck is ``code``). The
samples are read as the model's own spec reads them (source, limit, resize), passed through its
input standardisation and network up to ``layer``, and flattened to (N, features), in the source's
order; the labels are the source's (an autoencoder's unlabelled training keeps them). The ingest
stage stores them as the experiment's ``dataset.npz`` (DVC-tracked, arrays ``x`` and ``y``), which
a new head trains on in the same experiment or a scikit-learn model reads with ``numpy.load``.

Validation (``peek``) builds the network on the meta device for the layer's shape; when the model
folder is not written yet and an experiment of this project writes it, that experiment's spec is
read instead, so the pair validates before the first has run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from deeppipe.config import Strict
from deeppipe.data.sources.base import DataError, Reader, Samples, SourceInfo
from deeppipe.registry import SOURCES


class FeaturesSource(Strict):
    """The activations of one layer of a trained model, as samples."""

    type: Literal["features"]
    model: str = Field(description="a deeppipe model folder, e.g. data/06_models/<experiment>/model")
    layer: str = Field(description="the node whose outputs are the features (e.g. code)")
    batch_size: int = Field(1024, gt=0, description="samples per forward pass")


def _spec_of(folder: Path) -> tuple[dict[str, Any], bool]:
    """The model's spec (and whether its weights exist): its spec.yaml, or the spec of the project's
    experiment that will write this folder."""
    if (folder / "spec.yaml").is_file():
        import yaml

        return yaml.safe_load((folder / "spec.yaml").read_text(encoding="utf-8")), True
    from deeppipe.layout import artefact, experiment_files
    from deeppipe.spec.reading import read_yaml

    for name, path in experiment_files().items():
        if artefact(name, "model").resolve() == folder.resolve():
            return read_yaml(path), False
    raise DataError("the model folder does not exist, and no experiment of this project writes it", file=str(folder),
                    expected="a trained deeppipe model folder (run its experiment first)", found=str(folder))


def _data(spec: dict[str, Any], where: str) -> Any:
    """The model's ``data:`` section, parsed."""
    from deeppipe.config import parse_section
    from deeppipe.data.config import DataConfig

    return parse_section(DataConfig, spec.get("data") or {}, file=where)


def _labelled(d: Any) -> Samples:
    from deeppipe.data.sources import load_source
    from deeppipe.data.stage import resized

    samples = load_source(d.source, on_error=d.on_error, limit=d.limit)
    return resized(samples, d.resize) if d.resize is not None else samples


def _layer_check(body: Any, layer: str, where: str) -> None:
    names = list(getattr(body, "node_names", ()))
    if layer not in names:
        from deeppipe.errors import unknown

        raise unknown("layer", layer, names, path="data.source.layer", file=where)


@SOURCES.register("features", config=FeaturesSource)
class FeaturesReader(Reader):
    @staticmethod
    def read(src: FeaturesSource, on_error: str) -> Samples:
        from deeppipe.artifact import load_artifact

        folder = Path(src.model)
        if not (folder / "model.safetensors").is_file():
            raise DataError("the model folder holds no trained weights yet", file=str(folder),
                            expected="a trained deeppipe model folder (run its experiment first)", found=src.model)
        artifact = load_artifact(folder)
        d = _data(artifact.spec, str(folder / "spec.yaml"))
        samples = _labelled(d)
        net = artifact.build().eval()
        _layer_check(net.body, src.layer, str(folder))
        out = []
        with torch.inference_mode():
            for i in range(0, len(samples.x), src.batch_size):
                xb = torch.from_numpy(np.ascontiguousarray(samples.x[i:i + src.batch_size], dtype=np.float32))
                if samples.x.dtype == np.uint8:
                    xb = xb / 255.0
                feats = net.body.outputs(net.normalizer(xb), [src.layer])[src.layer]
                out.append(feats.reshape(len(xb), -1).numpy().astype(np.float32))
        x = np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)
        meta = {"source": f"features:{src.model}:{src.layer}", "features_of": samples.meta.get("source"),
                "class_names": samples.meta.get("class_names")}
        return Samples(x, samples.y, samples.task, samples.n_official_test, meta)

    @classmethod
    def peek(cls, src: FeaturesSource, on_error: str = "raise") -> SourceInfo:
        from dataclasses import replace

        from deeppipe.data.resize import resized_shape
        from deeppipe.data.sources import peek
        from deeppipe.models import build_model

        folder = Path(src.model)
        spec, _ = _spec_of(folder)
        d = _data(spec, str(folder))
        info = peek(d.source, on_error=d.on_error)
        shape = resized_shape(info.sample_shape, d.resize)
        outputs = None if d.task == "reconstruction" else info.task.num_outputs
        body = build_model(spec.get("model"), shape, outputs, device="meta")
        _layer_check(body, src.layer, str(folder))
        with torch.no_grad():
            feats = body.outputs(torch.empty((2, *shape), device="meta"), [src.layer])[src.layer]
        return replace(info, sample_shape=(int(np.prod(feats.shape[1:])),), integer_inputs=False, max_input=None)
