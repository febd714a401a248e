"""``deeppipe export EXPERIMENT --format onnx|torchscript``: the trained model (one network or an
ensemble, which is one network too) as a file other runtimes load, checked against PyTorch on
the experiment's own test split before it is kept, and logged to the MLflow run that trained it.

The exported graph is the whole ``Network``: input standardisation, the layers and the regression
rescaling, so it takes raw inputs of the model's input shape, like the served model, and returns
the raw outputs (logits for classifiers; apply softmax, or sigmoid for one binary logit).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deeppipe.errors import SpecError

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}
TOLERANCE = 1e-4
OPSET = 17


@dataclass(frozen=True)
class Exported:
    path: Path
    format: str
    max_abs_diff: float
    samples: int


def _example(artifact: Any, n: int = 2) -> torch.Tensor:
    return torch.zeros((n, *artifact.input_shape), dtype=torch.float32)


def export_onnx(net: torch.nn.Module, artifact: Any, path: Path) -> None:
    import io

    from deeppipe.files import atomic_write

    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(net, (_example(artifact),), buffer, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=OPSET,
                          dynamo=False)
    atomic_write(path, buffer.getvalue())


def export_torchscript(net: torch.nn.Module, artifact: Any, path: Path) -> None:
    import io

    from deeppipe.files import atomic_write

    with torch.no_grad():
        traced = torch.jit.trace(net, _example(artifact), check_trace=False)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    atomic_write(path, buffer.getvalue())


def run_exported(path: Path, fmt: str, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The exported file's outputs on ``x``, by its own runtime (onnxruntime; TorchScript's loader)."""
    outs = []
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for i in range(0, len(x), batch_size):
            outs.append(session.run(None, {"input": x[i:i + batch_size]})[0])
    else:
        module = torch.jit.load(str(path), map_location="cpu")
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                outs.append(module(torch.from_numpy(x[i:i + batch_size])).numpy())
    return np.concatenate(outs)


def export_model(artifact: Any, fmt: str, path: Path, check_inputs: np.ndarray) -> Exported:
    """Write the export and check it: the runtime's outputs on ``check_inputs`` must match
    PyTorch's within ``TOLERANCE`` (absolute), or the file is removed and the export refused."""
    if fmt not in FORMATS:
        from deeppipe.errors import unknown

        raise unknown("export format", fmt, FORMATS, path="--format")
    net = artifact.build().cpu().eval()
    {"onnx": export_onnx, "torchscript": export_torchscript}[fmt](net, artifact, path)
    x = np.ascontiguousarray(check_inputs, dtype=np.float32)
    with torch.no_grad():
        expected = np.concatenate([net(torch.from_numpy(x[i:i + 256])).numpy() for i in range(0, len(x), 256)])
    got = run_exported(path, fmt, x)
    diff = float(np.max(np.abs(got - expected))) if len(x) else 0.0
    if not diff <= TOLERANCE:
        path.unlink(missing_ok=True)
        raise RuntimeError(f"the {fmt} export differs from PyTorch by up to {diff:.3g} (> {TOLERANCE}) on "
                           f"{len(x)} test samples: not kept")
    return Exported(path, fmt, diff, len(x))


def export_experiment(experiment: str, fmt: str, output: str | Path | None = None, *,
                      root: Path | None = None) -> Exported:
    """Export the experiment's trained model (``data/06_models/<experiment>/model``), checked on its
    test split, and log the file to the MLflow run that trained the model."""
    from deeppipe.ensemble.artifact import load_model
    from deeppipe.io import SamplesDataset, SplitDataset
    from deeppipe.layout import artefact

    root = Path.cwd() if root is None else root
    model_dir = artefact(experiment, "model", root=root)
    if not (model_dir / "meta.json").is_file():
        raise SpecError(f"no trained model at {model_dir}", path=experiment, expected="a trained experiment "
                        f"(kedro run --pipeline {experiment})", found=str(model_dir))
    artifact = load_model(model_dir)
    samples = SamplesDataset(str(artefact(experiment, "dataset", root=root))).load()
    split = SplitDataset(str(artefact(experiment, "split", root=root))).load()
    path = Path(output) if output else model_dir.parent / f"model{SUFFIX.get(fmt, '')}"
    x = samples.x[split.evaluation].astype(np.float32)
    spec = artifact.spec
    if spec.get("augment"):
        from deeppipe.augment.apply import eval_view
        from deeppipe.augment.config import AugmentConfig
        from deeppipe.config import parse_section

        x = eval_view(parse_section(AugmentConfig, spec["augment"], path="augment"), x, "test").astype(np.float32)
    result = export_model(artifact, fmt, path, x)
    _log(result, artifact, root)
    return result


def _log(result: Exported, artifact: Any, root: Path) -> None:
    """Beside the model in the MLflow run that trained it, when that run is in the tracking store
    (MLFLOW_TRACKING_URI, else the project's sqlite:///mlflow.db, as conf/base/mlflow.yml says)."""
    import os

    import mlflow

    run_id = artifact.meta.get("mlflow_run_id")
    uri = os.environ.get("MLFLOW_TRACKING_URI") or (f"sqlite:///{root / 'mlflow.db'}"
                                                   if (root / "mlflow.db").is_file() else None)
    if not run_id or uri is None:
        return
    mlflow.set_tracking_uri(uri)
    try:
        client = mlflow.MlflowClient()
        client.get_run(run_id)
        client.log_artifact(run_id, str(result.path), artifact_path="export")
        client.set_tag(run_id, f"deeppipe.export.{result.format}.max_abs_diff", f"{result.max_abs_diff:.3g}")
    except mlflow.exceptions.MlflowException as exc:
        log.warning("export not logged to MLflow run %s: %s", run_id, exc)
