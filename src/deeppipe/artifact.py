"""A trained model as spec + weights + metadata, never a pickled class.

The directory holds ``spec.yaml`` (the resolved experiment), ``model.safetensors`` (the
state dict) and ``meta.json`` (input shape, task, normalisation, metrics). Loading rebuilds
the network from the spec with the model builder and fills in the weights, so a model still
loads after the code that trained it has moved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors.torch import load_file, save_file
from torch import nn

from deeppipe.data.normalize import Standardize
from deeppipe.data.task import Task
from deeppipe.files import ArtefactError, atomic_dir


class Network(nn.Module):
    """What deeppipe trains and saves: optional input standardisation, then the built network;
    for a relative forecaster (``relative``), the windows' last values taken off and added back."""

    def __init__(self, body: nn.Module, normalizer: nn.Module | None = None,
                 output_scale: nn.Module | None = None, relative: nn.Module | None = None,
                 step_mask: nn.Module | None = None) -> None:
        super().__init__()
        self.normalizer = normalizer if normalizer is not None else nn.Identity()
        self.body = body
        self.output_scale = output_scale if output_scale is not None else nn.Identity()
        self.relative = relative
        self.step_mask = step_mask  # CTC on padded sequences: padded steps are a certain blank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.relative is None:
            out = self.output_scale(self.body(self.normalizer(x)))
        else:
            out = self.output_scale(self.body(self.normalizer(x - x[:, -1:]))) + self.relative(x)
        return out if self.step_mask is None else self.step_mask(x, out)


