"""The predictor seam: what evaluation scores. A single model, a model under test-time
augmentation and (later) an ensemble all answer ``predict(x)`` the same way, so the evaluate
stage has one path for all of them.

``predict`` returns class probabilities (N, K) for classifiers (binary: [1 - p, p]) and values
in the target's units for regression. Averaging views or members averages these.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from torch import nn

from deeppipe.data.task import Task
from deeppipe.evaluation.metrics import probabilities


@runtime_checkable
class Predictor(Protocol):
    task: Task

    def predict(self, x: np.ndarray) -> np.ndarray: ...


class ModelPredictor:
    """One trained network (raw inputs in: it standardises them itself)."""

    def __init__(self, net: nn.Module, task: Task, *, batch_size: int = 1024, device: Any = None) -> None:
        self.net, self.task, self.batch_size, self.device = net, task, batch_size, device

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """Raw outputs (logits for classifiers), computed on ``device`` (default: where the net is)."""
        from deeppipe.training.inference import predict

        try:
            return predict(self.net, x, batch_size=self.batch_size, device=self.device)
        finally:
            if self.device is not None:
                self.net.cpu()  # saliency, reports and the registry expect the net on the CPU

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = self.outputs(x)
        return probabilities(self.task, out) if self.task.is_classification else out


class TTAPredictor:
    """Test-time augmentation: the mean prediction over the original and every ``augment.tta``
    view (probabilities for classifiers, not logits)."""

    def __init__(self, inner: Predictor, augment: Any, *, seed: int = 0) -> None:
        self.inner, self.augment, self.seed, self.task = inner, augment, seed, inner.task

    def predict(self, x: np.ndarray) -> np.ndarray:
        from deeppipe.augment.tta import tta_predict

        # the views are albumentations transforms of whole arrays: lazy images are read once here
        return tta_predict(self.inner.predict, np.asarray(x), self.augment, seed=self.seed)


def predictor_for(spec: Any, artifact: Any) -> Predictor:
    """The predictor a spec asks for around a trained artifact (TTA when ``augment.tta`` is set)."""
    from deeppipe.training.device import resolve_device

    device = resolve_device(spec.train.device)  # on the training device: a GPU run evaluates there
    base: Predictor = ModelPredictor(artifact.build(), artifact.task, batch_size=spec.train.eval_batch_size,
                                     device=None if device.type == "cpu" else device)
    if spec.augment is not None and spec.augment.tta and len(artifact.input_shape) == 3:
        return TTAPredictor(base, spec.augment, seed=spec.seed)
    return base