class WindowRelative(nn.Module):
    """The last input step's target values, tiled over the horizon (step-major, as the targets):
    what a relative forecaster adds back to the change it predicts."""

    def __init__(self, target_index: list[int], horizon: int) -> None:
        super().__init__()
        self.register_buffer("index", torch.as_tensor(target_index, dtype=torch.long))
        self.horizon = int(horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1, self.index].repeat(1, self.horizon)

    @staticmethod
    def of(x: np.ndarray, y: np.ndarray, window: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Windows and targets as a relative forecaster sees them (for its statistics)."""
        last = x[:, -1:, :]
        return x - last, y - np.tile(last[:, 0, window["target_index"]], (1, int(window["horizon"])))


class Rescale(nn.Module):
    """y * std + mean: regression heads learn standardised targets but predict in real units."""

    def __init__(self, mean: np.ndarray | float, std: np.ndarray | float) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean), dtype=torch.float32).reshape(1, -1))
        self.register_buffer("std", torch.as_tensor(np.asarray(std), dtype=torch.float32).reshape(1, -1))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.std + self.mean


@dataclass
class ModelArtifact:
    spec: dict[str, Any]
    meta: dict[str, Any]
    state_dict: dict[str, torch.Tensor] = field(repr=False)

    @property
    def task(self) -> Task:
        return Task.from_dict(self.meta["task"])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.meta["input_shape"])

    def build(self) -> Network:
        """Rebuild the network from the spec and load the weights (strictly: every key must match)."""
        net = assemble(self.spec["model"], self.meta)
        try:
            net.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise ArtefactError(f"the model's weights do not fit the network its spec.yaml describes "
                                f"({first[-1].strip() if first else exc}): the model folder is corrupt or was "
                                "assembled from two models; train it again") from None
        net.eval()
        return net


def assemble(model_spec: dict[str, Any], meta: dict[str, Any], *, file: str | None = None,
             initial: bool = False) -> Network:
    """The Network for a model section and the data facts in ``meta``. ``initial``: the network a
    run starts training from (word vectors copied into its embeddings); a trained model's rebuild
    does not read them (its weights hold them, and the vectors file need not exist where it serves)."""
    from deeppipe.models import build_model

    task = Task.from_dict(meta["task"])
    shape = tuple(meta["input_shape"])
    body = build_model(model_spec, shape, task.num_outputs if task.kind != "reconstruction" else None,
                       file=file, path="model")
    norm = None
    if meta.get("normalize"):
        mean = np.asarray(meta.get("mean", 0.0), dtype=np.float32)
        std = np.asarray(meta.get("std", 1.0), dtype=np.float32)
        norm = Standardize(mean, std, len(shape), feature_last=meta.get("layout") in ("sequence", "padded_sequence"))
    scale = None
    if meta.get("target_mean") is not None:
        scale = Rescale(meta["target_mean"], meta["target_std"])
    rel = meta.get("relative")
    relative = WindowRelative(rel["target_index"], rel["horizon"]) if rel else None
    if meta.get("vocabulary"):  # text: encoding ids -> the training vocabulary's ids, before the network
        from deeppipe.data.text_vocab import TokenRemap

        norm = TokenRemap(meta["vocabulary"])
        for m in body.modules() if initial else ():  # TokenEmbedding(vectors: ...): the pretrained rows of the vocabulary
            if callable(getattr(m, "attach_vocabulary", None)):
                m.attach_vocabulary(meta["vocabulary"]["tokens"])
    mask = None
    if task.kind == "ctc" and meta.get("layout") in ("padded_sequence", "padded_tokens"):
        from deeppipe.models.layers.packed import StepMask  # the real lengths, not the padded one

        mask = StepMask(meta["layout"])
    return Network(body, norm, scale, relative, mask)


def save_artifact(artifact: ModelArtifact, path: str | Path) -> None:
    """Write the three files into a temporary folder, then swap it in: a killed run leaves no half model."""
    with atomic_dir(path) as tmp:
        state = {k: v.detach().cpu().contiguous() for k, v in artifact.state_dict.items()}
        save_file(state, str(tmp / "model.safetensors"))
        (tmp / "spec.yaml").write_text(yaml.safe_dump(artifact.spec, sort_keys=False))
        (tmp / "meta.json").write_text(json.dumps(artifact.meta, indent=2, sort_keys=True))


def _corrupt(file: Path, why: str) -> ArtefactError:
    return ArtefactError(f"{file} is corrupt ({why}): the model in {file.parent} cannot be loaded. Train it "
                         "again (kedro run --pipeline <experiment> --tags train, or dvc repro).")


def load_artifact(path: str | Path) -> ModelArtifact:
    """Read a model folder; a missing, tampered or corrupt file is named (nothing in it is
    evaluated: plain YAML and JSON, safetensors weights)."""
    root = Path(path)
    for name in ("spec.yaml", "meta.json", "model.safetensors"):
        if not (root / name).is_file():
            raise ArtefactError(f"{root} is not a complete deeppipe model folder: {name} is missing")
    try:
        spec = yaml.safe_load((root / "spec.yaml").read_bytes().decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:  # a python tag is a YAMLError: refused, not run
        raise _corrupt(root / "spec.yaml", f"not plain YAML: {str(exc).splitlines()[0]}") from None
    try:
        meta = json.loads((root / "meta.json").read_bytes().decode("utf-8"))
    except ValueError as exc:
        raise _corrupt(root / "meta.json", f"not valid JSON: {exc}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("model"), dict):
        raise _corrupt(root / "spec.yaml", "it holds no model section")
    if not isinstance(meta, dict) or not {"task", "input_shape"} <= set(meta):
        raise _corrupt(root / "meta.json", "it lacks the task and input shape")
    try:
        state = load_file(str(root / "model.safetensors"))
    except Exception:  # safetensors' SafetensorError (a pickle or junk renamed), OSError
        raise _corrupt(root / "model.safetensors", "not a safetensors file: a pickle or another format "
                       "renamed, or a truncated write; nothing in it was run") from None
    return ModelArtifact(spec=spec, meta=meta, state_dict=state)


def serve_outputs(artifact: ModelArtifact, net: nn.Module, x: Any, output: str = "proba") -> np.ndarray:
    """What the served model returns: class probabilities (or labels) for classification, values otherwise."""
    from deeppipe.evaluation.metrics import probabilities

    arr = x.to_numpy() if hasattr(x, "to_numpy") else np.asarray(x)
    arr = arr.astype(np.float32).reshape((-1, *artifact.input_shape))
    with torch.no_grad():
        out = net(torch.from_numpy(arr)).numpy()
    task = artifact.task
    if not task.is_classification:
        return out
    probs = probabilities(task, out).astype(np.float32)
    return probs.argmax(axis=1) if output == "label" else probs
